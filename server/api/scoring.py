"""Real-time scoring: parse with a codec, score with the core, encode with a codec."""
from __future__ import annotations

from flask import Blueprint, Response, g, request

from ..codecs.csv_codec import decode_csv
from ..codecs.json_input import decode_options, decode_table, parse_json
from ..codecs.scores import result_to_csv, result_to_json
from ..types import ScoreOptions
from ..errors import UnsupportedMediaType
from ..registry.service import validate_name
from .auth import requires
from .http import int_arg, json_response, services
from .openapi import operation, problem_response

bp = Blueprint("scoring", __name__)

_PARAMS = [
    {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "score with this version instead of production"},
    {"name": "alias", "in": "query", "schema": {"type": "string"},
     "description": "score with the version this alias points at"},
]


@bp.post("/api/v1/models/<name>/predict")
@requires("score")
@operation(
    "Score rows with a model", tags=["scoring"], parameters=_PARAMS,
    request_body={"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
        "text/csv": {"schema": {"type": "string"}}}},
    responses={
        "200": {"description": "Predictions in input order", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
            "text/csv": {"schema": {"type": "string"}}}},
        "400": problem_response("Malformed request"),
        "404": problem_response("No such model, version or alias"),
        "413": problem_response("Too many rows or too large a body"),
        "415": problem_response("Unsupported content type"),
        "422": problem_response("Input that does not fit the model's signature"),
    })
def predict(name: str) -> Response:
    """Production version by default; ``?version=N`` or ``?alias=A`` pins another.

    JSON bodies take one of the shapes in PredictRequest; ``text/csv`` bodies need a header row.
    ``Accept: text/csv`` returns CSV.
    """
    validate_name(name)
    version = int_arg("version", minimum=1)
    alias = request.args.get("alias") or None
    if alias is not None:
        validate_name(alias, "alias")
    mimetype = request.mimetype
    if mimetype == "text/csv":
        table, options = decode_csv(request.get_data(cache=False)), ScoreOptions()
        if request.args.get("errors") == "row":
            options = ScoreOptions(errors="row")
    elif mimetype in ("application/json", "") or mimetype.endswith("+json"):
        body = parse_json(request.get_data(cache=False))
        table, options = decode_table(body), decode_options(body)
    else:
        raise UnsupportedMediaType(f"send application/json or text/csv, not {mimetype!r}")
    result = services().scorer.score(name, table, version=version, alias=alias, options=options)
    headers = {"X-Model-Version": str(result.version)}
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    if best == "text/csv" and request.accept_mimetypes["text/csv"] > \
            request.accept_mimetypes["application/json"]:
        return Response(result_to_csv(result), mimetype="text/csv", headers=headers)
    return json_response(result_to_json(result, g.request_id), headers=headers)
