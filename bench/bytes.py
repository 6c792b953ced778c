"""`python -m bench.bytes [--agents M] [--seconds T]`: what a screen's bytes are made of.

One screen on /ws while the bench's events run (a new call ringing an agent, 50 a
second, as in `bench.run`); every frame it gets is taken apart by op kind, so the
bytes per event can be traced to the envelope, the records and the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from typing import Any

import orjson
from websockets.asyncio.client import connect

from bench.poster import Poster
from bench.servers import Servers, servers


def kind_of(op: list[Any]) -> str:
    name = f"{op[0]} {op[1]}"
    if op[0] == "merge":
        name += " " + ",".join(sorted(op[2]))
    if op[1] == "calls" and len(op) > (3 if op[0] == "del" else 4):
        name += " (+ its agent)"
    return name


Tally = collections.Counter[str]


async def measure(srv: Servers, rate: float, seconds: float) -> tuple[int, Tally, Tally]:
    frames: list[bytes] = []
    async with connect(f"ws://127.0.0.1:{srv.port}/ws", compression=None, max_size=None) as ws:
        await ws.recv(decode=False)  # the snapshot

        async def read() -> None:
            while True:
                frames.append(await ws.recv(decode=False))

        reader = asyncio.create_task(read())
        poster = Poster(srv, 1)
        await poster.paced(rate, seconds)
        await asyncio.sleep(2.5)  # the next calls poll ends the calls the events replaced
        reader.cancel()
        await poster.close()
    count: Tally = collections.Counter()
    size: Tally = collections.Counter()
    for frame in frames:
        message = orjson.loads(frame)
        if message.get("type") != "patch":
            count[f"{message.get('type')} message"] += 1
            size[f"{message.get('type')} message"] += len(frame)
            continue
        count["patch envelope"] += 1
        size["patch envelope"] += len(frame)
        for op in message["ops"]:
            op_size = len(orjson.dumps(op))
            count[kind_of(op)] += 1
            size[kind_of(op)] += op_size
            size["patch envelope"] -= op_size
    return int(rate * seconds), count, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    with servers(args.agents) as srv:
        events, count, size = asyncio.run(measure(srv, args.rate, args.seconds))
    total = sum(size.values())
    print(f"{events} events, M={args.agents}: {total} bytes on one screen, {total / events:.0f} B per event\n")
    print("| part | count | bytes | B per event |\n|---|---|---|---|")
    for name, n in size.most_common():
        print(f"| {name} | {count[name]} | {n} | {n / events:.1f} |")


if __name__ == "__main__":
    main()
