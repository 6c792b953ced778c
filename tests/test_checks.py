from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, free_port, sim_server
from wallboard.checks import reach_problem, run_checks
from wallboard.settings import Settings, defaults


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with sim_server(tmp_path_factory.mktemp("checks"), "--agents", "3", "--seed", "2", "--rate", "0") as s:
        yield s


def settings_for(tmp: Path, pbx_url: str, **pbx: str) -> Settings:
    return defaults().with_values(
        pbx={"base_url": pbx_url, "api_key": "sim-api-key", "timeout": 2.0, **pbx},
        server={"public_url": f"http://127.0.0.1:{free_port()}"},
        storage={"path": str(tmp / "wb.db")})


async def check(settings: Settings) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = await run_checks(settings, lines.append)
    return ok, lines


async def test_a_healthy_sim_passes_with_warnings_for_what_serve_fixes(sim: Server, tmp_path: Path) -> None:
    ok, lines = await check(settings_for(tmp_path, sim.url))
    assert ok
    assert [line.split(":")[0] for line in lines] == [
        "OK   config", "OK   PBX", "OK   agents", "OK   today's calls", "WARN webhooks", "WARN public_url"]
    assert lines[2] == "OK   agents: 4 extensions logged in"
    assert "missing answered, cdr, hangup, ringing" in lines[4]
    assert "nothing answers at" in lines[5]


async def test_a_wrong_api_key_fails_in_plain_words(sim: Server, tmp_path: Path) -> None:
    ok, lines = await check(settings_for(tmp_path, sim.url, api_key="not-the-key"))
    assert not ok
    assert lines[-1].startswith(f"FAIL PBX token: {sim.url} refused the API key")
    assert "not-the-key" not in "\n".join(lines)


async def test_an_unreachable_pbx_fails_in_plain_words(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ok, lines = await check(settings_for(tmp_path, url))
    assert not ok
    assert lines[-1].startswith(f"FAIL PBX: cannot reach {url}")


async def test_an_empty_api_key_says_where_to_set_it(tmp_path: Path) -> None:
    ok, lines = await check(settings_for(tmp_path, "http://127.0.0.1:9", api_key=""))
    assert not ok
    assert "WALLBOARD_PBX_API_KEY" in lines[-1]


@pytest.mark.parametrize(("public", "pbx", "problem"), [
    ("http://127.0.0.1:8000", "https://pbx.example.com", "is a loopback address"),
    ("http://localhost:8000", "http://10.0.0.5:8100", "is a loopback address"),
    ("http://192.168.1.20:8000", "https://pbx.example.com", "is a private address"),
    ("http://192.168.1.20:8000", "http://192.168.1.9:8100", None),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8100", None),
    ("https://board.example.com", "https://pbx.example.com", None),
])
def test_reach_problem(public: str, pbx: str, problem: str | None) -> None:
    found = reach_problem(public, pbx)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))
