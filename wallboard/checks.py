"""`wallboard check`: each thing that must hold for the wallboard to work, tried
in order and said in one plain line: OK, WARN or FAIL."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime
from wallboard.registration import callback_url, load_secret
from wallboard.settings import Settings


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if host == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: assumed to be reachable from wherever it is published


def reach_problem(public_url: str, pbx_url: str) -> str | None:
    """Why a PBX at `pbx_url` could not call `public_url`, judged from the addresses."""
    public = _address(urlsplit(public_url).hostname or "")
    pbx = _address(urlsplit(pbx_url).hostname or "")
    if public is None:
        return None
    if public.is_loopback and not (pbx is not None and pbx.is_loopback):
        return "is a loopback address"
    if public.is_private and (pbx is None or pbx.is_global):
        return "is a private address and the PBX is not on this network"
    return None


async def run_checks(settings: Settings, say: Callable[[str], None]) -> bool:
    ok = True

    def fail(text: str) -> None:
        nonlocal ok
        ok = False
        say(f"FAIL {text}")

    say(f"OK   config: {settings.source} is valid")
    if not settings.pbx.api_key:
        fail("pbx.api_key is empty: set WALLBOARD_PBX_API_KEY (or _FILE) to the key your PBX gave you")
        return False
    async with httpx.AsyncClient() as http:
        pbx = PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=http,
                        timeout=settings.pbx.timeout)
        try:
            token = await pbx.get_token()
        except PbxError as e:
            if e.code in ("UNREACHABLE", "TIMEOUT"):
                fail(f"PBX: cannot reach {settings.pbx.base_url} ({e})")
            else:
                fail(f"PBX token: {settings.pbx.base_url} refused the API key ({e})")
            return False
        say(f"OK   PBX: {settings.pbx.base_url} answered; token valid until "
            f"{PbxTime(settings.pbx.timezone).format(token.expired * 1000)} PBX time")
        try:
            agents = await pbx.monitor_agents()
            say(f"OK   agents: {len(agents)} extensions logged in")
        except PbxError as e:
            fail(f"agents: /v1/monitor/agent failed ({e})")
        try:
            start, end = PbxTime(settings.pbx.timezone).day_window(time.time() * 1000)
            report = await pbx.call_status(start, end)
            say(f"OK   today's calls: {report.total}")
        except PbxError as e:
            fail(f"report: /v1/report/call_status failed ({e})")
        secret = load_secret(settings.webhook.secret, Path(settings.storage.path).parent)
        mine = callback_url(settings.server.public_url, secret)
        try:
            hooks = [h for h in await pbx.list_events() if h.callback_url == mine]
            have = sorted(h.event_name for h in hooks)
            missing = sorted(set(settings.webhook.events) - set(have))
            dupes = len(have) - len(set(have))
            if missing or dupes:
                say(f"WARN webhooks: missing {', '.join(missing) or 'none'}, {dupes} duplicates; "
                    "`wallboard serve` or `wallboard hooks register` fixes it")
            else:
                say(f"OK   webhooks: one registration each for {', '.join(have)}")
        except PbxError as e:
            fail(f"webhooks: /v1/event failed ({e})")
    say(_public_url_line(settings, await _answers(settings.server.public_url)))
    return ok


async def _answers(public_url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as http:
            return (await http.get(public_url.rstrip("/") + "/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


def _public_url_line(settings: Settings, answers: bool) -> str:
    url = settings.server.public_url
    problem = reach_problem(url, settings.pbx.base_url)
    pbx_host = urlsplit(settings.pbx.base_url).hostname
    if problem:
        return (f"WARN public_url: {url} {problem}; the PBX at {pbx_host} cannot send webhooks "
                "to it (set server.public_url to an address the PBX can reach)")
    if not answers:
        return (f"WARN public_url: nothing answers at {url}/healthz from here; fine if the wallboard "
                "is not running yet, else check the proxy and firewall in front of it")
    return f"OK   public_url: {url} answers; the PBX will call {url}/hooks/pbx/***"
