from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import webhook_body
from tests.servers import sim_server, wait_until, wallboard_server
from wallboard.logs import setup_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def emit(stream: io.StringIO, fmt: str, secrets: list[str], message: str, *args: object,
         exc: BaseException | None = None) -> list[str]:
    setup_logging(fmt, secrets)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("wallboard.test")
    if exc is None:
        log.warning(message, *args)
    else:
        try:
            raise exc
        except type(exc):
            log.exception(message, *args)
    return stream.getvalue().splitlines()


def test_plain_is_one_line_with_time_level_and_logger(captured: io.StringIO) -> None:
    lines = emit(captured, "plain", [], "poll %s failed: %s", "agents", "boom")
    assert len(lines) == 1
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING wallboard\.test: poll agents failed: boom", lines[0])


def test_a_traceback_and_line_breaks_stay_on_one_line(captured: io.StringIO) -> None:
    lines = emit(captured, "plain", [], "PBX said %s", "two\nlines", exc=ValueError("bad\nvalue"))
    assert len(lines) == 1
    assert "PBX said two | lines" in lines[0]
    assert "Traceback" not in lines[0] and "value" in lines[0]


def test_json_lines_parse_and_carry_the_error(captured: io.StringIO) -> None:
    lines = emit(captured, "json", [], "webhook %s refused", "ringing", exc=KeyError("state"))
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["logger"] == "wallboard.test"
    assert entry["msg"] == "webhook ringing refused"
    assert entry["error"] == "KeyError: 'state'"


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_secrets_are_blanked_in_message_arguments_and_errors(captured: io.StringIO, fmt: str) -> None:
    secret = "s3cr3t-api-key"
    lines = emit(captured, fmt, [secret, "abc"], "key %s used", secret, exc=RuntimeError(f"bad {secret}"))
    assert secret not in captured.getvalue()
    assert "***" in lines[0]


def test_short_values_are_not_treated_as_secrets(captured: io.StringIO) -> None:
    # a 3-character "secret" would blank every word that contains it
    lines = emit(captured, "plain", ["abc"], "abcdef")
    assert lines[0].endswith("abcdef")


# ---- a whole session, grepped for secrets ---------------------------------------

API_KEY = "sim-api-key"
PASSWORD = "Pa55-w0rd-Xq7z"  # an account of our own: "supervisor" is a word the pages use
KIOSK = "kiosk-token-7d1f0a93c2"
HOOK_SECRET = "hook-secret-5b2e8c41aa"
SESSION_SECRET = "session-secret-91c3fe0d77"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_a_full_session_never_shows_a_secret(tmp_path: Path, fmt: str) -> None:
    with sim_server(tmp_path, "--agents", "4", "--seed", "4", "--rate", "0",
                    "--account", f"boss@sim:{PASSWORD}:admin") as sim, \
            wallboard_server(tmp_path, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK,
                             webhook_secret=HOOK_SECRET, server_session_secret=SESSION_SECRET,
                             server_log_format=fmt) as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        seen: list[str] = []
        with httpx.Client(base_url=wb.url, follow_redirects=True) as browser:
            login = browser.get("/login")
            form = {"username": "boss@sim", "password": "wrong-password-x",
                    "csrf_token": csrf_of(login.text)}
            seen.append(browser.post("/login", data=form).text)
            form["password"] = PASSWORD
            board = browser.post("/login", data=form)
            assert board.status_code == 200 and "data-conn" in board.text
            seen.append(board.text)
            token = csrf_of(board.text)
            legs = httpx.post(sim.url + "/_sim/calls", json={
                "direction": "inbound", "exts": ["1001"], "answer_by": "1001"}).json()["legs"]
            call_id = legs[0]["call_id"]
            wait_until(lambda: any(c["call_id"] == call_id
                                   for c in browser.get("/api/state").json()["calls"]), 10,
                       what="the call on the board")
            for action in ("listen", "whisper"):
                answer = browser.post(f"/api/calls/{call_id}/{action}", json={"ext": "999"},
                                      headers={"x-csrf-token": token, "origin": wb.url})
                seen.append(answer.text)
            seen.append(browser.post(f"/api/calls/{call_id}/barge", json={}).text)  # no CSRF
            seen.append(browser.get("/api/state").text)
            seen.append(browser.get("/api/audit").text)
            seen.append(browser.get("/metrics").text)
            seen.append(browser.post("/logout", headers={"x-csrf-token": token, "origin": wb.url}).text)
        # the kiosk page carries its own token to open /ws: the TV already holds it
        kiosk_page = httpx.get(f"{wb.url}/kiosk?token={KIOSK}").text
        seen.append(kiosk_page.replace(f"?token={KIOSK}", "?token=K"))
        seen.append(httpx.get(f"{wb.url}/api/state?token={KIOSK}").text)
        seen.append(httpx.get(f"{wb.url}/api/state?token=wrong-{KIOSK}").text)
        hooks = f"{wb.url}/hooks/pbx/{HOOK_SECRET}"
        seen.append(httpx.post(hooks, json=webhook_body("ringing", "c-secret-1")).text)
        seen.append(httpx.post(hooks, content=b"{not json").text)
        seen.append(httpx.post(f"{wb.url}/hooks/pbx/wrong", json=webhook_body()).text)
        seen.append(httpx.get(wb.url + "/no/such/page").text)
        seen.append(httpx.get(wb.url + "/readyz").text)
        httpx.post(sim.url + "/_sim/tokens/expire")
        wait_until(lambda: "PBX token obtained" in wb.log().split("webhooks registered")[-1], 10,
                   what="a token refresh")
        log = wb.log()
    assert log.count("\n") > 10
    if fmt == "json":
        assert all(json.loads(line) for line in log.splitlines() if line.startswith("{"))
    everything = "\n".join([log, *seen])
    for secret in (API_KEY, PASSWORD, KIOSK, HOOK_SECRET, SESSION_SECRET):
        assert secret not in everything, f"{secret!r} leaked"
    assert "Bearer " not in everything
