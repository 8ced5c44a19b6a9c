"""Real-time scoring: parse with a codec, score with the core, encode with a codec."""
from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, g, request
from pydantic import ConfigDict, Field

from ..codecs.csv_codec import decode_csv
from ..codecs.json_input import decode_table
from ..codecs.scores import result_to_csv, result_to_json
from ..types import ScoreOptions
from .auth import requires
from .declare import Inputs, Parameters
from .fields import CELL, AliasName, Explain, ModelPath, VersionNumber
from .http import json_response, services
from .openapi import operation, problem_response

bp = Blueprint("scoring", __name__)


class PredictQuery(Parameters):
    version: VersionNumber | None = Field(None, description="score with this version instead "
                                                            "of production")
    alias: AliasName | None = Field(None, description="score with the version this alias "
                                                      "points at")
    errors: Literal["raise", "row"] | None = Field(
        None, description="text/csv bodies: 'row' scores the valid rows and reports the others")
    explain: Explain | None = Field(None, description="text/csv bodies: add the rows' "
                                                      "strongest reasons (a count, or 'all')")



def _shape(description: str, schema: dict[str, Any]) -> Any:
    """An input shape: documented, handed to the table codec unchecked (no per-row objects on
    the scoring path)."""
    return Field(None, description=description, json_schema_extra=schema)


class ScoreOptionsBody(Inputs):
    probabilities: bool = Field(True, strict=True,
                                description="include class probabilities (classifiers)")
    errors: Literal["raise", "row"] = Field(
        "raise", description="'row' scores the valid rows and reports the others")
    explain: Explain | None = None

    def options(self) -> ScoreOptions:
        return ScoreOptions(probabilities=self.probabilities, errors=self.errors,
                            explain=self.explain)


class PredictRequest(Inputs):
    """Exactly one of rows, records, columns, dataframe_split, dataframe_records, instances,
    inputs; ``options`` and MLflow's ``params`` ride along."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "rows": [[12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]]}})

    rows: Any = _shape("values in signature order",
                       {"type": "array", "items": {"type": "array", "items": CELL}})
    records: Any = _shape("one object per row", {"type": "array", "items": {"type": "object"}})
    columns: Any = _shape("column name to its values", {
        "type": "object", "additionalProperties": {"type": "array", "items": CELL}})
    dataframe_split: Any = _shape("MLflow: columns and data", {
        "type": "object", "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array"}}}})
    dataframe_records: Any = _shape("MLflow: one object per row",
                                    {"type": "array", "items": {"type": "object"}})
    instances: Any = _shape("MLflow/TF serving: rows or columns", {"type": "array"})
    inputs: Any = _shape("MLflow: rows or columns",
                         {"anyOf": [{"type": "array"}, {"type": "object"}]})
    params: Any = _shape("MLflow's inference parameters (ignored)", {"type": "object"})
    options: ScoreOptionsBody | None = None

    def table_fields(self) -> dict[str, Any]:
        """The shapes the request gave, for the table codec."""
        return {name: getattr(self, name) for name in self.model_fields_set
                if name not in ("options", "params")}


@bp.post("/api/v1/models/<name>/predict")
@requires("score")
@operation(
    "Score rows with a model", tags=["scoring"], path=ModelPath, query=PredictQuery,
    body=PredictRequest, raw={"text/csv": {"type": "string"}},
    responses={
        "200": {"description": "Predictions in input order", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
            "text/csv": {"schema": {"type": "string"}}}},
        "404": problem_response("No such model, version or alias"),
        "413": problem_response("Too many rows or too large a body"),
        "422": problem_response("Input that does not fit the model's signature"),
    })
def predict(name: str, query: PredictQuery, body: PredictRequest | None) -> Response:
    """Production version by default; ``?version=N`` or ``?alias=A`` pins another.

    JSON bodies take one of the shapes in PredictRequest; ``text/csv`` bodies need a header row.
    ``Accept: text/csv`` returns CSV.
    """
    if body is None:
        table = decode_csv(request.get_data(cache=False))
        options = ScoreOptions(errors=query.errors or "raise", explain=query.explain)
    else:
        table = decode_table(body.table_fields())
        options = body.options.options() if body.options is not None else ScoreOptions()
    result = services().scorer.score(name, table, version=query.version, alias=query.alias,
                                     options=options)
    headers = {"X-Model-Version": str(result.version)}
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    if best == "text/csv" and request.accept_mimetypes["text/csv"] > \
            request.accept_mimetypes["application/json"]:
        return Response(result_to_csv(result), mimetype="text/csv", headers=headers)
    return json_response(result_to_json(result, g.request_id), headers=headers)
