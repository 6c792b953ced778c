"""Async client of the PBX's HTTP API (see pbx-api-reference.md and SPEC §9).

One `httpx.AsyncClient` is injected so the app owns its lifetime and tests can
hand in a MockTransport. Every failure comes out as a PbxError whose `code` is
the PBX's (USER_BUSY, UNAUTHORIZED, ...) or ours (TIMEOUT, UNREACHABLE,
BAD_RESPONSE, HTTP_<status>, BAD_DATE_RANGE, NO_SECRET_TOKEN).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
import orjson

from wallboard.pbx.errors import PbxError, error_code
from wallboard.pbx.models import (
    Account,
    ActionResult,
    AgentRecord,
    CallIdRecord,
    CallRecord,
    Cdr,
    CdrPage,
    CdrScroll,
    Click2CallResult,
    EventHook,
    Extension,
    OnSkip,
    StatusReport,
    Tenant,
    Token,
    parse_account,
    parse_action,
    parse_agents,
    parse_call_ids,
    parse_calls,
    parse_cdr,
    parse_cdr_page,
    parse_cdr_scroll,
    parse_click2call,
    parse_events,
    parse_extension,
    parse_flag,
    parse_status,
    parse_tenant,
    parse_token,
)
from wallboard.pbx.times import check_report_range

log = logging.getLogger(__name__)
_Row = TypeVar("_Row")

Action = Literal["listen", "whisper", "barge", "transfer"]
ACTIONS: frozenset[str] = frozenset(("listen", "whisper", "barge", "transfer"))
Auth = Literal["bearer", "secret", "none"]

# Refresh this long before `expired`: 60 s, or a tenth of a short lifetime, so
# that a token living a few seconds (the simulator's fault mode) is still used.
REFRESH_MARGIN_MAX = 60.0
REFRESH_MARGIN_SHARE = 0.1
# The synchronous click-to-call answers only once the extension picks up.
CLICK2CALL_WAIT_TIMEOUT = 60.0

_PLAIN_WORDS = {
    "UNAUTHORIZED": "The PBX refused our token or key.",
    "INVALID_CREDENTIALS": "The PBX refused that username or password.",
    "USER_NOT_REGISTERED": "The extension is not logged in to a softphone or IP phone.",
    "USER_BUSY": "The extension is busy.",
    "CALL_NOT_FOUND": "The call no longer exists.",
    "INVALID_EVENT": "The PBX does not know that event.",
}


BIG_BODY = 64 * 1024  # bytes of JSON worth decoding in a thread (~0.5 ms of work)
# Rows worth checking in a thread: fewer take less than the hop to a thread costs (a few
# tens of microseconds of CPU and a GIL hand-over), which with hundreds of tenants polled
# every 2 s was a good part of a core.
THREAD_ROWS = 200
# Requests on one HTTP client at once, whatever the number of tenants sharing it: the size
# of the app's pool (app.py). The others wait their turn here, in order, instead of in
# httpcore's pool, whose queue costs each request a pass over every request queued: with
# hundreds of tenants starting at once that was most of a core, and the waits then timed
# out, were retried and queued again.
IN_FLIGHT = 20
_GATES: weakref.WeakKeyDictionary[httpx.AsyncClient, asyncio.Semaphore] = weakref.WeakKeyDictionary()

class PbxClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient,
        timeout: float = 5.0,
        secret_token: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._api_key = api_key
        self._http = http
        self._gate = _GATES.setdefault(http, asyncio.Semaphore(IN_FLIGHT))
        self._sent: set[asyncio.Future[httpx.Response]] = set()  # requests on their way, held until they end
        self._secret_token = secret_token
        self._clock = clock
        # Requests sent, per route template ("/v1/call/{call_id}/listen"), for metrics.
        self.requests: dict[str, int] = {}
        # Malformed rows skipped inside otherwise good lists, per route.
        self.skipped_rows: dict[str, int] = {}
        # Tokens obtained, the first one included.
        self.token_fetches = 0
        self._token: Token | None = None
        self._refresh_at = 0.0
        # Bumped after every token fetch, good or bad. A caller remembers the
        # generation its token came from; if it has moved on by the time the
        # caller holds the lock, someone else already refreshed for it.
        self._generation = 0
        self._refresh_error: PbxError | None = None
        self._refresh_lock = asyncio.Lock()

    # -- authentication ---------------------------------------------------------

    def api_key_is(self, api_key: str) -> bool:
        """Whether this client uses `api_key` (constant time; the key itself never leaves)."""
        return hmac.compare_digest(self._api_key.encode(), api_key.encode())

    async def login(self, username: str, password: str) -> Account:
        """Check a person's PBX account (POST /v1/auth); INVALID_CREDENTIALS if refused."""
        body = await self._request("POST", "/v1/auth", auth="none", json={"username": username, "password": password})
        return parse_account(body)

    async def get_token(self) -> Token:
        """A token valid for at least the refresh margin, fetched only when needed."""
        token, _ = await self._current_token()
        return token

    async def _current_token(self) -> tuple[Token, int]:
        generation, token = self._generation, self._token
        if token is not None and self._clock() < self._refresh_at:
            return token, generation
        try:
            await self._refresh(generation, invalid=False)
        except PbxError:
            # A failed early refresh is no reason to drop a token that still works.
            if token is None or self._token is not token or self._clock() >= token.expired:
                raise
            log.warning("PBX token refresh failed; using the current token until it expires")
            # The current generation, so that a 401 on this token fetches anew at once.
            return token, self._generation
        assert self._token is not None
        return self._token, self._generation

    async def _refresh(self, seen_generation: int, *, invalid: bool) -> None:
        async with self._refresh_lock:
            if self._generation != seen_generation:
                if self._refresh_error is not None:
                    error = self._refresh_error
                    raise PbxError(error.code, error.message, status=error.status)
                return
            if invalid:
                self._token = None
            issued_at = self._clock()
            try:
                body = await self._request("POST", "/v1/auth/token", auth="none", json={"api_key": self._api_key})
                token = parse_token(body)
            except PbxError as error:
                self._refresh_error = error
                self._generation += 1
                raise
            lifetime = max(0.0, token.expired - issued_at)
            self._refresh_at = token.expired - min(REFRESH_MARGIN_MAX, lifetime * REFRESH_MARGIN_SHARE)
            self._token, self._refresh_error = token, None
            self._generation += 1
            self.token_fetches += 1
            log.info("PBX token obtained; it expires in %d s", lifetime)

    # -- monitor, calls and reports --------------------------------------------

    # Thousands of rows take tens of milliseconds to check and type; off the event loop
    # that is time the webhooks and screens are not kept waiting (the thread yields the
    # GIL every few ms). A small call center's answer is checked at once.

    async def monitor_agents(self) -> list[AgentRecord]:
        route = "/v1/monitor/agent"
        return await _checked(parse_agents, await self._request("GET", route), self._skipper(route))

    async def list_calls(self) -> list[CallRecord]:
        route = "/v1/call"
        return await _checked(parse_calls, await self._request("GET", route), self._skipper(route))

    async def call_status(self, start: str, end: str) -> StatusReport:
        """Counts per status between two PBX-local times (start < end, at most 24 h)."""
        check_report_range(start, end)
        route = "/v1/report/call_status"
        body = await self._request("GET", route, params={"start_date": start, "end_date": end})
        return parse_status(body, self._skipper(route))

    async def call_ids(self, start: str, end: str) -> list[CallIdRecord]:
        check_report_range(start, end)
        route = "/v1/report/call_id"
        body = await self._request("GET", route, params={"start_date": start, "end_date": end})
        return parse_call_ids(body, self._skipper(route))

    # -- event hooks --------------------------------------------------------------

    async def list_events(self) -> list[EventHook]:
        route = "/v1/event"
        return parse_events(await self._request("GET", route), self._skipper(route))

    async def create_event(self, event: str, callback_url: str, callback_apikey: str) -> bool:
        body = await self._request(
            "POST",
            "/v1/event",
            json={"callback_url": callback_url, "callback_apikey": callback_apikey, "event": event},
        )
        return parse_flag(body, "created")

    async def delete_event(self, event_domain_uuid: str) -> bool:
        path = f"/v1/event/{_segment(event_domain_uuid)}"
        body = await self._request("DELETE", path, route="/v1/event/{id}")
        return parse_flag(body, "deleted")

    # -- CDRs -------------------------------------------------------------------------

    async def cdr_scroll(self, *, scroll_id: str | None = None, **filters: object) -> CdrScroll:
        """One scroll batch: the first without scroll_id, then with the one returned."""
        return await self._scroll(scroll_id, filters)

    async def _scroll(self, scroll_id: str | None, filters: Mapping[str, object]) -> CdrScroll:
        if "page" in filters or "offset" in filters:
            raise ValueError("page and offset select pagination; use cdr_page")
        params = _params(filters)
        if scroll_id:
            params["scroll_id"] = scroll_id
        route = "/v1/cdr"
        return parse_cdr_scroll(await self._request("GET", route, params=params), self._skipper(route))

    async def cdr_page(self, page: int, limit: int, **filters: object) -> CdrPage:
        params = _params(filters)
        params.update(page=str(page), limit=str(limit))
        route = "/v1/cdr"
        return parse_cdr_page(await self._request("GET", route, params=params), self._skipper(route))

    async def iter_cdrs(self, **filters: object) -> AsyncIterator[Cdr]:
        """Every CDR matching the filters, scrolling until the PBX sends an empty batch."""
        if {"page", "limit", "offset"} & filters.keys():
            raise ValueError("iter_cdrs scrolls; use iter_cdr_pages to page")
        batch = await self._scroll(None, filters)
        while batch.records:
            for cdr in batch.records:
                yield cdr
            if batch.scroll_id is None:
                return
            # Later batches are named by scroll_id alone; the filters travel inside it.
            batch = await self._scroll(batch.scroll_id, {})

    async def iter_cdr_pages(self, limit: int = 100, **filters: object) -> AsyncIterator[Cdr]:
        """Every CDR matching the filters, page by page (pagination mode)."""
        page = 1
        while True:
            result = await self.cdr_page(page, limit, **filters)
            for cdr in result.records:
                yield cdr
            if len(result.records) < limit or (result.total and page * limit >= result.total):
                return
            page += 1

    async def get_cdr(self, id_or_sip_call_id: str) -> Cdr:
        path = f"/v1/cdr/{_segment(id_or_sip_call_id.strip())}"
        return parse_cdr(await self._request("GET", path, route="/v1/cdr/{id}"))

    # -- actions on calls -------------------------------------------------------------

    async def click2call(self, ext: str, phone: str, *, wait: bool = False, **options: object) -> Click2CallResult:
        """Ring `ext`, then dial `phone` once it picks up.

        wait=True uses the synchronous endpoint, which answers only when the
        extension picks up or hangs up (so it gets a longer timeout); options are
        the reference's src_cid_name, src_cid_number, dest_cid_name,
        dest_cid_number, auto_answer and hotline.
        """
        params = _params(options)
        params.update(ext=ext, phone=phone)
        route = "/v1/click2call" if wait else "/v1/click2call/async"
        time_limit = max(self.timeout, CLICK2CALL_WAIT_TIMEOUT) if wait else self.timeout
        body = await self._request("GET", route, params=params, time_limit=time_limit)
        return parse_click2call(body)

    async def call_action(self, call_id: str, action: Action, ext: str) -> ActionResult:
        """listen / whisper / barge with `ext` as the supervisor's phone, or transfer to `ext`."""
        if action not in ACTIONS:
            raise ValueError(f"unknown call action {action!r}")
        path = f"/v1/call/{_segment(call_id)}/{action}"
        body = await self._request("POST", path, route=f"/v1/call/{{call_id}}/{action}", json={"ext": ext})
        return parse_action(body)

    # -- tenants (secret token) -----------------------------------------------------

    async def create_tenant(self, tenant_id: str) -> Tenant:
        body = await self._request("POST", "/v1/tenant", auth="secret", json={"tenant_id": tenant_id})
        return parse_tenant(body)

    async def get_tenant(self, tenant_id: str) -> Tenant:
        path = f"/v1/tenant/{_segment(tenant_id)}"
        return parse_tenant(await self._request("GET", path, route="/v1/tenant/{id}", auth="secret"))

    async def update_tenant(self, tenant_id: str, *, enable: bool) -> bool:
        """Enable or disable a tenant; True once the PBX accepted it."""
        path = f"/v1/tenant/{_segment(tenant_id)}"
        body = await self._request("PUT", path, route="/v1/tenant/{id}", auth="secret", json={"enable": enable})
        if not isinstance(body, dict):
            raise PbxError("BAD_RESPONSE", "The PBX sent a tenant update answer that is not an object.")
        return True

    async def create_extension(self, tenant_id: str, ext: str, pwd: str) -> Extension:
        path = f"/v1/tenant/{_segment(tenant_id)}/extension"
        body = await self._request(
            "POST",
            path,
            route="/v1/tenant/{id}/extension",
            auth="secret",
            json={"ext": ext, "pwd": pwd},
        )
        return parse_extension(body)

    async def get_extension(self, tenant_id: str, ext: str) -> Extension:
        # The reference's curl doubles "extension"; its route table names no path at all.
        path = f"/v1/tenant/{_segment(tenant_id)}/extension/extension/{_segment(ext)}"
        body = await self._request("GET", path, route="/v1/tenant/{id}/extension/extension/{ext}", auth="secret")
        return parse_extension(body)

    # -- transport ----------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        route: str | None = None,
        auth: Auth = "bearer",
        params: Mapping[str, str] | None = None,
        json: object = None,
        time_limit: float | None = None,
    ) -> Any:
        """Send one call and return its decoded body; on a 401, refresh once and retry once."""
        route = route or path
        headers: dict[str, str] = {}
        if auth == "secret":
            if not self._secret_token:
                raise PbxError("NO_SECRET_TOKEN", "No secret token is configured for tenant calls.")
            headers["Authorization"] = f"Bearer {self._secret_token}"
        for attempt in (1, 2):
            generation = self._generation
            if auth == "bearer":
                token, generation = await self._current_token()
                headers["Authorization"] = f"Bearer {token.token}"
            response = await self._exchange(method, path, route, headers, params, json, time_limit)
            if response.status_code == 401 and auth == "bearer" and attempt == 1:
                await self._refresh(generation, invalid=True)
                continue
            if len(response.content) > BIG_BODY:
                return await asyncio.to_thread(self._decode, response)
            return self._decode(response)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _exchange(
        self,
        method: str,
        path: str,
        route: str,
        headers: dict[str, str],
        params: Mapping[str, str] | None,
        json: object,
        time_limit: float | None,
    ) -> httpx.Response:
        self.requests[route] = self.requests.get(route, 0) + 1
        seconds = self.timeout if time_limit is None else time_limit
        try:
            # httpx times each read separately, so a PBX dripping bytes could hold a
            # request forever; the outer deadline bounds the whole exchange. The request
            # itself is never cancelled (by that deadline, a poll's, a stop): httpcore 1.0.9
            # leaks a pool slot for each request cancelled while it waits for its connection
            # (encode/httpcore#1093), and once every slot leaked no tenant reached the PBX
            # again until a restart. Left alone, it ends within httpx's own timeouts and
            # gives its turn back then.
            async with asyncio.timeout(seconds):
                await self._gate.acquire()
                sent = asyncio.ensure_future(self._http.request(
                    method,
                    self.base_url + path,
                    headers=headers,
                    params=params,
                    json=json,
                    timeout=httpx.Timeout(seconds),
                ))
                self._sent.add(sent)
                sent.add_done_callback(self._finished)
                return await asyncio.shield(sent)
        except (httpx.TimeoutException, TimeoutError):
            raise PbxError("TIMEOUT", f"The PBX did not answer {route} within {seconds:g} s.") from None
        except httpx.HTTPError as error:
            reason = type(error).__name__
            raise PbxError("UNREACHABLE", f"The PBX could not be reached for {route} ({reason}).") from None

    def _finished(self, sent: asyncio.Future[httpx.Response]) -> None:
        self._sent.discard(sent)
        self._gate.release()
        if not sent.cancelled():
            sent.exception()  # retrieved: a caller that gave up on it is not told

    def _decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if status >= 400:
                raise self._status_error(status, None) from None
            raise PbxError("BAD_RESPONSE", "The PBX sent a body that is not JSON.", status=status) from None
        if status >= 400 or (isinstance(body, dict) and (body.get("status") == "fail" or body.get("error"))):
            raise self._status_error(status, body)
        return body

    def _status_error(self, status: int, body: object) -> PbxError:
        raw_error = body.get("error") if isinstance(body, dict) else None
        raw_message = body.get("message") if isinstance(body, dict) else None
        text = str(raw_error).strip() if raw_error not in (None, "") else ""
        if status >= 500:
            code = f"HTTP_{status}"
        elif text:
            code = error_code(text)
        elif status == 401:
            code = "UNAUTHORIZED"
        elif status >= 400:
            code = f"HTTP_{status}"
        else:
            code = "FAILED"  # {"status": "fail"} with no error at all
        if isinstance(raw_message, str) and raw_message.strip():
            message = raw_message
        elif text and text != code:
            message = text  # the PBX's sentence, e.g. "date range must be in 24 hours"
        else:
            message = _PLAIN_WORDS.get(code) or _plain(code, status)
        return PbxError(code, self._scrub(message), status=status)

    def _scrub(self, text: str) -> str:
        """Keep our secrets out of messages built from what the PBX sent back."""
        token = self._token.token if self._token else ""
        for secret in (self._api_key, self._secret_token, token):
            if len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
        return text

    def _skipper(self, route: str) -> Callable[[PbxError], None]:
        def skip(error: PbxError) -> None:
            self.skipped_rows[route] = self.skipped_rows.get(route, 0) + 1
            log.warning("Skipped a malformed row from %s: %s", route, error.message)

        return skip


def _plain(code: str, status: int) -> str:
    if code == "FAILED":
        return "The PBX reported a failure without saying why."
    if code.startswith("HTTP_"):
        return f"The PBX answered with HTTP status {status} and no explanation."
    return f"The PBX answered: {code.replace('_', ' ').lower()}."


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(values: Mapping[str, object]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        params[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return params


async def _checked(parse: Callable[[object, OnSkip | None], list[_Row]], body: object,
                   on_skip: OnSkip | None) -> list[_Row]:
    """`parse(body)`, in a thread when the answer is big enough to hold the loop up."""
    rows = body.get("data") if isinstance(body, dict) else None
    if isinstance(rows, list) and len(rows) < THREAD_ROWS:
        return parse(body, on_skip)
    return await asyncio.to_thread(parse, body, on_skip)
