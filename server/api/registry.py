"""The model catalogue and registration by upload."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response
from pydantic import Field, Json
from werkzeug.datastructures import FileStorage

from ..codecs.file_reader import read_frame
from ..deploy.registration import RegistrationRequest, outcome_settings
from ..errors import InvalidInput
from .auth import actor, current_key, requires, visible_models
from .declare import Inputs
from .fields import Flag, ModelPath, Number, Upload, VersionPath
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("registry", __name__, url_prefix="/api/v1")

SAMPLE_ROWS = 100_000
_NOT_FOUND = {"404": problem_response("No such model or version")}


@bp.get("/models")
@requires("read")
@operation("List deployed models", tags=["registry"], responses={"200": json_content("ModelList")})
def list_models() -> Response:
    """The models the caller may use (a person limited to some models sees only those)."""
    models = services().registry.list_models(visible_models())
    return json_response({"models": [m.summary() for m in models]})


@bp.get("/models/<name>")
@requires("read")
@operation("One model: signature, versions, aliases", tags=["registry"], path=ModelPath,
           responses={"200": json_content("ModelDetail"), **_NOT_FOUND})
def get_model(name: str) -> Response:
    return json_response(services().registry.get_model(name).public())


@bp.get("/models/<name>/versions")
@requires("read")
@operation("A model's versions, newest first", tags=["registry"], path=ModelPath,
           responses={"200": json_content("VersionList"), **_NOT_FOUND})
def list_versions(name: str) -> Response:
    model = services().registry.get_model(name)
    return json_response({"versions": model.public()["versions"]})


@bp.get("/models/<name>/versions/<version>")
@requires("read")
@operation("One version", tags=["registry"], path=VersionPath,
           responses={"200": json_content("Version"), **_NOT_FOUND})
def get_version(name: str, version: int) -> Response:
    return json_response(services().registry.get_version(name, version).public())


class RegisterMetadata(Inputs):
    description: str = Field("", max_length=10_000)
    tags: dict[str, Any] = Field(default_factory=dict, description="names and values, kept as "
                                                                   "text")
    metrics: dict[str, Number] = Field(default_factory=dict,
                                       description="the data scientist's own holdout metrics")
    target: str | None = Field(None, max_length=256,
                               description="the holdout's label column")
    trust_pickle: Flag = Field(False, description="load a pickle (admin keys only)")
    track_outcomes: Flag = Field(False, description="keep every scored row for joining the "
                                                    "outcomes recorded later")
    outcome_key: str | None = Field(None, min_length=1, max_length=128,
                                    description="the business key column scoring requests "
                                                "carry (passed through, never a model input); "
                                                "implies track_outcomes")


class RegisterForm(Inputs):
    file: Upload = Field(description=".skops, .onnx, or .zip of an MLflow model folder (or "
                                     ".pkl/.joblib with trust_pickle and an admin key)")
    sample: Upload | None = Field(None, description="CSV of inputs")
    holdout: Upload | None = Field(None, description="CSV of inputs plus the target column")
    metadata: Json[RegisterMetadata] | None = Field(
        None, description="JSON: description, tags, metrics, target, trust_pickle, "
                          "track_outcomes, outcome_key")


def _table(upload: FileStorage | None, field: str) -> Any:
    if upload is None:
        return None
    return read_frame(upload.stream, name=upload.filename or f"{field}.csv",
                      max_rows=SAMPLE_ROWS)


@bp.post("/models/<name>/versions")
@requires("deploy")
@operation(
    "Register a new version (multipart upload)", tags=["registry"], path=ModelPath,
    form=RegisterForm, body_limit=lambda: services().settings.max_upload_bytes,
    responses={"201": json_content("Version", "Registered"),
               "403": problem_response("trust_pickle needs an admin key"),
               "413": problem_response("Artifact too large"),
               "422": problem_response("Artifact refused or model rejected")})
def register_version(name: str, body: RegisterForm) -> Response:
    """The artifact is loaded safely and smoke-scored before the version is recorded."""
    svc = services()
    meta = body.metadata or RegisterMetadata()
    holdout = _table(body.holdout, "holdout")
    if holdout is not None and not meta.target:
        raise InvalidInput("a holdout set needs metadata 'target' naming its label column")
    svc.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=svc.settings.tmp_dir) as tmp:
        path = Path(tmp) / "artifact"
        body.file.save(path)
        info = svc.register(RegistrationRequest(
            name=name, artifact=path, filename=Path(body.file.filename or "artifact").name,
            actor=actor(), sample=_table(body.sample, "sample"), holdout=holdout,
            target=meta.target, metrics=meta.metrics,
            tags={str(k)[:64]: str(v)[:256] for k, v in meta.tags.items()},
            description=meta.description, trust_pickle=meta.trust_pickle,
            may_trust_pickle="admin" in current_key().grants,
            outcomes=outcome_settings(meta.track_outcomes, meta.outcome_key)))
    return json_response(info.public(), 201,
                         {"Location": f"/api/v1/models/{name}/versions/{info.version}"})
