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
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# the benchmarks send thousands of requests per second with one key; the default per-key limit
# (60,000/minute) would answer 429. Limiting stays on and costs what it costs.
BENCH_LIMITS = {"RATE_LIMITS": "score=100000000/minute"}


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
def scorebridge(workers: int = 2, threads: int = 16, setup: Callable[[Path], None] | None = None,
                gunicorn_args: str = "", **settings: str) -> Iterator[tuple[str, str, Path]]:
    """A server with the demo model; yields (url, admin key, data folder). ``setup(home)`` runs
    before the server starts (to register more models); ``gunicorn_args`` override gunicorn's
    settings (``"--worker-class sync"``); ``settings`` are extra ``SCOREBRIDGE_*`` variables,
    named without the prefix (``BATCH_WAIT_MS="2"``)."""
    home = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SCOREBRIDGE_") and k != "GUNICORN_CMD_ARGS"}
    env.update(SCOREBRIDGE_HOME=str(home), SCOREBRIDGE_LOG_LEVEL="WARNING",
               **{f"SCOREBRIDGE_{k}": v for k, v in settings.items()})
    if gunicorn_args:  # gunicorn reads these after its configuration file
        env["GUNICORN_CMD_ARGS"] = gunicorn_args
    cli = str(BIN / "scorebridge")
    subprocess.run([cli, "demo"], env=env, check=True, capture_output=True)
    if setup is not None:
        setup(home)
    key = subprocess.run([cli, "keys", "create", "--scope", "admin"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    port = free_port()
    log = (home / "server.log").open("wb")  # kept in the data folder: why a server never came up
    proc = subprocess.Popen([cli, "serve", "--port", str(port), "--workers", str(workers),
                             "--threads", str(threads)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        # every registered model loads before the workers are ready: allow for a zoo of them
        wait_ready(lambda: requests.get(url + "/readyz", timeout=60).status_code == 200, 300)
        yield url, key, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def register(home: Path, paths: dict[str, Path], name: str, **settings: str) -> None:
    """``scorebridge register`` of ``paths["artifact"]`` with its reference sample, as a user
    registers a model (``settings``: extra ``SCOREBRIDGE_*`` variables, without the prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREBRIDGE_")}
    env.update(SCOREBRIDGE_HOME=str(home), **{f"SCOREBRIDGE_{k}": v for k, v in settings.items()})
    subprocess.run([str(BIN / "scorebridge"), "register", str(paths["artifact"]), "--name",
                    name, "--sample", str(paths["sample"])], env=env, check=True,
                   capture_output=True)


def server_pid(url: str) -> int:
    """The gunicorn master listening on ``url``'s port."""
    port = urlsplit(url).port
    return int(subprocess.run(["pgrep", "-o", "-f", f"127.0.0.1:{port}"], capture_output=True,
                              text=True, check=True).stdout.split()[0])


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (a gunicorn master and its workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            todo += [int(c) for c in
                     Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time these processes have used so far (those gone count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def wait_ready(check: Callable[[], bool], seconds: float = 60) -> None:
    """Poll ``check`` until it holds (connection errors count as not yet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"not ready after {seconds:.0f} s")


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


def load_model(path: Path) -> Any:
    """A benchmark's own copy of a stored skops artifact (every type trusted: our own file)."""
    import skops.io as sio

    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def churn_rows(n: int, seed: int = 1) -> list[list]:
    from server.demo import FEATURES, make_churn_data

    frame = make_churn_data(n, seed=seed)[FEATURES].fillna(60.0)
    return [[v.item() if hasattr(v, "item") else v for v in row]
            for row in frame.itertuples(index=False)]
