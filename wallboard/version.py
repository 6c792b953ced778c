"""What a screen compares to know the server was upgraded: the package's version and a
digest of the files a browser loads (static/, templates/, locales/), computed once per
process, or what a packager sets in WALLBOARD_BUILD (a release or commit id). Every
snapshot carries it; a TV whose page came from another build reloads."""

from __future__ import annotations

import functools
import hashlib
import os
from importlib.metadata import PackageNotFoundError, version

from wallboard.paths import PACKAGE, web_dir


@functools.cache
def build() -> str:
    if os.environ.get("WALLBOARD_BUILD"):
        return os.environ["WALLBOARD_BUILD"][:64]
    try:
        release = version("wallboard")
    except PackageNotFoundError:
        release = "0"
    digest = hashlib.sha256()
    for root in (web_dir("static"), web_dir("templates"), PACKAGE / "locales"):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{release}+{digest.hexdigest()[:12]}"
