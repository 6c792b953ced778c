"""A screen that comes back (`/ws?epoch=E&seq=N`, SPEC section 10) on a real server: the
patches it missed and no snapshot while they are held; a snapshot when they are not, or
when the epoch is another process's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets

from tests.factories import Running
from tests.test_hub import one_event, running_board
from wallboard.bus import LocalBus


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[Running, str]]:
    # (running_board waits for the first polls of the missing PBX to fail: after that the
    # seq moves only with the test's own changes.)
    async with running_board(tmp_path, None) as (wb, port):
        yield wb, f"ws://127.0.0.1:{port}/ws"


async def frames(ws: Any, until: str) -> list[dict[str, Any]]:
    """The frames up to and including the first of type `until`."""
    out: list[dict[str, Any]] = []
    while not out or out[-1]["type"] != until:
        out.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
    return out


async def test_a_screen_that_comes_back_gets_what_it_missed_and_no_snapshot(
        board: tuple[Running, str]) -> None:
    wb, url = board
    async with websockets.connect(url, max_size=None) as ws:
        snapshot = orjson.loads(await ws.recv())
    assert snapshot["type"] == "snapshot" and snapshot["epoch"] == wb.engine.epoch
    missed_from = snapshot["seq"]
    for i in range(6):
        one_event(wb, i)
    async with websockets.connect(f"{url}?epoch={snapshot['epoch']}&seq={missed_from}", max_size=None) as ws:
        got = await frames(ws, "ping")
        assert [f["type"] for f in got] == ["patch"] * 6 + ["ping"]
        assert [f["seq"] for f in got[:-1]] == list(range(missed_from + 1, missed_from + 7))
        assert got[-1]["seq"] == wb.engine.seq  # the ping says it is current
        one_event(wb, 6)  # and it goes on live
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["seq"] == missed_from + 7
    assert wb.hub.resumes == 1


@pytest.mark.parametrize("where", ["other-epoch", "too-old", "ahead", "garbage"])
async def test_a_snapshot_when_the_patches_are_not_all_held(board: tuple[Running, str], where: str) -> None:
    wb, url = board
    bus = wb.engine.bus
    assert isinstance(bus, LocalBus)
    for i in range(4):
        one_event(wb, i)
    epoch, seq = wb.engine.epoch, str(wb.engine.seq - 2)
    if where == "other-epoch":
        epoch = "a" + epoch
    elif where == "too-old":
        bus._history.clear()  # as if trimmed: the bus no longer holds what it missed
        one_event(wb, 4)
    elif where == "ahead":
        seq = str(wb.engine.seq + 5)
    else:
        epoch, seq = "<script>", "-1"
    async with websockets.connect(f"{url}?epoch={epoch}&seq={seq}", max_size=None) as ws:
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert first["type"] == "snapshot" and first["seq"] == wb.engine.seq
    assert wb.hub.resumes == 0
