"""Tenants kept in the storage database, beside those of `[[tenants]]`: what
`wallboard tenants add|disable|enable|remove|create` writes and a running server reads
again every few seconds, so a tenant comes and goes without a restart of the others.

The table lives in the storage database (wallboard/storage: SQLite at storage.path,
readable by its owner only, or the PostgreSQL of storage.database_url that every node
reads). A row of a tenant that the config also names holds only its `enabled` flag: the
config says everything else. The API key is kept as given (the PBX needs it back).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, Text, delete, select, update

from wallboard.settings import TENANT_ID, ConfigError, Settings, TenantSettings
from wallboard.storage import Database, Migration, Schema, StorageUnavailable

log = logging.getLogger("wallboard.tenants")

METADATA = MetaData()
tenants = Table(
    "tenants", METADATA,
    Column("id", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("api_key", Text, nullable=False),
    Column("enabled", Integer, nullable=False, default=1),
    Column("updated_at", BigInteger, nullable=False),  # epoch ms
)


def _first(conn: Connection) -> None:
    # An SQLite file of before the storage layer has the table already, of this shape.
    METADATA.create_all(conn, tables=[tenants], checkfirst=True)


SCHEMA = Schema("tenants", (Migration(1, _first),))


@dataclass(frozen=True, slots=True)
class StoredTenant:
    id: str
    name: str
    api_key: str = field(repr=False)
    enabled: bool = True


class TenantStore:
    """`TenantStore(db)` on the deployment's storage database, or `TenantStore(path)`: an
    SQLite file of its own."""

    def __init__(self, where: Database | str | os.PathLike[str]) -> None:
        self.db = where if isinstance(where, Database) else Database.sqlite(where)

    async def all(self) -> list[StoredTenant]:
        t = tenants.c
        await self.db.ensure(SCHEMA)
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(t.id, t.name, t.api_key, t.enabled).order_by(t.id))).all()
        return [StoredTenant(r[0], r[1], r[2], bool(r[3])) for r in rows]

    async def put(self, tenant: StoredTenant) -> None:
        if not TENANT_ID.match(tenant.id):
            raise ConfigError(f"a tenant id must be 1 to 32 of a-z, 0-9 and '-', not {tenant.id!r}")
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            await self.db.upsert(conn, tenants, [{"id": tenant.id, "name": tenant.name, "api_key": tenant.api_key,
                                                  "enabled": int(tenant.enabled), "updated_at": _now()}], ["id"])

    async def set_enabled(self, tenant_id: str, enabled: bool) -> bool:
        """False when no row has that id."""
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(update(tenants).where(tenants.c.id == tenant_id)
                                      .values(enabled=int(enabled), updated_at=_now()))
        return bool(done.rowcount)

    async def remove(self, tenant_id: str) -> bool:
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(delete(tenants).where(tenants.c.id == tenant_id))
        return bool(done.rowcount)

    async def close(self) -> None:
        await self.db.close()


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


def stored_now(settings: Settings) -> list[StoredTenant]:
    """The stored tenants, read from synchronous code (while building the app, or a command)
    on a thread and a database connection of its own; none, said in the log, when the
    database cannot be reached (a running server reads them again every few seconds)."""
    async def read() -> list[StoredTenant]:
        store = TenantStore(Database.from_settings(settings))
        try:
            return await store.all()
        finally:
            await store.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tenants") as pool:
        try:
            return pool.submit(lambda: asyncio.run(read())).result()
        except StorageUnavailable as e:
            log.warning("stored tenants not read for now: %s", e)
            return []


def with_stored(settings: Settings) -> Settings:
    return replace(settings, tenants=effective_tenants(settings, stored_now(settings)))


def _now() -> int:
    return int(time.time() * 1000)
