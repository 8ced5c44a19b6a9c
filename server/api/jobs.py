"""Batch jobs over HTTP: submit a file (or a server-side path), follow progress, cancel, and
stream the result."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from flask import Blueprint, Response, send_file
from pydantic import Field

from ..codecs.file_formats import file_format
from ..errors import NotFound
from ..jobs.service import JobInfo
from .auth import actor, require_model, requires, visible_models
from .declare import Inputs, Parameters
from .fields import AliasName, Explain, Flag, Limit, ModelName, Upload, VersionNumber
from .http import json_response, services
from .openapi import json_content, operation, problem_response

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")
MAX_JOB_UPLOAD = 4 * 1024 * 1024 * 1024
_JOB = {"404": problem_response("No such job")}


OutputFormat = Literal["csv", "xlsx", "parquet"]


class JobOptions(Inputs):
    model: ModelName
    version: VersionNumber | None = Field(None, description="default: the alias's version")
    alias: AliasName | None = Field(None, description="default: production")
    output_format: OutputFormat = "csv"
    strict: Flag = Field(False, description="fail the job on the first bad row")
    publish: Flag = Field(False, description="publish the scored table to the OData feed")
    dask: Flag = Field(False, description="run on the Dask cluster")
    explain: Explain | None = Field(None, description="add reason_1..k columns (a count), or "
                                                      "'all' for every input's contribution")


class JobUpload(JobOptions):
    file: Upload = Field(description="CSV, XLSX or Parquet")


class JobFromPath(JobOptions):
    path: str = Field(max_length=4096, description="a server-side file under the allowed "
                                                   "roots")


class JobsQuery(Parameters):
    limit: Limit = 100


class JobPath(Parameters):
    job_id: str = Field(max_length=64, description="the id the job was given")


@bp.post("")
@requires("score")
@operation(
    "Submit a batch job: a CSV, XLSX or Parquet file scored into CSV, XLSX or Parquet",
    tags=["jobs"], form=JobUpload, body=JobFromPath, body_limit=lambda: MAX_JOB_UPLOAD,
    responses={"202": json_content("Job", "Accepted"),
               "404": problem_response("No such model or file"),
               "422": problem_response("Unsupported file, or a path outside the allowed roots")})
def submit(body: JobUpload | JobFromPath) -> Response:
    svc = services()
    options = {"actor": actor(), "version": body.version, "alias": body.alias,
               "output_format": body.output_format, "strict": body.strict,
               "publish": body.publish, "dask": body.dask, "explain": body.explain}
    if isinstance(body, JobUpload):
        fmt = file_format(body.file.filename or "")
        svc.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=svc.settings.tmp_dir) as tmp:
            path = Path(tmp) / f"upload.{fmt}"
            body.file.save(path)
            job = svc.submit_job(require_model(body.model), path, move=True, **options)
    else:
        job = svc.submit_job(require_model(body.model), svc.jobs.allowed_path(body.path),
                             **options)
    return json_response(job.public(), 202, {"Location": f"/api/v1/jobs/{job.id}"})


@bp.get("")
@requires("score")
@operation("Recent jobs", tags=["jobs"], query=JobsQuery,
           responses={"200": json_content("JobList")})
def list_jobs(query: JobsQuery) -> Response:
    found = services().jobs.list(query.limit, only=visible_models())
    return json_response({"jobs": [j.public() for j in found]})


def _job(job_id: str) -> JobInfo:
    """The job, if the caller may use its model: another model's job is not found, as if it did
    not exist, so its id says nothing of what others score."""
    job = services().jobs.get(job_id)
    allowed = visible_models()
    if allowed is not None and job.model not in allowed:
        raise NotFound(f"no job {job_id[:40]!r}")
    return job


@bp.get("/<job_id>")
@requires("score")
@operation("A job's state and progress (rows done, total, rate, ETA)", tags=["jobs"],
           path=JobPath, responses={"200": json_content("Job"), **_JOB})
def get_job(job_id: str) -> Response:
    return json_response(_job(job_id).public())


@bp.delete("/<job_id>")
@requires("score")
@operation("Cancel a job", tags=["jobs"], path=JobPath, responses={"200": json_content("Job"), **_JOB})
def cancel_job(job_id: str) -> Response:
    return json_response(services().cancel_job(_job(job_id).id).public())


@bp.get("/<job_id>/result")
@requires("score")
@operation("Stream a finished job's output", tags=["jobs"], path=JobPath,
           responses={"200": {"description": "The scored file", "content": {
               "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
               **_JOB, "409": problem_response("The job has not succeeded")})
def job_result(job_id: str) -> Response:
    path, mimetype, name = services().jobs.result(_job(job_id).id)
    return send_file(path, mimetype=mimetype, as_attachment=True, download_name=name,
                     conditional=True)
