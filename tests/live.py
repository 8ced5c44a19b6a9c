"""Starting real server processes for tests: bound to 127.0.0.1, always stopped."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREBRIDGE_")}
    # native trees (a C compile per registration, ~1-2 s) are on only where a test asks
    env.update(SCOREBRIDGE_HOME=str(home), PATH=f"{BIN}:{env.get('PATH', '')}",
               SCOREBRIDGE_NATIVE_TREES="off")
    env.update(extra)
    return env


class LiveServer:
    def __init__(self, cmd: list[str], env: dict[str, str], port: int, cwd: Path = ROOT,
                 scheme: str = "http", verify: bool | str = True) -> None:
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.verify = verify  # for HTTPS: the CA (or self-signed certificate) to trust
        self.log = open(Path(env["SCOREBRIDGE_HOME"]).parent / f"server-{port}.log", "w+")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-2000:]}")
            try:
                ready = requests.get(self.url + "/readyz", timeout=2, verify=self.verify)
                if ready.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready: {self.output()[-2000:]}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def serve(env: dict[str, str], workers: int = 1, threads: int | None = None,
          timeout: float = 60, tls: tuple[Path, Path] | None = None) -> LiveServer:
    """``scorebridge serve`` on a free loopback port, ready to answer (stopped if it is not);
    HTTPS with ``tls`` (certificate, key), the certificate then being what clients trust."""
    port = free_port()
    cmd = [str(BIN / "scorebridge"), "serve", "--port", str(port), "--workers", str(workers)]
    if threads:
        cmd += ["--threads", str(threads)]
    if tls:
        cmd += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
    server = LiveServer(cmd, env, port, scheme="https" if tls else "http",
                        verify=str(tls[0]) if tls else True)
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


def setup_cli(*args: str, env: dict[str, str]) -> Any:
    """``scorebridge *args`` run inside the test process through click (the command's own code,
    with ``env`` as the environment), for set-up where the command is not what is tested: a new
    process spends ~3 s importing the scoring stack. Use :func:`run_cli` to test the CLI itself
    (exit codes, a process killed mid-command)."""
    from click.testing import CliRunner

    from server.cli import main

    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"scorebridge {' '.join(args)} failed:\n{result.output}")
    return result


def run_cli(*args: str, env: dict[str, str], check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "scorebridge"), *args], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"scorebridge {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def on_small_disk(folder: Path, size: str, script: str, *args: str) -> Any:
    """Run ``script`` (Python source) with ``folder`` on a real tmpfs of ``size`` (e.g. "512k"),
    mounted in a private mount namespace (util-linux's ``unshare -r -m``: no root needed); the
    JSON object the script prints last."""
    import json
    import shutil

    if shutil.which("unshare") is None:
        raise AssertionError("util-linux's unshare is needed for the full-disk tests")
    path = folder.parent / f".{folder.name}-script.py"
    path.write_text(script)
    shell = (f"mount -t tmpfs -o size={size} tmpfs {folder} && exec {sys.executable} {path} "
             + " ".join(str(a) for a in args))
    done = subprocess.run(["unshare", "-r", "-m", "sh", "-c", shell], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
