from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.requests import HTTPConnection

from wallboard.i18n import LANGS, catalogue, pick_language, t

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "wallboard" / "locales"
TEMPLATES = ROOT / "templates"
JS = ROOT / "static" / "js"

# Keys other modules build from codes (error.{CODE}) or that the contract names.
CONTRACT_KEYS = [
    *(f"error.{c}" for c in ("USER_NOT_REGISTERED", "USER_BUSY", "CALL_NOT_FOUND", "TIMEOUT",
                             "UNREACHABLE", "BAD_RESPONSE", "UNKNOWN", "RATE_LIMITED", "FORBIDDEN",
                             "CSRF", "NO_EXT", "BAD_REQUEST", "UNAUTHORIZED")),
    *(f"action.ok.{a}" for a in ("listen", "whisper", "barge", "transfer", "call")),
    "action.confirm.barge", "action.confirm.transfer",
    *(f"action.{a}" for a in ("listen", "whisper", "barge", "transfer", "call")),
    "login.title", "login.username", "login.password", "login.ext", "login.submit",
    "login.error.invalid", "login.error.unreachable", "logout", "audit.title",
    *(f"audit.{c}" for c in ("when", "who", "role", "ip", "action", "call", "agent", "ext", "result")),
    "audit.filter.date", "audit.filter.username", "demo.banner",
    "role.supervisor", "role.viewer", "role.kiosk", "myext.label", "myext.save",
    # Built in code from a state, a connection state or a language code.
    *(f"state.{s}" for s in ("offline", "idle", "ringing", "oncall")),
    *(f"conn.{c}" for c in ("live", "stale", "reconnecting")),
    *(f"lang.{code}" for code in LANGS),
]


def raw(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def conn(query: str = "", cookie: str = "") -> HTTPConnection:
    headers = [(b"cookie", cookie.encode())] if cookie else []
    return HTTPConnection({"type": "http", "path": "/", "query_string": query.encode(),
                           "headers": headers})


def test_both_catalogues_have_the_same_keys_and_no_empty_string() -> None:
    vi, en = raw("vi"), raw("en")
    assert set(vi) == set(en)
    assert all(v.strip() for v in [*vi.values(), *en.values()])


def test_both_catalogues_use_the_same_parameters() -> None:
    vi, en = raw("vi"), raw("en")
    names = re.compile(r"\{(\w+)\}")
    for key in en:
        assert set(names.findall(vi[key])) == set(names.findall(en[key])), key


def test_the_catalogues_differ_where_words_are_translated() -> None:
    assert raw("vi")["state.idle"] != raw("en")["state.idle"]
    assert raw("vi")["app.title"] != raw("en")["app.title"]


@pytest.mark.parametrize("key", CONTRACT_KEYS)
def test_contract_keys_exist(key: str) -> None:
    assert key in raw("vi") and key in raw("en")


def template_keys() -> set[str]:
    keys: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text(encoding="utf-8")
        keys.update(re.findall(r"""\bt\[\s*['"]([\w.]+)['"]\s*\]""", text))
        keys.update(re.findall(r"""\bt\(\s*['"]([\w.]+)['"]""", text))
        keys.update(f"kpi.{name}" for name in re.findall(r"""\bkpi\(\s*['"](\w+)['"]""", text))
    return keys


def js_keys() -> set[str]:
    """Calls t('key') and every quoted literal shaped like a key of the catalogue."""
    prefixes = {key.split(".")[0] for key in raw("en")}
    keys: set[str] = set()
    for path in JS.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        keys.update(re.findall(r"""\bt\(\s*['"](\w+\.[\w.]+)['"]""", text))
        for literal in re.findall(r"""'([a-z_]+(?:\.[A-Za-z_]+)+)'""", text):
            if literal.split(".")[0] in prefixes:
                keys.add(literal)
    return keys


def test_every_key_the_templates_use_exists() -> None:
    keys = template_keys()
    assert "kpi.waiting" in keys and "login.title" in keys  # the grep works
    assert sorted(keys - set(raw("en"))) == []


def test_every_key_the_scripts_use_exists() -> None:
    keys = js_keys()
    assert "state.oncall" in keys and "error.NETWORK" in keys  # the grep works
    assert sorted(keys - set(raw("en"))) == []


def test_pick_language_prefers_query_then_cookie_then_default() -> None:
    assert pick_language(conn("lang=en", "lang=vi"), "vi") == "en"
    assert pick_language(conn("", "lang=en"), "vi") == "en"
    assert pick_language(conn(), "en") == "en"
    assert pick_language(conn(), "vi") == "vi"


def test_pick_language_ignores_unknown_values() -> None:
    assert pick_language(conn("lang=fr", "lang=de"), "en") == "en"
    assert pick_language(conn("lang=<script>"), "xx") == "vi"


def test_t_formats_parameters_in_each_language() -> None:
    assert t("en", "error.USER_BUSY", ext="101") == "Extension 101 is busy."
    assert t("vi", "error.USER_BUSY", ext="101") == "Máy nhánh 101 đang bận."


def test_t_falls_back_to_english_then_to_the_key() -> None:
    vi = catalogue("vi")
    en_only = "zz.only.english"
    catalogue("en")[en_only] = "English words"
    try:
        assert vi[en_only] == "English words"
        assert t("vi", "zz.missing") == "zz.missing"
    finally:
        del catalogue("en")[en_only]


def test_t_with_a_missing_parameter_does_not_raise() -> None:
    assert t("en", "error.USER_BUSY") == "Extension {ext} is busy."
    assert "{ext}" in t("en", "error.USER_BUSY", other="x")


def test_catalogue_of_an_unknown_language_is_english() -> None:
    assert catalogue("fr")["state.idle"] == raw("en")["state.idle"]
