"""The README's `make serve` on a fresh data folder: it registers the demo, prints a key, serves
under gunicorn with several workers, and the printed key scores a row with curl."""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests

from tests.live import BIN, ROOT, LiveServer, env_for, free_port, serve

ROW = '{"rows": [[12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]]}'


@pytest.mark.slow
def test_make_serve_then_curl(tmp_path):
    port = free_port()
    env = env_for(tmp_path / "home", SCOREBRIDGE_NATIVE_TREES="on")  # as a user gets it
    server = LiveServer(["make", "--no-print-directory", "serve", f"PORT={port}",
                         f"SCOREBRIDGE_HOME={tmp_path / 'home'}"], env, port)
    try:
        server.wait_ready(timeout=180)
        out = server.output()
        key = re.search(r"API key \(score, read; shown once\): (sb_\S+)", out).group(1)
        assert f"http://127.0.0.1:{port}/docs" in out
        curl = shutil.which("curl")
        cmd = ([curl, "-s", "-H", f"X-API-Key: {key}", "-H", "Content-Type: application/json",
                "-d", ROW, f"{server.url}/api/v1/models/churn/predict"] if curl else None)
        if cmd:
            body = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                             timeout=30).stdout)
        else:  # pragma: no cover - curl is on every machine we run on
            body = requests.post(f"{server.url}/api/v1/models/churn/predict", data=ROW,
                                 headers={"X-API-Key": key,
                                          "Content-Type": "application/json"}).json()
        assert body["model"] == "churn" and body["version"] == 1
        assert body["predictions"][0] in ("yes", "no")
        assert abs(sum(body["probabilities"][0]) - 1) < 1e-9
        # the demo's trees were compiled to native code at registration (gcc is on our machines)
        runtime = requests.get(f"{server.url}/api/v1/models/churn/versions/1",
                               headers={"X-API-Key": key}, timeout=10).json()["runtime"]
        assert runtime["engine"] == "treelite", runtime
        # several workers answer (gunicorn master plus at least two worker processes)
        workers = subprocess.run(["pgrep", "-f", "-g", str(os.getpgid(server.proc.pid)),
                                  "gunicorn"], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 3, workers
        # a second `make serve` on the same home does not register the demo again
        again = subprocess.run([str(ROOT / ".venv/bin/scorebridge"), "demo"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert "already registered" in again.stdout
    finally:
        server.stop()


def test_wsgi_module_exposes_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREBRIDGE_HOME", str(tmp_path))
    monkeypatch.setenv("SCOREBRIDGE_NATIVE_TREES", "off")
    import importlib

    import wsgi

    wsgi = importlib.reload(wsgi)
    assert wsgi.app.name == "server.app"
    resp = wsgi.app.test_client().get("/healthz")
    assert resp.status_code == 200


def test_serve_gives_gunicorn_no_control_socket(tmp_path, monkeypatch):
    """The settings gunicorn reads from the command line `scorebridge serve` runs: no control
    socket (gunicorn's default, shared by every gunicorn of the user, is on)."""
    from click.testing import CliRunner
    from gunicorn.app.wsgiapp import WSGIApplication

    from server import cli

    monkeypatch.setenv("SCOREBRIDGE_HOME", str(tmp_path))
    # serve sets it: recorded first (delenv of an absent variable records nothing), so the
    # value serve leaves is undone and later tests in this process read their own metrics
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    argv: list[str] = []
    monkeypatch.setattr(os, "execv", lambda path, args: argv.extend(args))
    result = CliRunner().invoke(cli.main, ["serve", "--port", str(free_port())])
    assert result.exit_code == 0, result.output
    assert argv[1:3] == ["-m", "gunicorn"]
    monkeypatch.setattr(sys, "argv", ["gunicorn", *argv[3:]])
    cfg = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg
    assert cfg.worker_class_str == "gthread"  # the config module was read
    assert cfg.control_socket_disable is True


@pytest.mark.slow
def test_live_server_requires_a_key_and_never_logs_it(tmp_path):
    server = serve(env_for(tmp_path / "home"))
    try:
        resp = requests.post(f"{server.url}/api/v1/models/churn/predict", json={"rows": []},
                             timeout=10)
        assert resp.status_code == 401
        assert resp.headers["Content-Type"] == "application/problem+json"
        secret = "sb_0123456789ab_doNotLogThisSecret"
        assert requests.get(f"{server.url}/api/v1/models?api_key={secret}",
                            timeout=10).status_code == 401
        time.sleep(0.3)
        log = server.output()
        assert "/api/v1/models" in log  # the access log is on
        line = (rf'^127\.0\.0\.1 "POST /api/v1/models/churn/predict" 401 \d+ \d+ms '
                rf'rid={resp.headers["X-Request-Id"]}$')
        assert re.search(line, log, re.M), log[-2000:]
        assert secret not in log
    finally:
        server.stop()


def _connections_by_worker(port: int, workers: list[int],
                           clients: set[int] | None = None) -> dict[int, int]:
    """Established connections to ``port`` held by each worker process (from /proc); only those
    from the local ``clients`` ports, when given (not a readiness probe's, say)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01" and (
                        clients is None or int(fields[2].rsplit(":", 1)[1], 16) in clients):
                    inodes.add(fields[9])
    held = {}
    for pid in workers:
        fds = os.listdir(f"/proc/{pid}/fd")
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in fds if os.path.exists(
            f"/proc/{pid}/fd/{fd}")}
        held[pid] = sum(f"socket:[{inode}]" in links for inode in inodes)
    return held


@pytest.mark.slow
def test_kept_alive_connections_are_spread_over_the_workers(tmp_path):
    """Each worker has its own listening socket, so the kernel spreads connections over the
    workers; and a second server on a port in use is refused instead of sharing it."""
    server = serve(env_for(tmp_path / "home"), workers=2)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        master = server.proc.pid  # scorebridge serve exec'd gunicorn: the same process
        with open(f"/proc/{master}/task/{master}/children") as f:
            workers = [int(p) for p in f.read().split()]
        assert len(workers) == 2
        connections = []
        for _ in range(24):  # 24 kept-alive connections, as a pool of clients holds them
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
            connections.append(connection)
        ours = {c.sock.getsockname()[1] for c in connections}
        held = _connections_by_worker(port, workers, ours)
        assert sum(held.values()) == 24 and min(held.values()) >= 4, held
        for connection in connections:
            connection.close()
        second = subprocess.run([str(BIN / "scorebridge"), "serve", "--port", str(port)],
                                env=env_for(tmp_path / "home"), capture_output=True, text=True,
                                timeout=60)
        assert second.returncode != 0
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr, second.stderr
    finally:
        server.stop()


def _self_signed(folder, name: str = "localhost") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, as a trial's development certificate is."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_serve_with_a_certificate_answers_https(tmp_path):
    cert, key = _self_signed(tmp_path)
    server = serve(env_for(tmp_path / "home"), tls=(cert, key))
    try:
        assert server.url.startswith("https://")
        resp = requests.get(f"{server.url}/healthz", verify=str(cert), timeout=10)
        assert resp.status_code == 200
        # the manifest and every URL in it follow the scheme the server is reached by
        manifest = requests.get(f"{server.url}/excel/manifest.xml", verify=str(cert), timeout=10)
        assert manifest.status_code == 200, manifest.text
        urls = [value for element in ElementTree.fromstring(manifest.content).iter()
                for value in element.attrib.values() if value.startswith("http")]
        assert f"{server.url}/excel/taskpane.html" in urls
        assert all(url.startswith(server.url + "/") for url in urls), urls
        with pytest.raises(requests.ConnectionError):  # plain HTTP is not answered
            requests.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)
        assert "Listening at: https://127.0.0.1:" in server.output()
    finally:
        server.stop()


def test_serve_refuses_half_a_certificate_or_a_key_that_does_not_match(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from server import cli

    monkeypatch.setenv("SCOREBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(os, "execv", lambda path, args: pytest.fail("gunicorn started"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")   # undone after the test, whatever
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")       # serve sets
    cert, _ = _self_signed(tmp_path, "one")
    _, other_key = _self_signed(tmp_path, "two")
    runner = CliRunner()
    half = runner.invoke(cli.main, ["serve", "--port", str(free_port()), "--certfile", str(cert)])
    assert half.exit_code == 2 and "needs both --certfile and --keyfile" in half.output
    wrong = runner.invoke(cli.main, ["serve", "--port", str(free_port()), "--certfile", str(cert),
                                     "--keyfile", str(other_key)])
    assert wrong.exit_code == 1 and f"cannot use {cert} with {other_key}" in wrong.output
    missing = runner.invoke(cli.main, ["serve", "--port", str(free_port()), "--certfile",
                                       str(tmp_path / "none.crt"), "--keyfile", str(other_key)])
    assert missing.exit_code == 1 and "No such file" in missing.output
