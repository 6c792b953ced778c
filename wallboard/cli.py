"""The `wallboard` command: serve, sim, demo, hooks, check."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
import httpx

from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.server import Server, config
from wallboard.settings import ConfigError, Settings, load_settings

T = TypeVar("T")

log = logging.getLogger("wallboard")

config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             default=None, help="TOML config file (default: $WALLBOARD_CONFIG or ./config.toml).")


def _settings(path: str | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as e:
        click.echo(f"wallboard: config error: {e}", err=True)
        sys.exit(2)


def _wallboard_server(settings: Settings) -> Server:
    from wallboard.app import close_screens, create_app

    app = create_app(settings)
    return Server(config(app, settings.server.host, settings.server.port, settings.server.trusted_proxies),
                  before_shutdown=functools.partial(close_screens, app))


@click.group()
def main() -> None:
    """Real-time supervisor wallboard for a FusionPBX-style hosted PBX."""


@main.command()
@config_option
def serve(config_path: str | None) -> None:
    """Run the wallboard against the PBX of the config."""
    from wallboard.logs import setup_logging

    settings = _settings(config_path)
    setup_logging(settings.server.log_format, settings.secrets())
    log.info("wallboard on %s (config %s, PBX %s)", settings.server.public_url, settings.source,
             settings.pbx.base_url)
    _wallboard_server(settings).run()


def _sim_options(**kw: Any) -> Any:
    from wallboard.sim.app import SimOptions

    accounts = [tuple(a.split(":", 2)) for a in kw.pop("account")]
    for account in accounts:
        if len(account) != 3:
            raise click.BadParameter("--account must be USER:PASSWORD:LEVEL")
    options = SimOptions(**{k: v for k, v in kw.items() if v is not None})
    if accounts:
        options.accounts = [*options.accounts, *accounts]
    return options


def sim_flags(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--agents", type=click.IntRange(1, 10_000), default=None, help="Extensions 1001..1000+N."),
        click.option("--tenants", type=click.IntRange(1, 5_000), default=None,
                     help="Serve tenants t1..tN on one port (key sim-api-key-tK, logins supervisor@tK)."),
        click.option("--seed", type=int, default=None, help="Seed: the same seed, the same day."),
        click.option("--rate", type=float, default=None,
                     help="Calls per minute; with --profile day, at the day's peak (0: none)."),
        click.option("--profile", type=click.Choice(["day", "flat"]), default="day", show_default=True,
                     help="day: a call center's day (curve, shifts, breaks); flat: the same rate all day."),
        click.option("--floor", type=click.FloatRange(0, 1), default=None,
                     help="Day profile: the quietest hour as a share of the peak (default 0.1, so nights see calls)."),
        click.option("--speed", type=float, default=None, help="Sim clock speed (1 = real time)."),
        click.option("--api-key", default=None, help="Key for /v1/auth/token."),
        click.option("--secret-token", default=None, help="Bearer for the tenant endpoints."),
        click.option("--account", multiple=True, default=(), help="More logins: USER:PASSWORD:LEVEL."),
        click.option("--token-lifetime", type=float, default=None, help="Seconds a token lives."),
        click.option("--timezone", default=None, help="The PBX's local time zone (default Asia/Ho_Chi_Minh)."),
    ]):
        f = option(f)
    return f


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8100, show_default=True)
@sim_flags
def sim(host: str, port: int, **kw: Any) -> None:
    """Run the PBX simulator alone."""
    from wallboard.logs import setup_logging
    from wallboard.sim.app import create_sim_app

    setup_logging()
    options = _sim_options(host=host, port=port, **kw)
    log.info("PBX simulator on http://%s:%d (%d agents, seed %d)", host, port, options.agents, options.seed)
    Server(config(create_sim_app(options), host, port)).run()


DEMO_FLOOR = 0.5


@main.command()
@config_option
@click.option("--auth", "auth_mode", type=click.Choice(["none", "pbx"]), default="none",
              show_default=True, help="'none': every screen a supervisor, no login.")
@sim_flags
def demo(config_path: str | None, auth_mode: str, **kw: Any) -> None:
    """Run the simulator and the wallboard against it, together."""
    from wallboard.logs import setup_logging
    from wallboard.sim.app import create_sim_app

    settings = _settings(config_path)
    settings = settings.with_values(auth={"mode": auth_mode})
    if kw.get("floor") is None:
        kw["floor"] = DEMO_FLOOR  # a demo shown at night in Hanoi still has a floor to look at
    demo_token = "demo-provider-view-token"
    if kw.get("tenants"):  # one board per simulated tenant, and the provider's view over them
        settings = settings.with_values(
            tenants=[{"id": f"t{k}", "name": f"Tổng đài {k}", "api_key": f"sim-api-key-t{k}"}
                     for k in range(1, kw["tenants"] + 1)],
            provider={"tokens": [*settings.provider.tokens, demo_token]})
    setup_logging(settings.server.log_format, settings.secrets())
    pbx_url = urlsplit(settings.pbx.base_url)
    kw["api_key"] = kw.get("api_key") or settings.pbx.api_key or None  # the key the wallboard will use
    options = _sim_options(host=pbx_url.hostname or "127.0.0.1", port=pbx_url.port or 8100, **kw)
    servers = [
        Server(config(create_sim_app(options), options.host, options.port)),
        _wallboard_server(settings),
    ]
    board = f"{settings.server.public_url}/t/t1" if settings.tenants else settings.server.public_url
    click.echo(f"\n  Wallboard demo: {board}/"
               f"\n  TV layout:      {board}/?kiosk=1"
               f"\n  PBX simulator:  {settings.pbx.base_url} ({options.agents} agents)")
    if settings.tenants:
        click.echo(f"  {len(settings.tenants)} tenants: /t/t1/ … /t/t{len(settings.tenants)}/; all of them: "
                   f"{settings.server.public_url}/provider?token={demo_token}")
    if auth_mode == "pbx":
        click.echo("  Log in as supervisor@sim / supervisor (or viewer@sim / viewer)")
    click.echo("  Stop with Ctrl+C\n")

    async def run_both() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(run_both())


def _with_client(settings: Settings, job: Callable[[PbxClient], Any]) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient() as http:
            return await job(PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=http,
                                       timeout=settings.pbx.timeout))

    return asyncio.run(run())


@main.group()
def hooks() -> None:
    """Inspect and manage the webhook registrations on the PBX."""


@hooks.command("list")
@config_option
def hooks_list(config_path: str | None) -> None:
    """Print the PBX's registrations, ours marked."""
    settings = _settings(config_path)
    mine = _callback(settings)

    async def job(pbx: PbxClient) -> None:
        for h in await pbx.list_events():
            flag = "*" if h.callback_url == mine else " "
            click.echo(f"{flag} {h.event_name:<9} {h.event_domain_uuid}  {_redact(h.callback_url)}")

    _guard(lambda: _with_client(settings, job))


@hooks.command("register")
@config_option
def hooks_register(config_path: str | None) -> None:
    """Make sure there is exactly one registration per configured event."""
    from wallboard.registration import register

    settings = _settings(config_path)

    async def job(pbx: PbxClient) -> None:
        done = await register(pbx, _callback(settings), _secret(settings), settings.webhook.events)
        for event, what in done.items():
            click.echo(f"{event}: {what}")

    _guard(lambda: _with_client(settings, job))


@hooks.command("remove")
@config_option
def hooks_remove(config_path: str | None) -> None:
    """Remove our registrations from the PBX."""
    from wallboard.registration import unregister

    settings = _settings(config_path)

    async def job(pbx: PbxClient) -> None:
        click.echo(f"removed {await unregister(pbx, _callback(settings))} registrations")

    _guard(lambda: _with_client(settings, job))


def _secret(settings: Settings) -> str:
    from pathlib import Path

    from wallboard.registration import load_secret

    return load_secret(settings.webhook.secret, Path(settings.storage.path).parent)


def _callback(settings: Settings) -> str:
    from wallboard.registration import callback_url

    return callback_url(settings.server.public_url, _secret(settings))


def _redact(url: str) -> str:
    """Our callback URL carries the secret in its path; never print it."""
    head, _, _secret_part = url.rpartition("/hooks/pbx/")
    return f"{head}/hooks/pbx/***" if head else url


def _guard(run: Callable[[], Any]) -> None:
    try:
        run()
    except PbxError as e:
        click.echo(f"wallboard: the PBX refused: {e}", err=True)
        sys.exit(1)


@main.command()
@config_option
def check(config_path: str | None) -> None:
    """Validate the config, reach the PBX, get a token; say plainly what is wrong."""
    from wallboard.checks import run_checks

    try:
        settings = load_settings(config_path)
    except ConfigError as e:
        click.echo(f"FAIL config: {e}")
        sys.exit(2)
    ok = asyncio.run(run_checks(settings, click.echo))
    sys.exit(0 if ok else 1)



@main.group()
def tenants() -> None:
    """The tenants one deployment serves: those of [[tenants]] and those added here, kept in the
    storage database; a running server picks up a change within a few seconds."""


def _stored(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(store)` on the tenants' table in the storage database, its connection closed after."""
    from wallboard.storage import Database, StorageUnavailable
    from wallboard.tenant_store import TenantStore

    async def run() -> T:
        store = TenantStore(Database.from_settings(settings))
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StorageUnavailable as e:
        raise click.ClickException(str(e)) from None


def _api_key(tenant_id: str, key_file: str | None) -> str:
    """From --api-key-file, else WALLBOARD_TENANT_<ID>_API_KEY: never from the command line,
    where it would stay in the shell's history and the process list."""
    import os
    from pathlib import Path

    if key_file:
        try:
            return Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise click.ClickException(f"cannot read {key_file}: {e.strerror}") from None
    var = f"WALLBOARD_TENANT_{tenant_id.upper().replace('-', '_')}_API_KEY"
    key = os.environ.get(var, "").strip()
    if not key:
        raise click.ClickException(f"give the tenant's PBX API key with --api-key-file FILE or ${var}")
    return key


@tenants.command("list")
@config_option
def tenants_list(config_path: str | None) -> None:
    """One line per tenant: id, state, where it is defined, its name (never its key)."""
    settings = _settings(config_path)
    rows = {t.id: t for t in _stored(settings, lambda store: store.all())}
    for tenant in settings.tenants:
        row = rows.pop(tenant.id, None)
        state = "enabled" if row is None or row.enabled else "disabled"
        click.echo(f"{tenant.id:<32} {state:<8} config  {tenant.name}")
    for row in rows.values():
        click.echo(f"{row.id:<32} {'enabled' if row.enabled else 'disabled':<8} stored  {row.name}")


@tenants.command("add")
@config_option
@click.argument("tenant_id")
@click.option("--name", default="", help="The call center's name, as the provider sees it.")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="A file holding its PBX API key (else $WALLBOARD_TENANT_<ID>_API_KEY).")
def tenants_add(config_path: str | None, tenant_id: str, name: str, api_key_file: str | None) -> None:
    """Add a tenant (or change its name and key)."""
    from wallboard.tenant_store import StoredTenant

    settings = _settings(config_path)
    if any(t.id == tenant_id for t in settings.tenants):
        raise click.ClickException(f"{tenant_id} is defined in {settings.source}; change it there")
    try:
        key = _api_key(tenant_id, api_key_file)
        _stored(settings, lambda store: store.put(StoredTenant(tenant_id, name or tenant_id, key)))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{tenant_id}: added")


def _set_enabled(config_path: str | None, tenant_id: str, enabled: bool) -> None:
    from wallboard.tenant_store import StoredTenant

    settings = _settings(config_path)
    if not _stored(settings, lambda store: store.set_enabled(tenant_id, enabled)):
        configured = next((t for t in settings.tenants if t.id == tenant_id), None)
        if configured is None:
            raise click.ClickException(f"no tenant {tenant_id}")
        row = StoredTenant(tenant_id, configured.name, "", enabled)  # the config says the rest
        _stored(settings, lambda store: store.put(row))
    click.echo(f"{tenant_id}: {'enabled' if enabled else 'disabled'}")


@tenants.command("disable")
@config_option
@click.argument("tenant_id")
def tenants_disable(config_path: str | None, tenant_id: str) -> None:
    """Stop serving a tenant (its screens are closed); `enable` brings it back."""
    _set_enabled(config_path, tenant_id, False)


@tenants.command("enable")
@config_option
@click.argument("tenant_id")
def tenants_enable(config_path: str | None, tenant_id: str) -> None:
    """Serve a disabled tenant again."""
    _set_enabled(config_path, tenant_id, True)


@tenants.command("remove")
@config_option
@click.argument("tenant_id")
def tenants_remove(config_path: str | None, tenant_id: str) -> None:
    """Forget a tenant added here (one of [[tenants]] is removed from the config file)."""
    settings = _settings(config_path)
    if not _stored(settings, lambda store: store.remove(tenant_id)):
        raise click.ClickException(f"no stored tenant {tenant_id}")
    click.echo(f"{tenant_id}: removed")


@tenants.command("create")
@config_option
@click.argument("tenant_id")
@click.option("--name", default="", help="The call center's name, as the provider sees it.")
def tenants_create(config_path: str | None, tenant_id: str, name: str) -> None:
    """Provision a new tenant on the PBX ([provider] secret_token) and add it with the API key
    the PBX answers; the key is stored, never printed."""
    from wallboard.tenant_store import StoredTenant

    settings = _settings(config_path)
    if not settings.provider.secret_token:
        raise click.ClickException("set [provider] secret_token (better: WALLBOARD_PROVIDER_SECRET_TOKEN_FILE)")

    async def run() -> Any:
        async with httpx.AsyncClient() as http:
            pbx = PbxClient(settings.pbx.base_url, "", http=http, timeout=settings.pbx.timeout,
                            secret_token=settings.provider.secret_token)
            return await pbx.create_tenant(tenant_id)

    try:
        made = asyncio.run(run())
    except PbxError as e:
        raise click.ClickException(f"the PBX refused: {e}") from None
    if made.user is None or not made.user.api_key:
        raise click.ClickException("the PBX created the tenant but answered no api_key")
    row = StoredTenant(tenant_id, name or tenant_id, made.user.api_key)
    _stored(settings, lambda store: store.put(row))
    click.echo(f"{tenant_id}: created on the PBX ({made.domain}) and added")


@main.command()
@config_option
@click.option("--days", type=click.IntRange(1, 3660), required=True, help="How many days before today to read.")
@click.option("--tenant", "tenant_id", default="", help="Only this tenant (default: every tenant of the config).")
def backfill(config_path: str | None, days: int, tenant_id: str) -> None:
    """Read past days' CDRs from the PBX into the history, an hour at a time; a day read is not
    read again, and a run stopped anywhere resumes where it stopped."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from wallboard.history import backfill as history_backfill
    from wallboard.history.recorder import configured_teams
    from wallboard.history.store import HistoryStore
    from wallboard.pbx.times import PbxTime
    from wallboard.storage import Database, StorageUnavailable
    from wallboard.tenancy import DEFAULT
    from wallboard.tenant_store import with_stored

    configured = _settings(config_path)
    settings = with_stored(configured)  # and the tenants added since
    scopes = [(DEFAULT, settings)] if not settings.tenants else [
        (t.id, settings.for_tenant(t)) for t in settings.tenants if not tenant_id or t.id == tenant_id]
    if (tenant_id and not settings.tenants and tenant_id != DEFAULT) or not scopes:
        raise click.ClickException(f"no tenant {tenant_id!r} in the config")

    async def run() -> None:
        db = Database.from_settings(settings)
        store = HistoryStore(db)
        try:
            await store.migrate()
            async with httpx.AsyncClient() as http:
                for scope, own in scopes:
                    pbx = PbxClient(own.pbx.base_url, own.pbx.api_key, http=http, timeout=own.pbx.timeout)
                    clock = PbxTime(own.pbx.timezone)
                    done = await history_backfill.backfill(
                        pbx, store, tenant=scope, clock=clock, sla_seconds=own.display.sla_seconds,
                        teams=configured_teams(own), days=days,
                        today=datetime.now(ZoneInfo(own.pbx.timezone)).date(),
                        progress=functools.partial(_backfilled, scope))
                    click.echo(f"{scope}: {len(done.days_read)} days read, {len(done.days_skipped)} read before")
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except PbxError as e:
        raise click.ClickException(f"the PBX refused: {e}; run it again to resume") from None
    except StorageUnavailable as e:
        raise click.ClickException(f"{e} Run it again to resume.") from None


def _backfilled(scope: str, day: str, calls: int, hours: int) -> None:
    click.echo(f"{scope}: {day} read ({hours} hours, {calls} inbound calls)")


if __name__ == "__main__":  # after every command: `python -m wallboard.cli tenants|backfill` too
    main()
