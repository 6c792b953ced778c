"""Real Redis and PostgreSQL servers for tests: Debian's `redis-server` and PostgreSQL's
`initdb`/`pg_ctl`, each on a free loopback port with everything in its own temp dir.

A test can kill -9, pause (SIGSTOP) and restart them. Outside CI a missing binary skips
the test with the package to install; under CI=true it fails, like the browser tests:
a skipped cluster test would hide a broken product (`.ci/run` installs both packages).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import free_port

REDIS_SERVER = "redis-server"
PG_ROOT = Path("/usr/lib/postgresql")


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cluster tests cannot run under CI: {reason}")
    pytest.skip(reason)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """One `redis-server`; `url` for clients. Nothing is saved unless `appendonly`."""

    dir: Path
    appendonly: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def start(self) -> None:
        for attempt in range(3):
            args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "no",
                    "--dir", str(self.dir), "--logfile", str(self.log_path), "--daemonize", "no"]
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            try:
                _wait(lambda: _redis_ping(self.port) or self.proc is None or self.proc.poll() is not None,
                      10, f"redis-server on port {self.port}")
            except AssertionError:
                self.kill()
                raise
            if self.proc.poll() is None:
                return
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if "Address already in use" not in log or attempt == 2:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n{log[-2000:]}")
            self.port = free_port()  # taken meanwhile by someone else: another one

    def kill(self) -> None:
        """kill -9: whatever was not saved is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@contextmanager
def redis_server(*, appendonly: bool = False) -> Iterator[RedisServer]:
    if shutil.which(REDIS_SERVER) is None:
        missing("no redis-server (Debian package 'redis-server'); .ci/run installs it")
    with tempfile.TemporaryDirectory(prefix="wb-redis-") as tmp:
        server = RedisServer(Path(tmp), appendonly=appendonly)
        server.start()
        try:
            yield server
        finally:
            server.kill()


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin dir (Debian keeps them off PATH)."""
    found = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: trust auth on loopback and a unix socket in `dir`,
    database and superuser `wallboard`, fsync off (a crash of the server loses nothing).
    As root it runs as `postgres` (or `nobody`): PostgreSQL refuses to run as root."""

    bin: Path
    dir: Path
    port: int = field(default_factory=free_port)
    user: str = "wallboard"
    database: str = "wallboard"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", _os_user(), "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.dir, timeout=60)
        if check and done.returncode != 0:
            raise AssertionError(f"{args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")

    def start(self) -> None:
        for attempt in range(3):
            # fsync off: a killed server loses nothing (the kernel has it), only a lost machine would.
            options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            done = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.dir / "pg.log"),
                             "-w", "-t", "30", "start", check=False)
            if done.returncode == 0:
                return
            log = (self.dir / "pg.log").read_text(errors="replace")
            if "already in use" not in log or attempt == 2:
                raise AssertionError(f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{log[-2000:]}")
            self.port = free_port()

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is PostgreSQL's crash: no checkpoint, recovery on the next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def create_database(self) -> None:
        self._run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", self.user, self.database)

    def psql(self, sql: str) -> str:
        return self._run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", self.user, "-d", self.database,
                         "-X", "-A", "-t", "-c", sql).stdout.strip()


def _os_user() -> str:
    for name in ("postgres", "nobody"):
        if subprocess.run(["id", "-u", name], capture_output=True).returncode == 0:
            return name
    raise AssertionError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = pg_bin()
    if bin_dir is None:
        missing(f"no PostgreSQL under {PG_ROOT} (Debian package 'postgresql'); .ci/run installs it")
        raise AssertionError("unreachable")
    tmp = Path(tempfile.mkdtemp(prefix="wb-pg-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, _os_user())
    server = PostgresServer(bin_dir, tmp)
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(tmp, ignore_errors=True)
