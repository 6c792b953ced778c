"""The hub behind a real server: stalled screens cost the others nothing and stay
bounded, snapshots first and on resync, seq without gaps, a new epoch per process,
heartbeats and dead-connection detection."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from starlette.applications import Starlette

from tests.factories import Running, agent, event
from tests.servers import RawScreen, listener, port_of, serving, until
from wallboard.app import create_app, site_of
from wallboard.health import SOURCES
from wallboard.hub import RESYNC
from wallboard.patches import WIRE_FIELDS
from wallboard.poller import now_ms
from wallboard.server import DirectLine
from wallboard.settings import defaults

AGENTS = 2000
STALLED = 200
QUEUE = 64


def make_app(tmp: Path, port: int) -> Starlette:
    return create_app(defaults().with_values(
        # (allow_missing_origin: these screens are test clients, not browsers)
        server={"public_url": f"http://127.0.0.1:{port}", "port": port, "ws_queue_size": QUEUE,
                "allow_missing_origin": True},
        pbx={"base_url": "http://127.0.0.1:9", "api_key": "k"},
        poll={"agents_interval": 600.0, "calls_interval": 600.0, "status_interval": 600.0,
              "cdr_interval": 600.0},
        webhook={"secret": "hub-secret", "register": False},
        auth={"mode": "none"},
        storage={"path": str(tmp / "wb.db")},
    ))


@contextlib.asynccontextmanager
async def running_board(tmp: Path, sndbuf: int | None) -> AsyncIterator[tuple[Running, int]]:
    sock = listener(sndbuf=sndbuf)
    port = port_of(sock)
    app = make_app(tmp, port)
    wb = Running(app)
    wb.publish(wb.live.apply_agents([agent(str(1000 + i)) for i in range(AGENTS)], now_ms()))
    async with serving(app, sock, ws_ping_interval=None):
        # The poller's first reads of the missing PBX fail and publish that once per source;
        # after that the seq moves only with the test's own changes.
        await until(lambda: all(wb.live.sources[s]["error"] for s in SOURCES), 10, "the first polls failed")
        site_of(app).scheduler.get_job("watch").pause()  # the teams' figures publish patches of their own
        yield wb, port


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[tuple[Running, int]]:
    async with running_board(tmp_path, 16384) as running:
        yield running


def one_event(wb: Running, i: int) -> None:
    """The next change, sent as its own patch: agent 1000+i rings, or its call ends."""
    ext = str(1000 + (i // 2) % AGENTS)
    wb.publish(wb.live.apply_event(event("ringing" if i % 2 == 0 else "hangup", f"h-{i // 2}", ext=ext,
                                         at=now_ms(), received=now_ms())))
    wb.flush()  # not at the end of this turn: the tests count patches


# A 16 KiB server send buffer: stalled sockets push back within a few patches.
# The kernel's default: they take megabytes first, and only the hub's sweep finds them.
@pytest.mark.parametrize("sndbuf", [16384, None], ids=["small-sndbuf", "kernel-default"])
async def test_stalled_screens_do_not_delay_a_normal_one_and_stay_bounded(
        tmp_path: Path, sndbuf: int | None) -> None:
    async with running_board(tmp_path, sndbuf) as (wb, port):
        await stalled_screens_do_not_delay_a_normal_one(wb, port)


async def stalled_screens_do_not_delay_a_normal_one(wb: Running, port: int) -> None:
    stalled = [await RawScreen.open(port, rcvbuf=4096) for _ in range(STALLED)]
    normal = await RawScreen.open(port)
    first, snapshot_bytes = await normal.message()
    assert first["type"] == "snapshot" and len(first["state"]["agents"]) == AGENTS
    await until(lambda: len(wb.hub.screens) == STALLED + 1, 10, "every screen subscribed")

    published: dict[int, float] = {}
    arrived: dict[int, float] = {}
    sizes: dict[int, int] = {}

    async def read_normal(last: int) -> None:
        while not arrived or max(arrived) < last:
            message, size = await normal.message()
            if message["type"] == "patch":
                arrived[message["seq"]] = time.perf_counter()
                sizes[message["seq"]] = size

    patches = 400
    start_seq = wb.live.seq
    reader = asyncio.create_task(read_normal(start_seq + patches))
    for i in range(patches):
        one_event(wb, i)
        published[wb.live.seq] = time.perf_counter()
        await asyncio.sleep(0.005)  # paces the traffic: about 200 changes a second
    await asyncio.wait_for(reader, 10)

    assert sorted(arrived) == list(range(start_seq + 1, start_seq + patches + 1)), "a patch went missing"
    delays = sorted((arrived[s] - published[s]) * 1000 for s in published)
    p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
    print(f"\n{STALLED} stalled screens beside a normal one, {AGENTS} agents: patch delay "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {delays[-1]:.1f} ms; snapshot {snapshot_bytes} bytes")
    assert p99 < 500, delays[-10:]

    # The stalled screens overflowed and hold a snapshot marker, never a backlog.
    behind = [s for s in wb.hub.screens if s.sent_seq < wb.live.seq - QUEUE]
    assert len(behind) == STALLED
    assert all(s.resync_pending and s.queue.qsize() == 1 for s in behind)  # nothing piles up behind it
    assert wb.hub.drops >= STALLED
    assert [s.clogged for s in wb.hub.screens if s not in behind] == [False]  # the reader never was

    # One stalled screen reads again: a fresh snapshot, then patches from there, no backlog.
    back = stalled[0]
    frames: list[dict[str, Any]] = []
    target = wb.live.seq

    async def catch_up() -> None:
        while not frames or frames[-1].get("seq", -1) < target or frames[-1]["type"] != "snapshot":
            frames.append((await back.message())[0])

    await asyncio.wait_for(catch_up(), 20)
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "snapshot" and kinds[-1] == "snapshot", kinds[:5]
    assert kinds.count("patch") < QUEUE, f"{kinds.count('patch')} patches of backlog"
    for screen in stalled:
        screen.close()
    normal.close()


async def test_first_frame_is_a_snapshot_then_patches_one_seq_apart_and_resync_on_request(
        board: tuple[Running, int]) -> None:
    wb, port = board
    url = f"ws://127.0.0.1:{port}/ws"
    async with websockets.connect(url, max_size=None) as ws:
        first = orjson.loads(await ws.recv())
        assert first["type"] == "snapshot" and first["seq"] == wb.live.seq
        assert first["state"]["epoch"] == wb.live.epoch
        for i in range(20):
            one_event(wb, i)
        seqs = []
        while len(seqs) < 20:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame["type"] == "patch" and "epoch" not in frame  # the snapshot carries it
            seqs.append(frame["seq"])
        assert seqs == list(range(first["seq"] + 1, first["seq"] + 21))
        # uvicorn's websockets-sansio protocol: caught-up screens get prepared frames.
        assert all(isinstance(s.line, DirectLine) for s in wb.hub.screens) and wb.hub.direct >= 20

        # One agent's change with 2,000 agents on the board: its bytes on the wire. (The
        # test's polls stand in for the PBX's: the first, unchanged, marks the source ok.)
        wb.publish(wb.live.apply_agents([agent(str(1000 + i)) for i in range(AGENTS)], now_ms()))
        wb.flush()
        wb.publish(wb.live.apply_agents([agent(str(1000 + i), name="Renamed" if i == 7 else None)
                                         for i in range(AGENTS)], now_ms()))
        text = await asyncio.wait_for(ws.recv(), 5)
        while ["upd", "agents", "1007"] not in [op[:3] for op in orjson.loads(text).get("ops", [])]:
            text = await asyncio.wait_for(ws.recv(), 5)  # a ping or a poll failure meanwhile
        assert orjson.loads(text)["ops"] == [["upd", "agents", "1007", {"name": "Renamed"}]]
        print(f"\none-agent patch with {AGENTS} agents: {len(text)} bytes")
        assert len(text) < 120

        # A burst within one turn of the loop (a flood of webhooks) is one patch.
        before = wb.live.seq
        for i in range(20, 40):
            wb.publish(wb.live.apply_event(event("ringing", f"burst-{i}", ext=str(1000 + i),
                                                 at=now_ms(), received=now_ms())))
        assert wb.live.seq == before  # not sent yet: at the end of this turn
        burst = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        while not any(op[1] == "calls" for op in burst.get("ops", [])):  # a ping, a poll failure
            burst = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert burst["seq"] == before + 1
        # Each ringing agent follows its new call: one op per ring, agents not sent apart.
        agent_at = WIRE_FIELDS["calls"].index("agent")
        assert {op[3][agent_at] for op in burst["ops"] if op[:2] == ["put", "calls"] and op[4:] == [1]} == {
            str(1000 + i) for i in range(20, 40)}
        assert not [op for op in burst["ops"] if op[1] == "agents"]

        asked = wb.live.seq
        await ws.send(orjson.dumps({"type": "resync"}).decode())
        again = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        while again["type"] == "patch":  # sent before the request was read
            again = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert again["type"] == "snapshot" and again["seq"] >= asked
        assert wb.hub.resyncs == 1


async def test_heartbeat_reaches_screens(board: tuple[Running, int]) -> None:
    wb, port = board
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        assert orjson.loads(await ws.recv())["type"] == "snapshot"
        await wb.ping()
        ping = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert ping["type"] == "ping" and ping["seq"] == wb.live.seq and "agents" in ping["at"]


async def test_dead_connections_are_found_and_dropped(tmp_path: Path) -> None:
    sock = listener()
    port = port_of(sock)
    app = make_app(tmp_path, port)
    wb = Running(app)
    async with serving(app, sock, ws_ping_interval=0.5, ws_ping_timeout=1.0):
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as alive:
            assert orjson.loads(await alive.recv())["type"] == "snapshot"
            dead = await RawScreen.open(port)  # never reads again, so never answers a ping
            await until(lambda: len(wb.hub.screens) == 2, 5, "two screens")
            started = time.monotonic()
            await until(lambda: len(wb.hub.screens) == 1, 10, "the dead screen dropped")
            print(f"\ndead screen dropped after {time.monotonic() - started:.1f} s")
            await asyncio.sleep(2.0)  # four ping intervals: a live screen survives them
            assert len(wb.hub.screens) == 1
            await alive.ping()
        dead.close()


async def test_a_restarted_server_has_a_new_epoch(tmp_path: Path) -> None:
    first = listener()
    port = port_of(first)
    epochs = []
    for sock in (first, None):  # the second server binds the port the first one let go
        async with serving(make_app(tmp_path, port), sock or listener(port)), \
                websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
            epochs.append(orjson.loads(await ws.recv())["state"]["epoch"])
    assert epochs[0] != epochs[1]


def test_resync_marker_replaces_the_backlog() -> None:
    """The unit rule under the server tests: a full queue becomes one snapshot marker."""
    from wallboard.audience import Audience
    from wallboard.bus import Published
    from wallboard.hub import Hub, Screen

    hub = Hub(lambda audience: (0, b"{}"), queue_size=3)
    queue: asyncio.Queue[Any] = asyncio.Queue(3)
    screen = Screen(ws=None, kind="viewer", audience=Audience.MASKED, session_id=None, queue=queue)  # type: ignore[arg-type]
    hub.screens.add(screen)
    for seq in range(1, 6):
        hub.publish(Published("e", seq, dict.fromkeys(Audience, b"{}")))
    items = [queue.get_nowait() for _ in range(queue.qsize())]
    assert items[0] is RESYNC and all(isinstance(i, Published) for i in items[1:])
    assert hub.drops == 1
