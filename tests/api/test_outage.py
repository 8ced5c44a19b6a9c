"""The registry database away for a while: deployed models keep scoring, writes answer 503 with
Retry-After, and the server recovers by itself when the database is back (no restart).

A real TCP proxy stands between a live server and PostgreSQL; "unavailable" is the proxy closing
every connection and refusing new ones, which is what a database restart or a network cut does.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest
import requests

from tests.conftest import PG_URL, POSTGRES, churn_rows, jsonable
from tests.live import env_for, free_port, serve, setup_cli

pytestmark = pytest.mark.slow


class Proxy:
    """Forwards 127.0.0.1:port to PostgreSQL until cut; can be restored on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if listener is not self._listener:  # accepted while being cut: refuse it
                    client.close()
                    return
                upstream = socket.create_connection(self.target)
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Stop listening and drop every connection. A thread blocked in accept() keeps a closed
        socket listening on Linux, so the listener is shut down (which wakes it) and marked gone
        before any connection accepted in between could reach the database."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # a pipe thread shut it down already
            s.close()


@pytest.mark.skipif(not POSTGRES, reason="PostgreSQL is not reachable on 127.0.0.1:5432")
# what the outage leaves: psycopg connections whose socket was cut under them are collected open
@pytest.mark.filterwarnings("default:Exception ignored in. <function BaseConnection.__del__"
                            ":pytest.PytestUnraisableExceptionWarning")
def test_database_outage_keeps_scoring_and_recovers(tmp_path, demo_files):
    import sqlalchemy as sa

    schema = f"sb_outage_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    proxy = Proxy(("127.0.0.1", 5432))
    proxy.start()
    url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    env = env_for(tmp_path / "home", SCOREBRIDGE_DATABASE_URL=f"{url}?options=-csearch_path%3D"
                  f"{schema}", SCOREBRIDGE_RATE_LIMITING="off")
    server = None
    try:
        setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
                  str(demo_files["sample"]), env=env)
        key = setup_cli("keys", "create", "--scope", "admin", env=env).stdout.strip()
        server = serve(env, workers=1, threads=4)
        headers = {"X-API-Key": key}
        rows = {"rows": jsonable(churn_rows(3))}

        def score() -> requests.Response:
            return requests.post(f"{server.url}/api/v1/models/churn/predict", json=rows,
                                 headers=headers, timeout=30)

        def register() -> requests.Response:
            with open(demo_files["artifact"], "rb") as fh:
                return requests.post(f"{server.url}/api/v1/models/churn/versions",
                                     files={"file": ("churn.skops", fh)}, headers=headers,
                                     timeout=60)

        assert score().status_code == 200
        proxy.cut()
        time.sleep(1.5)  # past the deployment refresh interval: the server notices
        during = [score() for _ in range(20)]
        assert [r.status_code for r in during] == [200] * 20, during[-1].text
        refused = register()
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert "database is not reachable" in refused.json()["detail"]
        ready = requests.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503
        proxy.start()  # the database is back
        deadline = time.monotonic() + 30
        while (resp := register()).status_code != 201 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert resp.status_code == 201, resp.text
        assert resp.json()["version"] == 2
        assert score().status_code == 200
    finally:
        if server is not None:
            server.stop()
        proxy.cut()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
