"""The status dashboard and the model report, rendered on the server (charts as SVG)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request, send_from_directory

from ..reports.dashboard import dashboard as dashboard_data
from ..reports.model_report import report_data, report_xlsx
from ..reports.render import render
from .auth import SESSION_COOKIE, current_key, public, requires
from .excel import XLSX, namespace, public_base
from .fields import ModelPath
from .http import services
from .openapi import operation, problem_response

REPORTS = Path(__file__).resolve().parents[1] / "reports"
bp = Blueprint("reports", __name__)
REFRESH_SECONDS = 15
_HTML = {"200": {"description": "HTML page", "content": {"text/html": {
    "schema": {"type": "string"}}}}}


@bp.get("/dashboard")
@requires("read")
@operation("Status dashboard: health, models, traffic, latency, errors, drift, deployments",
           tags=["monitoring"], responses=_HTML)
def dashboard() -> Response:
    svc = services()
    caller = current_key()
    signed_in = caller.actor if caller.kind == "person" and SESSION_COOKIE in request.cookies \
        else ""
    html = render("dashboard.html", d=dashboard_data(svc.registry, svc.settings),
                  refresh=REFRESH_SECONDS, signed_in=signed_in)
    return Response(html, mimetype="text/html")


@bp.get("/models/<name>/report")
@requires("read")
@operation("Model report (printable HTML)", tags=["monitoring"], path=ModelPath,
           responses={**_HTML, "404": problem_response("No such model")})
def report(name: str) -> Response:
    data = report_data(services().registry, name, public_base(), namespace())
    return Response(render("report.html", r=data), mimetype="text/html")


@bp.get("/models/<name>/report.xlsx")
@requires("read")
@operation("Model report as a workbook", tags=["monitoring"], path=ModelPath,
           responses={"200": {"description": "XLSX", "content": {XLSX: {
               "schema": {"type": "string", "format": "binary"}}}},
               "404": problem_response("No such model")})
def report_workbook(name: str) -> Response:
    data = report_data(services().registry, name, public_base(), namespace())
    return Response(report_xlsx(data), mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}-report.xlsx"'})


@bp.get("/reports/assets/<path:filename>")
@public
def asset(filename: str) -> Response:
    return send_from_directory(REPORTS / "static", filename, max_age=300)
