"""The board's pages: GET / (tab, or ?kiosk=1 for the TV layout) and GET /kiosk?token=.

`render()` gives every page (the board, the login and audit pages) the same base
context: language, catalogue, principal, CSRF token.
Server data reaches the browser only as `boot`, a JSON script tag, because the
Content-Security-Policy forbids inline scripts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from wallboard.hub import PING_EVERY_S
from wallboard.i18n import COOKIE, LANGS, LOCALES, catalogue, pick_language
from wallboard.principal import Principal
from wallboard.settings import Settings
from wallboard.version import build
from wallboard.views import view_of
from wallboard.web.context import PARTS_KEY, parts, principal_of, settings_of, site
from wallboard.web.guards import login_redirect

LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
KIOSK_FLAGS = frozenset({"1", "true", "yes"})


def _utc_time(ms: object) -> str:
    if not isinstance(ms, int | float):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def make_templates(directory: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                   ) -> Jinja2Templates:
    """Jinja2Templates over `directory` with autoescaping and the i18n globals."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["LANGS"] = LANGS
    env.filters["utc_time"] = _utc_time
    # The boot JSON keeps Vietnamese readable; `tojson` still escapes < > & '.
    env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    return Jinja2Templates(env=env)


def _lang_links(request: Request) -> dict[str, str]:
    """The current URL with ?lang= set to each language, for the switcher."""
    links: dict[str, str] = {}
    for lang in LANGS:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        params.append(("lang", lang))
        links[lang] = f"{request.url.path}?{urlencode(params)}"
    return links


def base_context(request: Request) -> dict[str, Any]:
    settings = settings_of(request)
    found = request.scope.get(PARTS_KEY)
    lang = pick_language(request, settings.display.language)
    principal = principal_of(request)
    return {
        "request": request,
        "lang": lang,
        "locale": LOCALES[lang],
        "t": catalogue(lang),
        "principal": principal,
        "csrf_token": principal.csrf_token if principal else "",
        "auth_mode": settings.auth.mode,
        "demo": settings.auth.mode == "none",
        "display": dataclasses.asdict(settings.display),
        "lang_links": _lang_links(request),
        "layout": "tab",
        "base": found.base if found else "",  # the tenant's URL prefix for links and forms
    }


def render(request: Request, template_name: str, context: dict[str, Any],
           status_code: int = 200) -> Response:
    """A page with the base context; `context` adds to it and wins on conflicts."""
    full = base_context(request)
    full.update(context)
    found = request.scope.get(PARTS_KEY)
    templates = found.templates if found else site(request).templates
    response = templates.TemplateResponse(request, template_name, full, status_code=status_code)
    chosen = request.query_params.get("lang")
    if chosen in LANGS:
        # Remember an explicit choice, so the next page and the action API
        # answer in the same language.
        response.set_cookie(COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE, samesite="lax", path="/")
    return response


def hidden_extensions(settings: Settings, supervisor_exts: set[str]) -> list[str]:
    """No tile for these: display.hide_extensions and, unless turned off, the supervisors' phones."""
    hidden = set(settings.display.hide_extensions)
    if settings.display.hide_supervisor_phones:
        hidden |= supervisor_exts
        if settings.auth.mode == "none" and settings.auth.demo_ext:
            hidden.add(settings.auth.demo_ext)
    return sorted(hidden)


def _boot(settings: Settings, principal: Principal, lang: str, layout: str,
          ws_path: str, state_path: str, base: str, supervisor_exts: set[str]) -> dict[str, Any]:
    display = settings.display
    poll = settings.poll
    kiosk = layout == "kiosk"
    return {
        "version": build(),  # a snapshot from another build reloads the page (main.js)
        "hidden_extensions": hidden_extensions(settings, supervisor_exts),
        "night": display.night if kiosk else "",
        "shift_minutes": display.shift_minutes if kiosk else 0,
        "lang": lang,
        "locale": LOCALES[lang],
        "timezone": settings.pbx.timezone,
        "role": principal.role,
        "name": principal.name,
        "ext": principal.ext,
        "layout": layout,
        "actions": principal.is_supervisor and layout == "tab",
        "csrf": principal.csrf_token,
        "ws_path": ws_path,
        "state_path": state_path,
        "base": base,  # the tenant's URL prefix: "" alone, "/t/{id}" with [[tenants]]
        "demo": settings.auth.mode == "none",
        "rotate_seconds": display.rotate_seconds if layout == "kiosk" else 0,
        "thresholds": {
            "ringing_warn": display.ringing_warn_seconds,
            "oncall_warn": display.oncall_warn_seconds,
            "waiting_warn": display.waiting_warn_seconds,
            "sla": display.sla_seconds,
            "blank_after": display.blank_after_seconds,
        },
        # Seconds after which a source's last success, as the last ping told it, counts
        # as old: a backstop, as the server itself says when a source fails or goes old.
        "stale_after": {source: settings.stale_after(getattr(poll, f"{source}_interval")) + PING_EVERY_S
                        for source in ("agents", "calls", "status", "cdr")},
        "catalogue": dict(catalogue(lang)),
    }


def _board(request: Request, layout: str, token: str | None) -> Response:
    found = parts(request)
    settings = found.settings
    principal = principal_of(request)
    if principal is None:
        return login_redirect(request)
    lang = pick_language(request, settings.display.language)
    suffix = f"?token={quote(token, safe='')}" if token and principal.role == "kiosk" else ""
    ws_path = found.base + "/ws" + suffix
    boot = _boot(settings, principal, lang, layout, ws_path, found.base + "/api/state" + suffix, found.base,
                 found.auth.sessions.supervisor_exts())
    ws_path = narrow_boot(request, settings, boot)
    return render(request, "board.html", {
        "layout": layout, "ws_path": ws_path, "boot": boot, "actions": boot["actions"],
    })


async def board(request: Request) -> Response:
    kiosk = request.query_params.get("kiosk", "").lower() in KIOSK_FLAGS
    return _board(request, "kiosk" if kiosk else "tab", None)


async def kiosk(request: Request) -> Response:
    return _board(request, "kiosk", request.query_params.get("token"))


def narrow_boot(request: Request, settings: Settings, boot: dict[str, Any]) -> str:
    """Issue 16's part of the boot: the screen's team or hotline (?team= / ?hotline=, passed
    on to its socket), whether teams are configured, whether a TV sounds; the socket's path."""
    view = view_of(request.query_params)
    if view is not None:
        joiner = "&" if "?" in boot["ws_path"] else "?"
        boot["ws_path"] += f"{joiner}{view.kind}={quote(view.name, safe='')}"
    boot["view"] = {"kind": view.kind, "name": view.name} if view is not None else None
    boot["teams_configured"] = bool(settings.teams)
    boot["kiosk_sound"] = settings.display.kiosk_sound
    return str(boot["ws_path"])
