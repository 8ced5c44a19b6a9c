"""Excel: the add-in's files and manifest, its batch endpoint, WEBSERVICE(), workbooks.

Every Excel path (Office.js custom functions, xlwings, Google Sheets, WEBSERVICE, uploaded
workbooks) ends in the same scoring core through the range and workbook codecs.
"""
from __future__ import annotations

import csv
import hashlib
import re
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, request, send_from_directory
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, SkipValidation, WithJsonSchema
from pydantic_core import PydanticCustomError

from .. import __version__
from ..codecs.excel import MAX_CALLS, is_header, is_single_data_row, row_answers, table_from_range
from ..codecs.workbook import score_workbook, starter_workbook
from ..errors import Conflict, ExplanationUnavailable, InvalidInput, MalformedRequest, ScoreBridgeError, short
from ..registry.service import NAME_RE
from ..types import RawTable, ScoreOptions, ScoreResult, Signature
from ..types.explanation import reason_count
from .auth import public, require_model, requires
from .browser import shared_with_office
from .declare import Inputs, Parameters, validated
from .fields import CELL, Explain, ModelName, ModelPath, Upload, VersionNumber
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("excel", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAMESPACE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,31}$")
ADDIN_FILES = {"functions.js", "functions.json", "taskpane.js", "taskpane.css", "signin.js"}
MAX_WORKBOOK_BYTES = 64 * 1024 * 1024
_ID_NAMESPACE = uuid.UUID("6f1e1c0a-53c0-4b8e-9d55-5c0b1d9e2a77")
GUID_RE = re.compile(r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
ADDIN_ID_KEY = "excel.addin_id"
# what Office caches by the manifest's version: its function metadata and script
FUNCTION_FILES = ("functions.json", "functions.js")


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
@operation("The Office add-in manifest, rendered for this server's public https URL", tags=["excel"],
           responses={"200": {"description": "XML manifest",
                              "content": {"application/xml": {"schema": {"type": "string"}}}},
                      "409": problem_response("No https URL to put in the manifest, or a "
                                              "malformed SCOREBRIDGE_EXCEL_ADDIN_ID"),
                      "422": problem_response("A malformed SCOREBRIDGE_EXCEL_NAMESPACE")})
def manifest() -> Response:
    """Sideload it in Excel (Windows, Mac, web) or deploy it centrally. Its id is this
    installation's (kept across URL changes, so formulas keep working); its version changes
    whenever the functions do, so Office reads them again."""
    base = manifest_base()
    ns = namespace()
    env = Environment(loader=FileSystemLoader(addin_dir().parent),
                      autoescape=select_autoescape(default=True))
    xml = env.get_template("manifest.template.xml").render(
        addin_id=addin_id(base), version=manifest_version(__version__, ns), base=base,
        namespace=ns, display_name="ScoreBridge", web_app=web_application())
    return Response(xml, mimetype="application/xml",
                    headers={"Content-Disposition": 'inline; filename="manifest.xml"'})


def web_application() -> dict[str, Any] | None:
    """The manifest's ``WebApplicationInfo``: the Entra app registration the add-in signs in with
    (its client id, a GUID, and its App ID URI as the resource), when sign-in is configured with
    one; other issuers need none (the add-in signs in through the server's own pages)."""
    settings = services().settings
    if services().addin_grants is None or not GUID_RE.match(settings.oidc_client_id):
        return None
    resource = next((a for a in settings.oidc_audience if a.startswith("api://")), "")
    if not resource:
        return None
    scopes = ["openid", "profile"] + [s for s in settings.oidc_resource_scopes
                                      if s and s != ".default"]
    return {"id": settings.oidc_client_id, "resource": resource, "scopes": scopes}


def manifest_base() -> str:
    """The base URL for the manifest: https, as Office requires (Excel on the web and Mac load
    nothing else). Plain http only for this machine, and only when a developer allows it."""
    settings = services().settings
    base = public_base()
    parts = urlsplit(base)
    if parts.scheme == "https" and parts.hostname:
        return base
    if parts.scheme == "http" and settings.excel_allow_local_http and parts.hostname in LOOPBACK:
        return base
    where = (f"SCOREBRIDGE_PUBLIC_URL is {short(settings.public_url, 80)}" if settings.public_url
             else "SCOREBRIDGE_PUBLIC_URL is not set and this request came over http")
    raise Conflict(f"the Excel add-in needs an https URL in its manifest, but {where}: set "
                   "SCOREBRIDGE_PUBLIC_URL to the https URL users reach this server at (e.g. "
                   "https://scorebridge.example.com); for development on this machine only, "
                   "SCOREBRIDGE_EXCEL_ALLOW_LOCAL_HTTP=on allows http://localhost and "
                   "http://127.0.0.1")


def addin_id(base: str) -> str:
    """SCOREBRIDGE_EXCEL_ADDIN_ID, else the id this installation chose the first time a
    manifest was rendered, kept in the registry database so every worker and host gives the
    same one whatever URL they are reached at. That first id is the one earlier versions derived
    from the URL, so an installation that upgrades keeps the add-in its users have."""
    settings = services().settings
    configured = settings.excel_addin_id
    if configured:
        if not GUID_RE.match(configured):
            raise Conflict("SCOREBRIDGE_EXCEL_ADDIN_ID must be a GUID such as "
                           "6f1e1c0a-53c0-4b8e-9d55-5c0b1d9e2a77 (hexadecimal digits, 8-4-4-4-12)")
        return configured
    return services().registry.installation_value(
        ADDIN_ID_KEY, lambda: str(uuid.uuid5(_ID_NAMESPACE, base)))


def manifest_version(server_version: str, ns: str) -> str:
    """The server's version (three parts) and a fourth from the functions' metadata, script
    and namespace: any change to them changes the manifest's version, the signal Office waits
    for before it reads the functions again. Each part stays within 0-65535."""
    parts = [str(min(int(p), 65535)) for p in (re.findall(r"\d+", server_version) + ["0"] * 3)[:3]]
    digest = hashlib.sha256(ns.encode())
    for name in FUNCTION_FILES:
        digest.update(b"\0" + (addin_dir() / name).read_bytes())
    return ".".join(parts + [str(int.from_bytes(digest.digest()[:2], "big"))])


@bp.get("/excel/taskpane.html")
@public
@shared_with_office
def taskpane() -> Response:
    html = (addin_dir() / "taskpane.html").read_text(encoding="utf-8")
    signin = ' data-sign-in="on"' if services().addin_grants is not None else ""
    html = html.replace('<html lang="en">',
                        f'<html lang="en" data-namespace="{namespace()}"{signin}>', 1)
    html = html.replace("=ML.PREDICT(A2:F2)", f"={namespace()}.PREDICT(A2:F2)")
    return Response(html, mimetype="text/html")


@bp.get("/excel/<name>")
@public
@shared_with_office
def addin_file(name: str) -> Response:
    if name not in ADDIN_FILES:
        abort(404)
    return send_from_directory(addin_dir(), name, max_age=300)


@bp.get("/excel/icons/<name>")
@public
@shared_with_office
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
    if outcome.explanation is not None:
        out["reasons"] = _reason_rows(outcome, blank)
    return out


def _reason_rows(outcome: ScoreResult, blank: list[int]) -> list[list[str] | None]:
    """Each row's reason phrases (ML.EXPLAIN spills them), None where a row was not scored."""
    explanation = outcome.explanation
    assert explanation is not None
    k = reason_count(outcome.explain, len(explanation.columns)) or len(explanation.columns)
    rows: list[list[str] | None] = [None] * outcome.n_rows
    for i, texts in zip(outcome.positions.tolist(), explanation.texts(k)):
        rows[i] = texts
    for i in blank:
        rows.insert(i, None)
    return rows


def _without_blank_rows(values: list[list[Any]]) -> tuple[list[list[Any]], list[int]]:
    """Rows with every cell empty (formulas filled down past the data) are left unscored."""
    kept, blank = [], []
    for i, row in enumerate(values):
        # counted in C: a filled-down column asks this of thousands of one-row ranges
        if row and row.count(None) + row.count("") == len(row):
            blank.append(i)
        else:
            kept.append(row)
    return kept, blank


def _rows(values: Any) -> Any:
    if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
        raise PydanticCustomError("rows", "must be a 2-D array (a list of rows)")
    return values


def _model_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise PydanticCustomError("model_name", "must be a model name: 1 to 64 characters, a "
                                  "lower-case letter first, then lower-case letters, digits, "
                                  "'-' or '_'")
    return value


CallModelName = Annotated[str, AfterValidator(_model_name),
                          WithJsonSchema({"type": "string", "pattern": NAME_RE.pattern})]


class RangeCall(Inputs):
    """One call of a batch: checked on its own, so a bad argument fails that call only."""

    model: Annotated[CallModelName | None, BeforeValidator(lambda v: None if v == "" else v)] = \
        Field(None, description="default: the only model")
    version: VersionNumber | None = None
    values: Annotated[Any, AfterValidator(_rows)] = Field(
        description="the range's rows", json_schema_extra={
            "type": "array", "items": {"type": "array", "items": CELL}})
    header: list[Any] | None = Field(None, description="the first row of a larger range sent "
                                                       "in parts")
    explain: Explain | None = Field(None, description="ML.EXPLAIN: add each row's strongest "
                                                      "reasons as phrases (`reasons`)")


class RangeBatch(Inputs):
    model_config = ConfigDict(json_schema_extra={"example": {"calls": [{
        "model": "churn", "values": [[12, 70.5, "month-to-month", "electronic-check", 3,
                                      "fiber"]]}]}})

    probabilities: bool = Field(True, strict=True)
    compact: bool = Field(False, strict=True, description=(
        "answer each call without repeating what its model group shares: the model, version "
        "and classes go once in 'groups', each result names its group, and header, errors "
        "and blank appear only when set (the add-in's form: thousands of one-cell calls)"))
    # the envelope is checked here; each call by the view (RangeCall), whose shape this documents
    calls: list[SkipValidation[RangeCall]] = Field(max_length=MAX_CALLS)


_PLAIN_CALL = frozenset({"model", "values"})


class PlainCall(NamedTuple):
    """A call that is a model name and rows only, as :class:`RangeCall` reads it."""

    model: str | None
    values: list[list[Any]]
    version: None = None
    header: None = None
    explain: None = None


def _plain_call(call: Any) -> PlainCall | None:
    """The usual call (a model name and a range of rows, nothing else) without pydantic: the
    same checks as :class:`RangeCall` makes, at a fraction of the cost for the thousands of
    one-cell calls of a filled-down column. None for anything else, which is then validated."""
    if type(call) is not dict or not call.keys() <= _PLAIN_CALL:
        return None
    model, values = call.get("model"), call.get("values")
    if not (model is None or model == "" or (type(model) is str and NAME_RE.match(model))):
        return None
    if type(values) is not list or not all(type(r) is list for r in values):
        return None
    return PlainCall(model or None, values)


def checked_calls(raw: list[Any]) -> list[RangeCall | PlainCall | MalformedRequest]:
    """Each call as declared, or the 400 problem naming what in it does not fit."""
    out: list[RangeCall | PlainCall | MalformedRequest] = []
    for i, call in enumerate(raw):
        plain = _plain_call(call)
        if plain is not None:
            out.append(plain)
            continue
        try:
            out.append(validated(RangeCall, call, "body", at=("calls", i)))
        except MalformedRequest as exc:
            out.append(exc)
    return out


@bp.post("/excel/v1/batch")
@requires("score")
@operation(
    "Score many spreadsheet ranges in one request (the Excel add-in, xlwings, Google Sheets)",
    tags=["excel"], body=RangeBatch,
    responses={"200": json_content("RangeBatchResult"),
               "413": problem_response("Too many rows in one batch")})
def batch(body: RangeBatch) -> Response:
    """Calls naming the same model and version are scored together in one predict call. Each call
    gets its own result: a bad row is an error in that call's ``errors``; a call whose arguments
    do not fit (a version of 1.5, a malformed model name, not an object) or whose model does not
    exist gets ``error`` and ``status``; the other calls are unaffected."""
    checked = checked_calls(body.calls)
    svc = services()
    options = ScoreOptions(probabilities=body.probabilities, errors="row")
    results: list[dict[str, Any] | None] = [None] * len(checked)
    shared: list[dict[str, Any]] = []  # compact answers: what each model version's calls share
    groups_of: dict[tuple[str, int], int] = {}  # (model, version) -> its index in shared
    groups: dict[tuple[str | None, int | None, Any],
                 list[tuple[int, RangeCall | PlainCall]]] = {}
    for i, call in enumerate(checked):
        if isinstance(call, MalformedRequest):
            results[i] = _call_result(call, False, [])
        else:
            groups.setdefault((call.model, call.version, call.explain), []).append((i, call))
    for (model_name, version, explain), members in groups.items():
        try:
            name = require_model(model_name or svc.scorer.default_model())
            model = svc.scorer.model_for(name, version)
        except ScoreBridgeError as exc:
            for i, _ in members:
                results[i] = _call_result(exc, False, [])
            continue
        if explain is None:  # a filled-down column's one-row calls: one table, row by row
            rows = [(i, call) for i, call in members if isinstance(call, PlainCall) and
                    is_single_data_row(call.values, model.signature)]
            if rows:
                single = {i for i, _ in rows}
                members = [m for m in members if m[0] not in single]
                [whole] = svc.scorer.score_many(name, [RawTable.positional(
                    [call.values[0] for _, call in rows])], version=version, options=options)
                assert isinstance(whole, ScoreResult)  # every row has the signature's width
                group = _group(shared, groups_of, whole, body) if body.compact else 0
                for (i, _), answer in zip(rows, row_answers(whole)):
                    full = _row_result(whole, answer)
                    results[i] = _compact(full, group) if body.compact else full
        tables: list[RawTable] = []
        flags: list[tuple[bool, list[int]]] = []
        for _, call in members:
            table, header, blank = _range_table(call.values, call.header, model.signature)
            tables.append(table)
            flags.append((header, blank))
        # unpinned calls follow the deployment (a canary's share included)
        try:
            outcomes = svc.scorer.score_many(name, tables, version=version, options=options
                                             if explain is None else
                                             replace(options, explain=explain))
        except ExplanationUnavailable as exc:   # these calls only; a batch too large stays 413
            outcomes = [exc] * len(tables)
        if not body.compact:
            for (i, _), outcome, (header, blank) in zip(members, outcomes, flags):
                results[i] = _call_result(outcome, header, blank)
            continue
        for (i, _), outcome, (header, blank) in zip(members, outcomes, flags):
            if isinstance(outcome, ScoreBridgeError):
                results[i] = _call_result(outcome, header, blank)
                continue
            results[i] = _compact(_call_result(outcome, header, blank),
                                  _group(shared, groups_of, outcome, body))
    return json_response({"results": results, "groups": shared} if body.compact else
                         {"results": results})


def _group(shared: list[dict[str, Any]], groups_of: dict[tuple[str, int], int],
           outcome: ScoreResult, body: RangeBatch) -> int:
    """The index in ``shared`` of what the outcome's model version shares (added if new)."""
    key = (outcome.model, outcome.version)
    if key not in groups_of:
        groups_of[key] = len(shared)
        shared.append({"model": outcome.model, "version": outcome.version,
                       "classes": outcome.classes if body.probabilities else None})
    return groups_of[key]


def _row_result(whole: ScoreResult,
                answer: tuple[Any, list[float] | None, list[dict[str, Any]]]) -> dict[str, Any]:
    """A one-row call's full result from its row of the joint result, as :func:`_call_result`
    makes it for a call scored on its own (no header, no blank rows)."""
    prediction, probabilities, errors = answer
    out: dict[str, Any] = {"model": whole.model, "version": whole.version, "header": False,
                           "predictions": [prediction], "errors": errors, "blank": []}
    if whole.probs is not None:
        out["probabilities"] = [probabilities]
        out["classes"] = whole.classes
    return out


def _compact(full: dict[str, Any], group: int) -> dict[str, Any]:
    """A call's result without what its group carries, and without unset flags."""
    out: dict[str, Any] = {"group": group, "predictions": full["predictions"]}
    if "probabilities" in full:
        out["probabilities"] = full["probabilities"]
    if "reasons" in full:
        out["reasons"] = full["reasons"]
    for flag in ("header", "errors", "blank"):
        if full[flag]:
            out[flag] = full[flag]
    return out


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


class PredictTextQuery(Parameters):
    model: ModelName
    x: str = Field(max_length=100_000, description="the row's values, comma-separated in "
                                                   "signature order (CSV quoting)")
    sep: str = Field(",", min_length=1, max_length=1, description="separator instead of ',' "
                     "(e.g. ';' where ',' is the decimal mark)")
    output: Literal["prediction", "probability"] = Field(
        "prediction", description="probability: of the positive (last) class, or of 'class'")
    class_: str | None = Field(None, alias="class", max_length=200)
    version: VersionNumber | None = None


@bp.get("/excel/v1/predict.txt")
@requires("score")
@operation(
    "One prediction as plain text, for Excel's WEBSERVICE() (Windows Excel, no add-in)",
    tags=["excel"], query=PredictTextQuery,
    responses={"200": {"description": "The value", "content": {"text/plain": {
        "schema": {"type": "string"}}}},
        "404": problem_response("No such model"),
        "422": problem_response("A value that does not fit the model")})
def predict_txt(query: PredictTextQuery) -> Response:
    """``=WEBSERVICE("https://host/excel/v1/predict.txt?model=churn&api_key=KEY&x="
    &ENCODEURL(TEXTJOIN(",",FALSE,A2:F2)))``"""
    try:
        values = next(csv.reader([query.x], delimiter=query.sep), [])
    except csv.Error:
        raise MalformedRequest("'x' is not a valid list of values") from None
    probability = query.output == "probability"
    result = services().scorer.score(require_model(query.model), RawTable.positional([values]),
                                     version=query.version,
                                     options=ScoreOptions(probabilities=probability))
    value: Any = result.predictions[0]
    if probability:
        if result.probabilities is None or result.classes is None:
            raise InvalidInput("this model gives no probabilities")
        wanted = query.class_
        classes = [str(c) for c in result.classes]
        if wanted is not None and wanted not in classes:
            raise InvalidInput(f"unknown class {wanted[:40]!r}; classes: {', '.join(classes)}")
        row = result.probabilities[0]
        assert row is not None  # a value that does not fit raised above (errors="raise")
        value = row[classes.index(wanted) if wanted else -1]
    return Response(str(value), mimetype="text/plain",
                    headers={"X-Model-Version": str(result.version)})


@bp.get("/excel/v1/template/<name>.xlsx")
@requires("read")
@operation("A starter workbook for a model: header, validation, examples, instructions",
           tags=["excel"], path=ModelPath,
           responses={"200": {"description": "The workbook", "content": {XLSX: {
               "schema": {"type": "string", "format": "binary"}}}},
               "404": problem_response("No such model")})
def template(name: str) -> Response:
    svc = services()
    info = svc.registry.get_version(name)
    model = svc.registry.get_model(name)
    data = starter_workbook(name, info.version, Signature.from_dict(info.signature),
                            model.description, public_base(), namespace())
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{name}-template.xlsx"'})


class WorkbookQuery(Parameters):
    version: VersionNumber | None = Field(None, description="score with this version instead "
                                                            "of production")
    explain: Explain | None = Field(None, description="add reason_1..k columns (a count), or "
                                                      "'all' with every input's contribution")


class WorkbookUpload(Inputs):
    file: Upload = Field(description="the workbook (.xlsx)")


@bp.post("/api/v1/models/<name>/score-workbook")
@requires("score")
@operation(
    "Score an uploaded workbook: the same workbook comes back with prediction columns",
    tags=["excel"], path=ModelPath, query=WorkbookQuery, form=WorkbookUpload,
    body_limit=lambda: MAX_WORKBOOK_BYTES,
    responses={"200": {"description": "The scored workbook", "content": {XLSX: {
        "schema": {"type": "string", "format": "binary"}}}},
        "404": problem_response("No such model"), "413": problem_response("Too large"),
        "422": problem_response("Not a usable workbook")})
def score_workbook_route(name: str, query: WorkbookQuery, body: WorkbookUpload) -> Response:
    """The table or header row naming the model's columns is found on any sheet; every other
    sheet, style and formula is kept, and a 'ScoreBridge' sheet lists the version and row errors."""
    svc = services()
    model = svc.scorer.model_for(name, query.version)
    data, result = score_workbook(
        body.file.read(), model.signature, name,
        lambda table: svc.scorer.score(name, table, version=model.version,
                                       options=ScoreOptions(errors="row",
                                                            explain=query.explain)))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(body.file.filename or "").stem)[:80] \
        or "workbook"
    return Response(data, mimetype=XLSX, headers={
        "Content-Disposition": f'attachment; filename="{stem}-scored-{stamp}.xlsx"',
        "X-Model-Version": str(result.version)})
