"""Every configuration key: its type, default and help, and how a file plus the
environment become one checked `Settings`.

Precedence, lowest first: the defaults below, the TOML file (`--config`,
`WALLBOARD_CONFIG` or `./config.toml`), `WALLBOARD_<SECTION>_<KEY>`, and
`WALLBOARD_<SECTION>_<KEY>_FILE` (the value read from that file, for secrets).
Any mistake raises `ConfigError` with one sentence that names the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A configuration mistake, said in one plain sentence."""


# Kiosk tokens and configured secrets: shorter ones could be guessed.
MIN_SECRET_LENGTH = 16


@dataclass(frozen=True)
class Key:
    name: str
    type: type
    default: Any
    help: str
    secret: bool = False
    choices: tuple[str, ...] = ()


# The table of settings: the single source for defaults, types, help and docs.
KEYS: dict[str, tuple[Key, ...]] = {
    "server": (
        Key("host", str, "127.0.0.1", "Address the wallboard listens on."),
        Key("port", int, 8000, "Port the wallboard listens on."),
        Key("public_url", str, "http://127.0.0.1:8000",
            "Base URL browsers and the PBX use to reach us (webhook callback, Origin check)."),
        Key("session_secret", str, "",
            "Signs sessions; empty: random per process. Required, the same on every node, with cluster.redis_url.",
            secret=True),
        Key("allowed_origins", list, [], "Extra Origins allowed on /ws besides public_url's."),
        Key("metrics_public", bool, True, "Serve /metrics to anyone; false: supervisors only."),
        Key("log_format", str, "plain", "Log lines as 'plain' text or 'json'.",
            choices=("plain", "json")),
        Key("ws_queue_size", int, 64, "Patches queued per screen before it gets a snapshot instead."),
        Key("trusted_proxies", list, [],
            "Addresses whose X-Forwarded-For is believed (the reverse proxy, e.g. 127.0.0.1); none: no one's."),
        Key("max_sockets_per_session", int, 20,
            "Most /ws sockets open at once per session or kiosk token, and per address for anonymous attempts."),
        Key("allow_missing_origin", bool, False,
            "Accept /ws without an Origin header, which browsers always send; only for non-browser "
            "clients such as monitoring probes, which still need a session or kiosk token."),
    ),
    "pbx": (
        Key("base_url", str, "http://127.0.0.1:8100", "The PBX API base URL, with scheme."),
        Key("api_key", str, "", "API key for /v1/auth/token.", secret=True),
        Key("timezone", str, "Asia/Ho_Chi_Minh", "The PBX's local time zone (its timestamps carry none)."),
        Key("timeout", float, 5.0, "Seconds before a PBX request is given up."),
    ),
    "poll": (
        Key("agents_interval", float, 2.0, "Seconds between reads of /v1/monitor/agent."),
        Key("calls_interval", float, 2.0, "Seconds between reads of /v1/call."),
        Key("status_interval", float, 15.0, "Seconds between reads of /v1/report/call_status."),
        Key("cdr_interval", float, 60.0, "Seconds between incremental reads of /v1/cdr."),
    ),
    "webhook": (
        Key("secret", str, "", "Path secret of our callback; empty: generated and kept in the state dir.",
            secret=True),
        Key("register", bool, True, "Register our callback for the events on start-up."),
        Key("events", list, ["ringing", "answered", "hangup", "cdr"], "Events to register."),
    ),
    "auth": (
        Key("mode", str, "pbx", "'pbx': log in with a PBX account; 'none': open demo.",
            choices=("pbx", "none")),
        Key("kiosk_tokens", list, [], "Read-only tokens for TVs: /kiosk?token=...", secret=True),
        Key("session_idle_minutes", int, 480, "A session unused this long ends."),
        Key("session_max_hours", int, 12, "A session ends this long after its login, however busy."),
        Key("recheck_minutes", int, 10,
            "Ask the PBX again this often (and before an action once this old) whether an account "
            "is still what it was; a demoted one becomes a viewer, a refused one is logged out."),
        Key("actions_per_minute", int, 20, "Most listen/whisper/barge/transfer per supervisor a minute."),
        Key("demo_ext", str, "999", "With mode 'none': the extension listen calls ring."),
    ),
    "display": (
        Key("language", str, "vi", "Default language; ?lang= overrides per screen.", choices=("vi", "en")),
        Key("mask_phone_numbers", bool, True, "Mask numbers on kiosk and viewer screens."),
        Key("ringing_warn_seconds", int, 15, "Flag a call ringing longer than this."),
        Key("oncall_warn_seconds", int, 300, "Flag a call talking longer than this."),
        Key("waiting_warn_seconds", int, 60, "Flag a caller waiting longer than this."),
        Key("sla_seconds", int, 20, "Service level: inbound answered within this many seconds."),
        Key("rotate_seconds", int, 0, "Kiosk: rotate between views every N seconds; 0: no rotation."),
        Key("hide_extensions", list, [], "Extensions that are not agents (e.g. a meeting-room phone): no tile."),
        Key("hide_supervisor_phones", bool, True,
            "No tile for the extensions supervisors give as their own (at login, or the demo's demo_ext)."),
        Key("night", str, "", "Kiosk night mode, PBX time, e.g. '20:00-07:00': a dim clock and the callers "
            "waiting only; empty: off."),
        Key("shift_minutes", int, 3, "Kiosk: move the picture by a few pixels this often (against burn-in); 0: off."),
        Key("stale_after_seconds", float, 0.0,
            "A source is stale after this long without success; 0: twice its interval plus 1 s."),
        Key("blank_after_seconds", int, 300, "Blank numbers after this long without data."),
        Key("wrapup_seconds", int, 0,
            "Show an agent as 'wrap-up' this long after a call ends (counted apart from idle); 0: off."),
        Key("kiosk_sound", bool, False,
            "Kiosks sound an alarm when a figure breaches (the browser must allow autoplay); off: silent TVs."),
    ),
    "thresholds": (
        Key("for_seconds", float, 5.0, "A figure must stay over a level this long before it shows (and alerts)."),
        Key("clear_margin", float, 0.1,
            "A level clears once the figure is back past it by this fraction of the level (no flicker)."),
        *(Key(f"{figure}_{level}", float, default, f"{help_} ({level}); 0: none.")
          for figure, help_, warn, alarm in (
              ("waiting", "Callers waiting", 5.0, 10.0),
              ("longest_wait", "Seconds the longest caller has waited", 60.0, 120.0),
              ("service_level", "Service level in percent, a level when below", 80.0, 60.0),
              ("missed_rate", "Percent of today's inbound calls missed", 10.0, 20.0),
              ("ringing", "Seconds an agent has been ringing", 15.0, 30.0),
              ("oncall", "Seconds an agent has been on one call", 600.0, 1200.0),
          ) for level, default in (("warn", warn), ("alarm", alarm))),
    ),
    "alerts": (
        Key("level", str, "alarm", "The level that starts an incident (one message), and ends it once cleared.",
            choices=("warn", "alarm")),
        Key("webhook_url", str, "", "A generic webhook: signed JSON (Standard Webhooks) per incident start and end."),
        Key("webhook_secret", str, "", "Its signing key: whsec_<base64>, or any text used as the key.",
            secret=True),
        Key("slack_url", str, "", "A Slack incoming-webhook URL.", secret=True),
        Key("telegram_token", str, "", "A Telegram bot token (sendMessage).", secret=True),
        Key("telegram_chat", str, "", "The Telegram chat id the bot writes to."),
        Key("telegram_base_url", str, "https://api.telegram.org", "The Telegram Bot API's base URL."),
        Key("per_minute", int, 30, "Most messages per channel a minute; more wait their turn."),
        Key("retries", int, 5, "Attempts after the first before a message is given up (backoff doubles from 1 s)."),
        Key("timeout", float, 5.0, "Seconds before a delivery attempt is given up."),
    ),
    "storage": (
        Key("path", str, "var/wallboard.db", "SQLite file: audit log and what must survive a restart."),
        Key("database_url", str, "",
            "PostgreSQL URL shared by every process (required with cluster.redis_url); empty: SQLite at path.",
            secret=True),
        Key("history_days", int, 400,
            "Days of intraday history kept (15-minute intervals, agent counts); older days are deleted; 0: all."),
    ),
    "cluster": (
        Key("redis_url", str, "",
            "Empty: one process, nothing outside it; redis://host:6379/0: several processes share one state.",
            secret=True),
        Key("node_id", str, "", "This process's name in the cluster; empty: <hostname>:<pid>."),
        Key("lease_seconds", float, 5.0, "A leader that cannot renew its lease for this long is no longer the leader."),
    ),
    "provider": (
        Key("tokens", list, [], "Read-only tokens for the provider view over all tenants: /provider?token=...",
            secret=True),
        Key("secret_token", str, "", "The PBX's SECRET_TOKEN, only for `wallboard tenants create`.", secret=True),
    ),
}
# [[tenants]]: one table per tenant, with these keys and any [display] key.
TENANT_KEYS: tuple[Key, ...] = (
    Key("id", str, "", "[a-z0-9-]{1,32}; used in URLs (/t/{id}/) and in every key, stream and log line."),
    Key("name", str, "", "The tenant's name, shown to the provider."),
    Key("api_key", str, "", "Its PBX API key; better api_key_file or WALLBOARD_TENANT_<ID>_API_KEY.", secret=True),
    Key("api_key_file", str, "", "A file holding its PBX API key."),
    Key("kiosk_tokens", list, [], "Read-only tokens for its TVs: /t/{id}/kiosk?token=...", secret=True),
)
TENANT_ID = re.compile(r"^[a-z0-9-]{1,32}$")


def _section_class(name: str) -> type:
    return {
        "server": ServerSettings, "pbx": PbxSettings, "poll": PollSettings,
        "webhook": WebhookSettings, "auth": AuthSettings, "display": DisplaySettings,
        "storage": StorageSettings, "cluster": ClusterSettings, "provider": ProviderSettings,
        "thresholds": ThresholdSettings, "alerts": AlertSettings,
    }[name]


@dataclass(frozen=True)
class ServerSettings:
    host: str
    port: int
    public_url: str
    session_secret: str
    allowed_origins: list[str]
    metrics_public: bool
    log_format: str
    ws_queue_size: int
    trusted_proxies: list[str]
    max_sockets_per_session: int
    allow_missing_origin: bool


@dataclass(frozen=True)
class PbxSettings:
    base_url: str
    api_key: str
    timezone: str
    timeout: float


@dataclass(frozen=True)
class PollSettings:
    agents_interval: float
    calls_interval: float
    status_interval: float
    cdr_interval: float


@dataclass(frozen=True)
class WebhookSettings:
    secret: str
    register: bool
    events: list[str]


@dataclass(frozen=True)
class AuthSettings:
    mode: str
    kiosk_tokens: list[str]
    session_idle_minutes: int
    session_max_hours: int
    recheck_minutes: int
    actions_per_minute: int
    demo_ext: str


@dataclass(frozen=True)
class DisplaySettings:
    language: str
    mask_phone_numbers: bool
    ringing_warn_seconds: int
    oncall_warn_seconds: int
    waiting_warn_seconds: int
    sla_seconds: int
    rotate_seconds: int
    hide_extensions: list[str]
    hide_supervisor_phones: bool
    night: str
    shift_minutes: int
    stale_after_seconds: float
    blank_after_seconds: int
    wrapup_seconds: int
    kiosk_sound: bool


@dataclass(frozen=True)
class StorageSettings:
    path: str
    database_url: str
    history_days: int


@dataclass(frozen=True)
class ClusterSettings:
    redis_url: str
    node_id: str
    lease_seconds: float


@dataclass(frozen=True)
class ProviderSettings:
    tokens: list[str]
    secret_token: str


@dataclass(frozen=True)
class ThresholdSettings:
    for_seconds: float
    clear_margin: float
    waiting_warn: float
    waiting_alarm: float
    longest_wait_warn: float
    longest_wait_alarm: float
    service_level_warn: float
    service_level_alarm: float
    missed_rate_warn: float
    missed_rate_alarm: float
    ringing_warn: float
    ringing_alarm: float
    oncall_warn: float
    oncall_alarm: float


@dataclass(frozen=True)
class AlertSettings:
    level: str
    webhook_url: str
    webhook_secret: str
    slack_url: str
    telegram_token: str
    telegram_chat: str
    telegram_base_url: str
    per_minute: int
    retries: int
    timeout: float


@dataclass(frozen=True)
class TeamSettings:
    """One of `[[teams]]`: a name, its extensions, and levels of its own for any figure."""

    name: str
    extensions: tuple[str, ...]
    thresholds: tuple[tuple[str, float], ...] = ()  # ("waiting_warn", 3.0), ...


@dataclass(frozen=True)
class TenantSettings:
    """One tenant of `[[tenants]]`: its PBX account, TVs and display."""

    id: str
    name: str
    api_key: str = field(repr=False)
    kiosk_tokens: list[str] = field(repr=False)
    display: DisplaySettings
    teams: tuple[TeamSettings, ...] = ()


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    pbx: PbxSettings
    poll: PollSettings
    webhook: WebhookSettings
    auth: AuthSettings
    display: DisplaySettings
    storage: StorageSettings
    cluster: ClusterSettings
    provider: ProviderSettings
    thresholds: ThresholdSettings
    alerts: AlertSettings
    teams: tuple[TeamSettings, ...] = ()  # [[teams]]; with [[tenants]], each tenant's own
    tenants: tuple[TenantSettings, ...] = ()
    source: str = field(default="defaults", compare=False)

    def secrets(self) -> list[str]:
        """Every secret value set, so logs and pages can be checked never to show one."""
        out: list[str] = []
        for section, keys in KEYS.items():
            for key in keys:
                if not key.secret:
                    continue
                value = getattr(getattr(self, section), key.name)
                out.extend(v for v in (value if isinstance(value, list) else [value]) if v)
        for tenant in self.tenants:
            out.extend(v for v in (tenant.api_key, *tenant.kiosk_tokens) if v)
        return out

    def for_tenant(self, tenant: TenantSettings) -> Settings:
        """The settings one tenant's parts run with: its PBX key, TVs and display."""
        return replace(self, pbx=replace(self.pbx, api_key=tenant.api_key),
                       auth=replace(self.auth, kiosk_tokens=list(tenant.kiosk_tokens)),
                       display=tenant.display, teams=tenant.teams, tenants=())

    def with_values(self, **sections: Any) -> Settings:
        """A copy with some keys replaced, checked like a file (for tests and `demo`);
        `tenants=[{...}, ...]` replaces the tenants."""
        raw: dict[str, Any] = {s: {k.name: getattr(getattr(self, s), k.name) for k in KEYS[s]} for s in KEYS}
        raw["tenants"] = [_tenant_raw(t) for t in self.tenants]
        raw["teams"] = [_team_raw(t) for t in self.teams]
        for section, values in sections.items():
            if section in ("tenants", "teams"):
                raw[section] = [dict(t) for t in values]
                continue
            if section not in KEYS:
                raise ConfigError(f"unknown config section [{section}]")
            raw[section].update(values)
        return _build(raw, self.source)

    def stale_after(self, interval: float) -> float:
        return self.display.stale_after_seconds or 2 * interval + 1.0


def _type_name(t: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list of strings"}[t]


def _coerce(where: str, key: Key, value: Any) -> Any:
    """Check a value from TOML (already typed) against the key's type."""
    if key.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, key.type) and not (key.type is int and isinstance(value, bool))
    if key.type is list and ok:
        ok = all(isinstance(v, str) for v in value)
        value = list(value)
    if not ok:
        raise ConfigError(f"{where} must be {_type_name(key.type)}, not {value!r}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"{where} must be one of {', '.join(map(repr, key.choices))}, not {value!r}")
    return value


def _parse_env(where: str, key: Key, text: str) -> Any:
    """Environment values are text: read them as the key's type."""
    text = text.strip() if key.type is not str else text
    try:
        if key.type is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value: Any = low in ("true", "1", "yes")
        elif key.type is int:
            value = int(text)
        elif key.type is float:
            value = float(text)
        elif key.type is list:
            value = json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        else:
            value = text
    except ValueError:
        raise ConfigError(f"{where} must be {_type_name(key.type)}, not {text!r}") from None
    return _coerce(where, key, value)


def _check(raw: dict[str, dict[str, Any]]) -> None:
    """Rules across keys, each said in one sentence."""
    for section, name in (("server", "public_url"), ("pbx", "base_url")):
        url = raw[section][name]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"[{section}] {name} must be a URL starting with http:// or https://, not {url!r}")
    try:
        ZoneInfo(raw["pbx"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[pbx] timezone must be an IANA time zone such as 'Asia/Ho_Chi_Minh', not {raw['pbx']['timezone']!r}"
        ) from None
    for section, name in (("server", "port"),):
        if not 0 <= raw[section][name] <= 65535:
            raise ConfigError(f"[{section}] {name} must be between 0 and 65535")
    for name in ("agents_interval", "calls_interval", "status_interval", "cdr_interval"):
        if raw["poll"][name] < 0.2:
            raise ConfigError(f"[poll] {name} must be at least 0.2 seconds")
    night = raw["display"]["night"]
    if night and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", night):
        raise ConfigError(f"[display] night must be empty or 'HH:MM-HH:MM' in PBX time, e.g. '20:00-07:00', "
                          f"not {night!r}")
    if raw["pbx"]["timeout"] <= 0:
        raise ConfigError("[pbx] timeout must be more than 0 seconds")
    if raw["storage"]["history_days"] < 0:
        raise ConfigError("[storage] history_days must be 0 (keep all) or more days")
    allowed = {"ringing", "answered", "hangup", "cdr"}
    for event in raw["webhook"]["events"]:
        if event not in allowed:
            raise ConfigError(f"[webhook] events may hold only {sorted(allowed)}, not {event!r}")
    for section, name in (("server", "ws_queue_size"), ("server", "max_sockets_per_session"),
                          ("auth", "session_max_hours"), ("auth", "recheck_minutes")):
        if raw[section][name] < 1:
            raise ConfigError(f"[{section}] {name} must be at least 1")


def _check_secrets(raw: dict[str, Any]) -> None:
    """Secrets a deployment sets must be long enough not to be guessed; an empty one is
    generated instead. (Only what a file or the environment sets is held to this: tests
    build settings with `with_values` and short throwaway values.)"""
    for section, name in (("server", "session_secret"), ("webhook", "secret")):
        value = raw[section][name]
        if value and len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"[{section}] {name} is {len(value)} characters long, shorter than "
                f"{MIN_SECRET_LENGTH}; set a longer one (e.g. `openssl rand -hex 24`) or leave it "
                "empty to have one generated"
            )
    for tenant in raw.get("tenants", []):
        tokens = tenant.get("kiosk_tokens", []) if isinstance(tenant, dict) else []
        if isinstance(tokens, list) and any(isinstance(t, str) and 0 < len(t) < MIN_SECRET_LENGTH for t in tokens):
            raise ConfigError(f"[[tenants]] {tenant.get('id')}: kiosk_tokens holds a token shorter than "
                              f"{MIN_SECRET_LENGTH} characters; make each at least that long")
    short = sum(1 for token in raw["auth"]["kiosk_tokens"] if token and len(token) < MIN_SECRET_LENGTH)
    if short:
        raise ConfigError(
            f"[auth] kiosk_tokens holds {short} token{'s' if short > 1 else ''} shorter than "
            f"{MIN_SECRET_LENGTH} characters; make each at least that long (e.g. `openssl rand -hex 16`)"
        )


def _build(raw: dict[str, Any], source: str) -> Settings:
    _check(raw)
    sections = {s: _section_class(s)(**raw[s]) for s in KEYS}
    tenants = tuple(_tenant(t, raw["display"]) for t in raw.get("tenants", []))
    teams = _teams(raw.get("teams", []), "[[teams]]")
    seen: set[str] = set()
    for tenant in tenants:
        if tenant.id in seen:
            raise ConfigError(f"[[tenants]] id {tenant.id!r} appears twice; each tenant needs its own id")
        seen.add(tenant.id)
    if raw["cluster"]["redis_url"] and not raw["storage"]["database_url"]:
        raise ConfigError("[storage] database_url must be set when [cluster] redis_url is: every process "
                          "shares the audit log and sessions' database")
    if raw["cluster"]["redis_url"] and not raw["server"]["session_secret"] and raw["auth"]["mode"] != "none":
        raise ConfigError("[server] session_secret must be set, the same on every node, when [cluster] redis_url "
                          "is: every node must read the session cookies and the sealed passwords the others wrote")
    return Settings(**sections, teams=teams, tenants=tenants, source=source)


def _tenant_raw(tenant: TenantSettings) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "api_key": tenant.api_key,
            "kiosk_tokens": list(tenant.kiosk_tokens), "teams": [_team_raw(t) for t in tenant.teams],
            **{k.name: getattr(tenant.display, k.name) for k in KEYS["display"]}}


def _team_raw(team: TeamSettings) -> dict[str, Any]:
    return {"name": team.name, "extensions": list(team.extensions), **dict(team.thresholds)}


# A team's name goes into URLs (?team=), DOM attributes and metric labels.
TEAM_NAME = re.compile(r"^[^\x00-\x1f<>\"'&]{1,40}$")


def _teams(values: Any, where: str) -> tuple[TeamSettings, ...]:
    """[[teams]] tables (name, extensions, any [thresholds] level such as waiting_warn), checked."""
    if not isinstance(values, list) or not all(isinstance(v, Mapping) for v in values):
        raise ConfigError(f"{where} must be an array of tables with name and extensions")
    levels = {k.name: k for k in KEYS["thresholds"] if k.name.endswith(("_warn", "_alarm"))}
    teams: list[TeamSettings] = []
    for team in values:
        name = team.get("name")
        if not isinstance(name, str) or not TEAM_NAME.match(name) or name != name.strip():
            raise ConfigError(f"{where} name must be 1 to 40 characters without <, >, quotes or &, not {name!r}")
        exts = team.get("extensions", [])
        if not isinstance(exts, list) or not all(isinstance(e, str) and e.strip() for e in exts):
            raise ConfigError(f"{where} {name}: extensions must be a list of strings")
        own: list[tuple[str, float]] = []
        for key, value in team.items():
            if key in ("name", "extensions"):
                continue
            if key not in levels:
                raise ConfigError(f"unknown config key {where} {name}: {key}")
            own.append((key, _coerce(f"{where} {name}: {key}", levels[key], value)))
        if any(t.name == name for t in teams):
            raise ConfigError(f"{where} name {name!r} appears twice; each team needs its own name")
        teams.append(TeamSettings(name, tuple(e.strip() for e in exts), tuple(own)))
    return tuple(teams)


def _tenant(values: Mapping[str, Any], display: Mapping[str, Any]) -> TenantSettings:
    """One [[tenants]] table, checked; [display] keys it leaves out come from [display]."""
    if not isinstance(values, Mapping):
        raise ConfigError("[[tenants]] must be tables of keys")
    tenant_id = values.get("id")
    if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
        raise ConfigError(f"[[tenants]] id must be 1 to 32 of a-z, 0-9 and '-', not {tenant_id!r}")
    where = f"[[tenants]] {tenant_id}:"
    known = {k.name: k for k in (*TENANT_KEYS, *KEYS["display"])}
    checked: dict[str, Any] = {k.name: k.default for k in TENANT_KEYS}
    shown = dict(display)
    for name, value in values.items():
        if name == "teams":
            continue
        if name not in known:
            raise ConfigError(f"unknown config key {where} {name}")
        checked_value = _coerce(f"{where} {name}", known[name], value)
        (shown if name in shown else checked)[name] = checked_value
    api_key = checked["api_key"]
    if checked["api_key_file"]:
        try:
            api_key = Path(checked["api_key_file"]).read_text(encoding="utf-8").strip()
        except OSError:
            raise ConfigError(f"{where} api_key_file names {checked['api_key_file']!r}, which cannot be read") from None
    return TenantSettings(id=tenant_id, name=checked["name"] or tenant_id, api_key=api_key,
                          kiosk_tokens=list(checked["kiosk_tokens"]), display=DisplaySettings(**shown),
                          teams=_teams(values.get("teams", []), f"[[tenants]] {tenant_id}: [[teams]]"))


def defaults() -> Settings:
    return _build({s: {k.name: k.default for k in keys} for s, keys in KEYS.items()}, "defaults")


def load_settings(path: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Defaults, then the file, then the environment; raise ConfigError on any mistake."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {s: {k.name: k.default for k in keys} for s, keys in KEYS.items()}
    chosen = path or env.get("WALLBOARD_CONFIG") or ("config.toml" if Path("config.toml").is_file() else None)
    source = "defaults"
    if chosen:
        file = Path(chosen)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(file)!r} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {str(file)!r} is not valid TOML: {e}") from None
        except OSError as e:
            raise ConfigError(f"config file {str(file)!r} cannot be read: {e.strerror}") from None
        source = str(file)
        for section, values in data.items():
            if section in ("tenants", "teams"):
                if not isinstance(values, list):
                    raise ConfigError(f"[[{section}]] in {file} must be an array of tables "
                                      f"([[{section}]], not [{section}])")
                raw[section] = values
                continue
            if section not in KEYS:
                raise ConfigError(f"unknown config section [{section}] in {file}; known: {', '.join(KEYS)}")
            if not isinstance(values, dict):
                raise ConfigError(f"[{section}] in {file} must be a table of keys")
            known = {k.name: k for k in KEYS[section]}
            for name, value in values.items():
                if name not in known:
                    raise ConfigError(f"unknown config key [{section}] {name} in {file}")
                raw[section][name] = _coerce(f"[{section}] {name}", known[name], value)
    for section, keys in KEYS.items():
        for key in keys:
            var = f"WALLBOARD_{section.upper()}_{key.name.upper()}"
            where = f"{var} (for [{section}] {key.name})"
            if f"{var}_FILE" in env:
                file_path = env[f"{var}_FILE"]
                try:
                    text = Path(file_path).read_text(encoding="utf-8").rstrip("\r\n")
                except OSError:
                    raise ConfigError(f"{var}_FILE names {file_path!r}, which cannot be read") from None
                raw[section][key.name] = _parse_env(f"{var}_FILE (for [{section}] {key.name})", key, text)
            elif var in env:
                raw[section][key.name] = _parse_env(where, key, env[var])
    for tenant in raw.get("tenants", []):
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str):
            var = f"WALLBOARD_TENANT_{tenant['id'].upper().replace('-', '_')}_API_KEY"
            if f"{var}_FILE" in env:
                tenant["api_key_file"] = env[f"{var}_FILE"]
            elif var in env:
                tenant["api_key"] = env[var]
    _check_secrets(raw)
    return _build(raw, source)


def documented_keys() -> list[str]:
    return [f"{s}.{k.name}" for s, keys in KEYS.items() for k in keys]


__all__ = ["KEYS", "ConfigError", "Settings", "defaults", "documented_keys", "load_settings"]
