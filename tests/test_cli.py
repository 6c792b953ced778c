from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.servers import Server, free_port, sim_server, wait_until, wallboard_server
from wallboard.cli import main


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with sim_server(tmp_path_factory.mktemp("cli"), "--agents", "3", "--seed", "2", "--rate", "0") as s:
        yield s


def run_check(tmp: Path, **env: str) -> tuple[int, str]:
    base = {"WALLBOARD_CONFIG": "", "WALLBOARD_PBX_API_KEY": "sim-api-key",
            "WALLBOARD_STORAGE_PATH": str(tmp / "wb.db"), "WALLBOARD_PBX_TIMEOUT": "2"}
    result = CliRunner().invoke(main, ["check"], env={**base, **env}, catch_exceptions=False)
    return result.exit_code, result.output


def test_check_with_an_unknown_config_key_names_it(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[pbx]\nbase_urll = "http://pbx"\n')
    code, out = run_check(tmp_path, WALLBOARD_CONFIG=str(config))
    assert code == 2
    assert out == f"FAIL config: unknown config key [pbx] base_urll in {config}\n"
    assert "Traceback" not in out


def test_check_against_a_running_wallboard_is_all_ok(sim: Server, tmp_path: Path) -> None:
    with wallboard_server(tmp_path, sim.url, auth_mode="none") as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").json().get("webhooks"), 20,
                   what="webhooks registered")
        # the same state dir, so the same generated webhook secret
        code, out = run_check(tmp_path, WALLBOARD_PBX_BASE_URL=sim.url, WALLBOARD_SERVER_PUBLIC_URL=wb.url,
                              WALLBOARD_STORAGE_PATH=str(tmp_path / "var" / "wallboard.db"))
    lines = out.splitlines()
    assert code == 0, out
    assert all(line.startswith("OK   ") for line in lines), out
    assert lines[-2] == "OK   webhooks: one registration each for answered, cdr, hangup, ringing"
    assert lines[-1] == f"OK   public_url: {wb.url} answers; the PBX will call {wb.url}/hooks/pbx/***"


def test_check_with_a_wrong_key_exits_1(sim: Server, tmp_path: Path) -> None:
    code, out = run_check(tmp_path, WALLBOARD_PBX_BASE_URL=sim.url, WALLBOARD_PBX_API_KEY="wrong-key")
    assert code == 1
    assert out.splitlines()[-1].startswith("FAIL PBX token:")


def test_check_with_an_unreachable_pbx_exits_1(tmp_path: Path) -> None:
    code, out = run_check(tmp_path, WALLBOARD_PBX_BASE_URL=f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert "FAIL PBX: cannot reach" in out


def test_demo_serves_a_live_board_against_its_own_simulator(tmp_path: Path) -> None:
    """What `make demo` runs, as a user runs it (ports moved off the defaults)."""
    from tests.servers import ROOT, _spawn

    port, pbx_port = free_port(), free_port()
    env = {"WALLBOARD_CONFIG": str(ROOT / "config.toml"), "WALLBOARD_SERVER_PORT": str(port),
           "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "WALLBOARD_PBX_BASE_URL": f"http://127.0.0.1:{pbx_port}",
           "WALLBOARD_STORAGE_PATH": str(tmp_path / "wb.db")}
    demo = Server(_spawn(["demo", "--seed", "4", "--agents", "6"], env, tmp_path / "demo.log"),
                  f"http://127.0.0.1:{port}", tmp_path / "demo.log")
    try:
        def board() -> dict[str, object] | None:
            assert demo.proc.poll() is None, demo.log()[-2000:]
            state = httpx.get(demo.url + "/api/state", timeout=2).json()
            agents = state["agents"]
            return state if agents and state["sources"]["agents"]["ok"] else None  # type: ignore[index]

        state = wait_until(board, 30, what="the demo board with its agents")
        # --agents 6: extensions 1001-1006, and 999, the supervisors' phone
        assert {a["ext"] for a in state["agents"]} <= {*(str(1001 + i) for i in range(6)), "999"}  # type: ignore[index]
        assert state is not None and httpx.get(demo.url + "/", timeout=2).status_code == 200
        assert "Wallboard demo: http://127.0.0.1:" in demo.log()
    finally:
        demo.stop()


def test_demo_with_tenants_serves_a_board_per_tenant_and_the_provider_view(tmp_path: Path) -> None:
    from tests.servers import ROOT, _spawn

    port, pbx_port = free_port(), free_port()
    env = {"WALLBOARD_CONFIG": str(ROOT / "config.toml"), "WALLBOARD_SERVER_PORT": str(port),
           "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "WALLBOARD_PBX_BASE_URL": f"http://127.0.0.1:{pbx_port}",
           "WALLBOARD_STORAGE_PATH": str(tmp_path / "wb.db")}
    demo = Server(_spawn(["demo", "--tenants", "2", "--seed", "4", "--agents", "4"], env, tmp_path / "demo.log"),
                  f"http://127.0.0.1:{port}", tmp_path / "demo.log")
    try:
        def rows() -> list[dict[str, object]] | None:
            assert demo.proc.poll() is None, demo.log()[-2000:]
            answer = httpx.get(demo.url + "/provider/api/state", params={"token": "demo-provider-view-token"},
                               timeout=2)
            found = answer.json()["tenants"] if answer.status_code == 200 else []
            return found if len(found) == 2 and all(r["health"] == "ok" for r in found) else None

        assert [r["id"] for r in wait_until(rows, 30, what="both tenants live")] == ["t1", "t2"]  # type: ignore[union-attr]
        for tenant in ("t1", "t2"):
            state = httpx.get(f"{demo.url}/t/{tenant}/api/state", timeout=2).json()
            assert state["domain"] == f"{tenant}.sim.tel4vn.com"
        assert "/t/t1/" in demo.log() and "/provider?token=" in demo.log()
    finally:
        demo.stop()
