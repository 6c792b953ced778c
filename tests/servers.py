"""Real servers on loopback ports for end-to-end tests and benchmarks: the
simulator and the wallboard as separate processes, started with the same
`wallboard` command a user runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # not up yet
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "wallboard.cli", *args], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def _wait_up(server: Server, path: str, timeout: float) -> None:
    def up() -> bool:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log()[-3000:]}")
        return httpx.get(server.url + path, timeout=1.0).status_code < 500

    try:
        wait_until(up, timeout, what=f"{server.url}{path}")
    except AssertionError:
        server.stop()
        raise


@contextmanager
def sim_server(tmp: Path, *flags: str, port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    server = Server(_spawn(["sim", "--port", str(port), *flags], {}, tmp / f"sim-{port}.log"),
                    f"http://127.0.0.1:{port}", tmp / f"sim-{port}.log")
    _wait_up(server, "/_sim/truth", 20)
    try:
        yield server
    finally:
        server.stop()


def wallboard_env(tmp: Path, sim_url: str, port: int, **overrides: str) -> dict[str, str]:
    env = {
        "WALLBOARD_CONFIG": str(ROOT / "config.toml"),
        "WALLBOARD_SERVER_PORT": str(port),
        "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WALLBOARD_PBX_BASE_URL": sim_url,
        "WALLBOARD_PBX_API_KEY": "sim-api-key",
        "WALLBOARD_STORAGE_PATH": str(tmp / "var" / "wallboard.db"),
        "WALLBOARD_POLL_AGENTS_INTERVAL": "1.0",
        "WALLBOARD_POLL_CALLS_INTERVAL": "1.0",
        "WALLBOARD_POLL_STATUS_INTERVAL": "2.0",
        "WALLBOARD_POLL_CDR_INTERVAL": "3.0",
    }
    env.update({f"WALLBOARD_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def wallboard_server(tmp: Path, sim_url: str, port: int | None = None, **overrides: str) -> Iterator[Server]:
    """`overrides` are config keys as SECTION_KEY=value, e.g. auth_mode="none"."""
    port = port or free_port()
    log_path = tmp / f"wallboard-{port}.log"
    server = Server(_spawn(["serve"], wallboard_env(tmp, sim_url, port, **overrides), log_path),
                    f"http://127.0.0.1:{port}", log_path)
    _wait_up(server, "/healthz", 20)
    try:
        yield server
    finally:
        server.stop()
