"""Scheduled runs of a model's outcome sources: each due source is read and its outcomes recorded
through :func:`.outcomes.record`, chunk by chunk, exactly as uploads are.

State lives in the model's monitoring document (its ``state`` member, which settings changes
keep): per source the last start and end, status, counts and error, the high-water mark of
outcome time for SQL (``since``), and for files every file read with its size and modification
time, so a re-run reads nothing twice and a changed file is read again (a re-read answers
``unchanged``, so nothing is counted twice either way).

Workers and hosts sharing one registry run a source once: a run is claimed under the model row's
lock (:meth:`Registry.update_monitoring_state`) by writing who runs it; a claim whose heartbeat
is older than the claim timeout (a worker that died mid-run) may be taken over.

Events: ``outcome_source_run`` for a run that read rows (counts per status) or that came back
after a failure; ``outcome_source_failed`` with the reason for a source that could not be read
(once per distinct reason, not every period: a broken source does not flood the webhooks) or for
files that could not be read (each file is tried again once it changes). One source failing
never stops the others.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..registry.service import MONITORING_STATE, Registry
from ..types import Outcome, Signature
from . import outcome_alerts
from . import outcomes as outcomes_mod
from .outcome_readers import CHUNK_ROWS, Fingerprint, SourceError, file_outcomes, matching_files, sql_outcomes
from .outcome_sources import FileSource, SqlSource, shown_source, stored_sources

log = logging.getLogger(__name__)
ACTOR = "outcome-sources"
RUN_EVENT = "outcome_source_run"
FAILED_EVENT = "outcome_source_failed"
STATE = "outcome_sources"  # under the monitoring document's state member
MAX_PROBLEMS = 10
MAX_LISTED_FILES = 50
FUTURE = timedelta(days=1)  # an outcome time further ahead is refused by record(): no mark

Source = SqlSource | FileSource


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat()


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


@dataclass
class SourceRun:
    """What one run of one source did."""

    model: str
    source: str
    kind: str
    status: str = "ok"                 # ok | failed | skipped
    reason: str = ""                   # why it failed or was skipped
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    late: int = 0
    files: list[str] = field(default_factory=list)          # files read in this run
    file_errors: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    since: str | None = None           # SQL: the mark bound to :since, and the new one
    high_water: str | None = None
    alert: str | None = None

    def add(self, report: outcomes_mod.Report, file: str | None = None) -> None:
        for status, n in report.counts.items():
            self.counts[status] = self.counts.get(status, 0) + n
        self.rows += len(report.answers)
        self.late += report.late
        for a in report.answers:
            if a.status in ("invalid", "unknown") and len(self.problems) < MAX_PROBLEMS:
                self.problems.append({**a.as_dict(), **({"file": file} if file else {})})

    @property
    def changed(self) -> bool:
        return bool(self.counts.get("recorded") or self.counts.get("replaced"))

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "source": self.source, "kind": self.kind,
                               "status": self.status, "rows": self.rows, "counts": self.counts,
                               "late": self.late}
        if self.reason:
            out["reason"] = self.reason
        if self.kind == "files":
            out["files_read"] = len(self.files)
            out["files"] = self.files[:MAX_LISTED_FILES]
            if self.file_errors:
                out["file_errors"] = self.file_errors
        else:
            out["since"], out["high_water"] = self.since, self.high_water
        if self.problems:
            out["problems"] = self.problems
        if self.alert:
            out["alert"] = self.alert
        return out


class OutcomeSourceRunner:
    """Runs the due outcome sources of every model (the deployment worker, every minute) or
    one model's now (``scorebridge outcome-sources NAME --run``)."""

    def __init__(self, registry: Registry, holder: str, roots: tuple[str, ...],
                 stale_seconds: float = 300.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.registry = registry
        self.holder = holder
        self.roots = roots
        self.stale = timedelta(seconds=stale_seconds)
        self.clock = clock

    # -- which runs ------------------------------------------------------------------------

    def models_with_sources(self) -> list[str]:
        return [m.name for m in self.registry.list_models()
                if (m.monitoring.get("outcomes") or {}).get("sources")]

    def run_due(self, names: list[str] | None = None) -> list[SourceRun]:
        """The due sources of every model (or of ``names``), each model and source on its
        own: one failing stops nothing else."""
        runs: list[SourceRun] = []
        for name in self.models_with_sources() if names is None else names:
            try:
                runs += self.run_model(name)
            except Exception:
                log.exception("outcome sources of %r failed; trying next round", name)
        return runs

    def run_model(self, name: str, *, force: bool = False,
                  only: str | None = None) -> list[SourceRun]:
        """``name``'s enabled sources that are due (``force``: all of them now; ``only``: the
        one so named); sources running elsewhere are skipped."""
        model = self.registry.get_model(name)
        sources = stored_sources(model.monitoring)
        names = {str(s.name) for s in sources}
        runs = []
        for source in sources:
            if not source.enabled or (only is not None and source.name != only):
                continue
            previous = self._claim(name, source, names, force)
            if isinstance(previous, str):
                if force:
                    runs.append(SourceRun(name, str(source.name), source.kind, "skipped",
                                          previous))
                continue
            runs.append(self._run(name, source, previous))
        return runs

    def _claim(self, name: str, source: Source, names: set[str],
               force: bool) -> dict[str, Any] | str:
        """The source's state before this run if this holder may run it now, else why not."""
        now = self.clock()
        verdict: dict[str, Any] = {}

        def change(state: dict[str, Any]) -> dict[str, Any] | None:
            runs = {k: v for k, v in (state.get(STATE) or {}).items() if k in names}
            st = dict(runs.get(str(source.name)) or {})
            running = st.get("running") or {}
            beat = _time(running.get("heartbeat_at"))
            if beat is not None and beat > now - self.stale:
                verdict["skip"] = f"running on {running.get('by')} since {running.get('since')}"
                return None
            started = _time(st.get("started_at"))
            if not force and started is not None and \
                    started + timedelta(minutes=source.every_minutes) > now:
                verdict["skip"] = "not due"
                return None
            verdict["previous"] = dict(st)
            st.update(started_at=_iso(now), running={"by": self.holder, "since": _iso(now),
                                                     "heartbeat_at": _iso(now)})
            runs[str(source.name)] = st
            return {**state, STATE: runs}

        self.registry.update_monitoring_state(name, change)
        return verdict["skip"] if "skip" in verdict else verdict["previous"]

    def _update(self, name: str, source: Source,
                change: Callable[[dict[str, Any]], None], *, done: bool = False) -> None:
        """Change this source's state (and beat the heart of this holder's claim)."""
        def apply(state: dict[str, Any]) -> dict[str, Any]:
            runs = dict(state.get(STATE) or {})
            st = dict(runs.get(str(source.name)) or {})
            ours = (st.get("running") or {}).get("by") == self.holder
            change(st)
            if ours and done:
                st.pop("running", None)
            elif ours:
                st["running"] = {**st["running"], "heartbeat_at": _iso(self.clock())}
            runs[str(source.name)] = st
            return {**state, STATE: runs}
        self.registry.update_monitoring_state(name, apply)

    # -- one run -----------------------------------------------------------------------------

    def _run(self, name: str, source: Source, previous: dict[str, Any]) -> SourceRun:
        run = SourceRun(name, str(source.name), source.kind)
        files: dict[str, Any] = dict(previous.get("files") or {})
        try:
            model = self.registry.get_model(name)
            settings = model.monitoring.get("outcomes") or {}
            if not settings.get("enabled"):
                raise SourceError("the model does not track outcomes (outcomes.enabled is off)")
            if model.production is None:
                raise SourceError("the model has no production version")
            signature = Signature.from_dict(model.production.signature)
            key = settings.get("key")
            if isinstance(source, SqlSource):
                self._run_sql(name, source, signature, key, previous, run)
            else:
                files = self._run_files(name, source, signature, key, files, run)
        except SourceError as exc:
            run.status, run.reason = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001  (a run never takes the worker down)
            log.exception("outcome source %r of %r failed", source.name, name)
            run.status, run.reason = "failed", f"{type(exc).__name__} (see the server log)"
        if run.changed:
            try:
                run.alert = outcome_alerts.check(self.registry, name)
            except Exception:  # noqa: BLE001
                log.exception("the outcome alert of %r could not be checked", name)
        self._finish(name, source, previous, files, run)
        return run

    def _record(self, name: str, source: Source, signature: Signature,
                outcomes: Iterable[Outcome], run: SourceRun, file: str | None = None) -> None:
        """Record ``outcomes`` chunk by chunk; only counts and a few problems are kept."""
        beat = time.monotonic()
        for batch in outcomes_mod.chunks(outcomes, CHUNK_ROWS):
            run.add(outcomes_mod.record(self.registry, name, signature, batch), file)
            if time.monotonic() - beat > self.stale.total_seconds() / 3:
                self._update(name, source, lambda st: None)
                beat = time.monotonic()

    def _run_sql(self, name: str, source: SqlSource, signature: Signature, key: str | None,
                 previous: dict[str, Any], run: SourceRun) -> None:
        since = _time(previous.get("since"))
        run.since = run.high_water = previous.get("since")
        mark: list[datetime] = [since] if since else []
        limit = self.clock() + FUTURE

        def marked(items: Iterator[Outcome]) -> Iterator[Outcome]:
            for o in items:
                if o.time is not None and not o.problem and o.time <= limit and \
                        (not mark or o.time > mark[0]):
                    mark[:] = [o.time]
                yield o

        self._record(name, source, signature, marked(sql_outcomes(source, since, key)), run)
        if mark:
            run.high_water = _iso(mark[0])

    def _run_files(self, name: str, source: FileSource, signature: Signature,
                   key: str | None, seen: dict[str, Any], run: SourceRun) -> dict[str, Any]:
        """Read each matching file not read as it is now; what was read is remembered file by
        file, so a run stopped half-way does not read the finished files again."""
        paths = matching_files(source, self.roots)
        for path in paths:
            try:
                fingerprint = Fingerprint.of(path)
            except OSError:
                continue  # gone since the glob saw it
            if fingerprint.matches(seen.get(str(path))):
                continue
            entry: dict[str, Any] = fingerprint.stored()
            try:
                self._record(name, source, signature, file_outcomes(path, key), run,
                             path.name)
                run.files.append(str(path))
            except SourceError as exc:
                entry["error"] = str(exc)
                run.file_errors.append({"file": str(path), "reason": str(exc)})
            seen[str(path)] = entry

            def remember(st: dict[str, Any], path: Path = path,
                         entry: dict[str, Any] = entry) -> None:
                st["files"] = {**(st.get("files") or {}), str(path): entry}
            self._update(name, source, remember)
        present = {str(p) for p in paths}
        return {p: v for p, v in seen.items() if p in present}  # forget files gone

    def _finish(self, name: str, source: Source, previous: dict[str, Any],
                files: dict[str, Any], run: SourceRun) -> None:
        ended = self.clock()

        def done(st: dict[str, Any]) -> None:
            st.update(finished_at=_iso(ended), status=run.status, error=run.reason or None,
                      rows=run.rows, counts=run.counts)
            if isinstance(source, FileSource) and run.status == "ok":
                st["files"] = files
            if isinstance(source, SqlSource) and run.status == "ok":
                st["since"] = run.high_water
        self._update(name, source, done, done=True)
        self._events(name, source, previous, run)

    def _events(self, name: str, source: Source, previous: dict[str, Any],
                run: SourceRun) -> None:
        detail = {("source_kind" if k == "kind" else k): v for k, v in run.public().items()
                  if k not in ("model", "status")}
        failed_before = previous.get("status") == "failed"
        if run.status == "failed":
            if not failed_before or previous.get("error") != run.reason:
                self.registry.record_event(name, FAILED_EVENT, actor=ACTOR, **detail)
            return
        if run.file_errors:
            self.registry.record_event(name, FAILED_EVENT, actor=ACTOR,
                                       **{**detail, "reason": "files could not be read"})
        if run.rows or failed_before:
            self.registry.record_event(name, RUN_EVENT, actor=ACTOR, **detail,
                                       **({"recovered": True} if failed_before else {}))


def listing(registry: Registry, name: str, stale_seconds: float = 300.0,
            now: datetime | None = None) -> list[dict[str, Any]]:
    """The model's sources as declared (passwords masked), each with its last run's state."""
    now = now or datetime.now(timezone.utc)
    model = registry.get_model(name)
    state = (model.monitoring.get(MONITORING_STATE) or {}).get(STATE) or {}
    out = []
    for source in stored_sources(model.monitoring):
        st = state.get(str(source.name)) or {}
        started = _time(st.get("started_at"))
        beat = _time((st.get("running") or {}).get("heartbeat_at"))
        running = beat is not None and beat > now - timedelta(seconds=stale_seconds)
        item = {**shown_source(source.model_dump()),
                "state": "disabled" if not source.enabled else "running" if running
                else st.get("status") or "never run",
                "last_run_at": st.get("started_at"), "finished_at": st.get("finished_at"),
                "next_run_at": None if not source.enabled else
                _iso(max(now, started + timedelta(minutes=source.every_minutes)))
                if started else _iso(now),
                "rows": st.get("rows"), "counts": st.get("counts") or {},
                "error": st.get("error")}
        if isinstance(source, SqlSource):
            item["since"] = st.get("since")
        else:
            item["files_read"] = len(st.get("files") or {})
        out.append(item)
    return out
