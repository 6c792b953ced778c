"""Where the templates and static files are: beside the package in a wheel
(`wallboard/_web/`), at the repo root in a checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def web_dir(name: str) -> Path:
    installed = PACKAGE / "_web" / name
    return installed if installed.is_dir() else PACKAGE.parent / name
