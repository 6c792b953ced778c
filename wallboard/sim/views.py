"""What the world looks like from outside: /v1/monitor/agent rows, /v1/call rows, /_sim/truth."""

from __future__ import annotations

from typing import Any

from wallboard.sim.world import Agent, Leg, World

SERVER_HOST = "10.0.0.1"
_CALL_STATES = {"ringing": "RINGING", "oncall": "ONCALL"}


def monitor_rows(world: World) -> list[dict[str, Any]]:
    """Logged-in extensions only, with the reference's fields."""
    return [_monitor_row(world, a) for a in world.agents.values() if a.logged_in]


def _monitor_row(world: World, agent: Agent) -> dict[str, Any]:
    person, leg = agent.person, agent.leg
    row: dict[str, Any] = {
        "agent_name": person.name,
        "call_id": leg.call_id if leg else "",
        "call_state": _CALL_STATES.get(agent.state, ""),
        "call_time": leg.created_local if leg else "",
        "destination": leg.peer if leg else "",
        "direction": leg.direction if leg else "",
        "domain_id": world.domain_id,
        "domain_name": world.domain,
        "extension": person.ext,
        "extension_id": person.extension_id,
        "network_ip": person.ip,
        "server_host": SERVER_HOST,
        "user_agent": person.user_agent,
        "user_id": person.user_id,
        "username": person.username,
    }
    if leg is None:
        # The real PBX says "idle" three ways: "", null, or no key at all.
        quirk = int(person.ext) % 3
        if quirk == 1:
            row["call_state"] = None
        elif quirk == 2:
            del row["call_state"]
    return row


def call_rows(world: World) -> list[dict[str, Any]]:
    return [
        {
            "call_id": leg.call_id,
            "context": world.domain,
            "created_time": leg.created_local,
            "destination": leg.to_number,
            "direction": leg.direction,
            "ip": world.agents[leg.ext].person.ip,
            "source": leg.from_number,
            "state": "CS_ROUTING" if leg.answered_at is None else "CS_EXCHANGE_MEDIA",
        }
        for leg in world.legs.values()
    ]


def _ms(ts: float | None) -> int | None:
    return None if ts is None else round(ts * 1000)


def _truth_call(leg: Leg) -> dict[str, Any]:
    return {
        "call_id": leg.call_id,
        "flow_id": leg.flow.flow_id,
        "direction": leg.direction,
        "from": leg.from_number,
        "to": leg.to_number,
        "agent": leg.ext,
        "state": leg.state,
        "hotline": leg.hotline,
        "started_at": _ms(leg.started_at),
        "answered_at": _ms(leg.answered_at),
    }


def truth(world: World) -> dict[str, Any]:
    counts = world.cdrs.counts(world.local.midnight(world.now), world.now)
    return {
        "now": _ms(world.now),
        "domain": world.domain,
        "agents": [
            {
                "ext": a.person.ext,
                "name": a.person.name,
                "state": a.state,
                "call_id": a.leg.call_id if a.leg else None,
                "since": _ms(a.since),
            }
            for a in world.agents.values()
        ],
        "calls": [_truth_call(leg) for leg in world.legs.values()],
        "counts": counts,
        "total": sum(counts.values()),
    }
