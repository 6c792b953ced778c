"""axe-core for the browser tests: the npm package, unpacked under .venv/axe (fetched with
`npm pack` on first use), read into the test run only; the wallboard never serves it."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

VERSION = "4.14.1"
CACHE = Path(__file__).resolve().parent.parent / ".venv" / "axe"
SCRIPT = CACHE / "package" / "axe.min.js"


@functools.cache
def axe_source() -> str:
    if not SCRIPT.exists():
        _fetch()
    text = SCRIPT.read_text(encoding="utf-8")
    if f"axe v{VERSION}" not in text[:400] and VERSION not in text[:400]:
        pytest.fail(f"{SCRIPT} is not axe-core {VERSION}: remove {CACHE} to fetch it again")
    return text


def _fetch() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("axe-core is needed for the accessibility tests and npm is not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "pack", f"axe-core@{VERSION}", "--silent"], cwd=CACHE, capture_output=True,
                          text=True, timeout=180, check=False)
    if done.returncode != 0:
        pytest.fail(f"npm pack axe-core@{VERSION} failed: {done.stderr.strip()[:400]}")
    tgz = CACHE / done.stdout.strip().splitlines()[-1]
    with tarfile.open(tgz) as tar:
        tar.extractall(CACHE, filter="data")
