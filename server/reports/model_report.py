"""The model report: model card, version history with gate results, deployment details, how to call
it from every client, and live behaviour with charts. Printable HTML, and an XLSX for business
readers (built with openpyxl, with native Excel charts)."""
from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Any, Callable

from openpyxl import Workbook
from openpyxl.chart import LineChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill

from ..codecs.safe_cells import safe_cell
from ..evaluation.stored import analysis_for
from ..registry.service import PRODUCTION, Registry, VersionInfo
from ..scoring.runtime import LoadedModel
from ..telemetry.monitoring import model_monitoring
from ..types import Signature, example_frame
from .charts import line_chart
from .live import series, summary
from .outcomes import outcome_section
from .performance import Analysed, Performance, performance, sheets


def _describe_column(col: Any) -> str:
    if col.categories:
        shown = ", ".join(str(c) for c in col.categories[:12])
        return f"one of: {shown}" + (" …" if len(col.categories) > 12 else "")
    if col.minimum is not None and col.maximum is not None:
        return f"{col.type}, trained on {col.minimum:g} to {col.maximum:g}"
    return col.type


def holdout_performance(registry: Registry, subject: VersionInfo | None,
                        production: VersionInfo | None,
                        load: Callable[[VersionInfo], LoadedModel] | None) -> Performance | None:
    """The reported version's analysis and, when it is not production, production's beside it
    (each computed now and stored if the version predates analyses and ``load`` is given)."""
    if subject is None:
        return None

    def analysed(info: VersionInfo, label: str) -> Analysed:
        return Analysed(label, info.version, info.metrics, analysis_for(registry, info, load))

    baseline = None
    if production is not None and production.version != subject.version:
        baseline = analysed(production, f"v{production.version} (production)")
    own = f"v{subject.version}" + (" (production)" if baseline is None and
                                   PRODUCTION in subject.aliases else "")
    return performance(analysed(subject, own), baseline)


def report_data(registry: Registry, name: str, base_url: str, namespace: str = "ML", *,
                version: int | None = None,
                load: Callable[[VersionInfo], LoadedModel] | None = None) -> dict[str, Any]:
    """Everything the report shows; ``version`` reports that version's holdout performance
    beside production's, ``load`` lets versions registered before analyses get one."""
    model = registry.get_model(name)
    prod = model.production
    subject = registry.get_version(name, version) if version is not None else prod
    signature = Signature.from_dict(prod.signature) if prod else None
    events = registry.events(name, limit=500)
    since = next((e for e in events if e.kind in ("promoted", "rolled_back")
                  and e.detail.get("alias") == PRODUCTION), None)
    s = series(registry, name)
    monitoring = model_monitoring(registry, name) if prod else None
    example = example_frame(signature, 1).iloc[0].tolist() if signature else []
    example = [v.item() if hasattr(v, "item") else v for v in example]
    last = chr(ord("A") + len(signature.inputs) - 1) if signature else "F"
    reference = prod.reference if prod else {}
    return {
        "name": name, "description": model.description, "model": model, "production": prod,
        "signature": signature, "inputs": [
            {"name": c.name, "type": c.type, "allowed": _describe_column(c),
             "missing": "handled" if c.accepts_missing else "refused",
             "unknown": {True: "handled", False: "refused", None: "–"}[c.accepts_unknown]}
            for c in (signature.inputs if signature else ())],
        "training": {"rows": reference.get("rows"), "columns": _training_summary(reference)},
        "metrics": prod.metrics if prod else {},
        "versions": sorted(model.versions, key=lambda v: -v.version),
        "since": since, "policy": model.policy,
        # which engine answers the production version, and why (registration's verification)
        "engine": prod.public()["runtime"] if prod else {"engine": "", "note": ""},
        "endpoints": {
            "predict": f"{base_url}/api/v1/models/{name}/predict",
            "odata": f"{base_url}/odata/Predictions_{name.replace('-', '_')}",
            "mlflow": f"{base_url}/invocations (X-Model: {name})",
            "v2": f"{base_url}/v2/models/{name}/infer",
            "workbook": f"{base_url}/api/v1/models/{name}/score-workbook",
            "template": f"{base_url}/excel/v1/template/{name}.xlsx",
        },
        "calls": {
            "excel": f'={namespace}.PREDICT(A2:{last}2,"{name}")',
            "xlwings": f'=PREDICT(A2:{last}2,"{name}")',
            "powerbi": f'ScoreBridge.Predict("{base_url}", "{name}", YourTable)',
            "curl": (f"curl -s -H 'X-API-Key: $KEY' -H 'Content-Type: application/json' "
                     f"-d '{{\"rows\": [{_json(example)}]}}' {base_url}/api/v1/models/{name}/predict"),
        },
        "live": summary(s), "series": s, "monitoring": monitoring,
        "charts": [line_chart("Requests per minute (last hour)", s.labels, {"requests": s.requests}),
                   line_chart("Latency (ms)", s.labels, {"p50": s.p50, "p95": s.p95}, " ms"),
                   line_chart("Errors (% of requests)", s.labels, {"errors": s.errors}, "%")],
        "generated": datetime.now(timezone.utc),
        "performance": holdout_performance(registry, subject, prod, load),
        "outcomes": outcome_section(registry, name),
    }


def report_json_data(data: dict[str, Any]) -> dict[str, Any]:
    """The report's holdout part as JSON: the reported version's analysis and metrics, and
    production's beside a candidate's (``baseline``, else null)."""
    perf: Performance | None = data["performance"]

    def one(a: Analysed | None) -> dict[str, Any] | None:
        return None if a is None else {"version": a.version, "label": a.label,
                                       "metrics": a.metrics, "analysis": a.analysis}

    return {"model": data["name"],
            "production_version": data["production"].version if data["production"] else None,
            "version": one(perf.subject) if perf else None,
            "baseline": one(perf.baseline) if perf else None}


def _training_summary(reference: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per input from the registration sample: range and mean, or the top categories."""
    out = []
    for name, stats in (reference.get("columns") or {}).items():
        if "frequencies" in stats:
            top = sorted(stats["frequencies"].items(), key=lambda kv: -kv[1])[:4]
            summary = ", ".join(f"{k} {v:.0%}" for k, v in top)
        elif "mean" in stats:
            summary = (f"{stats['min']:g} to {stats['max']:g}, mean {stats['mean']:.4g}")
        else:
            summary = "no values"
        nulls = stats.get("nulls", 0)
        out.append({"name": name, "summary": summary,
                    "missing": f"{nulls / stats['count']:.1%}" if stats.get("count") else "–"})
    return out


def _json(values: list[Any]) -> str:
    import json

    return json.dumps(values)


def report_xlsx(data: dict[str, Any]) -> bytes:
    """The same report as a workbook: one sheet per part, an Excel chart of live traffic."""
    wb = Workbook()
    bold, head_fill = Font(bold=True), PatternFill("solid", fgColor="1F4E79")

    def table(ws: Any, header: list[str], rows: list[list[Any]], start: int = 1) -> None:
        for j, h in enumerate(header, start=1):
            cell = ws.cell(start, j, h)
            cell.font, cell.fill = Font(bold=True, color="FFFFFF"), head_fill
        for i, row in enumerate(rows, start=start + 1):
            for j, v in enumerate(row, start=1):
                ws.cell(i, j, safe_cell(v))
        for j in range(1, len(header) + 1):
            ws.column_dimensions[chr(64 + j)].width = 22 if j > 1 else 28

    card = wb.active
    card.title = "Model card"
    prod = data["production"]
    pairs = [("Model", data["name"]), ("Description", data["description"]),
             ("Production version", prod.version if prod else "none"),
             ("Output", data["signature"].output.kind if data["signature"] else ""),
             ("Classes", ", ".join(map(str, data["signature"].output.classes or ()))
              if data["signature"] else ""),
             ("Training sample rows", data["training"]["rows"]),
             ("Generated (UTC)", data["generated"].strftime("%Y-%m-%d %H:%M"))]
    pairs += [(f"Metric: {k}", v) for k, v in data["metrics"].items()]
    for r, (k, v) in enumerate(pairs, start=1):
        card.cell(r, 1, k).font = bold
        card.cell(r, 2, safe_cell(v)).alignment = Alignment(wrap_text=True)
    card.column_dimensions["A"].width, card.column_dimensions["B"].width = 26, 90
    table(wb.create_sheet("Inputs"), ["Column", "Type", "Allowed values", "Missing", "Unknown"],
          [[c["name"], c["type"], c["allowed"], c["missing"], c["unknown"]]
           for c in data["inputs"]])
    table(wb.create_sheet("Training data"), ["Column", "In the registration sample", "Missing"],
          [[c["name"], c["summary"], c["missing"]] for c in data["training"]["columns"]])
    table(wb.create_sheet("Versions"), ["Version", "Registered", "By", "Aliases", "Gates",
                                        "Rolled back", "Description"],
          [[v.version, v.created_at.strftime("%Y-%m-%d %H:%M"), v.created_by,
            ", ".join(v.aliases), "; ".join(f"{g['gate']}: {'passed' if g['passed'] else 'FAILED'}"
                                            f" ({g['detail']})" for g in v.gates),
            "yes" if v.rolled_back else "", v.description] for v in data["versions"]])
    deploy = wb.create_sheet("Deployment")
    since = data["since"]
    rows = [("Policy", data["policy"].get("policy", "auto")),
            ("Production since", since.created_at.strftime("%Y-%m-%d %H:%M") if since else ""),
            ("By", since.actor if since else ""),
            ("Why", since.detail.get("reason", "") if since else ""),
            ("Scoring engine", data["engine"]["note"])]  # the note names the engine first
    rows += [(f"Endpoint: {k}", v) for k, v in data["endpoints"].items()]
    rows += [(f"Call from {k}", v) for k, v in data["calls"].items()]
    for r, (k, v) in enumerate(rows, start=1):
        deploy.cell(r, 1, k).font = bold
        if isinstance(v, str) and v.startswith("="):  # our own formula, shown as text to copy
            deploy.cell(r, 2, v).data_type = "s"
        else:
            deploy.cell(r, 2, safe_cell(v))
    deploy.column_dimensions["A"].width, deploy.column_dimensions["B"].width = 24, 110
    live = wb.create_sheet("Live")
    s = data["series"]
    table(live, ["Minute (UTC)", "Requests", "Errors %", "p50 ms", "p95 ms"],
          [[s.labels[i], s.requests[i], s.errors[i], s.p50[i], s.p95[i]]
           for i in range(len(s.labels))])
    chart = LineChart()
    chart.title, chart.y_axis.title, chart.x_axis.title = "Requests per minute", "requests", "minute"
    chart.add_data(Reference(live, min_col=2, min_row=1, max_row=len(s.labels) + 1),
                   titles_from_data=True)
    chart.set_categories(Reference(live, min_col=1, min_row=2, max_row=len(s.labels) + 1))
    chart.width, chart.height = 24, 8
    live.add_chart(chart, "G2")
    mon = data["monitoring"]
    if mon:
        drift = wb.create_sheet("Drift")
        drift.cell(1, 1, "Status").font = bold
        drift.cell(1, 2, mon["status"])
        drift.cell(2, 1, "Rows in window").font = bold
        drift.cell(2, 2, mon["rows"])
        table(drift, ["Feature", "Status", "PSI", "Distance", "Null rate"],
              [[name, f["status"], f.get("psi"), f.get("wasserstein", f.get("jensen_shannon")),
                f.get("null_rate")] for name, f in mon["features"].items()], start=4)
    perf = data.get("performance")
    for sheet, header, cells in sheets(perf) if perf is not None else []:
        table(wb.create_sheet(sheet), header, cells)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
