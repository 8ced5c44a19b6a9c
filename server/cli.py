"""The ``scorebridge`` command line.

Without ``--url`` commands work on the local registry in ``SCOREBRIDGE_HOME``; with ``--url`` they call
a server's HTTP API with the key from ``--key`` or ``SCOREBRIDGE_API_KEY``. Every command calls one
:class:`~server.clients.Backend` method, so both paths print the same; the local one runs the same
service operations (:mod:`server.services`) as the HTTP API.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .clients import Backend, LocalBackend, RemoteBackend
from .config import Settings
from .errors import ScoreBridgeError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

url_option = click.option("--url", envvar="SCOREBRIDGE_URL", default=None,
                          help="A ScoreBridge server; without it, the local registry is used.")
key_option = click.option("--key", envvar="SCOREBRIDGE_API_KEY", default=None,
                          help="API key for --url (default: $SCOREBRIDGE_API_KEY).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def backend(url: str | None, key: str | None) -> Backend:
    return RemoteBackend(url, key) if url else LocalBackend(Settings.from_env())


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Problems become a one-line message and exit code 1, never a traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScoreBridgeError as exc:
            err_console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            for e in exc.errors[:20]:
                where = " ".join(filter(None, [f"row {e.row}" if e.row is not None else "",
                                               f"column {e.column}" if e.column else ""]))
                err_console.print(f"  {where}: {e.message}", highlight=False)
            sys.exit(1)
    return wrapper


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group()
@click.version_option(package_name="scorebridge")
def main() -> None:
    """ScoreBridge: serve scikit-learn models to Excel, Power BI and HTTP apps."""


@main.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=None, help="Threads per worker.")
@click.option("--preload/--no-preload", default=None,
              help="Load the application once in the master before forking the workers.")
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None,
          preload: bool | None) -> None:
    """Start the server under gunicorn."""
    settings = Settings.from_env()
    from .registry.factory import build_registry

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
    argv.append("server.app:create_app()")
    os.execv(sys.executable, argv)


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
    from .demo import DESCRIPTION, NAME, TARGET, train_demo

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


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {tag!r}", param_hint="--tag")
        out[key] = value
    return out


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (lower-case letters, digits, - and _).")
@click.option("--sample", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV/XLSX/Parquet of typical inputs (signature and reference statistics).")
@click.option("--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Labelled data for server-computed metrics (needs --target).")
@click.option("--target", help="Label column of the holdout set.")
@click.option("--metrics", help='Extra metrics as JSON, e.g. \'{"auc": 0.91}\'.')
@click.option("--description", default="")
@click.option("--tag", "tags", multiple=True, help="K=V, repeatable.")
@click.option("--trust-pickle", is_flag=True,
              help="Load a .pkl/.joblib artifact (runs its code!). Admin only.")
@url_option
@key_option
@json_option
@handle_errors
def register(file: Path, name: str, sample: Path | None, holdout: Path | None,
             target: str | None, metrics: str | None, description: str, tags: tuple[str, ...],
             trust_pickle: bool, url: str | None, key: str | None, as_json: bool) -> None:
    """Register FILE (.skops, or a trusted pickle) as a new version of a model."""
    if holdout and not target:
        raise click.UsageError("--holdout needs --target")
    try:
        parsed_metrics = json.loads(metrics) if metrics else {}
    except json.JSONDecodeError:
        raise click.BadParameter("not valid JSON", param_hint="--metrics") from None
    # checks, the holdout and compiling (a large forest: tens of seconds of C compiler)
    with err_console.status(f"registering {file.name}: checking, evaluating, compiling…"):
        info = backend(url, key).register(name, file, sample=sample, holdout=holdout,
                                          target=target, metrics=parsed_metrics,
                                          description=description, tags=_parse_tags(tags),
                                          trust_pickle=trust_pickle)
    if as_json:
        print_json(info)
        return
    console.print(f"registered [bold]{name}[/bold] version {info['version']} "
                  f"(sha256 {info['sha256'][:12]}…, aliases: {', '.join(info['aliases']) or 'none'})")
    print_gates(info)


def print_gates(info: dict[str, Any]) -> None:
    if info.get("pipeline") != "done":
        console.print("deployment: queued; a running server processes it (see "
                      f"`scorebridge versions {info['model']}`)")
        return
    for gate in info.get("gates", []):
        mark = "[green]passed[/green]" if gate["passed"] else "[red]FAILED[/red]"
        console.print(f"  gate {gate['gate']:<8} {mark}  {gate['detail']}", highlight=False)


@main.command()
@url_option
@key_option
@json_option
@handle_errors
def models(url: str | None, key: str | None, as_json: bool) -> None:
    """List registered models."""
    found = backend(url, key).list_models()
    if as_json:
        print_json(found)
        return
    table = Table("name", "production", "latest", "aliases", "description")
    for m in found:
        table.add_row(m["name"], str(m["production_version"] or "-"), str(m["latest_version"]),
                      ", ".join(f"{a}={v}" for a, v in sorted(m["aliases"].items())),
                      (m["description"] or "")[:60])
    console.print(table)


@main.command()
@click.argument("name")
@url_option
@key_option
@json_option
@handle_errors
def versions(name: str, url: str | None, key: str | None, as_json: bool) -> None:
    """List a model's versions."""
    model = backend(url, key).get_model(name)
    if as_json:
        print_json(model["versions"])
        return
    table = Table("version", "aliases", "gates", "created", "by", "metrics")
    for v in model["versions"]:
        metrics = ", ".join(f"{k}={val:.3g}" for k, val in list(v["metrics"].items())[:4])
        flag = " (rolled back)" if v["rolled_back"] else ""
        gates = v["gate_status"] or v["pipeline"]
        failed = [g["gate"] for g in v.get("gates", []) if not g["passed"]]
        if failed:
            gates += f" ({', '.join(failed)})"
        table.add_row(str(v["version"]), ", ".join(v["aliases"]) + flag, gates,
                      v["created_at"][:19], v["created_by"], metrics)
    console.print(table)
    console.print(f"policy: {model['policy'].get('policy', 'auto')}")


@main.command()
@click.argument("name")
@url_option
@key_option
@handle_errors
def show(name: str, url: str | None, key: str | None) -> None:
    """Show a model: signature, aliases, versions (JSON)."""
    print_json(backend(url, key).get_model(name))


@main.command()
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default="production", show_default=True)
@click.option("--reason", default="")
@url_option
@key_option
@handle_errors
def promote(name: str, version: int, alias: str, reason: str, url: str | None,
            key: str | None) -> None:
    """Point an alias (production by default) at VERSION."""
    info = backend(url, key).set_alias(name, alias, version, reason or "promoted from the CLI")
    console.print(f"{name}@{alias} -> version {info['version']}")


@main.command()
@click.argument("name")
@click.argument("mode", type=click.Choice(["manual", "auto", "canary", "shadow"]))
@click.option("--share", type=click.FloatRange(0, 1), help="Canary/shadow share of traffic.")
@click.option("--min-requests", type=click.IntRange(1), help="Canary/shadow evidence needed.")
@click.option("--max-seconds", type=click.FloatRange(0), help="Canary time limit.")
@click.option("--max-error-rate-increase", type=click.FloatRange(0, 1),
              help="Canary: allowed error-rate increase over production.")
@click.option("--max-latency-ratio", type=click.FloatRange(1), help="Canary: latency limit.")
@click.option("--promote-at-agreement", type=click.FloatRange(0, 1),
              help="Shadow: promote when agreement reaches this rate.")
@click.option("--metric", help="Metric gate: the metric to compare (default by model kind).")
@click.option("--tolerance", type=click.FloatRange(0), help="Metric gate tolerance.")
@click.option("--max-latency-ms", type=click.FloatRange(0), help="Latency gate limit.")
@click.option("--max-error-rate", type=click.FloatRange(0, 1),
              help="Automatic rollback threshold after promotion.")
@url_option
@key_option
@json_option
@handle_errors
def policy(name: str, mode: str, share: float | None, min_requests: int | None,
           max_seconds: float | None, max_error_rate_increase: float | None,
           max_latency_ratio: float | None, promote_at_agreement: float | None,
           metric: str | None, tolerance: float | None, max_latency_ms: float | None,
           max_error_rate: float | None, url: str | None, key: str | None,
           as_json: bool) -> None:
    """Set how new versions of NAME reach production."""
    changes: dict[str, Any] = {"policy": mode}

    def put(section: str, field: str, value: Any) -> None:
        if value is not None:
            changes.setdefault(section, {})[field] = value

    if mode in ("canary", "shadow"):
        put(mode, "share", share)
        put(mode, "min_requests", min_requests)
    put("canary", "max_seconds", max_seconds)
    put("canary", "max_error_rate_increase", max_error_rate_increase)
    put("canary", "max_latency_ratio", max_latency_ratio)
    put("shadow", "promote_at_agreement", promote_at_agreement)
    put("gates", "metric", metric)
    put("gates", "tolerance", tolerance)
    put("gates", "max_latency_ms", max_latency_ms)
    put("rollback", "max_error_rate", max_error_rate)
    result = backend(url, key).set_policy(name, changes)
    if as_json:
        print_json(result)
        return
    console.print(f"{name}: policy {result['policy']}")
    if mode in ("canary", "shadow"):
        console.print("  " + ", ".join(f"{k}={v}" for k, v in result[mode].items()))


@main.command()
@click.argument("name")
@click.option("--reason", default="")
@url_option
@key_option
@handle_errors
def rollback(name: str, reason: str, url: str | None, key: str | None) -> None:
    """Return production to the previous good version."""
    info = backend(url, key).rollback(name, reason)
    console.print(f"{name}@production -> version {info['version']} (rolled back)")


@main.command()
@click.argument("name", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@url_option
@key_option
@json_option
@handle_errors
def events(name: str | None, limit: int, url: str | None, key: str | None,
           as_json: bool) -> None:
    """Show the audit trail (all models, or NAME's)."""
    found = backend(url, key).events(name, limit)
    if as_json:
        print_json(found)
        return
    table = Table("id", "time", "model", "version", "event", "by", "detail")
    for e in found:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items() if v is not None)
        table.add_row(str(e["id"]), e["created_at"][:19], e["model"], str(e["version"] or ""),
                      e["kind"], e["actor"], detail[:80])
    console.print(table)


@main.command()
@click.argument("name")
@click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (.csv, .xlsx, .parquet); default INPUT.scored.csv.")
@click.option("--version", "version", type=int, help="Score with this version.")
@click.option("--alias", help="Score with the version this alias points at.")
@click.option("--chunk-rows", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@url_option
@key_option
@handle_errors
def score(name: str, input: Path, output: Path | None, version: int | None, alias: str | None,
          chunk_rows: int, url: str | None, key: str | None) -> None:
    """Score a CSV/XLSX/Parquet file; every input column is kept, predictions appended."""
    from .codecs.file_reader import count_rows, iter_chunks
    from .codecs.file_writer import TableWriter
    from .codecs.scored_output import failed_rows, scored_table

    output = output or input.with_name(input.stem + ".scored.csv")
    client = backend(url, key)
    if input.suffix.lower() == ".xlsx" and output.suffix.lower() == ".xlsx":
        # a workbook in, the same workbook out: sheets, styles and formulas kept
        with console.status(f"scoring {input.name}…"):
            data, used = client.score_workbook(name, input.read_bytes(), version)
        tmp = output.with_name(f".{output.name}.partial")
        tmp.write_bytes(data)
        os.replace(tmp, output)
        console.print(f"scored workbook {input.name} with {name} v{used} -> {output} "
                      "(see its ScoreBridge sheet)")
        return
    total = count_rows(input)
    writer = TableWriter(output)
    bad_rows = 0
    used_version = None
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    try:
        with Progress(*columns, console=err_console, transient=False) as progress:
            task = progress.add_task("score", total=total)
            for chunk in iter_chunks(input, chunk_rows):
                response = client.score_frame(name, chunk.frame, version, alias, chunk.malformed)
                used_version = response["version"]
                # pin the version for the rest of the file, so every row is scored by one version
                version = version or used_version
                scored = scored_table(chunk.arrow(), response, chunk.malformed)
                bad_rows += failed_rows(scored)
                writer.write(scored)
                progress.advance(task, len(chunk))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    console.print(f"scored {writer.rows} rows with {name} v{used_version} -> {output}"
                  + (f" ([yellow]{bad_rows} rows with errors[/yellow], see the 'error' column)"
                     if bad_rows else ""))


@main.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="report.html (default NAME-report.html) or report.xlsx")
@url_option
@key_option
@handle_errors
def report(name: str, output: Path | None, url: str | None, key: str | None) -> None:
    """Write the model report: model card, versions, deployment, how to call it, live behaviour."""
    output = output or Path(f"{name}-report.html")
    fmt = "xlsx" if output.suffix.lower() == ".xlsx" else "html"
    output.write_bytes(backend(url, key).report(name, fmt))
    console.print(f"wrote {output}")


@main.group()
def jobs() -> None:
    """Batch jobs: submit, follow, cancel, fetch the result (locally, or on a server with --url)."""


@jobs.command("submit")
@click.argument("name")
@click.argument("input", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output-format", type=click.Choice(["csv", "xlsx", "parquet"]), default="csv")
@click.option("--strict", is_flag=True, help="Fail the job on the first bad row.")
@click.option("--publish", is_flag=True, help="Publish the result to the OData feed.")
@click.option("--wait/--no-wait", default=True,
              help="Follow progress until the job ends (without --url, the job runs in this "
                   "process, unless a server on the same registry takes it first).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the result when waiting.")
@url_option
@key_option
@handle_errors
def jobs_submit(name: str, input: Path, output_format: str, strict: bool, publish: bool,
                wait: bool, output: Path | None, url: str | None, key: str | None) -> None:
    """Submit INPUT as a batch job for model NAME; with --wait, show progress and save the result.

    Without --url the job is queued in the local registry: with --no-wait, a server running on
    that registry (SCOREBRIDGE_HOME) scores it."""
    client = backend(url, key)
    job = client.submit_job(name, input, output_format, strict, publish)
    console.print(f"job {job['id']} queued (model {name} v{job['version']})")
    if not wait:
        return
    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task("job", total=None)
        job_id = job["id"]
        for job in client.follow_job(job_id):
            progress.update(task, total=job["rows_total"], completed=job["rows_done"])
    if job["status"] != "succeeded":
        err_console.print(f"[red]job {job['status']}:[/red] {job['error']}", highlight=False)
        sys.exit(1)
    target = output or input.with_name(f"{input.stem}.scored.{output_format}")
    client.save_job_result(job["id"], target)
    console.print(f"scored {job['rows_done']} rows ({job['rows_failed']} with errors) -> {target}")


@jobs.command("list")
@url_option
@key_option
@handle_errors
def jobs_list(url: str | None, key: str | None) -> None:
    table = Table("id", "model", "version", "status", "rows", "failed", "created")
    for j in backend(url, key).list_jobs():
        table.add_row(j["id"][:12], j["model"], str(j["version"]), j["status"],
                      str(j["rows_done"]), str(j["rows_failed"]), j["created_at"][:19])
    console.print(table)


@jobs.command("cancel")
@click.argument("job_id")
@url_option
@key_option
@handle_errors
def jobs_cancel(job_id: str, url: str | None, key: str | None) -> None:
    job = backend(url, key).cancel_job(job_id)
    console.print(f"job {job_id}: {job['status']}")


@main.group()
def pipelines() -> None:
    """Scheduled scoring pipelines: create, list, run now, delete."""


@pipelines.command("create")
@click.argument("name")
@click.option("--model", required=True)
@click.option("--alias", default="production", show_default=True)
@click.option("--schedule", required=True, help="cron, e.g. '0 6 * * *'")
@click.option("--source-glob", help="Newest file matching this glob (under the allowed roots).")
@click.option("--source-sql-url", help="SQLAlchemy URL of a database to query (admin).")
@click.option("--source-query", help="The SELECT to score.")
@click.option("--sink", type=click.Choice(["table", "file"]), default="table", show_default=True)
@click.option("--sink-path", help="For --sink file: where the scored file goes.")
@click.option("--sink-format", type=click.Choice(["csv", "parquet", "xlsx"]), default="csv")
@url_option
@key_option
@json_option
@handle_errors
def pipelines_create(name: str, model: str, alias: str, schedule: str, source_glob: str | None,
                     source_sql_url: str | None, source_query: str | None, sink: str,
                     sink_path: str | None, sink_format: str, url: str | None, key: str | None,
                     as_json: bool) -> None:
    """Create pipeline NAME: score a source with MODEL on SCHEDULE, into a sink."""
    if source_glob:
        source: dict[str, Any] = {"kind": "file", "glob": source_glob}
    elif source_sql_url and source_query:
        source = {"kind": "sql", "url": source_sql_url, "query": source_query}
    else:
        raise click.UsageError("give --source-glob, or --source-sql-url with --source-query")
    sink_spec: dict[str, Any] = {"kind": sink}
    if sink == "file":
        if not sink_path:
            raise click.UsageError("--sink file needs --sink-path")
        sink_spec.update(path=sink_path, format=sink_format)
    body = {"name": name, "model": model, "alias": alias, "schedule": schedule,
            "source": source, "sink": sink_spec}
    info = backend(url, key).create_schedule(body)
    if as_json:
        print_json(info)
    else:
        console.print(f"pipeline {name}: next run {info['next_run_at']}")


@pipelines.command("list")
@url_option
@key_option
@handle_errors
def pipelines_list(url: str | None, key: str | None) -> None:
    found = backend(url, key).list_schedules()
    table = Table("name", "model", "schedule", "next run", "last run", "last job", "last error")
    for p in found:
        table.add_row(p["name"], p["model"], p["schedule"], p["next_run_at"][:19],
                      (p["last_run_at"] or "")[:19], (p["last_job_id"] or "")[:12],
                      (p["last_error"] or "")[:40])
    console.print(table)


@pipelines.command("run")
@click.argument("name")
@url_option
@key_option
@handle_errors
def pipelines_run(name: str, url: str | None, key: str | None) -> None:
    """Run NAME now (a running server executes the job)."""
    info = backend(url, key).run_schedule(name)
    if info["last_error"]:
        err_console.print(f"[red]run failed:[/red] {info['last_error']}", highlight=False)
        sys.exit(1)
    console.print(f"pipeline {name}: job {info['last_job_id']} queued")


@pipelines.command("delete")
@click.argument("name")
@url_option
@key_option
@handle_errors
def pipelines_delete(name: str, url: str | None, key: str | None) -> None:
    backend(url, key).delete_schedule(name)
    console.print(f"deleted pipeline {name}")


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@click.option("--scope", "scopes", required=True,
              help="Comma-separated: score, read, deploy, admin.")
@click.option("--name", default="", help="A label, e.g. who holds the key.")
@url_option
@key_option
@handle_errors
def keys_create(scopes: str, name: str, url: str | None, key: str | None) -> None:
    """Create a key; it is printed once and cannot be shown again."""
    created = backend(url, key).create_key([s for s in scopes.split(",") if s], name)
    click.echo(created["key"])
    err_console.print(f"key id {created['id']} with scopes {', '.join(created['scopes'])}: "
                      "store it now, it cannot be shown again")


@keys.command("list")
@url_option
@key_option
@handle_errors
def keys_list(url: str | None, key: str | None) -> None:
    table = Table("id", "name", "scopes", "created", "last used", "revoked")
    for k in backend(url, key).list_keys():
        table.add_row(k["id"], k["name"], ",".join(k["scopes"]), (k["created_at"] or "")[:19],
                      (k["last_used_at"] or "")[:19], (k["revoked_at"] or "")[:19])
    console.print(table)


@keys.command("revoke")
@click.argument("key_id")
@url_option
@key_option
@handle_errors
def keys_revoke(key_id: str, url: str | None, key: str | None) -> None:
    backend(url, key).revoke_key(key_id)
    console.print(f"revoked key {key_id}")


if __name__ == "__main__":
    main()
