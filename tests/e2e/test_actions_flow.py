"""A supervisor's day, for real: log in with the PBX account, click listen on a live
call, the simulator's supervisor extension rings and joins, the toast says so, the
agent's tile shows who listens, and the audit log has the row. And the PBX's errors
in plain words, in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_live_board import move, script_call
from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("actions")
    with sim_server(tmp, "--agents", "4", "--seed", "11", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="pbx") as wb:
        for ext in ("1001", "1002", "1003", "999"):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/login").status_code == 200
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


def login(page: Any, wb: Server, ext: str, lang: str = "vi") -> None:
    page.goto(f"{wb.url}/login?lang={lang}")
    page.fill('input[name="username"]', "supervisor@sim")
    page.fill('input[name="password"]', "supervisor")
    page.fill('input[name="ext"]', ext)
    page.click('button[type="submit"]')
    page.wait_for_selector('[data-agent="1001"]')


def live_call(sim: Server, ext: str) -> str:
    legs = script_call(sim, exts=[ext])["legs"]
    call_id: str = legs[0]["call_id"]
    move(sim, call_id, "answer")
    return call_id


def truth_agent(sim: Server, ext: str) -> dict[str, Any]:
    return next(a for a in httpx.get(sim.url + "/_sim/truth").json()["agents"] if a["ext"] == ext)


def test_listen_rings_the_supervisor_shows_a_toast_and_is_audited(servers: tuple[Server, Server],
                                                                  page: Any) -> None:
    sim, wb = servers
    login(page, wb, "999")
    call_id = live_call(sim, "1001")
    button = page.locator(f'[data-call="{call_id}"] [data-action="listen"]')
    button.wait_for()
    assert button.is_enabled()
    button.click()
    toast = page.locator("[data-toast]")
    page.locator("[data-toast]", has_text="999").wait_for()
    assert "999" in toast.text_content()
    wait_until(lambda: truth_agent(sim, "999")["state"] in ("ringing", "oncall"), 10,
               what="the supervisor's phone to ring")
    page.locator('[data-agent="1001"]', has_text="supervisor").wait_for()
    # The supervisor's own leg is on the board too (the PBX lists it), said to be theirs,
    # with no listen/whisper/barge/transfer on it; the agent's call keeps its buttons.
    own = page.locator('[data-call][data-monitor-leg="listen"]')
    own.wait_for()
    assert own.get_attribute("data-call") != call_id
    assert "Đang nghe" in own.text_content() and "1001" in own.text_content()
    assert own.locator("[data-action]:enabled").count() == 0
    assert not own.locator('[data-action="listen"]').is_visible()
    assert button.is_visible() and button.is_enabled()
    rows = page.evaluate("fetch('/api/audit').then(r => r.json())")["rows"]
    row = next(r for r in rows if r["call_id"] == call_id)
    assert row["action"] == "listen" and row["target_ext"] == "999" and row["result"] == "ok"
    assert row["username"].startswith("supervisor")
    move(sim, call_id, "hangup")


@pytest.mark.parametrize(("lang", "words"), [("vi", "chưa đăng nhập"), ("en", "not logged in")])
def test_pbx_error_is_said_in_plain_words_in_the_screen_language(servers: tuple[Server, Server],
                                                                 page: Any, lang: str, words: str) -> None:
    sim, wb = servers
    assert httpx.post(f"{sim.url}/_sim/agents/1003/logout").status_code == 200
    login(page, wb, "1003", lang)
    page.goto(f"{wb.url}/?lang={lang}")
    call_id = live_call(sim, "1002")
    page.locator(f'[data-call="{call_id}"] [data-action="whisper"]').click()
    page.locator("[data-toast]", has_text="1003").wait_for()
    text = page.locator("[data-toast]").text_content()
    assert words in text.lower(), text
    assert page.locator("html").get_attribute("lang") == lang
    move(sim, call_id, "hangup")
    assert httpx.post(f"{sim.url}/_sim/agents/1003/login").status_code == 200


def test_viewer_sees_masked_numbers_and_no_action_buttons(servers: tuple[Server, Server], page: Any) -> None:
    sim, wb = servers
    page.goto(f"{wb.url}/login")
    page.fill('input[name="username"]', "viewer@sim")
    page.fill('input[name="password"]', "viewer")
    page.click('button[type="submit"]')
    call_id = live_call(sim, "1002")
    row = page.locator(f'[data-call="{call_id}"]')
    row.wait_for()
    assert row.locator("[data-action]").count() == 0
    assert "0899123456" not in row.text_content() and "***" in row.text_content()
    move(sim, call_id, "hangup")
