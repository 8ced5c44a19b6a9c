"""Deployment: ``promote``, ``policy``, ``rollback``, the audit trail (``events``) and who scores
with a model (``traffic``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.table import Table

from .common import backend, console, handle_errors, json_option, key_option, main, print_json, url_option


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
@click.argument("version", type=int)
@click.option("--refuse", is_flag=True, help="Refuse instead of approving.")
@click.option("--reason", default="")
@url_option
@key_option
@handle_errors
def approve(name: str, version: int, refuse: bool, reason: str, url: str | None,
            key: str | None) -> None:
    """Approve (or --refuse) VERSION for promotion under a four-eyes policy; not by the person
    who registered it (with --url: a sign-in token, not an API key)."""
    decided = backend(url, key).decide_approval(name, version, not refuse, reason)
    console.print(f"{name} v{version}: {decided['decision'].replace('_', ' ')} by "
                  f"{decided['decided_by']} (registered by {decided['registered_by']})",
                  highlight=False)


@main.command()
@click.argument("name")
@click.argument("mode", type=click.Choice(["manual", "auto", "canary", "shadow"]))
@click.option("--share", type=click.FloatRange(0, 1), help="Canary/shadow share of traffic.")
@click.option("--min-requests", type=click.IntRange(1), help="Canary/shadow evidence needed.")
@click.option("--max-seconds", type=click.FloatRange(0), help="Canary time limit.")
@click.option("--max-error-rate-increase", type=click.FloatRange(0, 1),
              help="Canary: allowed error-rate increase over production.")
@click.option("--max-latency-ratio", type=click.FloatRange(1), help="Canary: latency limit.")
@click.option("--outcome-metric", help="Canary: judge on recorded outcomes with this metric "
                                       "(default by model kind).")
@click.option("--outcome-max-drop", type=click.FloatRange(0),
              help="Canary: how much worse than production's live metric it may be (0.02).")
@click.option("--min-outcomes", type=click.IntRange(1),
              help="Canary: matched outcomes needed to judge on them (200).")
@click.option("--no-outcomes", is_flag=True, help="Canary: do not judge on outcomes.")
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
           max_latency_ratio: float | None, outcome_metric: str | None,
           outcome_max_drop: float | None, min_outcomes: int | None, no_outcomes: bool,
           promote_at_agreement: float | None,
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
    outcomes = {k: v for k, v in (("metric", outcome_metric), ("max_drop", outcome_max_drop),
                                  ("min_outcomes", min_outcomes)) if v is not None}
    if no_outcomes and outcomes:
        raise click.UsageError("--no-outcomes goes with none of the other outcome options")
    if outcomes or no_outcomes:
        changes.setdefault("canary", {})["outcomes"] = None if no_outcomes else outcomes
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
@click.option("--by", "by", type=click.Choice(["user"]), default="user", show_default=True,
              help="The breakdown: per key or signed-in person.")
@click.option("--hours", type=click.IntRange(1, 24 * 400), default=24, show_default=True,
              help="The window, in hours back from now.")
@click.option("--since", type=click.DateTime(), help="From this time (UTC) instead of --hours.")
@url_option
@key_option
@json_option
@handle_errors
def traffic(name: str, by: str, hours: int, since: datetime | None, url: str | None,
            key: str | None, as_json: bool) -> None:
    """Scoring traffic of NAME by user: requests, errors and rows per API key or person
    (counted per hour; what was scored is never kept)."""
    start = since.replace(tzinfo=timezone.utc) if since else \
        datetime.now(timezone.utc) - timedelta(hours=hours)
    data = backend(url, key).traffic_by_user(name, start)
    if as_json:
        print_json(data)
        return
    if not data["users"]:
        console.print(f"no scoring traffic for {name} since {start.isoformat()[:16]} UTC")
        return
    table = Table("user", "name", "requests", "errors", "rows", "last hour",
                  title=f"{name}: scoring by {by} since {start.isoformat()[:16]} UTC")
    for u in data["users"]:
        table.add_row(u["user"], u["name"], str(u["requests"]), str(u["errors"]), str(u["rows"]),
                      u["last_hour"][:16])
    console.print(table)
