"""Batch jobs (``jobs submit|list|cancel``) and scheduled scoring runs (``pipelines``)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .common import (
    backend,
    console,
    err_console,
    handle_errors,
    json_option,
    key_option,
    main,
    print_json,
    url_option,
)


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
