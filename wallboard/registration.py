"""Our webhook registrations on the PBX: exactly one per event for our callback, and
the path secret that callback carries."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from wallboard.pbx.client import PbxClient


def load_secret(configured: str, state_dir: Path, tenant: str | None = None) -> str:
    """The configured secret, else one generated once and kept in the state dir (one per
    tenant: a tenant's webhooks can never be posted with another's secret)."""
    if configured and tenant is None:
        return configured
    path = state_dir / ("webhook_secret" if tenant is None else f"webhook_secret-{tenant}")
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    # Readable by its owner only, whatever the umask or the mode of an empty file left there.
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(value)
    return value


def callback_url(public_url: str, secret: str, tenant: str | None = None) -> str:
    scope = "" if tenant is None else f"{tenant}/"
    return f"{public_url.rstrip('/')}/hooks/pbx/{scope}{secret}"


async def register(pbx: PbxClient, url: str, secret: str, events: list[str]) -> dict[str, str]:
    """Make the PBX hold exactly one registration per event for our callback.

    Returns what was done per event ("kept", "created", "replaced"), so restarts
    never pile up duplicates and a stale api key is refreshed.
    """
    done: dict[str, str] = {}
    hooks = [h for h in await pbx.list_events() if h.callback_url == url]
    for event in events:
        mine = [h for h in hooks if h.event_name == event]
        good = [h for h in mine if h.callback_apikey == secret]
        keep = good[0] if good else None
        for hook in mine:
            if hook is not keep:
                await pbx.delete_event(hook.event_domain_uuid)
        if keep is None:
            await pbx.create_event(event, url, secret)
            done[event] = "replaced" if mine else "created"
        else:
            done[event] = "kept"
    for hook in hooks:
        if hook.event_name not in events:
            await pbx.delete_event(hook.event_domain_uuid)
    return done


async def unregister(pbx: PbxClient, url: str) -> int:
    hooks = [h for h in await pbx.list_events() if h.callback_url == url]
    for hook in hooks:
        await pbx.delete_event(hook.event_domain_uuid)
    return len(hooks)
