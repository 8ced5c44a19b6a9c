"""``outcomes``, ``quality`` and ``track``: record actuals from a file, read live quality, and
switch outcome tracking on or off."""
from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
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

SHOWN_PROBLEMS = 20


def csv_chunks(path: Path, rows: int) -> Iterator[tuple[int, int, bytes]]:
    """(first row, row count, CSV bytes with the header) for each ``rows`` rows of ``path``,
    read as it goes: a file of any size streams through with flat memory."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise click.UsageError(f"{path.name} is empty")
        start = 0
        while True:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            n = 0
            for row in reader:
                writer.writerow(row)
                n += 1
                if n >= rows:
                    break
            if n == 0:
                return
            yield start, n, out.getvalue().encode()
            start += n


@main.command()
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chunk-rows", type=click.IntRange(1, 100_000), default=5000, show_default=True)
@click.option("--answers", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every row's answer that is not 'recorded' to this CSV.")
@url_option
@key_option
@json_option
@handle_errors
def outcomes(name: str, file: Path, chunk_rows: int, answers: Path | None, url: str | None,
             key: str | None, as_json: bool) -> None:
    """Record actual outcomes from a CSV (columns prediction_id or the business key, actual,
    time), in chunks, with progress. Re-sending a file counts nothing twice."""
    client = backend(url, key)
    counts: dict[str, int] = {}
    late = 0
    problems: list[dict[str, Any]] = []
    alerts: list[str] = []
    out = open(answers, "w", newline="") if answers else None
    writer = csv.writer(out) if out else None
    if writer:
        writer.writerow(["row", "status", "prediction_id", "message"])
    size = os.path.getsize(file)
    columns = [TextColumn("outcomes"), BarColumn(), MofNCompleteColumn(), TransferSpeedColumn(),
               TimeRemainingColumn()]
    try:
        with Progress(*columns, console=err_console, transient=False) as progress:
            task = progress.add_task("outcomes", total=size)
            done = 0
            for start, _rows, chunk in csv_chunks(file, chunk_rows):
                report = client.record_outcomes(name, chunk)
                for status, count in report["counts"].items():
                    counts[status] = counts.get(status, 0) + count
                late += report.get("late", 0)
                if report.get("alert"):
                    alerts.append(report["alert"])
                for a in report["answers"]:
                    if a["status"] in ("recorded", "replaced", "unchanged"):
                        continue
                    a = {**a, "row": a["row"] + start}
                    if len(problems) < SHOWN_PROBLEMS:
                        problems.append(a)
                    if writer:
                        writer.writerow([a["row"], a["status"], a.get("prediction_id", ""),
                                         a.get("message", "")])
                done += len(chunk) - chunk.index(b"\n") - 1  # the header rides on every chunk
                progress.update(task, completed=min(done, size))
            progress.update(task, completed=size)
    finally:
        if out:
            out.close()
    if as_json:
        print_json({"model": name, "counts": counts, "late": late, "alerts": alerts,
                    "problems": problems})
        return
    total = sum(counts.values())
    console.print(f"{total} outcomes for [bold]{name}[/bold]: " + ", ".join(
        f"{n} {status}" for status, n in sorted(counts.items())) + (f" ({late} late)" if late
                                                                    else ""))
    for a in problems:
        console.print(f"  row {a['row']}: {a['status']}: {a.get('message', '')}",
                      highlight=False)
    for alert in alerts:
        console.print(f"[red]{alert}[/red]")


@main.command()
@click.argument("name")
@click.option("--version", "version", type=int, help="One version only.")
@click.option("--since", type=click.DateTime(), help="Predictions made from this time (UTC).")
@click.option("--until", type=click.DateTime(), help="Predictions made before this time (UTC).")
@click.option("--last", type=click.IntRange(1), help="Only the newest N outcomes.")
@click.option("--window-hours", type=click.IntRange(1, 8760), default=24, show_default=True)
@url_option
@key_option
@json_option
@handle_errors
def quality(name: str, version: int | None, since: datetime | None, until: datetime | None,
            last: int | None, window_hours: int, url: str | None, key: str | None,
            as_json: bool) -> None:
    """Live quality from recorded outcomes, per version, against the holdout."""
    from ..codecs.outcomes import parse_time

    # click gives naive times: they are UTC
    params: dict[str, Any] = {
        "version": version, "last": last, "window_hours": window_hours,
        "since": parse_time(since.isoformat())[0] if since else None,
        "until": parse_time(until.isoformat())[0] if until else None}
    data = backend(url, key).outcome_quality(name, params)
    if as_json:
        print_json(data)
        return
    if not data["versions"]:
        console.print(f"no outcomes recorded for {name} yet")
    for v in data["versions"]:
        table = Table("metric", "live", "holdout", title=f"{name} v{v['version']}: "
                      f"{v['matched']} of {v['scored']} predictions matched")
        for metric, value in v["metrics"].items():
            base = v["holdout"].get(metric)
            table.add_row(metric, f"{value:.4f}", f"{base:.4f}" if base is not None else "")
        console.print(table)
        if v.get("delay"):
            console.print(f"delay to outcome: median {v['delay']['median_hours']:.1f} h, "
                          f"p90 {v['delay']['p90_hours']:.1f} h")
    if data.get("alert"):
        a = data["alert"]
        state = "[red]degraded[/red]" if a["degraded"] else "ok"
        console.print(f"alert: {a['metric']} {a['live']:.4f} vs holdout {a['holdout']:.4f} "
                      f"over the last {a['matched']} outcomes: {state}")


@main.command()
@click.argument("name")
@click.option("--business-key", help="The business key column requests carry.")
@click.option("--off", is_flag=True, help="Stop keeping scored rows for outcomes.")
@click.option("--metric", help="The alert's metric (default roc_auc, accuracy or r2).")
@click.option("--max-drop", type=float, help="How much worse than the holdout it may get.")
@click.option("--last", type=click.IntRange(10), help="The alert's window: the newest N.")
@click.option("--min-outcomes", type=click.IntRange(1), help="Fewer decide nothing.")
@url_option
@key_option
@json_option
@handle_errors
def track(name: str, business_key: str | None, off: bool, metric: str | None,
          max_drop: float | None, last: int | None, min_outcomes: int | None, url: str | None,
          key: str | None, as_json: bool) -> None:
    """Switch outcome tracking on (every scored row kept for joining) or off."""
    alert = {k: v for k, v in (("metric", metric), ("max_drop", max_drop), ("last", last),
                               ("min_outcomes", min_outcomes)) if v is not None}
    change: dict[str, Any] = {"enabled": not off}
    if business_key:
        change["key"] = business_key
    if alert:
        change["alert"] = alert
    settings = backend(url, key).set_monitoring(name, {"outcomes": change})
    if as_json:
        print_json(settings)
        return
    o = settings.get("outcomes") or {}
    console.print(f"outcome tracking for [bold]{name}[/bold]: "
                  + ("on" if o.get("enabled") else "off")
                  + (f", business key {o['key']!r}" if o.get("key") else ""))


@main.command("outcome-sources")
@click.argument("name")
@click.option("--run", "run_now", is_flag=True, help="Read the enabled sources now, due or not.")
@click.option("--source", help="Only the source so named (with --run).")
@url_option
@key_option
@json_option
@handle_errors
def outcome_sources(name: str, run_now: bool, source: str | None, url: str | None,
                    key: str | None, as_json: bool) -> None:
    """The model's scheduled outcome sources (monitoring.outcomes.sources) with their last
    runs; --run reads them now."""
    client = backend(url, key)
    data = client.run_outcome_sources(name, source) if run_now else client.outcome_sources(name)
    if as_json:
        print_json(data)
        return
    if not data["sources"]:
        console.print(f"{name} has no outcome sources: declare them in the monitoring "
                      "document's outcomes.sources")
    for run in data.get("runs", []):
        counts = ", ".join(f"{n} {s}" for s, n in sorted(run["counts"].items())) or "nothing new"
        line = f"{run['source']}: {run['status']}: {run['rows']} rows ({counts})"
        if run.get("reason"):
            line += f": {run['reason']}"
        console.print(line, highlight=False)
        for problem in run.get("file_errors", []):
            console.print(f"  [red]{problem['file']}: {problem['reason']}[/red]", highlight=False)
    if data["sources"]:
        table = Table("source", "kind", "reads", "every", "state", "last run", "rows",
                      "next run", title=f"outcome sources of {name}")
        for s in data["sources"]:
            reads = s.get("glob") or s.get("url", "")
            state = s["state"] if not s.get("error") else f"{s['state']}: {s['error']}"
            table.add_row(s["name"], s["kind"], reads, f"{s['every_minutes']} min", state,
                          s.get("last_run_at") or "", str(s.get("rows") or 0),
                          s.get("next_run_at") or "")
        console.print(table)
