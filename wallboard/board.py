"""One tenant's board settings and their effects: the levels supervisors set (stored),
the wall's messages (stored, until they expire), and the alerts the incidents send.

The engine's watch (watch.py) evaluates the levels at every commit; this keeps its
overrides and the wall in step with the database, and the supervisors' view of the alert
deliveries in step with the outbox. The web layer (web/board_api.py) reaches it as
`parts(request).board`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from typing import Any

from wallboard.alerts import Outbox
from wallboard.board_store import BoardStore, BoardStoreError, WallMessage
from wallboard.engine import Engine
from wallboard.watch import FIGURES, WHOLE, Incident, Levels

log = logging.getLogger("wallboard.board")

MAX_MESSAGE = 200  # characters of a wall message
MAX_MESSAGE_MINUTES = 24 * 60
MAX_MESSAGES = 20  # standing at once per tenant
LEVEL_MAX = 1_000_000.0
EXPIRE_EVERY_S = 0.5
RELOAD_EVERY_S = 5.0  # while the storage database could not be read: how often it is tried again
SCOPE = re.compile(r"^(|team:[^\x00-\x1f<>\"'&]{1,40}|hotline:[0-9+*#]{1,20})$")


class BoardError(ValueError):
    """A request the board refuses: its error code (locales: error.<code>)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def clean_text(raw: object) -> str:
    """A wall message as plain text: control characters (newlines too) become spaces, runs
    of space one, at most MAX_MESSAGE characters, else BoardError."""
    if not isinstance(raw, str):
        raise BoardError("BAD_REQUEST")
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in raw)
    text = " ".join(text.split())
    if not text:
        raise BoardError("EMPTY_MESSAGE")
    if len(text) > MAX_MESSAGE:
        raise BoardError("MESSAGE_TOO_LONG")
    return text


def check_levels(figure: object, scope: object, warn: object, alarm: object) -> tuple[str, str, Levels]:
    if figure not in FIGURES or not isinstance(scope, str) or not SCOPE.match(scope):
        raise BoardError("BAD_REQUEST")
    values = []
    for v in (warn, alarm):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= LEVEL_MAX:
            raise BoardError("BAD_LEVEL")
        values.append(float(v))
    return str(figure), scope, (values[0], values[1])


class Board:
    def __init__(self, engine: Engine, store: BoardStore, outbox: Outbox, tenant: str) -> None:
        self.engine = engine
        self.store = store
        self.outbox = outbox
        self.tenant = tenant
        self.wall: dict[int, WallMessage] = {}
        self.loaded = asyncio.Event()
        self._loading: asyncio.Task[None] | None = None
        engine.watch.on_incident = self._incident
        outbox.on_change = self._alerts_changed

    # -- running ---------------------------------------------------------------------

    def start(self) -> None:
        self.outbox.start()
        self._loading = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        await self.outbox.stop()

    async def _run(self) -> None:
        loaded = await self._load()
        loop_time = asyncio.get_running_loop().time
        next_try = loop_time() + RELOAD_EVERY_S
        while True:  # a message leaves the wall within a second of its expiry
            await asyncio.sleep(EXPIRE_EVERY_S)
            if not loaded and loop_time() >= next_try:  # the database is back: no restart needed
                loaded = await self._load()
                next_try = loop_time() + RELOAD_EVERY_S
            now = self.store.now_ms()
            if any(m.expires_at <= now for m in self.wall.values()):
                self.refresh_wall()

    async def _load(self) -> bool:
        """The stored levels and the standing messages; a database that cannot be read
        leaves the config's levels and an empty wall (and says so in the log, once), and
        is read again every RELOAD_EVERY_S until it can be."""
        ok = True
        try:
            self.engine.watch.overrides = await self.store.thresholds(self.tenant)
            self.wall = {m.id: m for m in await self.store.messages(self.tenant)}
        except (BoardStoreError, OSError) as e:
            if not self.loaded.is_set():
                log.warning("board settings not loaded for now: %s", e)
            ok = False
        else:
            if self.loaded.is_set():
                log.info("board settings loaded: the storage database answers again")
        self.loaded.set()
        self._alerts_changed()
        self.refresh_wall()
        return ok

    # -- levels ----------------------------------------------------------------------

    def levels(self) -> dict[str, Any]:
        """Every scope's levels as they stand (the floor, each team and each hotline known)."""
        watch = self.engine.watch
        figures = watch.figures
        scopes = [WHOLE, *(f"team:{t.name}" for t in watch.settings.teams)]
        if figures is not None:
            scopes += [f"team:{n}" for n in figures.teams] + [f"hotline:{n}" for n in figures.hotlines]
        scopes += [scope for scope, _ in watch.overrides]
        scopes = list(dict.fromkeys(scopes))
        return {scope: {figure: {"levels": list(watch.levels_for(scope, figure)),
                                 "own": (scope, figure) in watch.overrides}
                        for figure in FIGURES} for scope in scopes}

    async def set_levels(self, scope: str, figure: str, levels: Levels | None, by: str) -> None:
        await self.store.set_threshold(self.tenant, scope, figure, levels, by)
        overrides = self.engine.watch.overrides
        if levels is None:
            overrides.pop((scope, figure), None)
        else:
            overrides[(scope, figure)] = levels
        self.engine.publish(self.engine.watch.refresh(self.engine.live, self.store.now_ms()))

    # -- the wall --------------------------------------------------------------------

    async def post(self, text: str, team: str | None, minutes: float, by: str) -> WallMessage:
        if not 0 < minutes <= MAX_MESSAGE_MINUTES:
            raise BoardError("BAD_EXPIRY")
        if len(self.standing()) >= MAX_MESSAGES:
            raise BoardError("TOO_MANY_MESSAGES")
        m = await self.store.add_message(self.tenant, team, text, self.store.now_ms() + int(minutes * 60_000), by)
        self.wall[m.id] = m
        self.refresh_wall()
        return m

    async def take_down(self, message_id: int, by: str) -> bool:
        found = await self.store.clear_message(self.tenant, message_id, by)
        if self.wall.pop(message_id, None) is not None or found:
            self.refresh_wall()
        return found

    def standing(self) -> list[WallMessage]:
        now = self.store.now_ms()
        return [m for m in self.wall.values() if m.expires_at > now]

    def refresh_wall(self) -> None:
        """Publish the standing messages; an expired one leaves (the tick calls this too)."""
        standing = self.standing()
        self.wall = {m.id: m for m in standing}
        live = self.engine.live
        self.engine.publish(live.put_board("wall", {str(m.id): m.to_json() for m in standing}))

    # -- alerts ----------------------------------------------------------------------

    def _incident(self, incident: Incident) -> None:
        log.info("incident %s: %s %s %s", "started" if incident.started else "ended", incident.scope or "floor",
                 incident.figure, incident.level)
        self.outbox.notify(incident)

    def _alerts_changed(self) -> None:
        self.engine.publish(self.engine.live.put_board("alerts", self.outbox.status()))
