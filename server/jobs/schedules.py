"""Scheduled scoring runs (the API's and CLI's "pipelines"): every run reads a source (the
newest file matching a glob under the allowed roots, or a SQL query through a SQLAlchemy URL),
scores it as a batch job with the model alias's version, and delivers the result to a sink: the
registry (published for the OData feed, so Power BI refreshes read the latest scored table) or a
file under the allowed roots.

Runs are due by cron schedule; a worker claims a due schedule with one conditional UPDATE that also
moves its next run, so each run starts once whatever the number of workers.

The public name stays "pipeline" (routes, CLI, JSON, the ``pipelines`` table); inside the code they
are schedules, so that "pipeline" means only scikit-learn's Pipeline and the release of a new
version is :mod:`server.deploy.release`.
"""
from __future__ import annotations

import builtins
import glob
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from croniter import croniter
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session

from ..errors import Conflict, Forbidden, InvalidInput, NotFound
from ..registry.database import rows_changed
from ..registry.schema import ScheduleRow, utcnow
from ..registry.service import Registry, _utc, validate_name
from ..types.record import public_fields
from .service import Jobs

SINK_FORMATS = ("csv", "parquet", "xlsx")


@dataclass
class ScheduleInfo:
    name: str
    model: str
    alias: str
    schedule: str
    source: dict[str, Any]
    sink: dict[str, Any]
    enabled: bool
    next_run_at: datetime
    last_run_at: datetime | None
    last_job_id: str | None
    last_error: str

    def public(self) -> dict[str, Any]:
        source = dict(self.source)
        if "url" in source:  # credentials in a database URL are never shown
            source["url"] = re.sub(r"//[^@/]*@", "//***@", source["url"])
        return {**public_fields(self, "name", "model", "alias", "schedule", "sink", "enabled",
                                "next_run_at", "last_run_at", "last_job_id"),
                "source": source, "last_error": self.last_error or None}


def _info(row: ScheduleRow) -> ScheduleInfo:
    return ScheduleInfo(name=row.name, model=row.model_name, alias=row.alias,
                        schedule=row.schedule, source=row.source, sink=row.sink,
                        enabled=row.enabled, next_run_at=_utc(row.next_run_at),  # type: ignore[arg-type]
                        last_run_at=_utc(row.last_run_at), last_job_id=row.last_job_id,
                        last_error=row.last_error)


def next_time(schedule: str, after: datetime) -> datetime:
    return croniter(schedule, after).get_next(datetime)


class Schedules:
    def __init__(self, registry: Registry, jobs: Jobs) -> None:
        self.registry = registry
        self.jobs = jobs

    # -- definitions ----------------------------------------------------------------------------

    def _check(self, model: str, schedule: str, source: Any, sink: Any,
               may_query_sql: bool) -> None:
        validate_name(model)
        if not isinstance(schedule, str) or not croniter.is_valid(schedule):
            raise InvalidInput(f"'schedule' must be a cron expression such as '0 6 * * *', got "
                               f"{str(schedule)[:40]!r}")
        if not isinstance(source, dict) or source.get("kind") not in ("file", "sql"):
            raise InvalidInput("'source' must be {\"kind\": \"file\", \"glob\": ...} or "
                               "{\"kind\": \"sql\", \"url\": ..., \"query\": ...}")
        if source["kind"] == "file":
            pattern = source.get("glob")
            if not isinstance(pattern, str) or not pattern:
                raise InvalidInput("a file source needs 'glob'")
            self._under_roots(Path(pattern).parent, "source glob")
        else:
            if not may_query_sql:
                raise Forbidden("only an admin key may define a SQL source")
            if not isinstance(source.get("url"), str) or not isinstance(source.get("query"), str):
                raise InvalidInput("a SQL source needs 'url' (SQLAlchemy) and 'query'")
            if not re.match(r"^\s*(select|with)\b", source["query"], re.I):
                raise InvalidInput("a SQL source's query must be a SELECT")
        if not isinstance(sink, dict) or sink.get("kind") not in ("table", "file"):
            raise InvalidInput("'sink' must be {\"kind\": \"table\"} or "
                               "{\"kind\": \"file\", \"path\": ..., \"format\": ...}")
        if sink["kind"] == "file":
            if sink.get("format", "csv") not in SINK_FORMATS:
                raise InvalidInput(f"sink format must be one of {', '.join(SINK_FORMATS)}")
            self._under_roots(Path(str(sink.get("path", ""))).parent, "sink path")

    def _under_roots(self, folder: Path, what: str) -> None:
        roots = [Path(r).resolve() for r in self.jobs.settings.job_roots]
        target = folder.resolve()
        if not any(target == r or r in target.parents for r in roots):
            raise InvalidInput(f"the {what} is not under an allowed root (SCOREBRIDGE_JOB_ROOTS)")

    def create(self, name: str, model: str, schedule: str, source: dict[str, Any],
               sink: dict[str, Any], *, actor: str, alias: str = "production",
               may_query_sql: bool = False, now: datetime | None = None) -> ScheduleInfo:
        validate_name(name, "model name")
        validate_name(alias, "alias")
        self._check(model, schedule, source, sink, may_query_sql)
        now = now or datetime.now(timezone.utc)
        with self.registry.writing() as session:
            if session.get(ScheduleRow, name) is not None:
                raise Conflict(f"a pipeline named {name!r} exists; delete it first")
            session.add(ScheduleRow(name=name, model_name=model, alias=alias, schedule=schedule,
                                    source=source, sink=sink, enabled=True,
                                    next_run_at=next_time(schedule, now), last_error="",
                                    created_by=actor, created_at=utcnow()))
        return self.get(name)

    @staticmethod
    def _row(session: Session, name: str) -> ScheduleRow:
        row = session.get(ScheduleRow, name[:64])
        if row is None:
            raise NotFound(f"no pipeline named {name[:40]!r}")
        return row

    def get(self, name: str) -> ScheduleInfo:
        with self.registry.reading() as session:
            return _info(self._row(session, name))

    def list(self) -> list[ScheduleInfo]:
        with self.registry.reading() as session:
            return [_info(r) for r in session.scalars(select(ScheduleRow)
                                                      .order_by(ScheduleRow.name))]

    def delete(self, name: str) -> None:
        with self.registry.writing() as session:
            session.delete(self._row(session, name))

    # -- runs -----------------------------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> builtins.list[str]:  # `list`: the method above
        """Start every schedule whose time has come (each once); returns the job ids."""
        now = now or datetime.now(timezone.utc)
        started = []
        with self.registry.reading() as session:
            due = session.scalars(select(ScheduleRow).where(ScheduleRow.enabled.is_(True),
                                                            ScheduleRow.next_run_at <= now)).all()
        for row in due:
            with self.registry.writing() as session:
                claimed = rows_changed(session.execute(
                    update(ScheduleRow).where(ScheduleRow.name == row.name,
                                              ScheduleRow.next_run_at == row.next_run_at)
                    .values(next_run_at=next_time(row.schedule, now), last_run_at=now)))
            if claimed:
                started.append(self.run(row.name))
        return started

    def run(self, name: str) -> str:
        """One run now: fetch the source, queue its job; returns the job id ('' on failure)."""
        info = self.get(name)
        staging = self.jobs.settings.tmp_dir
        staging.mkdir(parents=True, exist_ok=True)
        try:
            source = self._fetch(info, staging)
            sink = info.sink
            job = self.jobs.submit(
                info.model, source, actor=f"pipeline {name}", alias=info.alias,
                output_format=sink.get("format", "csv") if sink["kind"] == "file" else "parquet",
                publish=sink["kind"] == "table", move=source.parent == staging)
            if sink["kind"] == "file":
                self.jobs.set_delivery(job.id, str(Path(sink["path"]).resolve()))
            error, job_id = "", job.id
        except Exception as exc:  # a failed run is recorded on the schedule, never raised
            detail = getattr(exc, "detail", None) or f"{type(exc).__name__}: {str(exc)[:300]}"
            error, job_id = detail, ""
        with self.registry.writing() as session:
            row = self._row(session, name)  # NotFound if deleted during the run
            row.last_error, row.last_job_id = error, job_id or row.last_job_id
        return job_id

    def _fetch(self, info: ScheduleInfo, staging: Path) -> Path:
        source = info.source
        if source["kind"] == "file":
            matches = [Path(p) for p in glob.glob(source["glob"]) if Path(p).is_file()]
            if not matches:
                raise NotFound(f"no file matches {source['glob']}")
            newest = max(matches, key=lambda p: p.stat().st_mtime)
            return self.jobs.allowed_path(str(newest))
        engine = create_engine(source["url"])
        try:
            with engine.connect() as conn:
                frame = pd.read_sql(text(source["query"]), conn)
        finally:
            engine.dispose()
        out = staging / f"pipeline-{info.name}-{os.getpid()}.parquet"
        frame.to_parquet(out, index=False)
        return out
