"""The protocols of other serving systems, as thin adapters over the same scoring core:
MLflow's scoring server, the Open Inference Protocol (KServe V2) and Tableau's TabPy API.

Errors stay RFC 9457 problem documents and also carry the member each protocol's clients read
(MLflow ``error_code``/``message``, V2 ``error``, TabPy ``message``)."""
from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, Response, g, request
from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError
from werkzeug.exceptions import RequestEntityTooLarge

from .. import __version__, metrics
from ..codecs.csv_codec import decode_csv
from ..codecs.json_input import decode_table, parse_json
from ..codecs.scores import explanations_json
from ..codecs.tabpy import columns_table, parse_script
from ..codecs.v2 import (
    EXPLANATION_OUTPUTS,
    attach_binary,
    decode_infer,
    encode_infer,
    input_metadata,
    output_metadata,
    split_binary,
)
from ..errors import PayloadTooLarge, ScoreBridgeError
from ..types import ScoreOptions, Signature
from .auth import public, require_model, requires
from .declare import Envelope, Inputs, Parameters, validated
from .fields import Explain, ModelName, ModelPath, VersionNumber, whole
from .http import json_response, problem, services
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

class ModelQuery(Parameters):
    model: ModelName | None = Field(None, description="the model (else X-Model, else the "
                                                      "default model)")


class ModelHeader(Parameters):
    x_model: ModelName | None = Field(None, alias="X-Model", description="the model")


class MlflowParams(Parameters):
    """The inference parameters this server reads (others are MLflow's and ignored)."""

    explain: Explain | None = None


class MlflowRequest(Inputs):
    """Exactly one of dataframe_split, dataframe_records, instances, inputs; MLflow's
    ``params`` ride along. The table itself is read by the table codec."""

    dataframe_split: Any = Field(None, json_schema_extra={"type": "object", "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}}}})
    dataframe_records: Any = Field(None, json_schema_extra={"type": "array",
                                                            "items": {"type": "object"}})
    instances: Any = Field(None, json_schema_extra={"type": "array"})
    inputs: Any = Field(None, json_schema_extra={"anyOf": [{"type": "array"},
                                                           {"type": "object"}]})
    params: Any = Field(None, json_schema_extra={"type": "object"})

    @model_validator(mode="before")
    @classmethod
    def one_shape(cls, data: Any) -> Any:
        if isinstance(data, dict) and sum(k in data for k in MLFLOW_SHAPES) != 1:
            raise PydanticCustomError("shape", "must hold exactly one of " + ", ".join(
                MLFLOW_SHAPES) + " (with optional params), or be sent as text/csv")
        return data


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
    tags=["mlflow"], query=ModelQuery, headers=ModelHeader, body=MlflowRequest,
    raw={"text/csv": {"type": "string"}},
    responses={"200": json_content("MlflowPredictions"),
               "404": problem_response("No such model"),
               "422": problem_response("Input that does not fit the model")})
def invocations(query: ModelQuery, headers: ModelHeader, body: MlflowRequest | None) -> Response:
    """The model comes from the X-Model header or ?model=, else SCOREBRIDGE_DEFAULT_MODEL, else
    the only deployed model. Answers ``{"predictions": [...]}`` like ``mlflow models serve``."""
    name = require_model(headers.x_model or query.model or services().scorer.default_model())
    if body is None:
        table = decode_csv(request.get_data(cache=False))
    else:
        shape = next(k for k in MLFLOW_SHAPES if k in body.model_fields_set)
        table = decode_table({shape: getattr(body, shape)})
    explain = validated(MlflowParams, body.params, "body", at=("params",)).explain \
        if body is not None and isinstance(body.params, dict) else None
    result = services().scorer.score(name, table, options=ScoreOptions(probabilities=False,
                                                                       explain=explain))
    answer: dict[str, Any] = {"predictions": result.predictions}
    if result.explanation is not None:   # MLflow clients read "predictions"; this rides along
        answer["explanations"] = explanations_json(result)
    return json_response(answer, headers={"X-Model-Version": str(result.version)})


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


class ModelVersionPath(Parameters):
    name: ModelName
    version: VersionNumber | None = None


class InferTensor(Envelope):
    name: str = Field(max_length=256)
    shape: list[int] = Field(max_length=8)
    datatype: str = Field(max_length=16)
    data: Any = Field(None, json_schema_extra={"type": "array"})
    parameters: dict[str, Any] | None = None


class InferOutput(Envelope):
    name: str = Field(max_length=64)
    parameters: dict[str, Any] | None = None


class InferRequest(Envelope):
    """One tensor per signature column (shape [N] or [N, 1]) or one tensor [N, n_features]."""

    id: str | None = Field(None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[InferOutput] | None = None


class InferHeaders(Parameters):
    header_length: whole(0, 2**62) | None = Field(  # type: ignore[valid-type]
        None, alias="Inference-Header-Content-Length",
        description="binary tensor extension: the JSON header's length in bytes")


def _version_info(name: str, version: int | None) -> Any:
    return services().registry.get_version(name, version)


@v2.get("/models/<name>")
@v2.get("/models/<name>/versions/<version>")
@requires("read")
@operation("V2: model metadata (inputs and outputs from the signature)", tags=["v2"],
           path=ModelVersionPath,
           responses={**_OK, "404": problem_response("No such model or version")})
def model_metadata(name: str, version: int | None = None) -> Response:
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
@operation("V2: model readiness", tags=["v2"], path=ModelVersionPath,
           responses={**_OK, "404": problem_response("No such model or version")})
def model_ready(name: str, version: int | None = None) -> Response:
    info = _version_info(name, version)
    services().scorer.cache.get(info)
    return json_response({"name": name, "ready": True})


@v2.post("/models/<name>/infer")
@v2.post("/models/<name>/versions/<version>/infer")
@requires("score")
@operation(
    "V2: inference", tags=["v2"], path=ModelVersionPath, headers=InferHeaders,
    raw={"application/json": InferRequest,
         "application/octet-stream": {"type": "string", "format": "binary"}},
    responses={**_OK, "404": problem_response("No such model or version"),
               "422": problem_response("Input that does not fit the model")})
def infer(name: str, headers: InferHeaders, body: None, version: int | None = None) -> Response:
    """One tensor per signature column (shape [N] or [N, 1]) or one tensor [N, n_features];
    outputs ``predict`` and, for classifiers, ``predict_proba``. With the binary tensor
    extension the JSON header is followed by the tensors' bytes."""
    info = _version_info(name, version)
    signature = Signature.from_dict(info.signature)
    header, blob = split_binary(request.get_data(cache=False), headers.header_length)
    envelope = parse_json(header)
    validated(InferRequest, envelope, "body")
    table, wanted, request_id = decode_infer(attach_binary(envelope, blob), signature)
    result = services().scorer.score(
        name, table, version=info.version if version else None,
        options=ScoreOptions(probabilities="predict_proba" in wanted,
                             explain="all" if wanted & EXPLANATION_OUTPUTS else None))
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


class EvaluateRequest(Inputs):
    script: str = Field(max_length=10_000, description="return tabpy.query('<model>', _arg1, "
                                                       "...)['response']")
    data: dict[str, Any] = Field(default_factory=dict, description="_arg1, _arg2, ...: columns")


class QueryRequest(Inputs):
    data: dict[str, Any] = Field(default_factory=dict, description="_arg1, _arg2, ...: columns")


@tabpy.post("/evaluate")
@requires("score")
@operation(
    "Tableau: evaluate, accepting only return tabpy.query('<model>', _arg1, ...)['response']",
    tags=["tableau"], body=EvaluateRequest,
    responses={"200": {"description": "The predictions", "content": {"application/json": {
        "schema": {"type": "array", "items": {}}}}},
        "400": problem_response("Any other script (never run)"),
        "404": problem_response("No such model")})
def evaluate(body: EvaluateRequest) -> Response:
    model, args = parse_script(body.script)
    require_model(model)
    table = columns_table(body.data, args)
    result = services().scorer.score(model, table, options=ScoreOptions(probabilities=False))
    return json_response(result.predictions, headers={"X-Model-Version": str(result.version)})


@tabpy.post("/query/<name>")
@requires("score")
@operation("Tableau: query a model with column-oriented arrays", tags=["tableau"],
           path=ModelPath, body=QueryRequest,
           responses={**_OK, "404": problem_response("No such model")})
def query(name: str, body: QueryRequest) -> Response:
    table = columns_table(body.data, None)
    result = services().scorer.score(name, table, options=ScoreOptions(probabilities=False))
    return json_response({"response": result.predictions, "version": result.version,
                          "model": name, "uuid": g.request_id},
                         headers={"X-Model-Version": str(result.version)})
