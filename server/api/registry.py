"""The model catalogue and registration by upload."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from ..codecs.file_reader import read_frame
from ..codecs.json_input import parse_json
from ..deploy.registration import RegistrationRequest, register
from ..errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from ..registry.service import validate_name
from .auth import actor, current_key, requires
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("registry", __name__, url_prefix="/api/v1")

SAMPLE_ROWS = 100_000
_NOT_FOUND = {"404": problem_response("No such model or version")}


@bp.get("/models")
@requires("read")
@operation("List deployed models", tags=["registry"], responses={"200": json_content("ModelList")})
def list_models() -> Response:
    return json_response({"models": [m.summary() for m in services().registry.list_models()]})


@bp.get("/models/<name>")
@requires("read")
@operation("One model: signature, versions, aliases", tags=["registry"],
           responses={"200": json_content("ModelDetail"), **_NOT_FOUND})
def get_model(name: str) -> Response:
    return json_response(services().registry.get_model(validate_name(name)).public())


@bp.get("/models/<name>/versions")
@requires("read")
@operation("A model's versions, newest first", tags=["registry"],
           responses={"200": json_content("VersionList"), **_NOT_FOUND})
def list_versions(name: str) -> Response:
    model = services().registry.get_model(validate_name(name))
    return json_response({"versions": model.public()["versions"]})


@bp.get("/models/<name>/versions/<int:version>")
@requires("read")
@operation("One version", tags=["registry"],
           responses={"200": json_content("Version"), **_NOT_FOUND})
def get_version(name: str, version: int) -> Response:
    return json_response(services().registry.get_version(validate_name(name), version).public())


def _metadata() -> dict[str, Any]:
    raw = request.form.get("metadata")
    if not raw:
        return {}
    meta = parse_json(raw.encode())
    if not isinstance(meta, dict):
        raise MalformedRequest("'metadata' must be a JSON object")
    allowed = {"description", "tags", "metrics", "target", "trust_pickle"}
    unknown = sorted(set(meta) - allowed)
    if unknown:
        raise MalformedRequest(f"unknown metadata field(s): {', '.join(unknown)[:200]}; known: "
                               + ", ".join(sorted(allowed)))
    checks = {"description": str, "tags": dict, "metrics": dict, "target": str,
              "trust_pickle": bool}
    for key, kind in checks.items():
        if key in meta and not isinstance(meta[key], kind):
            raise MalformedRequest(f"metadata '{key}' must be a {kind.__name__}")
    for key, value in meta.get("metrics", {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise MalformedRequest(f"metric {str(key)[:40]!r} must be a number")
    meta["tags"] = {str(k)[:64]: str(v)[:256] for k, v in meta.get("tags", {}).items()}
    return meta


def _table(upload: FileStorage | None, field: str) -> Any:
    if upload is None or not upload.filename:
        return None
    return read_frame(upload.stream, name=upload.filename or f"{field}.csv",
                      max_rows=SAMPLE_ROWS)


@bp.post("/models/<name>/versions")
@requires("deploy")
@operation(
    "Register a new version (multipart upload)", tags=["registry"],
    request_body={"required": True, "content": {"multipart/form-data": {
        "schema": {"$ref": "#/components/schemas/RegisterForm"}}}},
    responses={"201": json_content("Version", "Registered"),
               "400": problem_response("Malformed upload"),
               "403": problem_response("trust_pickle needs an admin key"),
               "413": problem_response("Artifact too large"),
               "415": problem_response("Not multipart/form-data"),
               "422": problem_response("Artifact refused or model rejected")})
def register_version(name: str) -> Response:
    """The artifact is loaded safely and smoke-scored before the version is recorded."""
    svc = services()
    validate_name(name)
    request.max_content_length = svc.settings.max_upload_bytes
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the artifact as 'file'")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("the upload needs the model artifact as the 'file' field")
    meta = _metadata()
    holdout = _table(request.files.get("holdout"), "holdout")
    if holdout is not None and not meta.get("target"):
        raise InvalidInput("a holdout set needs metadata 'target' naming its label column")
    svc.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=svc.settings.tmp_dir) as tmp:
        path = Path(tmp) / "artifact"
        upload.save(path)
        info = register(svc.registry, svc.settings, RegistrationRequest(
            name=name, artifact=path, filename=Path(upload.filename).name, actor=actor(),
            sample=_table(request.files.get("sample"), "sample"), holdout=holdout,
            target=meta.get("target"), metrics=meta.get("metrics", {}),
            tags=meta.get("tags", {}), description=meta.get("description", ""),
            trust_pickle=meta.get("trust_pickle", False),
            may_trust_pickle="admin" in current_key().grants))
    svc.scorer.deployments.invalidate()
    return json_response(info.public(), 201,
                         {"Location": f"/api/v1/models/{name}/versions/{info.version}"})
