"""Batch jobs: a file (uploaded, or a server-side path under the allowed roots) scored in chunks by
one pinned model version into an output file, asynchronously, with progress, cancellation,
retention, and restart safety.

Jobs live in the registry database, so any worker (on any host) can run them: a runner claims a
queued job with one conditional UPDATE, heartbeats while it works, and checks for cancellation
between chunks. The output is written under a temporary name and renamed only when complete; a job
whose runner died (stale heartbeat) is marked failed with the reason, and its partial output removed.
"""
from __future__ import annotations

import builtins
import errno
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Collection, Iterator

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from .. import metrics
from ..codecs.file_formats import file_format
from ..codecs.file_reader import count_rows, iter_chunks
from ..codecs.file_writer import TableWriter
from ..codecs.scored_output import failed_rows, scored_table
from ..codecs.workbook import check_xlsx
from ..config import Settings
from ..errors import Conflict, InvalidInput, NotFound, ScoreBridgeError
from ..registry.database import rows_changed
from ..registry.schema import JobRow, ScoredRow, utcnow
from ..registry.service import Registry, _utc
from ..scoring.scorer import Scorer
from ..types import ScoreOptions
from ..types.record import public_fields
from .overlap import OrderedWriter, prefetch

log = logging.getLogger(__name__)
CHUNK_ROWS = 10_000
STALE_AFTER = timedelta(seconds=60)
OUTPUT_FORMATS = ("csv", "xlsx", "parquet")
_MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@dataclass
class JobInfo:
    id: str
    model: str
    version: int
    status: str
    rows_total: int | None
    rows_done: int
    rows_failed: int
    output_format: str
    options: dict[str, Any]
    error: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    output_path: str | None

    def public(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        elapsed = ((self.finished_at or now) - self.started_at).total_seconds() \
            if self.started_at else None
        rate = self.rows_done / elapsed if elapsed and self.rows_done else None
        eta = None
        if self.status == "running" and rate and self.rows_total:
            eta = max(self.rows_total - self.rows_done, 0) / rate
        return {
            **public_fields(self, "id", "model", "version", "status", "rows_done", "rows_total",
                            "rows_failed", "output_format", "options", "created_by",
                            "created_at", "started_at", "finished_at", "expires_at"),
            "rate_rows_per_second": rate, "eta_seconds": eta, "error": self.error or None,
            "result": f"/api/v1/jobs/{self.id}/result" if self.status == "succeeded" else None,
        }


def _info(row: JobRow) -> JobInfo:
    return JobInfo(id=row.id, model=row.model_name, version=row.version, status=row.status,
                   rows_total=row.rows_total, rows_done=row.rows_done,
                   rows_failed=row.rows_failed, output_format=row.output_format,
                   options=row.options or {}, error=row.error, created_by=row.created_by,
                   created_at=_utc(row.created_at),  # type: ignore[arg-type]
                   started_at=_utc(row.started_at), finished_at=_utc(row.finished_at),
                   expires_at=_utc(row.expires_at), output_path=row.output_path)


class Jobs:
    def __init__(self, registry: Registry, scorer: Scorer, settings: Settings) -> None:
        self.registry = registry
        self.scorer = scorer
        self.settings = settings
        self.root = settings.home / "jobs"

    # -- submitting ---------------------------------------------------------------------------

    def allowed_path(self, raw: str) -> Path:
        """A server-side input path, refused unless it lies under a configured allowed root."""
        if not isinstance(raw, str) or not raw or "\x00" in raw:
            raise InvalidInput("'path' must be a file path on the server")
        path = Path(raw).resolve()
        roots = [Path(r).resolve() for r in self.settings.job_roots]
        if not any(path == r or r in path.parents for r in roots):
            raise InvalidInput("the path is not under an allowed root (SCOREBRIDGE_JOB_ROOTS"
                               + (": " + ", ".join(map(str, roots)) if roots else " is empty")
                               + ")")
        if not path.is_file():
            raise NotFound("no such file under the allowed roots")
        file_format(path.name)
        return path

    def submit(self, model: str, source: Path, *, actor: str, version: int | None = None,
               alias: str | None = None, output_format: str = "csv", strict: bool = False,
               publish: bool = False, move: bool = False, dask: bool = False,
               explain: int | str | None = None) -> JobInfo:
        """Queue a job; the version is pinned now, so the whole file is scored by one version."""
        if output_format not in OUTPUT_FORMATS:
            raise InvalidInput(f"output_format must be one of {', '.join(OUTPUT_FORMATS)}")
        fmt = file_format(source.name)
        if fmt == "xlsx":
            check_xlsx(source)  # zip bombs, encrypted and damaged workbooks are refused here
        info = self.scorer.deployments.resolve(model, version, alias)
        if explain is not None:  # a model without explanations is refused now, not mid-file
            self.scorer.cache.get(info).explainer()
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir(parents=True)
        target = folder / f"input.{fmt}"
        if move:
            os.replace(source, target)
        else:
            shutil.copyfile(source, target)
        with self.registry.writing() as session:
            session.add(JobRow(
                id=job_id, model_name=model, version=info.version, status="queued",
                input_path=str(target), output_format=output_format, rows_done=0,
                rows_failed=0, options={"strict": strict, "publish": publish, "dask": dask,
                         **({"explain": explain} if explain is not None else {})},
                error="",
                created_by=actor, created_at=utcnow(), cancel_requested=False))
        metrics.JOBS.labels(model, "queued").inc()
        return self.get(job_id)

    # -- reading ------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobInfo:
        with self.registry.reading() as session:
            row = session.get(JobRow, job_id[:32])
            if row is None:
                raise NotFound(f"no job {job_id[:40]!r}")
            return _info(row)

    def list(self, limit: int = 100, only: Collection[str] | None = None) -> list[JobInfo]:
        """The newest jobs; with ``only``, just the jobs of those models."""
        query = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
        if only is not None:
            query = query.where(JobRow.model_name.in_(sorted(only)))
        with self.registry.reading() as session:
            return [_info(r) for r in session.scalars(query)]

    def result(self, job_id: str) -> tuple[Path, str, str]:
        """(path, media type, download name) of a finished job's output."""
        info = self.get(job_id)
        if info.status != "succeeded" or not info.output_path:
            raise Conflict(f"job {job_id[:40]} has no result: it is {info.status}")
        path = Path(info.output_path)
        if not path.exists():
            raise NotFound("the job's result has expired")
        return path, _MIME[info.output_format], f"{info.model}-{job_id[:8]}.{info.output_format}"

    def cancel(self, job_id: str) -> JobInfo:
        with self.registry.writing() as session:
            row = session.get(JobRow, job_id[:32])
            if row is None:
                raise NotFound(f"no job {job_id[:40]!r}")
            if row.status == "queued":
                row.status, row.finished_at = "cancelled", utcnow()
                row.error = "cancelled before it started"
            elif row.status == "running":
                row.cancel_requested = True
        return self.get(job_id)

    # -- running -------------------------------------------------------------------------------

    def recover(self) -> builtins.list[str]:  # `list` here is the method above
        """Jobs whose runner stopped heartbeating are failed with the reason; partial output is
        removed (it was never renamed into place)."""
        cutoff = utcnow() - STALE_AFTER
        stale_rows = select(JobRow).where(JobRow.status == "running", JobRow.heartbeat_at < cutoff)
        if not self._any(stale_rows):
            return []
        with self.registry.writing() as session:
            stale = session.scalars(stale_rows).all()
            for row in stale:
                row.status, row.finished_at = "failed", utcnow()
                row.error = ("the server running this job stopped before it finished; "
                             "submit it again")
                for partial in Path(row.input_path).parent.glob(".*.partial"):
                    partial.unlink(missing_ok=True)
            return [r.id for r in stale]

    def _any(self, query: Any) -> bool:
        """Whether ``query`` finds a row, asked in a read: the runner polls twice a second in
        every worker, and an idle poll should not take the database's write lock."""
        with self.registry.reading() as session:
            return session.scalar(query.limit(1)) is not None

    def claim(self, worker: str, job_id: str | None = None) -> JobInfo | None:
        """The oldest queued job (or ``job_id``, if still queued), now running for ``worker``."""
        queued = select(JobRow.id).where(JobRow.status == "queued")
        if job_id is not None:
            queued = queued.where(JobRow.id == job_id)
        if not self._any(queued):
            return None
        with self.registry.writing() as session:
            job_id = session.scalar(queued.order_by(JobRow.created_at).limit(1))
            if job_id is None:
                return None
            now = utcnow()
            claimed = rows_changed(session.execute(update(JobRow).where(JobRow.id == job_id,
                                                                        JobRow.status == "queued")
                                                   .values(status="running", claimed_by=worker,
                                                           started_at=now, heartbeat_at=now)))
            if not claimed:
                return None
        return self.get(job_id)

    @staticmethod
    def _held(session: Session, job_id: str) -> JobRow:
        """The row of a job that is queued or running here: only finished jobs are pruned."""
        row = session.get(JobRow, job_id)
        assert row is not None, f"job {job_id} is gone while held"
        return row

    def _progress(self, job_id: str, done: int, failed: int,
                  total: int | None = None) -> bool:
        """Record progress; True when a cancellation was asked for."""
        with self.registry.writing() as session:
            row = self._held(session, job_id)
            row.rows_done, row.rows_failed, row.heartbeat_at = done, failed, utcnow()
            if total is not None:
                row.rows_total = total
            return bool(row.cancel_requested)

    def _finish(self, job_id: str, status: str, error: str = "",
                output: Path | None = None) -> None:
        with self.registry.writing() as session:
            row = self._held(session, job_id)
            row.status, row.error, row.finished_at = status, error[:2000], utcnow()
            row.output_path = str(output) if output else None
            row.expires_at = utcnow() + timedelta(hours=self.settings.job_retention_hours)
        metrics.JOBS.labels(row.model_name, status).inc()

    def run(self, job: JobInfo) -> str:
        """Score the job's input chunk by chunk; returns the final status."""
        token = metrics.CLIENT.set("batch")
        caller = metrics.CALLER.set(caller_of(job.created_by))
        source = Path(self._input_path(job.id))
        output = source.parent / f"output.{job.output_format}"
        writer = TableWriter(output, self._column_types(job))
        background = OrderedWriter(writer.write)  # writes chunk n while chunk n+1 is scored
        done = failed = 0
        try:
            try:
                self._progress(job.id, 0, 0, count_rows(source))
                for frame in self._scored_chunks(job, source):
                    background.submit(frame)
                    if job.options.get("publish"):
                        self._publish(job.id, done, frame)
                    done += frame.num_rows
                    failed += failed_rows(frame)
                    if self._progress(job.id, done, failed):
                        background.finish()
                        writer.abort()
                        self._finish(job.id, "cancelled", f"cancelled after {done} rows")
                        return "cancelled"
            finally:
                background.finish()
            writer.close()
            if job.options.get("deliver_to"):
                deliver(output, job.options["deliver_to"])
            self._finish(job.id, "succeeded", output=output)
            return "succeeded"
        except ScoreBridgeError as exc:
            writer.abort()
            where = f" (in rows {done + 1}–{done + CHUNK_ROWS})" if done else ""
            self._finish(job.id, "failed", exc.detail + where)
            return "failed"
        except (OSError, ValueError) as exc:
            writer.abort()
            self._finish(job.id, "failed", _failure(exc))
            return "failed"
        finally:
            metrics.CLIENT.reset(token)
            metrics.CALLER.reset(caller)

    def _column_types(self, job: JobInfo) -> dict[str, str]:
        """The model's input types, so numbers read as text are written back as numbers."""
        signature = self.registry.get_version(job.model, job.version).signature or {}
        return {c["name"]: c["type"] for c in signature.get("inputs", [])}

    def _scored_chunks(self, job: JobInfo, source: Path) -> Iterator[Any]:
        """Scored chunks in input order: in this process, or on Dask when configured."""
        scheduler = self.settings.dask_scheduler or ("local" if job.options.get("dask") else "")
        if scheduler:
            yield from self._dask_chunks(job, source, scheduler)
            return
        options = ScoreOptions(errors="raise" if job.options.get("strict") else "row",
                               explain=job.options.get("explain"))
        for chunk in prefetch(iter_chunks(source, CHUNK_ROWS)):
            if chunk.malformed and options.errors == "raise":
                first = min(chunk.malformed)
                raise InvalidInput(chunk.malformed[first])
            result = self.scorer.score(job.model, chunk.raw(), version=job.version,
                                       options=options)
            yield scored_table(chunk.arrow(), result, chunk.malformed)

    def _dask_chunks(self, job: JobInfo, source: Path, scheduler: str) -> Iterator[Any]:
        import json

        from .dask_backend import client_for, scored_partitions

        info = self.registry.get_version(job.model, job.version)
        spec = {"path": str(self.registry.store.path(info.artifact)), "format": info.format,
                "trusted_pickle": info.trusted_pickle,
                "extra_trusted": tuple(self.settings.trusted_types), "sha256": info.sha256,
                "signature": json.dumps(info.signature), "name": job.model,
                "version": job.version, "strict": bool(job.options.get("strict")),
                "runtime": info.runtime, "explain": job.options.get("explain"),
                "sample_path": str(self.registry.store.path(info.sample_artifact))
                if info.sample_artifact else None,
                "compiled_path": str(self.registry.store.path(info.compiled_artifact))
                if info.compiled_artifact else None}
        client = client_for(scheduler)
        try:
            yield from scored_partitions(client, source, spec, CHUNK_ROWS)
        finally:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None and scheduler == "local":
                cluster.close()

    def set_delivery(self, job_id: str, path: str) -> None:
        """Also copy the output to ``path`` when the job succeeds (a pipeline's file sink)."""
        with self.registry.writing() as session:
            row = self._held(session, job_id)
            row.options = {**(row.options or {}), "deliver_to": path}

    def _input_path(self, job_id: str) -> str:
        with self.registry.reading() as session:
            return self._held(session, job_id).input_path

    def _publish(self, job_id: str, start: int, table: Any) -> None:
        records = table.to_pylist()
        with self.registry.writing() as session:
            session.bulk_insert_mappings(ScoredRow, [
                {"job_id": job_id, "row_no": start + i,
                 "data": {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}}
                for i, r in enumerate(records)])

    def expire(self) -> int:
        """Remove the files and rows of jobs past their retention."""
        now = utcnow()
        expired = select(JobRow).where(JobRow.expires_at < now)
        if not self._any(expired):
            return 0
        with self.registry.writing() as session:
            rows = session.scalars(expired).all()
            for row in rows:
                shutil.rmtree(Path(row.input_path).parent, ignore_errors=True)
            ids = [r.id for r in rows]
            if ids:
                session.execute(delete(JobRow).where(JobRow.id.in_(ids)))
        return len(ids)


def _failure(exc: BaseException) -> str:
    """Why a job failed, in words a user can act on."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the server's disk is full: no output was kept; free space and submit it again"
    if isinstance(exc, UnicodeDecodeError):
        return "the file is not UTF-8 or Windows-1252 text; save it as \"CSV UTF-8\""
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def deliver(output: Path, destination: str) -> None:
    """Copy a finished job's output to a file sink, atomically."""
    target = Path(destination)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(output, tmp)
    os.replace(tmp, target)


def caller_of(actor: str) -> tuple[str, str]:
    """Who a job's rows count for in traffic by user: its submitter, from the actor the audit
    trail names (``key:<id> (name)``, ``user:<subject> (name)``); nobody for the CLI's own."""
    who, _, label = actor.partition(" (")
    if not who.startswith(("key:", "user:")):
        return metrics.NOBODY
    return who, label[:-1] if label.endswith(")") else label
