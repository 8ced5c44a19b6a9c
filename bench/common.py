"""Shared pieces of the benchmarks: a ScoreBridge server on 127.0.0.1 with the demo model, timing,
and machine notes. Every benchmark is bounded in requests and time and talks to loopback only."""
from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_notes() -> str:
    import numpy
    import sklearn

    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}")


@contextmanager
def scorebridge(workers: int = 2, threads: int = 4) -> Iterator[tuple[str, str, Path]]:
    """A server with the demo model; yields (url, admin key, data folder)."""
    home = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREBRIDGE_")}
    env.update(SCOREBRIDGE_HOME=str(home), SCOREBRIDGE_LOG_LEVEL="WARNING")
    cli = str(BIN / "scorebridge")
    subprocess.run([cli, "demo"], env=env, check=True, capture_output=True)
    key = subprocess.run([cli, "keys", "create", "--scope", "admin"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    port = free_port()
    proc = subprocess.Popen([cli, "serve", "--port", str(port), "--workers", str(workers),
                             "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        yield url, key, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def demo_artifact(home: Path, name: str = "churn") -> Path:
    """The stored artifact of the model's production version (the store also holds samples and
    compiled forms, so it is looked up, not globbed)."""
    from server.app import build_registry
    from server.config import Settings

    registry = build_registry(Settings(home=home, background=False))
    try:
        return registry.store.path(registry.get_version(name).artifact)
    finally:
        registry.engine.dispose()


def churn_rows(n: int, seed: int = 1) -> list[list]:
    from server.demo import FEATURES, make_churn_data

    frame = make_churn_data(n, seed=seed)[FEATURES].fillna(60.0)
    return [[v.item() if hasattr(v, "item") else v for v in row]
            for row in frame.itertuples(index=False)]
