from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wallboard.kiosk_tokens import SCHEMA_VERSION, KioskTokenError, KioskTokens, digest


async def test_a_token_is_stored_hashed_checked_from_memory_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "wallboard.db"
    store = KioskTokens(path, clock=lambda: 1_000.0)
    await store.open()
    tv = store.tenant("default")
    token, row = await tv.create("TV tầng 3", "supervisor@sim")
    assert len(token) >= 40 and row["name"] == "TV tầng 3" and row["created_by"] == "supervisor@sim"
    assert tv.check(token) == row["id"]
    assert tv.check(token + "x") is None and tv.check("") is None
    assert store.tenant("t2").check(token) is None  # another tenant's board does not know it
    await store.close()
    raw = path.read_bytes()
    assert token.encode() not in raw and digest(token).encode() in raw

    again = KioskTokens(path)
    await again.open()
    assert again.tenant("default").check(token) == row["id"]
    await again.close()


async def test_revoked_is_refused_at_once_and_listed_as_revoked(tmp_path: Path) -> None:
    store = KioskTokens(tmp_path / "db.sqlite")
    await store.open()
    tv = store.tenant("default")
    keep, _ = await tv.create("kept", "a")
    gone, row = await tv.create("gone", "a")
    assert await tv.revoke(row["id"], "b")
    assert tv.check(gone) is None and tv.check(keep) is not None
    assert not await tv.revoke(row["id"], "b")  # once
    assert not await store.tenant("other").revoke(1, "b")  # not another tenant's
    rows = {r["name"]: r for r in await tv.rows()}
    assert rows["gone"]["revoked_by"] == "b" and rows["kept"]["revoked_at"] is None
    await store.close()
    again = KioskTokens(tmp_path / "db.sqlite")
    await again.open()
    assert again.tenant("default").check(gone) is None
    await again.close()


async def test_last_seen_is_listed_at_once_and_written_at_most_once_a_minute(tmp_path: Path) -> None:
    now = [1_000.0]
    store = KioskTokens(tmp_path / "db.sqlite", clock=lambda: now[0])
    await store.open()
    tv = store.tenant("default")
    token, _ = await tv.create("TV", "a")
    tv.seen(token, "10.0.0.7")
    now[0] += 5
    tv.seen(token, "10.0.0.8")
    listed = (await tv.rows())[0]
    assert (listed["last_seen_at"], listed["last_seen_ip"]) == (1_005_000, "10.0.0.8")
    await store.close()
    written = sqlite3.connect(tmp_path / "db.sqlite").execute(
        "SELECT last_seen_at, last_seen_ip FROM kiosk_tokens").fetchone()
    assert written == (1_000_000, "10.0.0.7")


async def test_a_newer_table_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kiosk_tokens_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO kiosk_tokens_version VALUES (?)", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(KioskTokenError, match="upgrade the wallboard"):
        await KioskTokens(path).open()
