"""The scoring core: resolve which version answers, load it (cached), check the input, predict.

Every client goes through :meth:`Scorer.score`. Deployment state (which version an alias points at)
lives in the database; each worker keeps a copy that it refreshes when the registry's change marker
moves, at most every ``deploy_refresh_seconds``, so a promotion reaches every worker and host quickly
while the scoring path does one cheap query per refresh interval, not per request.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from sqlalchemy.exc import SQLAlchemyError


from ..types import FieldError, RawTable, ScoreOptions, ScoreResult, Signature, to_python
from ..config import Settings
from ..errors import (InvalidInput, ModelFailure, NotFound, PayloadTooLarge, ScoreBridgeError,
                      Unavailable)
from ..registry.deployments import Deployments
from ..registry.service import PRODUCTION, Registry, VersionInfo
from .. import metrics
from .prediction_log import PredictionLog
from .traffic import TrafficRecorder
from .batching import MicroBatcher
from .coerce import align, check_width, coerce, concat
from .compiled.stored import stored_runner
from .loader import load_artifact
from .runtime import LoadedModel

log = logging.getLogger(__name__)


class ModelCache:
    """Loaded versions per worker, least recently used evicted first; loads happen once."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self._models: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def get(self, info: VersionInfo) -> LoadedModel:
        key = (info.model, info.version)
        with self._lock:
            model = self._models.get(key)
            if model is not None and model.sha256 == info.sha256:
                self._models.move_to_end(key)
                return model
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one thread loads; the others wait for it
            with self._lock:
                model = self._models.get(key)
                if model is not None and model.sha256 == info.sha256:
                    return model
            model = self._load(info)
            with self._lock:
                self._models[key] = model
                self._models.move_to_end(key)
                while len(self._models) > max(self.settings.model_cache_size, 1):
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
            return model

    def _load(self, info: VersionInfo) -> LoadedModel:
        try:
            return self._load_checked(info)
        except ScoreBridgeError as exc:
            # the caller's input is fine; the stored model is not: a server-side failure
            log.error("model %s v%s cannot be loaded: %s", info.model, info.version, exc.detail)
            raise Unavailable(f"model {info.model!r} version {info.version} cannot be loaded: "
                              f"{exc.detail}") from None

    def _load_checked(self, info: VersionInfo) -> LoadedModel:
        started = time.perf_counter()
        estimator = load_artifact(self.registry.store.path(info.artifact), info.format,  # type: ignore[arg-type]
                                  trust_pickle=info.trusted_pickle,
                                  extra_trusted=self.settings.trusted_types,
                                  expected_sha256=info.sha256)
        signature = Signature.from_dict(info.signature)
        compiled = stored_runner(self.registry.store.path(info.compiled_artifact), info.runtime,
                                 signature, estimator, info.model, info.version) \
            if info.compiled_artifact else None
        metrics.MODEL_LOAD.labels(info.model).observe(time.perf_counter() - started)
        return LoadedModel(info.model, info.version, estimator, signature, info.sha256,
                           compiled=compiled)

    def loaded(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)


@dataclass(frozen=True)
class Route:
    """Where a model's unpinned requests go: production, plus an optional canary or shadow."""

    production: VersionInfo | None
    canary: tuple[VersionInfo, float] | None = None
    shadow: tuple[VersionInfo, float, float] | None = None  # version, share, tolerance
    log_rate: float = 0.0                                  # prediction log sampling

    def versions(self) -> list[VersionInfo]:
        out = [self.production] if self.production else []
        return out + [part[0] for part in (self.canary, self.shadow) if part is not None]


class DeploymentView:
    """This worker's copy of the deployment state: routes per model and pinned versions.

    It is rebuilt when the registry's change marker moves. The new state's models are loaded
    *before* it replaces the old one, so no request waits for, or sees, a half-loaded model; the
    versions it replaces stay in the cache for an instant rollback.
    """

    def __init__(self, registry: Registry, cache: ModelCache, refresh_seconds: float,
                 log_rate: float = 0.0) -> None:
        self.registry = registry
        self.log_rate = log_rate
        self.deployments = Deployments(registry)
        self.cache = cache
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._marker = -1
        self._routes: dict[str, Route] = {}
        self._deployed: dict[str, list[int]] = {}
        self._pinned: dict[tuple[str, str | None, int | None], VersionInfo] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0

    def _build_route(self, name: str) -> Route:
        try:
            production: VersionInfo | None = self.registry.get_version(name)
        except NotFound:
            self.registry.get_model(name)  # unknown model: NotFound names the model
            production = None
        canary = shadow = None
        monitoring = self.registry.get_model(name).monitoring
        log_rate = float(monitoring.get("sample_rate", self.log_rate)) \
            if monitoring.get("log", True) else 0.0
        for r in self.deployments.open_rollouts(name):
            if r.kind == "canary":
                canary = (self.registry.get_version(name, r.version), float(r.config["share"]))
            elif r.kind == "shadow":
                shadow = (self.registry.get_version(name, r.version), float(r.config["share"]),
                          float(r.config.get("tolerance", 1e-6)))
        return Route(production, canary, shadow, log_rate)

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the known routes if the registry changed; True when something changed."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return False
        try:
            marker = self.registry.change_marker()
        except SQLAlchemyError as exc:
            # the database is away: keep serving what is deployed, look again next interval
            self._checked = now
            if self._routes:
                log.warning("registry unreachable, serving the last known deployment: %s",
                            type(exc).__name__)
                return False
            raise
        self._checked = now
        if marker == self._marker:
            return False
        with self._lock:
            names = list(self._routes)
        routes = {}
        for name in names:
            try:
                routes[name] = self._build_route(name)
            except NotFound:
                continue
        for route in routes.values():  # load before the switch
            for info in route.versions():
                try:
                    self.cache.get(info)
                except ScoreBridgeError:
                    pass  # reported when a request needs it
        with self._lock:
            self._routes = routes
            self._pinned.clear()
            self._marker = marker
        for name, route in routes.items():
            if route.production is not None:
                metrics.mark_deployed(name, route.production.version,
                                      self._deployed.get(name, []) + [route.production.version])
                self._deployed[name] = [route.production.version]
        return True

    def route(self, name: str) -> Route:
        self.refresh()
        with self._lock:
            route = self._routes.get(name)
        if route is None:
            route = self._build_route(name)
            with self._lock:
                self._routes[name] = route
            if route.production is not None:
                metrics.mark_deployed(name, route.production.version,
                                      [route.production.version])
                self._deployed[name] = [route.production.version]
        return route

    def resolve(self, name: str, version: int | None = None,
                alias: str | None = None) -> VersionInfo:
        self.refresh()
        key = (name, None if version is not None else (alias or PRODUCTION), version)
        with self._lock:
            info = self._pinned.get(key)
        if info is None:
            info = self.registry.get_version(name, version=version, alias=alias)
            with self._lock:
                self._pinned[key] = info
        return info


class Scorer:
    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = ModelCache(registry, settings)
        self.deployments = DeploymentView(registry, self.cache, settings.deploy_refresh_seconds,
                                          settings.prediction_log_rate)
        self.traffic = TrafficRecorder()
        self.prediction_log = PredictionLog(settings.prediction_log_rows_per_second)
        self.shadow = ShadowRunner(self.traffic)
        self.batcher: MicroBatcher[RawTable, Any] | None = MicroBatcher(
            settings.batch_max_rows, settings.batch_wait_ms / 1000) \
            if settings.micro_batching else None

    def model_for(self, name: str, version: int | None = None,
                  alias: str | None = None) -> LoadedModel:
        return self.cache.get(self.deployments.resolve(name, version, alias))

    def _check_size(self, n_rows: int) -> None:
        if n_rows > self.settings.max_rows:
            raise PayloadTooLarge(f"{n_rows} rows in one request; the limit is "
                                  f"{self.settings.max_rows}: split the input or use a batch job")

    def _choose(self, name: str, version: int | None,
                alias: str | None) -> tuple[VersionInfo, Route | None]:
        """The version that answers: pinned, or production (or, for a canary's share, the canary)."""
        if version is not None or alias is not None:
            return self.deployments.resolve(name, version, alias), None
        route = self.deployments.route(name)
        if route.production is None:
            raise NotFound(f"model {name!r} has no production version yet")
        if route.canary is not None and random.random() < route.canary[1]:
            return route.canary[0], route
        return route.production, route

    def _scored(self, model: LoadedModel, table: RawTable, options: ScoreOptions,
                route: Route | None) -> ScoreResult:
        """Score with traffic counted and, under a shadow rollout, a copy sent to the candidate."""
        start = time.perf_counter()
        try:
            result = score_with(model, table, options)
        except ModelFailure:
            self.traffic.record(model.name, model.version, time.perf_counter() - start,
                                table.n_rows, error=True)
            raise
        self._account(model, table, result, start, route)
        return result

    def _account(self, model: LoadedModel, table: RawTable, result: ScoreResult, start: float,
                 route: Route | None, logged: ScoreResult | None = None,
                 window: tuple[int, int] | None = None) -> None:
        """Count a scored request, sample it into the prediction log, copy it to a shadow.

        ``logged``/``window``: for a request scored inside a micro-batch, the batch's result and
        this request's rows in it (the prediction log needs the rows as the model saw them)."""
        seconds = time.perf_counter() - start
        self.traffic.record(model.name, model.version, seconds, result.rows_scored,
                            error=result.model_failures > 0)
        metrics.child(metrics.ROWS, model.name, str(model.version), metrics.CLIENT.get()).inc(
            result.rows_scored)
        if route is not None and route.log_rate > 0:
            self.prediction_log.offer(route.log_rate, model.name, model.version,
                                      logged or result, seconds, metrics.CLIENT.get(),
                                      metrics.REQUEST_ID.get(), window=window)
        if route is not None and route.shadow is not None and \
                model.version == getattr(route.production, "version", None) and \
                random.random() < route.shadow[1]:
            shadow_info, _, tolerance = route.shadow
            try:
                self.shadow.submit(self.cache.get(shadow_info), table, result, tolerance)
            except ScoreBridgeError:
                pass

    def default_model(self) -> str:
        """The model a client gets when it names none: SCOREBRIDGE_DEFAULT_MODEL, else the only
        model with a production version."""
        if self.settings.default_model:
            return self.settings.default_model
        serving = [m.name for m in self.registry.list_models() if m.production is not None]
        if len(serving) == 1:
            return serving[0]
        raise InvalidInput("name the model: " + (f"this server has {len(serving)} models ("
                           + ", ".join(serving[:10]) + ")" if serving else "no model is deployed"))

    def score(self, name: str, table: RawTable, *, version: int | None = None,
              alias: str | None = None, options: ScoreOptions = ScoreOptions()) -> ScoreResult:
        self._check_size(table.n_rows)
        info, route = self._choose(name, version, alias)
        model = self.cache.get(info)
        if self.batcher is not None and table.n_rows <= self.settings.batch_request_rows:
            start = time.perf_counter()
            joined = self.batcher.submit((model.name, model.version, model.sha256,
                                          options.probabilities), table, table.n_rows,
                                         lambda tables: self._score_jointly(model, tables,
                                                                            options))
            if joined is not None:
                result, whole, window = joined
                self._account(model, table, result, start, route, logged=whole, window=window)
                return result
        return self._scored(model, table, options, route)

    def _score_jointly(self, model: LoadedModel, tables: list[RawTable], options: ScoreOptions,
                       ) -> list[tuple[ScoreResult, ScoreResult, tuple[int, int]] | None]:
        """One model call for several requests' tables (a micro-batch). A table whose rows are
        not all clean gets None and is scored on its own, so its errors, warnings and
        ``errors="raise"`` behaviour are exactly those of a lone request."""
        by_row = ScoreOptions(probabilities=options.probabilities, errors="row")
        if len(tables) == 1:  # nothing to share the call with: the lone request's own call
            alone = score_with(model, tables[0], by_row)
            return [None if alone.errors else (alone, alone, (0, alone.n_rows))]
        _, parts = _aligned_parts(tables, model.signature)
        out: list[tuple[ScoreResult, ScoreResult, tuple[int, int]] | None] = [None] * len(tables)
        if not parts:
            return out
        whole = score_with(model, concat([t for _, t, _ in parts], model.signature), by_row)
        for i, part, window in _split(whole, parts):
            if not part.errors:
                out[i] = (part, whole, window)
        return out

    def score_many(self, name: str, tables: list[RawTable], *, version: int | None = None,
                   alias: str | None = None, options: ScoreOptions = ScoreOptions(errors="row"),
                   ) -> list[ScoreResult | ScoreBridgeError]:
        """Score several tables (e.g. many spreadsheet calls) with one version in one predict call.

        Each table gets its own result, or its own error when it cannot be read against the
        signature (missing columns); the others are not affected.
        """
        self._check_size(sum(t.n_rows for t in tables))
        info, route = self._choose(name, version, alias)
        model = self.cache.get(info)
        failed, parts = _aligned_parts(tables, model.signature)
        outcomes: list[ScoreResult | ScoreBridgeError | None] = list(failed)
        if parts:
            whole = self._scored(model, concat([t for _, t, _ in parts], model.signature),
                                 options, route)
            for i, part, _ in _split(whole, parts):
                outcomes[i] = part
        return outcomes  # type: ignore[return-value]


def _split(whole: ScoreResult, parts: list[tuple[int, RawTable, list[FieldError]]],
           ) -> Iterator[tuple[int, ScoreResult, tuple[int, int]]]:
    """Each stacked table's own result from the joint one: (index, result, (start, rows))."""
    offset = 0
    for i, aligned, warnings in parts:
        yield i, _slice(whole, offset, aligned.n_rows, warnings), (offset, aligned.n_rows)
        offset += aligned.n_rows


def _aligned_parts(tables: list[RawTable], signature: Signature,
                   ) -> tuple[list[ScoreBridgeError | None],
                              list[tuple[int, RawTable, list[FieldError]]]]:
    """Tables made ready to be stacked: (index, table, warnings) for each that fits the
    signature, and each one's own error where it does not (missing columns, wrong width).
    Positional tables stay pending so :func:`concat` binds them all in one go."""
    failed: list[ScoreBridgeError | None] = [None] * len(tables)
    parts = []
    for i, table in enumerate(tables):
        try:
            if table.pending_rows is not None:
                check_width(table, signature)
                parts.append((i, table, []))
                continue
            aligned, warnings = align(table, signature)
        except ScoreBridgeError as exc:
            failed[i] = exc
            continue
        parts.append((i, aligned, warnings))
    return failed, parts


def _slice(result: ScoreResult, start: int, n: int, warnings: list[FieldError]) -> ScoreResult:
    """Rows ``start .. start+n`` of ``result`` as a result of their own (rows renumbered)."""
    def inside(e: FieldError) -> bool:
        return e.row is not None and start <= e.row < start + n

    def shift(items: list[FieldError]) -> list[FieldError]:
        return [FieldError(e.message, e.row - start, e.column)  # type: ignore[operator]
                for e in items if inside(e)]

    lo, hi = np.searchsorted(result.positions, [start, start + n])
    return ScoreResult(
        model=result.model, version=result.version, labels=result.labels[lo:hi],
        probs=result.probs[lo:hi] if result.probs is not None else None,
        positions=result.positions[lo:hi] - start, classes=result.classes,
        errors=shift(result.errors),
        warnings=warnings + [w for w in result.warnings if w.row is None] + shift(result.warnings),
        n_rows=n, kind=result.kind)  # model failures are counted on the whole call


class ShadowRunner:
    """Scores a copy of production requests with the shadow candidate, off the response path.

    One background thread and a bounded backlog: when the candidate cannot keep up, copies are
    dropped rather than slowing production. Agreement (same label, or a value within tolerance)
    is counted per request.
    """

    MAX_BACKLOG = 64

    def __init__(self, traffic: TrafficRecorder) -> None:
        self.traffic = traffic
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._backlog = threading.BoundedSemaphore(self.MAX_BACKLOG)
        self.dropped = 0

    def submit(self, model: LoadedModel, table: RawTable, served: ScoreResult,
               tolerance: float) -> None:
        if not self._backlog.acquire(blocking=False):
            self.dropped += 1
            return
        future = self._pool.submit(self._compare, model, table, served, tolerance)
        future.add_done_callback(lambda _: self._backlog.release())

    def _compare(self, model: LoadedModel, table: RawTable, served: ScoreResult,
                 tolerance: float) -> None:
        start = time.perf_counter()
        try:
            shadow = score_with(model, table, ScoreOptions(probabilities=False, errors="row"))
        except ScoreBridgeError:
            self.traffic.record(model.name, model.version, time.perf_counter() - start, 0, True)
            return
        self.traffic.record(model.name, model.version, time.perf_counter() - start,
                            shadow.rows_scored, error=shadow.model_failures > 0)
        compared = agreed = 0
        for a, b in zip(shadow.predictions, served.predictions):
            if a is None or b is None:
                continue
            compared += 1
            if isinstance(a, float) or isinstance(b, float):
                agreed += abs(float(a) - float(b)) <= tolerance * max(1.0, abs(float(b)))
            else:
                agreed += a == b
        self.traffic.record_shadow(model.name, model.version, compared, agreed)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait for the backlog to empty (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._backlog._value == self.MAX_BACKLOG:  # type: ignore[attr-defined]
                return
            time.sleep(0.01)


def score_with(model: LoadedModel, table: RawTable, options: ScoreOptions) -> ScoreResult:
    """Check, coerce and predict ``table`` with an already loaded model."""
    checked = coerce(table, model.signature)
    if checked.errors and options.errors == "raise":
        raise InvalidInput(_summary(checked.errors, table.n_rows), errors=checked.errors)
    pred = model.predict(checked.columns, proba=options.probabilities)
    errors = list(checked.errors)
    if pred.failures:
        failures = [FieldError(f.message, row=int(checked.rows[f.row]))  # type: ignore[index]
                    for f in pred.failures]
        if options.errors == "raise":
            raise ModelFailure(_summary(failures, table.n_rows), errors=failures)
        errors = sorted(errors + failures, key=lambda e: e.row if e.row is not None else -1)
    output = model.signature.output
    return ScoreResult(model=model.name, version=model.version, labels=_plain(pred.labels),
                       probs=pred.probabilities, positions=checked.rows[pred.ok],
                       classes=list(output.classes) if output.classes is not None else None,
                       errors=errors, warnings=_dedupe(checked.warnings), n_rows=table.n_rows,
                       kind=output.kind, model_failures=len(pred.failures),
                       checked=checked, scored=pred.ok)


def _plain(labels: np.ndarray) -> np.ndarray:
    """Labels whose ``tolist()`` gives plain Python values (numpy scalars inside an object array
    would not serialise as JSON)."""
    if labels.dtype == object:
        return np.array([to_python(v) for v in labels.tolist()], dtype=object) \
            if any(isinstance(v, np.generic) for v in labels[:1]) else labels
    return labels


def _summary(errors: list[FieldError], n_rows: int) -> str:
    bad = len({e.row for e in errors if e.row is not None})
    first = errors[0]
    where = f"row {first.row}" if first.row is not None else "input"
    col = f", column {first.column!r}" if first.column else ""
    return (f"{bad} of {n_rows} rows could not be scored; first problem at {where}{col}: "
            f"{first.message}. Send options.errors=\"row\" to score the valid rows anyway")


def _dedupe(items: list[FieldError]) -> list[FieldError]:
    seen = set()
    out = []
    for item in items:
        key = (item.row, item.column, item.message)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
