"""The protocols of other serving systems, as thin adapters over the same scoring core:
MLflow's scoring server, the Open Inference Protocol (KServe V2) and Tableau's TabPy API.

Errors stay RFC 9457 problem documents and also carry the member each protocol's clients read
(MLflow ``error_code``/``message``, V2 ``error``, TabPy ``message``)."""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from .. import __version__
from ..codecs.csv_codec import decode_csv
from ..codecs.json_input import decode_table, parse_json
from ..types import ScoreOptions, Signature
from ..codecs.tabpy import columns_table, parse_script
from ..codecs.v2 import (attach_binary, decode_infer, encode_infer, input_metadata,
                         output_metadata, split_binary)
from ..errors import (MalformedRequest, NotFound, PayloadTooLarge, ScoreBridgeError,
                      UnsupportedMediaType)
from ..registry.service import validate_name
from .. import metrics
from .auth import public, requires
from .http import json_body, json_response, problem, services
from .openapi import json_content, operation, problem_response

mlflow = Blueprint("mlflow", __name__)
v2 = Blueprint("v2", __name__, url_prefix="/v2")
tabpy = Blueprint("tabpy", __name__)

_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_OK = {"200": {"description": "OK", "content": _OBJECT}}
MLFLOW_SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _protocol_errors(bp: Blueprint, extra: Callable[[ScoreBridgeError], dict[str, Any]]) -> None:
    @bp.errorhandler(ScoreBridgeError)
    def handle(exc: ScoreBridgeError) -> Response:
        metrics.ERRORS.labels(metrics.error_kind(exc.status, exc.slug)).inc()
        return problem(exc.status, exc.title, exc.detail, type=exc.type, errors=exc.errors,
                       headers=exc.headers, **extra(exc))

    @bp.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> Response:
        return handle(PayloadTooLarge("the request body is larger than this endpoint accepts "
                                      f"({request.max_content_length} bytes)"))


_MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST",
                 422: "BAD_REQUEST"}
_protocol_errors(mlflow, lambda e: {"error_code": _MLFLOW_CODES.get(e.status, "INTERNAL_ERROR"),
                                    "message": e.detail})
_protocol_errors(v2, lambda e: {"error": e.detail})
_protocol_errors(tabpy, lambda e: {"message": e.detail, "info": e.title})


# -- MLflow scoring protocol ---------------------------------------------------------------------

def _model_name() -> str:
    name = request.headers.get("X-Model") or request.args.get("model")
    return validate_name(name) if name else services().scorer.default_model()


@mlflow.get("/ping")
@public
@operation("MLflow: liveness", tags=["mlflow"], responses={"200": {"description": "alive"}})
def ping() -> Response:
    return Response("\n", mimetype="application/json")


@mlflow.get("/health")
@public
@operation("MLflow: health", tags=["mlflow"], responses={"200": {"description": "alive"}})
def health() -> Response:
    return Response("\n", mimetype="application/json")


@mlflow.get("/version")
@public
@operation("MLflow: server version", tags=["mlflow"],
           responses={"200": {"description": "version", "content": {"text/plain": {
               "schema": {"type": "string"}}}}})
def version() -> Response:
    return Response(__version__, mimetype="text/plain")


@mlflow.post("/invocations")
@requires("score")
@operation(
    "MLflow scoring protocol: dataframe_split, dataframe_records, instances, inputs or CSV",
    tags=["mlflow"],
    parameters=[{"name": "model", "in": "query", "schema": {"type": "string"}},
                {"name": "X-Model", "in": "header", "schema": {"type": "string"}}],
    request_body={"required": True, "content": {
        "application/json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}}}},
    responses={"200": json_content("MlflowPredictions"),
               "400": problem_response("Malformed request"),
               "404": problem_response("No such model"),
               "415": problem_response("Unsupported content type"),
               "422": problem_response("Input that does not fit the model")})
def invocations() -> Response:
    """The model comes from the X-Model header or ?model=, else SCOREBRIDGE_DEFAULT_MODEL, else
    the only deployed model. Answers ``{"predictions": [...]}`` like ``mlflow models serve``."""
    name = _model_name()
    mimetype = request.mimetype
    if mimetype == "text/csv":
        table = decode_csv(request.get_data(cache=False))
    elif mimetype == "application/json" or mimetype.endswith("+json"):
        body = parse_json(request.get_data(cache=False))
        present = [k for k in MLFLOW_SHAPES if isinstance(body, dict) and k in body]
        if len(present) != 1:
            raise MalformedRequest("send exactly one of " + ", ".join(MLFLOW_SHAPES)
                                   + " (with optional params), or text/csv")
        table = decode_table({present[0]: body[present[0]]})
    else:
        raise UnsupportedMediaType(f"send application/json or text/csv, not {mimetype!r}")
    result = services().scorer.score(name, table, options=ScoreOptions(probabilities=False))
    return json_response({"predictions": result.predictions},
                         headers={"X-Model-Version": str(result.version)})


# -- Open Inference Protocol (KServe V2) ------------------------------------------------------------

@v2.get("")
@public
@operation("V2: server metadata", tags=["v2"], responses=_OK)
def server_metadata() -> Response:
    return json_response({"name": "scorebridge", "version": __version__, "extensions": []})


@v2.get("/health/live")
@public
@operation("V2: liveness", tags=["v2"], responses=_OK)
def live() -> Response:
    return json_response({"live": True})


@v2.get("/health/ready")
@public
@operation("V2: readiness", tags=["v2"], responses=_OK)
def ready() -> Response:
    try:
        services().registry.change_marker()
    except Exception:
        return json_response({"ready": False}, 503, {"Retry-After": "5"})
    return json_response({"ready": True})


def _version_info(name: str, version: str | None) -> Any:
    validate_name(name)
    if version is not None and not version.isdigit():
        raise NotFound(f"model {name!r} has no version {version[:20]!r}")
    return services().registry.get_version(name, int(version) if version else None)


@v2.get("/models/<name>")
@v2.get("/models/<name>/versions/<version>")
@requires("read")
@operation("V2: model metadata (inputs and outputs from the signature)", tags=["v2"],
           responses={**_OK, "404": problem_response("No such model or version")})
def model_metadata(name: str, version: str | None = None) -> Response:
    info = _version_info(name, version)
    model = services().registry.get_model(name)
    signature = Signature.from_dict(info.signature)
    return json_response({
        "name": name, "versions": [str(v.version) for v in model.versions],
        "platform": "scikit-learn", "inputs": input_metadata(signature),
        "outputs": output_metadata(signature)})


@v2.get("/models/<name>/ready")
@v2.get("/models/<name>/versions/<version>/ready")
@requires("read")
@operation("V2: model readiness", tags=["v2"],
           responses={**_OK, "404": problem_response("No such model or version")})
def model_ready(name: str, version: str | None = None) -> Response:
    info = _version_info(name, version)
    services().scorer.cache.get(info)
    return json_response({"name": name, "ready": True})


@v2.post("/models/<name>/infer")
@v2.post("/models/<name>/versions/<version>/infer")
@requires("score")
@operation(
    "V2: inference", tags=["v2"],
    request_body={"required": True, "content": _OBJECT},
    responses={**_OK, "400": problem_response("Malformed request"),
               "404": problem_response("No such model or version"),
               "422": problem_response("Input that does not fit the model")})
def infer(name: str, version: str | None = None) -> Response:
    """One tensor per signature column (shape [N] or [N, 1]) or one tensor [N, n_features];
    outputs ``predict`` and, for classifiers, ``predict_proba``."""
    info = _version_info(name, version)
    signature = Signature.from_dict(info.signature)
    header, blob = split_binary(request.get_data(cache=False),
                                request.headers.get("Inference-Header-Content-Length"))
    body = attach_binary(parse_json(header), blob)
    table, wanted, request_id = decode_infer(body, signature)
    result = services().scorer.score(
        name, table, version=info.version if version else None,
        options=ScoreOptions(probabilities="predict_proba" in wanted))
    return json_response(encode_infer(result, signature, wanted, request_id),
                         headers={"X-Model-Version": str(result.version)})


# -- Tableau Analytics Extensions (TabPy protocol) ------------------------------------------------

@tabpy.get("/info")
@requires("score")
@operation("Tableau: service information (checked by Tableau when connecting)", tags=["tableau"],
           responses=_OK)
def info() -> Response:
    return json_response({
        "description": "ScoreBridge: deployed scikit-learn models for Tableau",
        "creation_time": "0", "state_path": "", "server_version": __version__,
        "name": "ScoreBridge",
        "versions": {"v1": {"features": {"authentication": {
            "required": services().settings.auth, "methods": {"basic-auth": {}}}}}}})


@tabpy.post("/evaluate")
@requires("score")
@operation(
    "Tableau: evaluate, accepting only return tabpy.query('<model>', _arg1, ...)['response']",
    tags=["tableau"], request_body={"required": True, "content": _OBJECT},
    responses={"200": {"description": "The predictions", "content": {"application/json": {
        "schema": {"type": "array", "items": {}}}}},
        "400": problem_response("Any other script (never run)"),
        "404": problem_response("No such model")})
def evaluate() -> Response:
    body = json_body()
    if not isinstance(body, dict):
        raise MalformedRequest("send {\"script\": ..., \"data\": {\"_arg1\": [...], ...}}")
    model, args = parse_script(body.get("script"))
    table = columns_table(body.get("data", {}), args)
    result = services().scorer.score(model, table, options=ScoreOptions(probabilities=False))
    return json_response(result.predictions, headers={"X-Model-Version": str(result.version)})


@tabpy.post("/query/<name>")
@requires("score")
@operation("Tableau: query a model with column-oriented arrays", tags=["tableau"],
           request_body={"required": True, "content": _OBJECT},
           responses={**_OK, "400": problem_response("Malformed request"),
                      "404": problem_response("No such model")})
def query(name: str) -> Response:
    validate_name(name)
    body = json_body()
    if not isinstance(body, dict):
        raise MalformedRequest("send {\"data\": {\"_arg1\": [...], ...}}")
    table = columns_table(body.get("data", {}), None)
    result = services().scorer.score(name, table, options=ScoreOptions(probabilities=False))
    return json_response({"response": result.predictions, "version": result.version,
                          "model": name, "uuid": g.request_id},
                         headers={"X-Model-Version": str(result.version)})
