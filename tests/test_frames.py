"""Prepared frames are byte for byte what the websockets library would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from wallboard.frames import DirectLine, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_text_frame_matches_the_websockets_library(size: int) -> None:
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_no_direct_line_without_a_known_server_send() -> None:
    assert DirectLine.find({"type": "websocket"}) is None

    async def some_send(message: object) -> None: ...

    assert DirectLine.find({"type": "websocket", "wallboard.server_send": some_send}) is None
