"""deploy/nginx/wallboard.conf, run for real: Debian's nginx on loopback ports
with a self-signed certificate, in front of `wallboard serve`, and the board
used through it (page, /api/state, /ws upgrade, a webhook, the audit log's
client address)."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.factories import webhook_body
from tests.servers import ROOT, Server, free_port, sim_server, wait_until, wallboard_server

NGINX = Path("/usr/sbin/nginx")
SITE = ROOT / "deploy" / "nginx" / "wallboard.conf"
SECRET = "nginx-test-webhook-secret"
KIOSK = "nginx-test-kiosk-token"


@dataclass
class Proxy:
    url: str
    http_url: str
    cert: Path
    access_log: Path

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"nginx tests cannot run under CI: {what}")
    pytest.skip(what)


def site_for(tmp: Path, https_port: int, http_port: int, upstream: int) -> str:
    """The shipped site with loopback ports and temp paths put in."""
    text = SITE.read_text()
    swaps = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream};",
        "/etc/ssl/certs/wallboard.pem": str(tmp / "cert.pem"),
        "/etc/ssl/private/wallboard.key": str(tmp / "key.pem"),
        "/var/log/nginx/wallboard.access.log": str(tmp / "access.log"),
    }
    for old, new in swaps.items():
        assert old in text, f"{old!r} no longer in {SITE}"
        text = text.replace(old, new)
    return "\n".join(line for line in text.splitlines() if "[::]" not in line)


def nginx_conf(tmp: Path, site: Path) -> str:
    user = "user root root;\n" if os.geteuid() == 0 else ""  # temp dirs are ours alone
    temp = "".join(f"    {kind}_temp_path {tmp / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
            f"error_log {tmp / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\n    access_log off;\n{temp}    include {site};\n}}\n")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Proxy]]:
    if not NGINX.exists():
        _missing("no /usr/sbin/nginx (Debian package 'nginx'); .ci/run installs it")
    if shutil.which("openssl") is None:
        _missing("no openssl to make a self-signed certificate")
    tmp = tmp_path_factory.mktemp("nginx")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                   check=True, capture_output=True)
    https_port, http_port, upstream = free_port(), free_port(), free_port()
    public = f"https://127.0.0.1:{https_port}"
    (tmp / "site.conf").write_text(site_for(tmp, https_port, http_port, upstream))
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, tmp / "site.conf"))
    with sim_server(tmp, "--agents", "4", "--seed", "6", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, port=upstream, auth_mode="none", webhook_secret=SECRET,
                             server_public_url=public, auth_kiosk_tokens=KIOSK,
                             server_trusted_proxies="127.0.0.1",
                             # a webhook-only test call must not be undone by a calls poll
                             poll_calls_interval="600") as wb:
        with (tmp / "error.log").open("ab") as errors:  # nginx keeps its own copy
            nginx = subprocess.Popen([str(NGINX), "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=errors)
        try:
            proxy = Proxy(public, f"http://127.0.0.1:{http_port}", tmp / "cert.pem", tmp / "access.log")

            def up() -> bool:
                if nginx.poll() is not None:
                    raise AssertionError((tmp / "error.log").read_text(errors="replace"))
                return httpx.get(public + "/readyz", verify=proxy.tls()).status_code == 200

            wait_until(up, 20, what="the board through nginx")
            yield sim, wb, proxy
        finally:
            nginx.terminate()
            nginx.wait(10)


def client(proxy: Proxy, local: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(base_url=proxy.url,
                        transport=httpx.HTTPTransport(verify=proxy.tls(), local_address=local))


def test_the_page_and_the_state_over_tls(stack: tuple[Server, Server, Proxy]) -> None:
    _, _, proxy = stack
    with client(proxy) as http:
        page = http.get("/")
        assert page.status_code == 200 and "data-conn" in page.text
        state = http.get("/api/state").json()
        assert {a["ext"] for a in state["agents"]} >= {"999", "1001"}
        assert http.get("/static/js/main.js").status_code == 200
    plain = httpx.get(proxy.http_url + "/api/state")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://127.0.0.1")


async def test_the_websocket_upgrades_through_the_proxy(stack: tuple[Server, Server, Proxy]) -> None:
    _, _, proxy = stack
    url = proxy.url.replace("https://", "wss://") + "/ws"
    async with connect(url, ssl=proxy.tls(), origin=proxy.url) as ws:  # type: ignore[arg-type]
        first = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "snapshot"
    assert first["state"]["agents"]


def test_a_webhook_through_the_proxy_reaches_the_state(stack: tuple[Server, Server, Proxy]) -> None:
    _, _, proxy = stack
    with client(proxy) as http:
        answer = http.post(f"/hooks/pbx/{SECRET}", json=webhook_body("ringing", "via-nginx-1"))
        assert answer.status_code == 200, answer.text
        assert http.post("/hooks/pbx/wrong-secret", json=webhook_body()).status_code == 404
        calls = {c["call_id"] for c in http.get("/api/state").json()["calls"]}
    assert "via-nginx-1" in calls
    http_log = proxy.access_log.read_text() if proxy.access_log.exists() else ""
    assert SECRET not in http_log and "/hooks/pbx/" not in http_log


def test_the_audit_log_has_the_client_address_nginx_saw(stack: tuple[Server, Server, Proxy]) -> None:
    _, wb, proxy = stack
    # from 127.0.0.2, claiming to be 203.0.113.9: nginx sets X-Forwarded-For itself
    with client(proxy, local="127.0.0.2") as http:
        refused = http.post("/api/calls/c-77/listen", json={},
                            headers={"x-forwarded-for": "203.0.113.9"})
        assert refused.status_code == 403
        rows = http.get("/api/audit").json()["rows"]
    assert rows[0]["ip"] == "127.0.0.2"
    # straight to the server, the header is believed only from 127.0.0.1
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as direct:
        direct.post(wb.url + "/api/calls/c-78/listen", json={}, headers={"x-forwarded-for": "203.0.113.9"})
        rows = direct.get(wb.url + "/api/audit").json()["rows"]
    assert rows[0]["ip"] == "127.0.0.2"


def test_kiosk_tokens_stay_out_of_the_access_log(stack: tuple[Server, Server, Proxy]) -> None:
    _, _, proxy = stack
    with client(proxy) as http:
        assert http.get(f"/kiosk?token={KIOSK}").status_code == 200
    wait_until(lambda: proxy.access_log.exists() and "/kiosk" in proxy.access_log.read_text(), 5,
               what="the kiosk request logged")
    assert KIOSK not in proxy.access_log.read_text()


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    unit = (ROOT / "deploy" / "systemd" / "wallboard.service").read_text()
    assert "LoadCredential=pbx_api_key:" in unit and "WALLBOARD_PBX_API_KEY_FILE=%d/pbx_api_key" in unit
    wallboard = Path(sys.executable).parent / "wallboard"
    (tmp_path / "wallboard.service").write_text(unit.replace("/opt/wallboard/.venv/bin/wallboard", str(wallboard)))
    result = subprocess.run([analyze, "verify", str(tmp_path / "wallboard.service")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
