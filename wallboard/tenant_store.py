"""Tenants kept in the storage database, beside those of `[[tenants]]`: what
`wallboard tenants add|disable|enable|remove|create` writes and a running server reads
again every few seconds, so a tenant comes and goes without a restart of the others.

A row of a tenant that the config also names holds only its `enabled` flag: the config
says everything else. The API key is kept as given (the PBX needs it back); the file is
readable by its owner only, like the audit log's.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from wallboard.settings import TENANT_ID, ConfigError, Settings, TenantSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    api_key TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    updated_at INTEGER NOT NULL          -- epoch ms
);
"""


@dataclass(frozen=True, slots=True)
class StoredTenant:
    id: str
    name: str
    api_key: str = field(repr=False)
    enabled: bool = True


class TenantStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        db = sqlite3.connect(self.path, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            with db:
                yield db
        finally:
            db.close()

    def all(self) -> list[StoredTenant]:
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute("SELECT id, name, api_key, enabled FROM tenants ORDER BY id").fetchall()
        return [StoredTenant(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def put(self, tenant: StoredTenant) -> None:
        if not TENANT_ID.match(tenant.id):
            raise ConfigError(f"a tenant id must be 1 to 32 of a-z, 0-9 and '-', not {tenant.id!r}")
        with self._db() as db:
            db.execute("INSERT INTO tenants (id, name, api_key, enabled, updated_at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET name = excluded.name, api_key = excluded.api_key, "
                       "enabled = excluded.enabled, updated_at = excluded.updated_at",
                       (tenant.id, tenant.name, tenant.api_key, int(tenant.enabled), _now()))

    def set_enabled(self, tenant_id: str, enabled: bool) -> bool:
        """False when no row has that id."""
        with self._db() as db:
            done = db.execute("UPDATE tenants SET enabled = ?, updated_at = ? WHERE id = ?",
                              (int(enabled), _now(), tenant_id)).rowcount
        return bool(done)

    def remove(self, tenant_id: str) -> bool:
        with self._db() as db:
            return bool(db.execute("DELETE FROM tenants WHERE id = ?", (tenant_id,)).rowcount)


def effective_tenants(settings: Settings, stored: list[StoredTenant]) -> tuple[TenantSettings, ...]:
    """The tenants to run: the config's (less those a row disables), then the stored ones
    the config does not name, enabled, with the deployment's [display]."""
    rows = {t.id: t for t in stored}
    out = [t for t in settings.tenants if rows.get(t.id, StoredTenant(t.id, "", "")).enabled]
    named = {t.id for t in settings.tenants}
    display = settings.display
    for row in stored:
        if row.id not in named and row.enabled:
            out.append(TenantSettings(id=row.id, name=row.name or row.id, api_key=row.api_key, kiosk_tokens=[],
                                      display=display))
    return tuple(out)


def with_stored(settings: Settings, store: TenantStore) -> Settings:
    return replace(settings, tenants=effective_tenants(settings, store.all()))


def _now() -> int:
    return int(time.time() * 1000)
