"""Alerts off the wall: one message when an incident starts and one when it ends (watch.py
decides when), to each channel in [alerts]:

- a generic webhook: JSON, signed as Standard Webhooks sign (standardwebhooks.com):
  headers `webhook-id` (the same on every retry of a message), `webhook-timestamp` (unix
  seconds) and `webhook-signature` = "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
  the key being the base64 after "whsec_" in alerts.webhook_secret, or the secret's own bytes;
- a Slack incoming webhook: {"text": ...};
- a Telegram bot: POST {telegram_base_url}/bot{token}/sendMessage {"chat_id", "text"}.

Each channel has its own queue and task: a slow or dead channel delays nobody, the board
least of all (`notify` only queues). Attempts are rate-limited per channel (per_minute),
retried on a network error, a 5xx or a 429 with backoff doubling from 1 s (at most
`retries` times), and given up on any other answer. Every outcome is counted: /metrics
(alert_metrics.py) and the supervisors' board (`alerts`, a top-level value only they get).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from wallboard.i18n import t
from wallboard.ratelimit import TokenBucket
from wallboard.settings import AlertSettings
from wallboard.watch import Incident

log = logging.getLogger("wallboard.alerts")

QUEUE_MAX = 100  # messages waiting per channel; past that the oldest is dropped (and counted)
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class Message:
    id: str  # "msg_<random>": the same on every retry, so a receiver can drop a repeat
    event: dict[str, Any]  # the generic webhook's JSON
    text: str  # Slack's and Telegram's


def signing_key(secret: str) -> bytes:
    """Standard Webhooks' key: the base64 after "whsec_"; any other secret as its bytes."""
    if secret.startswith("whsec_"):
        with contextlib.suppress(binascii.Error, ValueError):
            return base64.b64decode(secret[6:], validate=True)
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


def message(incident: Incident, *, tenant: str, lang: str, board_url: str) -> Message:
    figure = t(lang, f"threshold.figure.{incident.figure}")
    where = _scope_words(incident.scope, lang)
    value = "–" if incident.value is None else f"{incident.value:g}"
    key = "alert.started" if incident.started else "alert.ended"
    text = t(lang, key, figure=figure, where=where, level=t(lang, f"level.{incident.level}"), value=value,
             limit=f"{incident.limit:g}", url=board_url)
    event = {
        "type": "incident.started" if incident.started else "incident.ended",
        "timestamp": incident.at,
        "data": {"tenant": tenant, "scope": incident.scope or "floor", "figure": incident.figure,
                 "level": incident.level, "value": incident.value, "limit": incident.limit,
                 "since": incident.since, "text": text, "board": board_url},
    }
    return Message("msg_" + secrets.token_hex(12), event, text)


def _scope_words(scope: str, lang: str) -> str:
    if scope.startswith("team:"):
        return t(lang, "alert.where.team", name=scope[5:])
    if scope.startswith("hotline:"):
        return t(lang, "alert.where.hotline", number=scope[8:])
    return t(lang, "alert.where.floor")


@dataclass
class Tally:
    sent: int = 0
    failed: int = 0  # messages given up
    retried: int = 0  # attempts that failed and were tried again
    dropped: int = 0  # messages dropped from a full queue
    last_at: int | None = None
    last_error: str | None = None

    def to_json(self, queued: int) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "retried": self.retried, "dropped": self.dropped,
                "queued": queued, "last_at": self.last_at, "last_error": self.last_error}


@dataclass
class Channel:
    name: str  # "webhook", "slack", "telegram"
    url: str
    build: Callable[[Message], tuple[bytes, dict[str, str]]]
    queue: deque[Message] = field(default_factory=lambda: deque(maxlen=QUEUE_MAX))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    tally: Tally = field(default_factory=Tally)


def channels(settings: AlertSettings) -> list[Channel]:
    out: list[Channel] = []
    if settings.webhook_url:
        secret = settings.webhook_secret

        def webhook(m: Message) -> tuple[bytes, dict[str, str]]:
            body = orjson.dumps(m.event)
            stamp = int(time.time())
            headers = {"content-type": "application/json", "webhook-id": m.id, "webhook-timestamp": str(stamp)}
            if secret:
                headers["webhook-signature"] = sign(secret, m.id, stamp, body)
            return body, headers

        out.append(Channel("webhook", settings.webhook_url, webhook))
    if settings.slack_url:
        out.append(Channel("slack", settings.slack_url,
                           lambda m: (orjson.dumps({"text": m.text}), {"content-type": "application/json"})))
    if settings.telegram_token and settings.telegram_chat:
        chat = settings.telegram_chat
        url = f"{settings.telegram_base_url.rstrip('/')}/bot{settings.telegram_token}/sendMessage"
        out.append(Channel("telegram", url, lambda m: (
            orjson.dumps({"chat_id": chat, "text": m.text, "disable_web_page_preview": True}),
            {"content-type": "application/json"})))
    return out


class Outbox:
    """The channels of one tenant, each delivered by its own task."""

    def __init__(self, settings: AlertSettings, http: httpx.AsyncClient, *, tenant: str, lang: str,
                 board_url: str, on_change: Callable[[], None] = lambda: None,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.settings = settings
        self.http = http
        self.tenant = tenant
        self.lang = lang
        self.board_url = board_url
        self.channels = channels(settings)
        self.on_change = on_change
        self._sleep = sleep
        self._tasks: list[asyncio.Task[None]] = []

    def notify(self, incident: Incident) -> None:
        """Queue the incident's message on every channel; never waits."""
        if not self.channels:
            return
        m = message(incident, tenant=self.tenant, lang=self.lang, board_url=self.board_url)
        for channel in self.channels:
            if len(channel.queue) == channel.queue.maxlen:
                channel.tally.dropped += 1
            channel.queue.append(m)
            channel.ready.set()
        self.on_change()

    def status(self) -> dict[str, Any]:
        return {c.name: c.tally.to_json(len(c.queue)) for c in self.channels}

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._deliver(c), name=f"alerts:{self.tenant}:{c.name}")
                       for c in self.channels]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _deliver(self, channel: Channel) -> None:
        per_minute = max(1, self.settings.per_minute)
        bucket = TokenBucket(per_minute / 60.0, per_minute)
        while True:
            await channel.ready.wait()
            if not channel.queue:
                channel.ready.clear()
                continue
            m = channel.queue[0]
            delay = BACKOFF_FIRST_S
            for attempt in range(self.settings.retries + 1):
                while not bucket.take():
                    await self._sleep(60.0 / per_minute)
                outcome = await self._attempt(channel, m)
                if outcome is None:
                    channel.tally.sent += 1
                    channel.tally.last_error = None
                    break
                channel.tally.last_error = outcome[1]
                if not outcome[0] or attempt == self.settings.retries:
                    channel.tally.failed += 1
                    log.warning("alert to %s given up: %s", channel.name, outcome[1])
                    break
                channel.tally.retried += 1
                self.on_change()
                await self._sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
            channel.tally.last_at = int(time.time() * 1000)
            if channel.queue and channel.queue[0] is m:
                channel.queue.popleft()
            self.on_change()

    async def _attempt(self, channel: Channel, m: Message) -> tuple[bool, str] | None:
        """None when delivered; else (worth a retry, what went wrong). A channel's URL holds
        its secret (Slack's path, Telegram's token): never logged, never shown."""
        body, headers = channel.build(m)
        try:
            answer = await self.http.post(channel.url, content=body, headers=headers,
                                          timeout=self.settings.timeout)
        except httpx.HTTPError as e:
            return True, type(e).__name__
        if 200 <= answer.status_code < 300:
            return None
        return answer.status_code >= 500 or answer.status_code == 429, f"HTTP {answer.status_code}"
