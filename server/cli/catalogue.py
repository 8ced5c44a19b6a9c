"""The catalogue: ``register``, ``models``, ``versions``, ``show`` and ``report``."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..scoring.mlflow_model import zip_folder
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


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected K=V, got {tag!r}", param_hint="--tag")
        out[key] = value
    return out


@main.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
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
@click.option("--track-outcomes", is_flag=True,
              help="Keep every scored row for joining the outcomes recorded later.")
@click.option("--outcome-key", help="The business key column requests carry (implies "
                                    "--track-outcomes; never a model input).")
@url_option
@key_option
@json_option
@handle_errors
def register(file: Path, name: str, sample: Path | None, holdout: Path | None,
             target: str | None, metrics: str | None, description: str, tags: tuple[str, ...],
             trust_pickle: bool, track_outcomes: bool, outcome_key: str | None,
             url: str | None, key: str | None, as_json: bool) -> None:
    """Register FILE as a new version of a model: a .skops file, an ONNX graph (.onnx), an MLflow
    model folder (or a .zip of one), or a trusted pickle."""
    if holdout and not target:
        raise click.UsageError("--holdout needs --target")
    try:
        parsed_metrics = json.loads(metrics) if metrics else {}
    except json.JSONDecodeError:
        raise click.BadParameter("not valid JSON", param_hint="--metrics") from None
    # checks, the holdout and compiling (a large forest: tens of seconds of C compiler)
    with err_console.status(f"registering {file.name}: checking, evaluating, compiling…"), \
            tempfile.TemporaryDirectory(prefix="scorebridge-") as tmp:
        if file.is_dir():  # an MLflow model folder travels, and is stored, as a zip
            zipped = Path(tmp) / f"{file.name or 'model'}.zip"
            zipped.write_bytes(zip_folder(file))
            file = zipped
        info = backend(url, key).register(name, file, sample=sample, holdout=holdout,
                                          target=target, metrics=parsed_metrics,
                                          description=description, tags=_parse_tags(tags),
                                          trust_pickle=trust_pickle,
                                          track_outcomes=track_outcomes,
                                          outcome_key=outcome_key)
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
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="report.html (default NAME-report.html) or report.xlsx")
@click.option("--version", "version", type=int,
              help="Report this version's holdout performance (a candidate: beside production's).")
@url_option
@key_option
@handle_errors
def report(name: str, output: Path | None, version: int | None, url: str | None,
           key: str | None) -> None:
    """Write the model report: model card, holdout performance, versions, deployment, how to
    call it, live behaviour."""
    output = output or Path(f"{name}-report.html")
    fmt = "xlsx" if output.suffix.lower() == ".xlsx" else "html"
    output.write_bytes(backend(url, key).report(name, fmt, version))
    console.print(f"wrote {output}")
