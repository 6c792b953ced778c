"""The live state and the rules that merge polls and webhooks into it.

Pure and synchronous: every `apply_*` takes plain records, changes the state and
returns the list of patch ops (see `patches.py`) that describe the change; an
empty list means nothing changed. Only the event loop calls these.

Merge rules
-----------
1. The polls are the truth for who is logged in (`/v1/monitor/agent`) and which
   calls are live (`/v1/call`), but only against evidence older than the poll:
   every agent and call remembers `touched`, the time (our clock, ms) of the last
   evidence that set it; a poll that started before `touched` does not undo it,
   a poll that started after wins.
2. Webhooks move agents and calls between polls, so a screen changes within a
   second of the PBX.
3. Per call_id, phases only move forward: ringing < answered < hangup < cdr. A
   late or duplicated event (phase not above the one we hold) changes nothing,
   and a call_id that reached hangup is never brought back, by an event or a poll.
   Ended call_ids are remembered (`_phase`) for `TOMBSTONE_MS`.
4. Inbound calls that ring several extensions come as one leg per extension,
   each with its own call_id. Legs of one inbound flow share `flow` (hotline and
   caller); the `cdr` event carries the flow's own call_id, linked to its legs by
   the same key. A `cdr` ends, as a hangup would, the live call with its call_id
   (a call that rang one extension: its own hangup may come after the cdr) and the
   flow's leg at the cdr's extension that rang while the flow lasted; a key alone
   is not enough, as a withheld or shared number can ring the hotline twice at once.
5. An agent seen today and absent from the latest agent poll is `offline`. At
   local midnight (`pbx.timezone`) offline agents from yesterday are forgotten and
   the day's figures start again.
6. `since` is when the agent entered its state: unchanged by a poll that shows the
   same state; taken from the event's time, the PBX's `call_time` (converted from
   local time) or, failing both, our clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from wallboard.apply import apply_ops
from wallboard.groups import GroupDay
from wallboard.health import Health
from wallboard.patches import WIRE_FIELDS, Op, Patch, compact, del_op, fold_agents, object_op, record_op, set_op
from wallboard.pbx.events import PHASES, CallEvent
from wallboard.pbx.models import AgentRecord, CallRecord, StatusReport
from wallboard.pbx.times import PbxTime
from wallboard.stats import DayStats, Flow, WaitingCallers

ANSWERED, HANGUP = PHASES["answered"], PHASES["hangup"]
TOMBSTONE_MS = 2 * 3600 * 1000
MONITOR_SLACK_MS = 5000
# /v1/call states that mean the media is flowing (the call was answered).
ANSWERED_CHANNEL_STATES = {"CS_EXCHANGE_MEDIA", "CS_SOFT_EXECUTE", "ACTIVE", "ANSWERED"}
# Top-level values the engine sets beside the PBX's (engine.py, groups.py, wall.py): each
# team's and hotline's figures, the levels of the figures over a threshold, the wall's
# messages, the alerts' deliveries (supervisors only) and the agents in wrap-up until when.
BOARD_KEYS = ("teams", "hotlines", "levels", "wall", "alerts", "wrapup")
# /v1/monitor/agent call_state -> agent state; anything else (empty) is idle.
_POLL_STATES = {"RINGING": "ringing", "ONCALL": "oncall"}


def flow_key(hotline: str, caller: str) -> str:
    return f"{hotline}|{caller}"


def _agent_ext(direction: str, from_number: str, to_number: str) -> str:
    return to_number if direction == "inbound" else from_number


def _peer(direction: str, from_number: str, to_number: str) -> str:
    return from_number if direction == "inbound" else to_number


class LiveState:
    def __init__(self, clock: PbxTime, *, sla_seconds: int = 20, now_ms: int = 0,
                 health: Health | None = None) -> None:
        self.time = clock
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self.domain = ""
        self.agents: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.status: dict[str, Any] = {"counts": {}, "total": 0, "since": clock.day_start_ms(now_ms)}
        self.health = health or Health()
        self.monitors: dict[str, dict[str, Any]] = {}
        self.stats = DayStats(clock, sla_seconds=sla_seconds, now_ms=now_ms)
        # ext / call_id -> the time (our clock) of the last evidence that set it
        self._agent_touched: dict[str, int] = {}
        self._call_touched: dict[str, int] = {}
        self._phase: dict[str, tuple[int, int]] = {}  # call_id -> (phase, when)
        self._day_start = clock.day_start_ms(now_ms)
        self._on_call: dict[str, set[str]] = {}  # call_id -> the agents whose record shows it
        # Since the last commit: calls ended (-> the agent each left idle) and calls begun.
        self._ended: dict[str, str] = {}
        self._begun: set[str] = set()
        self.waiting = WaitingCallers()
        self._stats_json = self.stats.to_json(self.waiting.figures())
        self.day_groups = GroupDay(clock, sla_seconds, self._day_start)
        self.board: dict[str, dict[str, Any]] = {key: {} for key in BOARD_KEYS}
        self.wrapup_ms = 0  # display.wrapup_seconds: an agent whose call ended is in wrap-up this long

    # ---- reading -------------------------------------------------------------

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "now": now_ms,
            "domain": self.domain,
            "agents": list(self.agents.values()),
            "calls": list(self.calls.values()),
            "status": self.status,
            "stats": self._stats_json,
            "sources": self.health.view(),
            "monitors": list(self.monitors.values()),
            **self.board,
        }

    def last_heard(self) -> dict[str, int | None]:
        """Each source's last success: sent in pings, as polls that change nothing send no patch."""
        return self.health.heard()

    def phase(self, call_id: str) -> int:
        entry = self._phase.get(call_id)
        return entry[0] if entry else 0

    # ---- webhooks ------------------------------------------------------------

    def apply_event(self, ev: CallEvent) -> list[Op]:
        hooks = self.health.webhooks
        hooks["at"] = ev.received
        hooks["received"] += 1
        ops: list[Op] = []
        ops += self._roll_day(ev.received)
        new_phase = PHASES[ev.state]
        if ev.state == "cdr":
            self._set_phase(ev.call_id, new_phase, ev.received)
            ended = self._end_flow(ev)
            self.day_groups.add_event(ev)
            if self.stats.add_cdr_event(ev) or ended:
                ops += ended + self._refresh_stats(ev.received) + self._refresh_agents_today()
            return ops
        ops += self._learn_hotline(ev)
        if self.phase(ev.call_id) >= new_phase:
            return ops  # duplicate or late: phases never move back
        self._set_phase(ev.call_id, new_phase, ev.received)
        ext = _agent_ext(ev.direction, ev.from_number, ev.to_number)
        if ev.state == "hangup":
            ops += self._end_call(ev.call_id, ev.at, ev.received)
        else:
            ops += self._event_call(ev, ext)
            ops += self._event_agent(ev, ext)
        ops += self._refresh_stats(ev.received)
        return ops

    def _event_call(self, ev: CallEvent, ext: str) -> list[Op]:
        old = self.calls.get(ev.call_id)
        call = dict(old) if old else {
            "call_id": ev.call_id, "direction": ev.direction, "from": ev.from_number,
            "to": ev.to_number, "agent": ext or None, "state": "ringing", "started_at": ev.at,
            "answered_at": None, "hotline": ev.hotline or None,
            "flow": flow_key(ev.hotline, ev.from_number) if ev.direction == "inbound" else None,
        }
        if ev.state == "answered":
            call["state"] = "answered"
            call["answered_at"] = call["answered_at"] or ev.at
        self._call_touched[ev.call_id] = ev.received
        return self._put_call(call)

    def _learn_hotline(self, ev: CallEvent) -> list[Op]:
        """A leg first seen by a poll (which does not tell the hotline) joins its flow when
        any of its webhooks comes, even one too late to move it."""
        call = self.calls.get(ev.call_id)
        if call is None or call["hotline"] or not ev.hotline or ev.direction != "inbound":
            return []
        return self._put_call(dict(call, hotline=ev.hotline, flow=flow_key(ev.hotline, ev.from_number)))

    def _event_agent(self, ev: CallEvent, ext: str) -> list[Op]:
        if not ext:
            return []
        agent = self.agents.get(ext)
        rec = dict(agent) if agent else self._blank_agent(ext, ev.at)
        state = "oncall" if ev.state == "answered" else "ringing"
        if rec["state"] == "oncall" and state == "ringing" and rec["call_id"] != ev.call_id:
            return []  # a second call ringing at a busy agent does not hide the call in progress
        if rec["state"] != state or rec["call_id"] != ev.call_id:
            rec["since"] = ev.at
        rec.update(state=state, call_id=ev.call_id, direction=ev.direction,
                   peer=_peer(ev.direction, ev.from_number, ev.to_number))
        self._agent_touched[ext] = ev.received
        return self._put_agent(rec)

    def _end_flow(self, ev: CallEvent) -> list[Op]:
        """A flow's CDR ends its legs still on the board, as their hangup would (rule 4).

        Legs it cannot tie to the flow for sure wait for their own hangup or the next poll.
        """
        ended = min(ev.time_ended or ev.at, ev.at)
        ops: list[Op] = []
        if ev.call_id in self.calls:
            ops += self._end_call(ev.call_id, ended, ev.received)
        ext = ev.extension or ev.to_number
        if (ev.direction != "inbound" or not ev.from_number or not ext
                or ev.time_started is None or ev.time_ended is None):
            return ops
        key = flow_key(ev.hotline, ev.from_number)
        for call_id, call in list(self.calls.items()):
            if (call["flow"] == key and call["agent"] == ext
                    and ev.time_started <= call["started_at"] < ev.time_ended):
                self._set_phase(call_id, HANGUP, ev.received)
                ops += self._end_call(call_id, ended, ev.received)
        return ops

    def _end_call(self, call_id: str, at: int, received: int) -> list[Op]:
        ops: list[Op] = []
        call = self.calls.pop(call_id, None)
        self._call_touched.pop(call_id, None)
        if call is not None:
            self.waiting.remove(call_id)
            ops.append(del_op("calls", call_id))
        if self.monitors.pop(call_id, None) is not None:
            ops.append(set_op("monitors", list(self.monitors.values())))
        on = self._on_call.get(call_id)
        if on:
            ext = call["agent"] if call and call.get("agent") in on else min(on)
            rec = dict(self.agents[ext], state="idle", since=at, call_id=None, direction=None, peer=None)
            self._agent_touched[ext] = received
            ops += self._put_agent(rec)
            if call is not None and ext == call.get("agent") and call_id not in self._begun:
                self._ended[call_id] = ext  # screens hold this call: its end can carry the agent
        return ops

    # ---- polls ---------------------------------------------------------------

    def apply_agents(self, rows: Iterable[AgentRecord], started: int) -> list[Op]:
        """A `/v1/monitor/agent` answer for a request sent at `started` (our clock)."""
        ops = self._roll_day(started)
        seen: set[str] = set()
        for row in rows:
            if not row.ext:
                continue
            seen.add(row.ext)
            if row.domain_name and not self.domain:
                self.domain = row.domain_name
                ops.append(set_op("domain", self.domain))
            ops += self._poll_agent(row, started)
        for ext in [e for e in self.agents if e not in seen]:
            agent = self.agents[ext]
            if agent["state"] == "offline" or self._agent_touched.get(ext, 0) > started:
                continue  # already offline, or an event newer than this poll moved it
            ops += self._put_agent(dict(agent, state="offline", since=started, call_id=None,
                                        direction=None, peer=None))
        ops += self._refresh_stats(started)
        self._mark(ops, "agents", started)
        return ops

    def _poll_agent(self, row: AgentRecord, started: int) -> list[Op]:
        # Called for every agent on every poll, and nearly always nothing changed: the
        # changed fields are gathered first and a record is built only when there are some.
        old = self.agents.get(row.ext)
        base = old if old is not None else self._blank_agent(row.ext, started)
        changed: dict[str, Any] = {}
        name, username = row.name or base["name"], row.username or base["username"]
        if name != base["name"]:
            changed["name"] = name
        if username != base["username"]:
            changed["username"] = username
        if row.user_agent != base["user_agent"]:
            changed["user_agent"] = row.user_agent
        if row.network_ip != base["network_ip"]:
            changed["network_ip"] = row.network_ip
        if (old is not None and old["state"] != "offline"
                and self._agent_touched.get(row.ext, 0) > started):
            # an event newer than this poll: keep its state, refresh the details only
            return self._put_agent({**old, **changed}) if changed else []
        state = _POLL_STATES.get(row.call_state, "idle")
        call_id = row.call_id if state != "idle" else None
        if call_id:
            phase = self.phase(call_id)
            if phase >= HANGUP:
                state, call_id = "idle", None  # that call is over; it never comes back
            elif state == "ringing" and phase >= ANSWERED:
                state = "oncall"
        if state != base["state"] or call_id != base["call_id"]:
            since = self.time.parse(row.call_time) if call_id else None
            if state == "oncall" and call_id in self.calls and self.calls[call_id]["answered_at"]:
                since = self.calls[call_id]["answered_at"]
            changed["since"] = since if since and since <= started else started
            changed["state"] = state
            changed["call_id"] = call_id
        direction = (row.direction or None) if call_id else None
        if direction != base["direction"]:
            changed["direction"] = direction
        peer = (row.destination or None) if call_id else None
        if peer != base["peer"]:
            changed["peer"] = peer
        ops = self._put_agent({**base, **changed}) if changed or old is None else []
        if call_id and call_id not in self.calls:
            ops += self._call_from_agent(row, state, started)
        return ops

    def _call_from_agent(self, row: AgentRecord, state: str, started: int) -> list[Op]:
        inbound = row.direction == "inbound"
        begun = self.time.parse(row.call_time) or started
        self._set_phase(row.call_id, PHASES["answered" if state == "oncall" else "ringing"], started)
        self._call_touched[row.call_id] = started
        return self._put_call({
            "call_id": row.call_id, "direction": row.direction,
            "from": row.destination if inbound else row.ext,
            "to": row.ext if inbound else row.destination, "agent": row.ext,
            "state": "answered" if state == "oncall" else "ringing", "started_at": begun,
            "answered_at": started if state == "oncall" else None, "hotline": None, "flow": None,
        })

    def apply_calls(self, rows: Iterable[CallRecord], started: int) -> list[Op]:
        """A `/v1/call` answer for a request sent at `started`."""
        ops = self._roll_day(started)
        seen: set[str] = set()
        for row in rows:
            if not row.call_id or self.phase(row.call_id) >= PHASES["hangup"]:
                continue
            seen.add(row.call_id)
            ops += self._poll_call(row, started)
        for call_id in list(self.calls):
            if call_id in seen or self._call_touched.get(call_id, 0) > started:
                continue
            self._set_phase(call_id, PHASES["hangup"], started)
            ops += self._end_call(call_id, started, started)
        ops += self._refresh_stats(started)
        self._mark(ops, "calls", started)
        return ops

    def _poll_call(self, row: CallRecord, started: int) -> list[Op]:
        old = self.calls.get(row.call_id)
        inbound = row.direction == "inbound"
        answered = (row.state.upper() in ANSWERED_CHANNEL_STATES
                    or self.phase(row.call_id) >= PHASES["answered"])
        agent_ext = row.destination if inbound else row.source
        if old is None:
            call = {
                "call_id": row.call_id, "direction": row.direction, "from": row.source,
                "to": row.destination, "agent": agent_ext if agent_ext in self.agents else None,
                "state": "ringing", "started_at": self.time.parse(row.created_time) or started,
                "answered_at": None, "hotline": None, "flow": None,
            }
        else:
            call = dict(old)
        if answered and call["state"] != "answered":
            if self._call_touched.get(row.call_id, 0) <= started or self.phase(row.call_id) >= 2:
                call["state"] = "answered"
                call["answered_at"] = call["answered_at"] or started
        if self.phase(row.call_id) < PHASES["ringing"]:
            self._set_phase(row.call_id, PHASES["answered" if answered else "ringing"], started)
        # Seeing the call is evidence too: an older poll answered later must not end it.
        self._call_touched[row.call_id] = max(self._call_touched.get(row.call_id, 0), started)
        return self._put_call(call)

    def apply_status(self, report: StatusReport, started: int) -> list[Op]:
        ops = self._roll_day(started)
        status = {"counts": dict(report.counts), "total": report.total, "since": self._day_start}
        if status != self.status:
            self.status = status
            ops.append(set_op("status", status))
        self._mark(ops, "status", started)
        return ops

    def apply_cdrs(self, records: Iterable[Any], started: int) -> list[Op]:
        ops = self._roll_day(started)
        records = list(records)
        self.day_groups.add_cdrs(records)
        if self.stats.add_cdrs(records):
            ops += self._refresh_stats(started) + self._refresh_agents_today()
        self._mark(ops, "cdr", started)
        return ops

    @property
    def sources(self) -> dict[str, Any]:
        return self.health.view()

    def sources_op(self) -> list[Op]:
        """What screens are shown of the sources' health, after it changed (health.py)."""
        return [set_op("sources", self.health.view())]

    def expire_sources(self, max_age: dict[str, float], now: int) -> list[Op]:
        """A source whose last success is older than its limit is no longer ok."""
        ops: list[Op] = []
        for source, limit in max_age.items():
            entry = self.health[source]
            if entry.ok and (entry.at is None or now - entry.at > limit * 1000) \
                    and entry.down("no answer for too long"):
                ops = self.sources_op()
        return ops

    def set_monitor(self, call_id: str, info: dict[str, Any] | None, now: int) -> list[Op]:
        if info is None:
            if self.monitors.pop(call_id, None) is None:
                return []
        else:
            if call_id not in self.calls:
                return []
            self.monitors[call_id] = {"call_id": call_id, "since": now, **info}
        return [set_op("monitors", list(self.monitors.values()))]

    def _end_monitors_by(self, ext: str, leg_since: int) -> list[Op]:
        """`ext`'s phone left a call it was on since `leg_since`: a listen, whisper or barge it
        joined for is over, though the call it joined goes on. (A leg older than the monitor,
        give or take the PBX ringing the phone before answering the request, is another call.)"""
        over = [call_id for call_id, m in self.monitors.items()
                if m.get("ext") == ext and leg_since >= m["since"] - MONITOR_SLACK_MS]
        for call_id in over:
            del self.monitors[call_id]
        return [set_op("monitors", list(self.monitors.values()))] if over else []

    def tick(self, now: int) -> list[Op]:
        """Periodic upkeep: day rollover, tombstone pruning, waiting-time figures."""
        ops = self._roll_day(now)
        cutoff = now - TOMBSTONE_MS
        for call_id in [c for c, (_, when) in self._phase.items() if when < cutoff]:
            if call_id not in self.calls:
                del self._phase[call_id]
        return ops + self._refresh_stats(now)

    def commit(self, ops: list[Op]) -> Patch | None:
        """The ops returned since the last commit as the next patch (None: no change)."""
        ended, self._ended = self._ended, {}
        self._begun.clear()
        ops = compact(ops)
        if not ops:
            return None
        self.seq += 1
        return Patch(self.seq, ops, fold_agents(ops, self.agents, self.calls, ended))

    # ---- carried on by the next leader (cluster) -------------------------------

    def export(self) -> dict[str, Any]:
        """This state at its seq, as JSON values, for a next leader to `restore`: what
        screens are shown (`view`) and what only the merge rules know."""
        view = self.snapshot(0)
        del view["now"]
        return {
            "view": view, "day_start": self._day_start, "phase": self._phase,
            "agent_touched": self._agent_touched, "call_touched": self._call_touched,
            "flows": {k: [f.inbound, f.started, f.answered, f.ended, f.agent] for k, f in self.stats.flows.items()},
            "last_ended": self.stats.last_ended,
        }

    def restore(self, saved: dict[str, Any], patches: Iterable[list[Op]], now_ms: int) -> None:
        """Carry on another leader's line: its `export` at a snapshot, then the ops of each
        patch after it (in any form a screen takes). Same epoch; seq after the last patch.

        What patches do not carry is taken as of now: records they changed count as touched
        now (a poll sent before this leader's first does not undo them), calls they ended as
        hung up now; the day's flows are the snapshot's, and the next CDR read, from its
        `last_ended`, counts the later ones. Raises apply.LostTrack on patches that do not
        follow the snapshot."""
        view = saved["view"]
        before_agents = {a["ext"]: a for a in view["agents"]}
        before_calls = {c["call_id"]: c for c in view["calls"]}
        values = {**view, "agents": before_agents, "calls": before_calls}
        seq = view["seq"]
        for ops in patches:
            values = apply_ops(values, ops, WIRE_FIELDS)
            seq += 1
        self.epoch, self.seq, self.domain = view["epoch"], seq, values["domain"]
        self.agents, self.calls = dict(values["agents"]), dict(values["calls"])
        self.status, self._stats_json = values["status"], values["stats"]
        self.monitors = {m["call_id"]: m for m in values["monitors"] or []}
        board = getattr(self, "board", None)  # the engine's own top-level values, where kept
        if isinstance(board, dict):
            board.update({k: values[k] for k in board if k in values})
        for name, source in values["sources"].items():
            if name == "webhooks":
                self.health.webhooks.update(source)
            elif name in self.health.sources:
                held = self.health[name]
                held.ok, held.at, held.error = source["ok"], source["at"], source["error"]
        self._day_start = max(saved["day_start"], values["status"].get("since") or 0)  # a new day replayed
        self._phase = {k: (p, when) for k, (p, when) in saved["phase"].items()}
        self._agent_touched = dict(saved["agent_touched"])
        self._call_touched = dict(saved["call_touched"])
        for ext, agent in self.agents.items():
            if before_agents.get(ext) != agent:
                self._agent_touched[ext] = now_ms
        for call_id, call in self.calls.items():
            self._set_phase(call_id, PHASES["ringing"], now_ms)  # as a poll would: a later webhook still moves it
            if before_calls.get(call_id) != call:
                self._call_touched[call_id] = now_ms
        for call_id in before_calls.keys() - self.calls.keys():
            self._set_phase(call_id, HANGUP, now_ms)
            self._call_touched.pop(call_id, None)
        self.stats = DayStats(self.time, sla_seconds=self.stats.sla_seconds, now_ms=self._day_start)
        self.stats.add_flows({k: Flow(*f) for k, f in saved["flows"].items()})
        self.stats.last_ended = saved["last_ended"]
        self.stats.take_changed_agents()
        self._on_call = {}
        for ext, agent in self.agents.items():
            if agent["call_id"] is not None:
                self._on_call.setdefault(agent["call_id"], set()).add(ext)
        self.waiting = WaitingCallers()
        for call in self.calls.values():
            self.waiting.put(call)
        self._ended, self._begun = {}, set()

    # ---- helpers -------------------------------------------------------------

    def _set_phase(self, call_id: str, phase: int, when: int) -> None:
        if self.phase(call_id) < phase:
            self._phase[call_id] = (phase, when)

    def _mark(self, ops: list[Op], source: str, started: int) -> None:
        if self.health[source].succeeded(started):
            ops += self.sources_op()

    # Records are replaced, never changed in place: the old one is what screens have.

    def _put_agent(self, rec: dict[str, Any]) -> list[Op]:
        ext = rec["ext"]
        old = self.agents.get(ext)
        ops = record_op("agents", ext, old, rec)
        if ops and old is not None and old["call_id"] is not None and rec["call_id"] is None:
            ops += self._end_monitors_by(ext, old["since"])
        if ops:
            self.agents[ext] = rec
            ops += self._wrapup(ext, old, rec)
            was = old["call_id"] if old else None
            if was != rec["call_id"]:
                if was is not None:
                    on = self._on_call.get(was)
                    if on is not None:
                        on.discard(ext)
                        if not on:
                            del self._on_call[was]
                if rec["call_id"] is not None:
                    self._on_call.setdefault(rec["call_id"], set()).add(ext)
        return ops

    def put_board(self, key: str, value: dict[str, Any]) -> list[Op]:
        """Replace one of BOARD_KEYS: the op that tells screens (a merge of what changed)."""
        ops = object_op(key, self.board[key], value)
        if ops:
            self.board[key] = value
        return ops

    def _wrapup(self, ext: str, old: dict[str, Any] | None, rec: dict[str, Any]) -> list[Op]:
        """An agent back to idle from a call is in wrap-up for wrapup_ms; anything else ends it."""
        wrapup = self.board["wrapup"]
        if self.wrapup_ms and old is not None and old["state"] == "oncall" and rec["state"] == "idle":
            return self.put_board("wrapup", {**wrapup, ext: rec["since"] + self.wrapup_ms})
        if ext in wrapup and rec["state"] != "idle":
            return self.put_board("wrapup", {k: v for k, v in wrapup.items() if k != ext})
        return []

    def end_wrapups(self, now: int) -> list[Op]:
        wrapup = self.board["wrapup"]
        if all(until > now for until in wrapup.values()):
            return []
        return self.put_board("wrapup", {k: v for k, v in wrapup.items() if v > now})

    def _put_call(self, call: dict[str, Any]) -> list[Op]:
        old = self.calls.get(call["call_id"])
        ops = record_op("calls", call["call_id"], old, call)
        if old is None:
            self._begun.add(call["call_id"])
        if ops:
            self.calls[call["call_id"]] = call
            self.waiting.put(call)
        return ops

    def _blank_agent(self, ext: str, since: int) -> dict[str, Any]:
        return {"ext": ext, "name": ext, "username": "", "state": "idle", "since": since,
                "call_id": None, "direction": None, "peer": None, "user_agent": "", "network_ip": "",
                **self.stats.agent_today(ext)}

    def _refresh_agents_today(self) -> list[Op]:
        """Agents whose calls answered or time talked today moved (a CDR, a new day)."""
        ops: list[Op] = []
        for ext in sorted(self.stats.take_changed_agents()):
            if ext in self.agents:
                ops += self._put_agent({**self.agents[ext], **self.stats.agent_today(ext)})
        return ops

    def _refresh_stats(self, now: int) -> list[Op]:
        fresh = self.stats.to_json(self.waiting.figures())
        ops = object_op("stats", self._stats_json, fresh)
        self._stats_json = fresh
        return ops

    def _roll_day(self, now: int) -> list[Op]:
        start = self.time.day_start_ms(now)
        if start <= self._day_start:
            return []
        self._day_start = start
        ops: list[Op] = []
        for ext in [e for e, a in self.agents.items() if a["state"] == "offline" and a["since"] < start]:
            del self.agents[ext]
            self._agent_touched.pop(ext, None)
            ops.append(del_op("agents", ext))
        self.status = {"counts": {}, "total": 0, "since": start}
        ops.append(set_op("status", self.status))
        self.stats.new_day(now)
        self.day_groups.new_day(now)
        return ops + self._refresh_agents_today()
