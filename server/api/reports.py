"""The status dashboard and the model report, rendered on the server (charts as SVG)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request, send_from_directory
from pydantic import Field

from ..reports.dashboard import dashboard as dashboard_data
from ..reports.model_report import report_data, report_json_data, report_xlsx
from ..reports.render import render
from .auth import SESSION_COOKIE, current_key, public, requires, visible_models
from .declare import Parameters
from .excel import XLSX, namespace, public_base
from .fields import ModelPath, VersionNumber
from .http import json_response, services
from .openapi import operation, problem_response

REPORTS = Path(__file__).resolve().parents[1] / "reports"
bp = Blueprint("reports", __name__)
REFRESH_SECONDS = 15
_HTML = {"200": {"description": "HTML page", "content": {"text/html": {
    "schema": {"type": "string"}}}}}
_MISSING = {"404": problem_response("No such model or version")}


class ReportQuery(Parameters):
    version: VersionNumber | None = Field(
        None, description="report this version's holdout performance (a candidate: beside "
                          "production's) instead of production's")


def _data(name: str, query: ReportQuery) -> dict[str, Any]:
    svc = services()
    return report_data(svc.registry, name, public_base(), namespace(), version=query.version,
                       load=svc.scorer.cache.get)


@bp.get("/dashboard")
@requires("read")
@operation("Status dashboard: health, models, traffic, latency, errors, drift, deployments",
           tags=["monitoring"], responses=_HTML)
def dashboard() -> Response:
    svc = services()
    caller = current_key()
    signed_in = caller.actor if caller.kind == "person" and SESSION_COOKIE in request.cookies \
        else ""
    data = dashboard_data(svc.registry, svc.settings, only=visible_models())
    html = render("dashboard.html", d=data, refresh=REFRESH_SECONDS, signed_in=signed_in)
    return Response(html, mimetype="text/html")


@bp.get("/models/<name>/report")
@requires("read")
@operation("Model report (printable HTML)", tags=["monitoring"], path=ModelPath,
           query=ReportQuery, responses={**_HTML, **_MISSING})
def report(name: str, query: ReportQuery) -> Response:
    return Response(render("report.html", r=_data(name, query)), mimetype="text/html")


@bp.get("/models/<name>/report.json")
@requires("read")
@operation("The model report's holdout analysis as JSON (importance, partial dependence, "
           "curves, residuals, segments; a candidate's beside production's)",
           tags=["monitoring"], path=ModelPath, query=ReportQuery,
           responses={"200": {"description": "the analyses", "content": {"application/json": {
               "schema": {"type": "object"}}}}, **_MISSING})
def report_json(name: str, query: ReportQuery) -> Response:
    return json_response(report_json_data(_data(name, query)))


@bp.get("/models/<name>/report.xlsx")
@requires("read")
@operation("Model report as a workbook", tags=["monitoring"], path=ModelPath,
           query=ReportQuery,
           responses={"200": {"description": "XLSX", "content": {XLSX: {
               "schema": {"type": "string", "format": "binary"}}}}, **_MISSING})
def report_workbook(name: str, query: ReportQuery) -> Response:
    return Response(report_xlsx(_data(name, query)), mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}-report.xlsx"'})


@bp.get("/reports/assets/<path:filename>")
@public
def asset(filename: str) -> Response:
    return send_from_directory(REPORTS / "static", filename, max_age=300)
