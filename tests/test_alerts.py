"""Alerts off the wall (alerts.py): one message per incident start and end to each channel,
delivered in the background with retries, signed as Standard Webhooks sign. The channels
are local receivers: real HTTP servers on loopback standing in for a webhook, Slack and
Telegram."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers import serving, until
from wallboard.alerts import Outbox, sign, signing_key
from wallboard.settings import defaults
from wallboard.watch import Incident

SECRET = "whsec_" + base64.b64encode(b"a-key-of-thirty-two-bytes-long!!").decode()


@dataclass
class Receiver:
    """Every request the channels got: path, headers and JSON body; `fail` answers 500
    to the first that many."""

    got: list[tuple[str, dict[str, str], dict[str, Any], bytes]] = field(default_factory=list)
    fail: int = 0

    def app(self) -> Starlette:
        async def take(request: Request) -> JSONResponse:
            raw = await request.body()
            if self.fail > 0:
                self.fail -= 1
                return JSONResponse({"ok": False}, status_code=500)
            self.got.append((request.url.path, dict(request.headers), orjson.loads(raw), raw))
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/{path:path}", take, methods=["POST"])])

    def paths(self, prefix: str) -> list[tuple[str, dict[str, str], dict[str, Any], bytes]]:
        return [g for g in self.got if g[0].startswith(prefix)]


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    async with serving(r.app()) as url:
        yield r, url


def incident(started: bool, at: int, scope: str = "", figure: str = "waiting") -> Incident:
    return Incident(scope, figure, "alarm" if started else "ok", 11.0 if started else 2.0, 10.0, started, at,
                    1_764_288_000_000)


def verify(secret: str, headers: dict[str, str], raw: bytes) -> bool:
    """The receiver's side of Standard Webhooks, written out from its spec."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + raw
    expected = base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    fresh = abs(time.time() - int(headers["webhook-timestamp"])) < 300
    return fresh and any(hmac.compare_digest(expected, g) for g in given)


async def test_each_channel_gets_one_message_per_incident_start_and_end_signed() -> None:
    async with receiver() as (r, url), httpx.AsyncClient() as http:
        settings = defaults().with_values(alerts={
            "webhook_url": url + "/hook", "webhook_secret": SECRET, "slack_url": url + "/slack/T0/B0/xyz",
            "telegram_token": "123:abc", "telegram_chat": "-100", "telegram_base_url": url + "/tg",
        }).alerts
        outbox = Outbox(settings, http, tenant="default", lang="en", board_url="http://wb/")
        outbox.start()
        try:
            outbox.notify(incident(True, 1))
            outbox.notify(incident(False, 2))
            await until(lambda: all(c["sent"] == 2 for c in outbox.status().values()), 10,
                        "two messages on each of three channels")
        finally:
            await outbox.stop()
        hooks, slack, telegram = r.paths("/hook"), r.paths("/slack/"), r.paths("/tg/bot123:abc/sendMessage")
        assert [h[2]["type"] for h in hooks] == ["incident.started", "incident.ended"]
        assert all(verify(SECRET, h[1], h[3]) for h in hooks)
        assert not verify("whsec_" + base64.b64encode(b"another-key").decode(), hooks[0][1], hooks[0][3])
        assert hooks[0][2]["data"]["figure"] == "waiting" and hooks[0][2]["data"]["level"] == "alarm"
        assert len({h[1]["webhook-id"] for h in hooks}) == 2
        assert [s[2]["text"][:6] for s in slack] == ["Alarm:", "Back t"]
        assert [m[2]["chat_id"] for m in telegram] == ["-100", "-100"] and "whole floor" in telegram[0][2]["text"]
        assert outbox.status()["webhook"] == {"sent": 2, "failed": 0, "retried": 0, "dropped": 0, "queued": 0,
                                              "last_at": outbox.status()["webhook"]["last_at"], "last_error": None}


async def test_a_failing_channel_is_retried_with_the_same_id_and_never_holds_up_another() -> None:
    slept: list[float] = []

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    async with receiver() as (r, url), receiver() as (slack, slack_url), httpx.AsyncClient() as http:
        r.fail = 2
        settings = defaults().with_values(alerts={"webhook_url": url + "/hook", "webhook_secret": "plain-secret",
                                                  "slack_url": slack_url + "/s", "retries": 3}).alerts
        outbox = Outbox(settings, http, tenant="t1", lang="vi", board_url="http://wb/t/t1/", sleep=no_wait)
        outbox.start()
        try:
            outbox.notify(incident(True, 1, scope="team:Sales"))
            await until(lambda: all(c["sent"] == 1 for c in outbox.status().values()), 10, "both channels")
        finally:
            await outbox.stop()
        assert len(r.got) == 1 and verify("plain-secret", r.got[0][1], r.got[0][3])
        assert slept == [1.0, 2.0]  # backoff doubles
        tally = outbox.status()["webhook"]
        assert (tally["sent"], tally["retried"], tally["failed"]) == (1, 2, 0)
        assert "nhóm Sales" in slack.got[0][2]["text"]


async def test_an_answer_that_is_not_worth_a_retry_is_given_up_and_counted() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(404))) as http:
        settings = defaults().with_values(alerts={"slack_url": "http://slack.invalid/x"}).alerts
        outbox = Outbox(settings, http, tenant="default", lang="en", board_url="http://wb/")
        outbox.start()
        try:
            outbox.notify(incident(True, 1))
            await until(lambda: outbox.status()["slack"]["failed"] == 1, 5, "given up")
        finally:
            await outbox.stop()
        assert outbox.status()["slack"]["last_error"] == "HTTP 404"


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The example in the Standard Webhooks spec (standard-webhooks/standard-webhooks, spec/standard-webhooks.md).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
