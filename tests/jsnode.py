"""Scripts of tests/js/ run in node: JSON lines in, JSON lines out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

JS = Path(__file__).resolve().parent / "js"


def run_node(script: str, lines: Iterable[Any]) -> list[Any]:
    node = shutil.which("node")
    if node is None:
        # Under CI a skipped check would hide a broken screen: fail instead.
        if os.environ.get("CI") == "true":
            pytest.fail("no node: the screen's modules cannot be run")
        pytest.skip("no node (Debian package 'nodejs')")
    feed = "".join(json.dumps(line) + "\n" for line in lines)
    done = subprocess.run([node, str(JS / script)], input=feed, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]
