"""Teams and hotlines (groups.py), a screen narrowed to one (views.py), and the levels of
the figures with their debounce and hysteresis (watch.py)."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import QueryParams

from tests.factories import T0, agent, event, live
from wallboard.apply import Replica
from wallboard.audience import Audience
from wallboard.engine import encode
from wallboard.patches import WIRE_FIELDS, snapshot_message
from wallboard.pbx.models import Cdr
from wallboard.settings import defaults
from wallboard.views import Narrowing, View, narrow_ops, narrow_state, view_of
from wallboard.watch import Incident, Watch

SALES = {"name": "Sales", "extensions": ["1001", "1002"]}
SUPPORT = {"name": "Support", "extensions": ["1003"]}


def cdr(id_: str, ext: str, *, dest: str = "ringgroup-6000", hotline: str = "19001919", answered: bool = True,
        start: str = "2025-11-28 07:00:00", answer: str = "2025-11-28 07:00:10",
        end: str = "2025-11-28 07:02:10") -> Cdr:
    return Cdr(id=id_, sip_call_id="", cause="", duration=0, direction="inbound", recording_url="",
               extension=ext, from_number="0899", to_number=hotline, receive_dest=dest, time_started=start,
               time_answered=answer if answered else "", time_ended=end,
               status="ANSWERED" if answered else "NO ANSWER")


def test_without_teams_the_ring_groups_of_the_cdrs_are_the_teams_with_their_figures() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002"), agent("1003")], T0)
    s.apply_cdrs([cdr("a", "1001"), cdr("b", "1002", answered=False), cdr("c", "1003", dest="queue-7")], T0)
    s.apply_cdrs([cdr("a", "1001")], T0 + 1000)  # a copy counts once
    watch = Watch(defaults())
    watch.refresh(s, T0 + 2000)
    teams = s.board["teams"]
    assert set(teams) == {"ringgroup-6000", "queue-7"}
    assert teams["ringgroup-6000"]["extensions"] == ["1001", "1002"]
    rg = teams["ringgroup-6000"]
    assert (rg["answered"], rg["missed"], rg["missed_rate"], rg["service_level"]) == (1, 1, 50.0, 50.0)
    assert (rg["avg_wait"], rg["avg_talk"]) == (10.0, 120.0)
    assert s.board["hotlines"]["19001919"]["answered"] == 2


def test_configured_teams_count_live_callers_agents_and_wrapup() -> None:
    settings = defaults().with_values(teams=[SALES, SUPPORT], display={"wrapup_seconds": 30})
    s = live()
    s.wrapup_ms = 30_000
    s.apply_agents([agent("1001"), agent("1002"), agent("1003")], T0)
    s.apply_event(event("ringing", "l1", ext="1001", at=T0 + 1000))
    s.apply_event(event("ringing", "l2", ext="1002", at=T0 + 2000))  # the same caller, another leg
    s.apply_event(event("ringing", "l3", ext="1003", number="0911", hotline="19002020", at=T0 + 3000))
    s.apply_event(event("answered", "l3", ext="1003", number="0911", hotline="19002020", at=T0 + 4000))
    s.apply_event(event("hangup", "l3", ext="1003", number="0911", hotline="19002020", at=T0 + 5000))
    Watch(settings).refresh(s, T0 + 6000)
    sales, support = s.board["teams"]["Sales"], s.board["teams"]["Support"]
    assert (sales["waiting"], sales["longest_wait_since"], sales["ringing"], sales["ringing_since"]) == \
        (1, T0 + 1000, 2, T0 + 1000)
    assert (support["waiting"], support["wrapup"], support["idle"]) == (0, 1, 0)
    assert s.board["wrapup"] == {"1003": T0 + 5000 + 30_000}
    assert s.board["hotlines"]["19001919"]["waiting"] == 1
    assert s.end_wrapups(T0 + 40_000) and s.board["wrapup"] == {}


def test_a_team_screen_gets_only_its_agents_and_calls_and_nothing_when_nothing_of_its_changed() -> None:
    settings = defaults().with_values(teams=[SALES, SUPPORT])
    s, watch, narrowing = live(), Watch(settings), Narrowing()
    view = View("team", "Sales")
    replicas: dict[str, Replica] = {}

    def commit(ops: list[Any], now: int) -> list[Any] | None:
        patch = s.commit(ops + watch.refresh(s, now))
        assert patch is not None
        noted = narrowing.note(patch.ops, s.calls, watch.members)
        kept = encode(s.epoch, patch, noted).narrow(Audience.MASKED, view)  # type: ignore[misc]
        if kept:
            assert replicas["sales"].patch({"type": "patch", "seq": patch.seq, "after": replicas["sales"].seq,
                                            "ops": kept})
        return kept

    commit(s.apply_agents([agent("1001"), agent("1002"), agent("1003")], T0), T0)
    state = narrow_state(s.snapshot(T0), view, watch.members)
    replicas["sales"] = Replica.from_snapshot(snapshot_message(s.seq, state))
    assert set(replicas["sales"].state()["agents"]) == {"1001", "1002"}
    assert commit(s.apply_event(event("ringing", "x", ext="1003", at=T0 + 1000)), T0 + 1000) == []
    kept = commit(s.apply_event(event("ringing", "y", ext="1001", number="0922", at=T0 + 2000)), T0 + 2000)
    assert kept and all(op[1] != "stats" for op in kept)
    held = replicas["sales"].state()
    assert set(held["calls"]) == {"y"} and held["agents"]["1001"]["state"] == "ringing"
    assert held["calls"]["y"]["from"] == "0922"  # short numbers are not masked; the audience still applies
    assert set(held["teams"]) == {"Sales"} and held["teams"]["Sales"]["waiting"] == 1
    commit(s.apply_event(event("hangup", "y", ext="1001", number="0922", at=T0 + 3000)), T0 + 3000)
    assert replicas["sales"].state()["calls"] == {}
    whole = s.snapshot(T0 + 3000)
    assert replicas["sales"].state()["agents"]["1001"] == next(a for a in whole["agents"] if a["ext"] == "1001")


def test_a_team_whose_members_change_gets_a_snapshot_and_a_hotline_view_its_calls() -> None:
    s, narrowing = live(), Narrowing()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    narrowing.note([], s.calls, {"rg": frozenset({"1001"})})
    ops = s.apply_event(event("ringing", "c1", ext="1002", hotline="19002020"))
    noted = narrowing.note(ops, s.calls, {"rg": frozenset({"1001", "1002"})})
    assert narrow_ops(ops, noted, View("team", "rg")) is None
    kept = narrow_ops(ops, noted, View("hotline", "19002020"))
    assert kept is not None and [op[:3] for op in kept if op[1] == "calls"] == [["put", "calls", "c1"]]
    assert narrow_ops(ops, noted, View("hotline", "19001919")) == [op for op in kept if op[1] == "agents"]


def test_view_of_reads_team_or_hotline() -> None:
    assert view_of(QueryParams("team=Sales&token=x")) == View("team", "Sales")
    assert view_of(QueryParams("hotline=19001919")) == View("hotline", "19001919")
    assert view_of(QueryParams("team=")) is None and view_of(QueryParams("team=" + "x" * 41)) is None


def test_a_level_fires_after_for_seconds_and_clears_past_the_margin_with_one_incident_each_way() -> None:
    settings = defaults().with_values(thresholds={"for_seconds": 2.0, "clear_margin": 0.2, "waiting_warn": 2.0,
                                                  "waiting_alarm": 4.0})
    incidents: list[Incident] = []  # the floor's (the hotline's are the same)
    watch = Watch(settings, on_incident=lambda i: incidents.append(i) if i.scope == "" else None)
    s = live()
    s.apply_agents([agent(str(1000 + i)) for i in range(1, 7)], T0)

    def callers(n: int, now: int) -> dict[str, Any]:
        for i in range(1, 7):
            ext, call = str(1000 + i), f"w{i}"
            if i <= n and call not in s.calls:
                s.apply_event(event("ringing", call, ext=ext, number=f"09{i}", at=now))
            elif i > n and call in s.calls:
                s.apply_event(event("hangup", call, ext=ext, number=f"09{i}", at=now))
        watch.refresh(s, now)
        return s.board["levels"].get("", {})

    assert callers(5, T0) == {}  # over both levels, not yet for long enough
    assert callers(5, T0 + 1000) == {}
    assert callers(5, T0 + 2000) == {"waiting": "alarm"}
    assert [(i.started, i.level) for i in incidents] == [(True, "alarm")]
    assert callers(4, T0 + 3000) == {"waiting": "alarm"}  # at the level: held
    assert callers(4, T0 + 4000) == {"waiting": "alarm"}
    assert callers(3, T0 + 5000) == {"waiting": "warn"}  # 3 < 4 - 20 %: down to warn, the incident ends
    assert [(i.started, i.level) for i in incidents] == [(True, "alarm"), (False, "warn")]
    assert callers(5, T0 + 5500) == {"waiting": "warn"}  # back up: waits for_seconds again
    assert callers(1, T0 + 6000) == {}
    assert len(incidents) == 2


def test_levels_come_from_the_board_then_the_team_then_the_config() -> None:
    settings = defaults().with_values(teams=[{**SALES, "waiting_warn": 1.0}])
    watch = Watch(settings)
    assert watch.levels_for("team:Sales", "waiting") == (1.0, 10.0)
    assert watch.levels_for("hotline:1", "waiting") == (5.0, 10.0)
    watch.overrides[("", "waiting")] = (7.0, 8.0)
    assert watch.levels_for("hotline:1", "waiting") == (7.0, 8.0)
    watch.overrides[("team:Sales", "waiting")] = (2.0, 3.0)
    assert watch.levels_for("team:Sales", "waiting") == (2.0, 3.0)
    assert watch.levels_for("", "service_level") == (80.0, 60.0)


def test_fields_of_positional_records_are_unchanged() -> None:
    assert "wrapup" not in WIRE_FIELDS["agents"]  # wrap-up travels apart: data-state keeps its four values


def test_teams_come_from_the_config_a_tenants_own_and_a_mistake_is_named(tmp_path: Any) -> None:
    import pytest

    from wallboard.settings import ConfigError, load_settings

    path = tmp_path / "c.toml"
    path.write_text('[[teams]]\nname = "Sales"\nextensions = ["1001"]\nwaiting_alarm = 3\n\n'
                    '[[tenants]]\nid = "acme"\n[[tenants.teams]]\nname = "Front"\nextensions = ["201", "202"]\n')
    settings = load_settings(path, env={})
    assert [(t.name, t.extensions, t.thresholds) for t in settings.teams] == [("Sales", ("1001",),
                                                                              (("waiting_alarm", 3.0),))]
    acme = settings.for_tenant(settings.tenants[0])
    assert [(t.name, t.extensions) for t in acme.teams] == [("Front", ("201", "202"))]
    for text, words in (('[[teams]]\nname = "<b>"\nextensions = []\n', "[[teams]] name must be"),
                        ('[[teams]]\nname = "A"\nextensions = [1]\n', "[[teams]] A: extensions must be"),
                        ('[[teams]]\nname = "A"\nwait = 1\n', "unknown config key [[teams]] A: wait"),
                        ('[teams]\nname = "A"\n', "must be an array of tables")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(words)):
            load_settings(path, env={})


async def test_a_view_screen_gets_a_snapshot_at_most_once_a_second_for_patches_not_narrowed() -> None:
    import asyncio

    from wallboard.bus import Published
    from wallboard.hub import RESYNC, Hub, Screen

    hub = Hub(lambda *args: (0, b"{}"))
    screen = Screen(None, "kiosk", Audience.MASKED, None, asyncio.Queue(8), view=View("team", "Sales"))  # type: ignore[arg-type]
    hub.screens.add(screen)
    for seq in (1, 2, 3):
        hub.publish(Published("e", seq, dict.fromkeys(Audience, b"{}")))  # as from another process: no narrow
    assert screen.queue.empty() and screen.view_due is not None
    hub.sweep()
    assert screen.queue.empty()  # not yet a second
    screen.view_due -= 1.0
    hub.sweep()
    assert screen.queue.get_nowait() is RESYNC and screen.view_due is None


async def test_the_hub_forgets_a_view_once_its_last_screen_is_gone() -> None:
    from typing import cast

    from starlette.websockets import WebSocket

    from wallboard.hub import Hub
    from wallboard.server import LINE_KEY, AsgiLine

    hub = Hub(lambda *args: (0, b"{}"))
    ws = cast(WebSocket, type("FakeWs", (), {"scope": {"type": "websocket", LINE_KEY: AsgiLine()}})())
    view = View("team", "anything a client asks for")
    async with hub.subscribe(ws, kind="kiosk", audience=Audience.MASKED, session_id=None, view=view):
        hub._after[(Audience.MASKED, view)] = 7
        async with hub.subscribe(ws, kind="kiosk", audience=Audience.MASKED, session_id=None, view=view):
            pass
        assert (Audience.MASKED, view) in hub._after  # another screen of the view is still there
    assert hub._after == {}
