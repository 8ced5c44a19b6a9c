"""Excel: the add-in's files and manifest, its batch endpoint, WEBSERVICE(), workbooks.

Every Excel path (Office.js custom functions, xlwings, Google Sheets, WEBSERVICE, uploaded
workbooks) ends in the same scoring core through the range and workbook codecs.
"""
from __future__ import annotations

import csv
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, request, send_from_directory
from jinja2 import Environment, FileSystemLoader, select_autoescape

from .. import __version__
from ..codecs.excel import decode_batch, is_header, table_from_range
from ..types import RawTable, ScoreOptions, ScoreResult, Signature
from ..codecs.workbook import score_workbook, starter_workbook
from ..errors import InvalidInput, MalformedRequest, ScoreBridgeError, UnsupportedMediaType
from ..registry.service import validate_name
from .auth import public, requires
from .http import json_body, json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("excel", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")
ADDIN_FILES = {"functions.js", "functions.json", "taskpane.js", "taskpane.css"}
MAX_WORKBOOK_BYTES = 64 * 1024 * 1024
_ID_NAMESPACE = uuid.UUID("6f1e1c0a-53c0-4b8e-9d55-5c0b1d9e2a77")


def addin_dir() -> Path:
    """The add-in's files: ``excel_addin/src`` of this checkout, unless configured elsewhere."""
    configured = services().settings.excel_addin_dir
    return configured or Path(__file__).resolve().parents[2] / "excel_addin" / "src"


def public_base() -> str:
    """The URL users reach this server at: SCOREBRIDGE_PUBLIC_URL, else this request's host."""
    return services().settings.public_url or request.host_url.rstrip("/")


def namespace() -> str:
    ns = services().settings.excel_namespace
    if not NAMESPACE_RE.match(ns):
        raise InvalidInput("SCOREBRIDGE_EXCEL_NAMESPACE must be a letter followed by up to 31 "
                           "letters or digits")
    return ns


@bp.get("/excel/manifest.xml")
@public
@operation("The Office add-in manifest, rendered for this server's public URL", tags=["excel"],
           responses={"200": {"description": "XML manifest",
                              "content": {"application/xml": {"schema": {"type": "string"}}}}})
def manifest() -> Response:
    """Sideload it in Excel (Windows, Mac, web) or deploy it centrally. The add-in id is derived
    from the public URL, so it is stable for an installation."""
    base = public_base()
    env = Environment(loader=FileSystemLoader(addin_dir().parent),
                      autoescape=select_autoescape(default=True))
    xml = env.get_template("manifest.template.xml").render(
        addin_id=str(uuid.uuid5(_ID_NAMESPACE, base)), version=_four_part(__version__),
        base=base, namespace=namespace(), display_name="ScoreBridge")
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": 'inline; filename="manifest.xml"'})


def _four_part(version: str) -> str:
    parts = (re.findall(r"\d+", version) + ["0"] * 4)[:4]
    return ".".join(parts)


@bp.get("/excel/taskpane.html")
@public
def taskpane() -> Response:
    html = (addin_dir() / "taskpane.html").read_text(encoding="utf-8")
    html = html.replace('<html lang="en">', f'<html lang="en" data-namespace="{namespace()}">', 1)
    html = html.replace("=ML.PREDICT(A2:F2)", f"={namespace()}.PREDICT(A2:F2)")
    return Response(html, mimetype="text/html")


@bp.get("/excel/<name>")
@public
def addin_file(name: str) -> Response:
    if name not in ADDIN_FILES:
        abort(404)
    return send_from_directory(addin_dir(), name, max_age=300)


@bp.get("/excel/icons/<name>")
@public
def addin_icon(name: str) -> Response:
    return send_from_directory(addin_dir() / "icons", name, max_age=86400)


# -- scoring from spreadsheets -------------------------------------------------------------------

def _call_result(outcome: ScoreResult | ScoreBridgeError, header: bool,
                 blank: list[int]) -> dict[str, Any]:
    if isinstance(outcome, ScoreBridgeError):
        return {"error": outcome.detail, "status": outcome.status}
    predictions = list(outcome.predictions)
    probabilities = list(outcome.probabilities) if outcome.probabilities is not None else None
    errors = [e.as_dict() for e in outcome.errors]
    for i in blank:  # put the empty rows back, unscored and without error
        predictions.insert(i, None)
        if probabilities is not None:
            probabilities.insert(i, None)
        for e in errors:
            if e.get("row", -1) >= i:
                e["row"] += 1
    out: dict[str, Any] = {"model": outcome.model, "version": outcome.version, "header": header,
                           "predictions": predictions, "errors": errors, "blank": blank}
    if probabilities is not None:
        out["probabilities"] = probabilities
        out["classes"] = outcome.classes
    return out


def _without_blank_rows(values: list[list[Any]]) -> tuple[list[list[Any]], list[int]]:
    """Rows with every cell empty (formulas filled down past the data) are left unscored."""
    kept, blank = [], []
    for i, row in enumerate(values):
        if row and all(v is None or v == "" for v in row):
            blank.append(i)
        else:
            kept.append(row)
    return kept, blank


@bp.post("/excel/v1/batch")
@requires("score")
@operation(
    "Score many spreadsheet ranges in one request (the Excel add-in, xlwings, Google Sheets)",
    tags=["excel"],
    request_body={"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/RangeBatch"}}}},
    responses={"200": json_content("RangeBatchResult"),
               "400": problem_response("Malformed batch"),
               "413": problem_response("Too many rows in one batch")})
def batch() -> Response:
    """Calls naming the same model and version are scored together in one predict call. Each call
    gets its own result: a bad row is an error in that call's ``errors``, a call whose model does
    not exist gets ``error``, and the other calls are unaffected."""
    body = json_body()
    calls, probabilities = decode_batch(body)
    headers = body.get("calls") if isinstance(body, dict) else []
    svc = services()
    options = ScoreOptions(probabilities=probabilities, errors="row")
    groups: dict[tuple[str | None, int | None], list[int]] = {}
    for i, call in enumerate(calls):
        groups.setdefault((call.model, call.version), []).append(i)
    results: list[dict[str, Any] | None] = [None] * len(calls)
    for (model_name, version), members in groups.items():
        try:
            name = validate_name(model_name) if model_name else svc.scorer.default_model()
            model = svc.scorer.model_for(name, version)
        except ScoreBridgeError as exc:
            for i in members:
                results[i] = _call_result(exc, False, [])
            continue
        tables: list[RawTable] = []
        flags: list[tuple[bool, list[int]]] = []
        for i in members:
            hint = headers[i].get("header") if isinstance(headers[i], dict) else None
            table, header, blank = _range_table(calls[i].values, hint, model.signature)
            tables.append(table)
            flags.append((header, blank))
        # unpinned calls follow the deployment (a canary's share included)
        outcomes = svc.scorer.score_many(name, tables, version=version, options=options)
        for i, outcome, (header, blank) in zip(members, outcomes, flags):
            results[i] = _call_result(outcome, header, blank)
    return json_response({"results": results})


def _range_table(values: list[list[Any]], hint: Any,
                 signature: Signature) -> tuple[RawTable, bool, list[int]]:
    """A range as a table, whether it had a header, and its empty rows (left out). A ``header``
    hint is the first row of a larger range sent in parts: used to read this part by name, never
    scored itself."""
    if isinstance(hint, list) and hint and is_header(hint, signature):
        header_row, data = hint, values
    elif values and is_header(values[0], signature):
        header_row, data = values[0], values[1:]
    else:
        header_row, data = None, values
    data, blank = _without_blank_rows(data)
    if header_row is None:
        return RawTable.positional(data), False, blank
    table, _ = table_from_range([header_row] + data, signature)
    return table, True, blank


@bp.get("/excel/v1/predict.txt")
@requires("score")
@operation(
    "One prediction as plain text, for Excel's WEBSERVICE() (Windows Excel, no add-in)",
    tags=["excel"],
    parameters=[
        {"name": "model", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "x", "in": "query", "required": True, "schema": {"type": "string"},
         "description": "the row's values, comma-separated in signature order (CSV quoting)"},
        {"name": "sep", "in": "query", "schema": {"type": "string", "maxLength": 1},
         "description": "separator instead of ',' (e.g. ';' where ',' is the decimal mark)"},
        {"name": "output", "in": "query",
         "schema": {"type": "string", "enum": ["prediction", "probability"]},
         "description": "probability: of the positive (last) class, or of 'class'"},
        {"name": "class", "in": "query", "schema": {"type": "string"}},
        {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ],
    responses={"200": {"description": "The value", "content": {"text/plain": {
        "schema": {"type": "string"}}}},
        "400": problem_response("Malformed query"), "404": problem_response("No such model"),
        "422": problem_response("A value that does not fit the model")})
def predict_txt() -> Response:
    """``=WEBSERVICE("https://host/excel/v1/predict.txt?model=churn&api_key=KEY&x="
    &ENCODEURL(TEXTJOIN(",",FALSE,A2:F2)))``"""
    args = request.args
    name = validate_name(args.get("model", ""))
    raw = args.get("x")
    if raw is None:
        raise MalformedRequest("query parameter 'x' (the row's values) is required")
    sep = args.get("sep", ",")
    if len(sep) != 1:
        raise MalformedRequest("'sep' must be one character")
    try:
        values = next(csv.reader([raw], delimiter=sep), [])
    except csv.Error:
        raise MalformedRequest("'x' is not a valid list of values") from None
    version = args.get("version")
    if version is not None and not version.isdigit():
        raise MalformedRequest("'version' must be a positive integer")
    output = args.get("output", "prediction")
    if output not in ("prediction", "probability"):
        raise MalformedRequest("'output' must be prediction or probability")
    result = services().scorer.score(name, RawTable.positional([values]),
                                     version=int(version) if version else None,
                                     options=ScoreOptions(probabilities=output == "probability"))
    value: Any = result.predictions[0]
    if output == "probability":
        if result.probabilities is None or result.classes is None:
            raise InvalidInput("this model gives no probabilities")
        wanted = args.get("class")
        classes = [str(c) for c in result.classes]
        if wanted is not None and wanted not in classes:
            raise InvalidInput(f"unknown class {wanted[:40]!r}; classes: {', '.join(classes)}")
        value = result.probabilities[0][classes.index(wanted) if wanted else -1]
    return Response(str(value), mimetype="text/plain",
                    headers={"X-Model-Version": str(result.version)})


@bp.get("/excel/v1/template/<name>.xlsx")
@requires("read")
@operation("A starter workbook for a model: header, validation, examples, instructions",
           tags=["excel"],
           responses={"200": {"description": "The workbook", "content": {XLSX: {
               "schema": {"type": "string", "format": "binary"}}}},
               "404": problem_response("No such model")})
def template(name: str) -> Response:
    svc = services()
    info = svc.registry.get_version(validate_name(name))
    model = svc.registry.get_model(name)
    data = starter_workbook(name, info.version, Signature.from_dict(info.signature),
                            model.description, public_base(), namespace())
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}-template.xlsx"'})


@bp.post("/api/v1/models/<name>/score-workbook")
@requires("score")
@operation(
    "Score an uploaded workbook: the same workbook comes back with prediction columns",
    tags=["excel"],
    parameters=[{"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1}}],
    request_body={"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}}}}}},
    responses={"200": {"description": "The scored workbook", "content": {XLSX: {
        "schema": {"type": "string", "format": "binary"}}}},
        "404": problem_response("No such model"), "413": problem_response("Too large"),
        "415": problem_response("Not a multipart upload"),
        "422": problem_response("Not a usable workbook")})
def score_workbook_route(name: str) -> Response:
    """The table or header row naming the model's columns is found on any sheet; every other
    sheet, style and formula is kept, and a 'ScoreBridge' sheet lists the version and row errors."""
    svc = services()
    validate_name(name)
    request.max_content_length = MAX_WORKBOOK_BYTES
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the workbook as 'file'")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("the upload needs the workbook as the 'file' field")
    version = request.args.get("version")
    if version is not None and not version.isdigit():
        raise MalformedRequest("'version' must be a positive integer")
    model = svc.scorer.model_for(name, int(version) if version else None)
    data, result = score_workbook(
        upload.read(), model.signature, name,
        lambda table: svc.scorer.score(name, table, version=model.version,
                                       options=ScoreOptions(errors="row")))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(upload.filename).stem)[:80] or "workbook"
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{stem}-scored-{stamp}.xlsx"',
        "X-Model-Version": str(result.version)})
