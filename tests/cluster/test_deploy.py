"""deploy/cluster/ checked by the programs that read it: nginx -t on the three-node site,
systemd-analyze on the template unit, redis-server started with the Redis settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_nginx import NGINX, nginx_conf
from tests.servers import ROOT, free_port, wait_until
from tests.services import REDIS_SERVER, _redis_ping

CLUSTER = ROOT / "deploy" / "cluster"


def test_the_nginx_site_for_three_nodes_is_valid(tmp_path: Path) -> None:
    if not NGINX.exists() or shutil.which("openssl") is None:
        pytest.skip("no nginx or openssl")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    text = (CLUSTER / "wallboard-cluster.conf").read_text()
    for node in ("8001", "8002", "8003"):
        assert f"server 127.0.0.1:{node} " in text
    for old, new in {"listen 80;": f"listen 127.0.0.1:{free_port()};",
                     "listen 443 ssl http2;": f"listen 127.0.0.1:{free_port()} ssl http2;",
                     "/etc/ssl/certs/wallboard.pem": str(tmp_path / "cert.pem"),
                     "/etc/ssl/private/wallboard.key": str(tmp_path / "key.pem"),
                     "/var/log/nginx/wallboard.access.log": str(tmp_path / "access.log")}.items():
        text = text.replace(old, new)
    site = tmp_path / "site.conf"
    site.write_text("\n".join(line for line in text.splitlines() if "[::]" not in line))
    (tmp_path / "nginx.conf").write_text(nginx_conf(tmp_path, site))
    done = subprocess.run([str(NGINX), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_template_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    unit = (CLUSTER / "wallboard@.service").read_text()
    for secret in ("redis_url", "database_url", "webhook_secret"):
        assert f"LoadCredential={secret}:" in unit
    wallboard = Path(sys.executable).parent / "wallboard"
    unit = unit.replace("/opt/wallboard/.venv/bin/wallboard", str(wallboard))
    unit = unit.replace("EnvironmentFile=/etc/wallboard/node-%i.env", f"EnvironmentFile={CLUSTER}/node-%i.env")
    (tmp_path / "wallboard@.service").write_text(unit)
    os.link(tmp_path / "wallboard@.service", tmp_path / "wallboard@2.service")
    result = subprocess.run([analyze, "verify", str(tmp_path / "wallboard@2.service")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_redis_starts_with_the_settings(tmp_path: Path) -> None:
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("no redis-server")
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, str(CLUSTER / "redis.conf"), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp_path), "--daemonize", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _redis_ping(port), 10, what="redis-server with deploy/cluster/redis.conf")
        config = subprocess.run(["redis-cli", "-p", str(port), "config", "get", "append*"],
                                capture_output=True, text=True, check=False).stdout.split()
        assert config[config.index("appendonly") + 1] == "yes"
        assert config[config.index("appendfsync") + 1] == "everysec"
    finally:
        proc.kill()
        proc.wait()
