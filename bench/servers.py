"""The two servers under test, as separate processes: the synthetic PBX and `wallboard serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import free_port  # never the same port twice in one process

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"
_PBX_LINE = re.compile(r'^wallboard_pbx_requests_total\{route="([^"]+)"\} ([0-9.e+]+)$', re.M)


@dataclass
class Servers:
    wallboard: subprocess.Popen[bytes]
    pbx: subprocess.Popen[bytes]
    port: int
    pbx_port: int
    exts: list[str]  # logged-in extensions, in the order the bench rings them

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pbx_requests(self) -> dict[str, float]:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return {route: float(n) for route, n in _PBX_LINE.findall(text)}

    def metric(self, name: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **env},
                                stdout=out, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen[bytes], check: str, log: Path, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            r = httpx.get(check, timeout=5)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{check} not ready after {timeout} s:\n{log.read_text()[-2000:]}")


@contextmanager
def servers(agents: int, config: Path | None = None) -> Iterator[Servers]:
    """The synthetic PBX with `agents` and the wallboard against it (`config`: another
    config file, e.g. with [[teams]], for bench/teams.py)."""
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-bench-"))
    pbx_port, port = free_port(), free_port()
    pbx = _spawn(["bench.pbx", "--port", str(pbx_port), "--agents", str(agents)], {}, tmp / "pbx.log")
    procs = [pbx]
    try:
        _wait(pbx, f"http://127.0.0.1:{pbx_port}/_sim/stats", tmp / "pbx.log")
        env = {
            "WALLBOARD_CONFIG": str(config or ROOT / "config.toml"),
            "WALLBOARD_SERVER_PORT": str(port),
            "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "WALLBOARD_PBX_BASE_URL": f"http://127.0.0.1:{pbx_port}",
            "WALLBOARD_PBX_API_KEY": "sim-api-key",
            "WALLBOARD_STORAGE_PATH": str(tmp / "wallboard.db"),
            "WALLBOARD_AUTH_MODE": "none",
            "WALLBOARD_WEBHOOK_SECRET": SECRET,
            "WALLBOARD_SERVER_ALLOW_MISSING_ORIGIN": "true",  # the bench's screens are not browsers
        }
        wb = _spawn(["wallboard.cli", "serve"], env, tmp / "wallboard.log")
        procs.append(wb)
        _wait(wb, f"http://127.0.0.1:{port}/readyz", tmp / "wallboard.log")
        deadline = time.monotonic() + 60
        while True:  # until the first agent poll is merged
            state = httpx.get(f"http://127.0.0.1:{port}/api/state", timeout=30).json()
            exts = [a["ext"] for a in state["agents"] if a["state"] == "idle"]
            if len(exts) >= agents * 0.9 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        yield Servers(wb, pbx, port, pbx_port, exts)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
