"""The screen's words: one catalogue per language, and how a screen picks one.

Every string a screen shows lives in `locales/<lang>.json`. Templates read the
catalogue through `t` (a dict that can also be called with format parameters);
the browser gets the same catalogue in the page's boot JSON.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from starlette.requests import HTTPConnection

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")
FALLBACK: Lang = "en"
LOCALES: dict[str, str] = {"vi": "vi-VN", "en": "en-US"}
COOKIE = "lang"

_DIR = Path(__file__).parent / "locales"


class Catalogue(dict[str, str]):
    """The strings of one language; `t["key"]` or `t("key", ext="101")`.

    A missing key falls back to English, then to the key itself, so a gap in a
    translation shows something readable instead of breaking the page.
    """

    def __init__(self, lang: str, strings: dict[str, str]) -> None:
        super().__init__(strings)
        self.lang = lang

    def __missing__(self, key: str) -> str:
        if self.lang != FALLBACK:
            return catalogue(FALLBACK)[key]
        return key

    def __call__(self, key: str, **params: Any) -> str:
        text = self[key]
        if not params:
            return text
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            # A translation that names a parameter the caller did not give
            # must not turn a page into a 500.
            return text


@cache
def catalogue(lang: str) -> Catalogue:
    if lang not in LANGS:
        lang = FALLBACK
    with (_DIR / f"{lang}.json").open(encoding="utf-8") as f:
        strings: dict[str, str] = json.load(f)
    return Catalogue(lang, strings)


def pick_language(conn: HTTPConnection, default: str) -> Lang:
    """?lang= first, then the `lang` cookie, then the configured default."""
    for candidate in (conn.query_params.get("lang"), conn.cookies.get(COOKIE), default):
        if candidate in LANGS:
            return candidate  # type: ignore[return-value]
    return LANGS[0]


def t(lang: str, key: str, **params: Any) -> str:
    return catalogue(lang)(key, **params)


__all__ = ["COOKIE", "LANGS", "LOCALES", "Catalogue", "Lang", "catalogue", "pick_language", "t"]
