"""Batch jobs over HTTP: submit a file (or a server-side path), follow progress, cancel, and
stream the result."""
from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Blueprint, Response, request, send_file

from ..codecs.file_formats import file_format
from ..errors import InvalidInput, MalformedRequest, UnsupportedMediaType
from ..registry.service import validate_name
from .auth import actor, requires
from .http import int_arg, json_body, json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")
MAX_JOB_UPLOAD = 4 * 1024 * 1024 * 1024
_JOB = {"404": problem_response("No such job")}


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


@bp.post("")
@requires("score")
@operation(
    "Submit a batch job: a CSV, XLSX or Parquet file scored into CSV, XLSX or Parquet",
    tags=["jobs"],
    request_body={"required": True, "content": {
        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/JobUpload"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/JobPath"}}}},
    responses={"202": json_content("Job", "Accepted"),
               "400": problem_response("Malformed request"),
               "404": problem_response("No such model or file"),
               "415": problem_response("Unsupported content type"),
               "422": problem_response("Unsupported file, or a path outside the allowed roots")})
def submit() -> Response:
    svc = services()
    request.max_content_length = MAX_JOB_UPLOAD
    if request.mimetype == "multipart/form-data":
        form = request.form
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise InvalidInput("the upload needs the input file as the 'file' field")
        fmt = file_format(upload.filename)
        version = form.get("version")
        if version is not None and not version.isdigit():
            raise MalformedRequest("'version' must be a positive integer")
        svc.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=svc.settings.tmp_dir) as tmp:
            path = Path(tmp) / f"upload.{fmt}"
            upload.save(path)
            job = svc.jobs.submit(validate_name(form.get("model", "")), path, actor=actor(),
                                  version=int(version) if version else None,
                                  alias=form.get("alias") or None,
                                  output_format=form.get("output_format", "csv"),
                                  strict=_flag(form.get("strict")),
                                  publish=_flag(form.get("publish")),
                                  dask=_flag(form.get("dask")), move=True)
    elif request.mimetype == "application/json":
        body = json_body()
        if not isinstance(body, dict):
            raise MalformedRequest('send {"model": ..., "path": ...}')
        unknown = set(body) - {"model", "path", "version", "alias", "output_format", "strict",
                               "publish", "dask"}
        if unknown:
            raise MalformedRequest(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or version < 1):
            raise MalformedRequest("'version' must be a positive integer")
        path = svc.jobs.allowed_path(body.get("path", ""))
        job = svc.jobs.submit(validate_name(str(body.get("model", ""))), path, actor=actor(),
                              version=version, alias=body.get("alias"),
                              output_format=str(body.get("output_format", "csv")),
                              strict=bool(body.get("strict")), publish=bool(body.get("publish")),
                              dask=bool(body.get("dask")))
    else:
        raise UnsupportedMediaType("send multipart/form-data (a file) or application/json "
                                   "(a server-side path)")
    return json_response(job.public(), 202, {"Location": f"/api/v1/jobs/{job.id}"})


@bp.get("")
@requires("score")
@operation("Recent jobs", tags=["jobs"], parameters=[
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                "maximum": 1000}}],
    responses={"200": json_content("JobList")})
def list_jobs() -> Response:
    limit = int_arg("limit", minimum=1, maximum=1000) or 100
    return json_response({"jobs": [j.public() for j in services().jobs.list(limit)]})


@bp.get("/<job_id>")
@requires("score")
@operation("A job's state and progress (rows done, total, rate, ETA)", tags=["jobs"],
           responses={"200": json_content("Job"), **_JOB})
def get_job(job_id: str) -> Response:
    return json_response(services().jobs.get(job_id).public())


@bp.delete("/<job_id>")
@requires("score")
@operation("Cancel a job", tags=["jobs"], responses={"200": json_content("Job"), **_JOB})
def cancel_job(job_id: str) -> Response:
    return json_response(services().jobs.cancel(job_id).public())


@bp.get("/<job_id>/result")
@requires("score")
@operation("Stream a finished job's output", tags=["jobs"],
           responses={"200": {"description": "The scored file", "content": {
               "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
               **_JOB, "409": problem_response("The job has not succeeded")})
def job_result(job_id: str) -> Response:
    path, mimetype, name = services().jobs.result(job_id)
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=name,
                     conditional=True)
