"""Serving: ``serve`` (gunicorn, refusing a port already taken) and ``demo`` (the example model)."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

import click

from ..clients import LocalBackend
from ..config import Settings
from .common import console, handle_errors, main


@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=None, help="Threads per worker.")
@click.option("--preload/--no-preload", default=None,
              help="Load the application once in the master before forking the workers.")
@click.option("--certfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Serve HTTPS with this PEM certificate (chain); needs --keyfile.")
@click.option("--keyfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The certificate's private key (PEM).")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None,
          preload: bool | None, certfile: Path | None, keyfile: Path | None) -> None:
    """Start the server under gunicorn (HTTPS with --certfile and --keyfile)."""
    settings = Settings.from_env()
    tls = _tls_files(certfile or settings.tls_certfile, keyfile or settings.tls_keyfile)
    from ..registry.factory import build_registry

    build_registry(settings)  # migrate once, here, before the workers start
    # every worker writes its metrics here; /metrics adds them up (a fresh folder per start)
    metrics_dir = settings.home / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    host = host or settings.host
    port = port or settings.port
    _refuse_if_taken(host, port)
    argv = [sys.executable, "-m", "gunicorn", "--config", "python:server.gunicorn_conf",
            "--bind", f"{host}:{port}", "--workers", str(workers or settings.workers),
            "--threads", str(threads or settings.threads)]
    if settings.preload if preload is None else preload:
        argv.append("--preload")
    if tls is not None:
        argv += ["--certfile", str(tls[0]), "--keyfile", str(tls[1])]
    argv.append("server.app:create_app()")
    os.execv(sys.executable, argv)


def _tls_files(certfile: Path | None, keyfile: Path | None) -> tuple[Path, Path] | None:
    """Both files or neither; checked here, so a wrong file is one clear line rather than every
    worker failing its start-up in gunicorn's log."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise click.UsageError("HTTPS needs both --certfile and --keyfile "
                               "(or SCOREBRIDGE_TLS_CERTFILE and SCOREBRIDGE_TLS_KEYFILE)")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise click.ClickException(f"cannot use {certfile} with {keyfile} for HTTPS: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
    return certfile.resolve(), keyfile.resolve()


def _refuse_if_taken(host: str, port: int) -> None:
    """Stop with a clear message when something already listens on ``host:port``. The workers
    bind with SO_REUSEPORT, which would otherwise let a second server share the port (and the
    traffic) with the first without a word."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror} (is "
                                       "another server running there?)") from None


@main.command()
@click.option("--force", is_flag=True, help="Register a new version even if 'churn' exists.")
@handle_errors
def demo(force: bool) -> None:
    """Train the example churn model and register it as 'churn'."""
    from ..demo import DESCRIPTION, NAME, TARGET, train_demo

    local = LocalBackend(Settings.from_env(), actor="scorebridge demo")
    existing = {m["name"] for m in local.list_models()}
    if NAME in existing and not force:
        console.print(f"model '{NAME}' is already registered (use --force for a new version)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        with console.status("training the churn model on generated data…"):
            paths = train_demo(Path(tmp))
        info = local.register(NAME, paths["artifact"], sample=paths["sample"],
                              holdout=paths["holdout"], target=TARGET, description=DESCRIPTION,
                              tags={"source": "scorebridge demo"})
    console.print(f"registered [bold]{NAME}[/bold] version {info['version']} "
                  f"(aliases: {', '.join(info['aliases']) or 'none'}); metrics: "
                  + ", ".join(f"{k}={v:.3f}" for k, v in info["metrics"].items()))
