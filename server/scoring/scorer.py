"""The scoring core: resolve which version answers, load it (cached), check the input, predict.

Every client goes through :meth:`Scorer.score`; it counts what it scored (traffic, rows, the
prediction log) and copies requests to a shadow candidate. Which version answers is
:mod:`.routing`'s, loading is :mod:`.cache`'s, the call itself :mod:`.predict`'s.
"""
from __future__ import annotations

import random
import time
import uuid
from typing import Any

from .. import metrics
from ..config import Settings
from ..errors import InvalidInput, ModelFailure, NotFound, PayloadTooLarge, ScoreBridgeError
from ..registry.service import Registry, VersionInfo
from ..types import RawTable, ScoreOptions, ScoreResult
from .batching import MicroBatcher
from .cache import ModelCache
from .coerce import concat
from .outcome_log import OutcomeLog, Tracking
from .predict import score_with
from .prediction_log import PredictionLog
from .routing import DeploymentView, Route
from .runtime import LoadedModel
from .shadow import ShadowRunner
from .stacking import aligned_parts, split_parts
from .traffic import TrafficRecorder


class Scorer:
    """The one entry to scoring for every client: routes, scores, counts."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = ModelCache(registry, settings)
        self.deployments = DeploymentView(registry, self.cache, settings.deploy_refresh_seconds,
                                          settings.prediction_log_rate)
        self.traffic = TrafficRecorder()
        self.prediction_log = PredictionLog(settings.prediction_log_rows_per_second)
        self.outcome_log = OutcomeLog()
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
                route: Route | None,
                tracked: tuple[Tracking, list[Any] | None] | None = None) -> ScoreResult:
        """Score with traffic counted and, under a shadow rollout, a copy sent to the candidate."""
        start = time.perf_counter()
        try:
            result = score_with(model, table, options)
        except ModelFailure:
            self.traffic.record(model.name, model.version, time.perf_counter() - start,
                                table.n_rows, error=True, caller=metrics.CALLER.get())
            raise
        self._account(model, table, result, start, route, tracked=tracked)
        return result

    def _account(self, model: LoadedModel, table: RawTable, result: ScoreResult, start: float,
                 route: Route | None, logged: ScoreResult | None = None,
                 window: tuple[int, int] | None = None,
                 tracked: tuple[Tracking, list[Any] | None] | None = None) -> None:
        """Count a scored request, sample it into the prediction log, copy it to a shadow.

        ``logged``/``window``: for a request scored inside a micro-batch, the batch's result and
        this request's rows in it (the prediction log needs the rows as the model saw them).
        ``tracked``: the model's outcome tracking and the request's business keys."""
        seconds = time.perf_counter() - start
        self.traffic.record(model.name, model.version, seconds, result.rows_scored,
                            error=result.model_failures > 0, caller=metrics.CALLER.get())
        metrics.child(metrics.ROWS, model.name, str(model.version), metrics.CLIENT.get()).inc(
            result.rows_scored)
        if route is not None and route.log_rate > 0:
            self.prediction_log.offer(route.log_rate, model.name, model.version,
                                      logged or result, seconds, metrics.CLIENT.get(),
                                      metrics.REQUEST_ID.get(), window=window)
        if tracked is not None:
            request_id = metrics.REQUEST_ID.get() or uuid.uuid4().hex
            result.prediction_ids = self.outcome_log.offer(result, request_id, tracked[1],
                                                           window=window, source=logged)
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
        tracked = self._tracking(name, route)
        if tracked is not None and tracked.key is not None:
            table, keys = split_key(table, tracked.key)
            tracking: tuple[Tracking, list[Any] | None] | None = (tracked, keys)
        else:
            tracking = (tracked, None) if tracked is not None else None
        if self.batcher is not None and table.n_rows <= self.settings.batch_request_rows \
                and options.explain is None:
            start = time.perf_counter()
            joined = self.batcher.submit((model.name, model.version, model.sha256,
                                          options.probabilities), table, table.n_rows,
                                         lambda tables: self._score_jointly(model, tables,
                                                                            options))
            if joined is not None:
                result, whole, window = joined
                self._account(model, table, result, start, route, logged=whole, window=window,
                              tracked=tracking)
                return result
        return self._scored(model, table, options, route, tracking)

    def _tracking(self, name: str, route: Route | None) -> Tracking | None:
        """The model's outcome tracking (a pinned request has no route: ask the view)."""
        if route is None:
            route = self.deployments.route(name)
        return route.tracking

    def _score_jointly(self, model: LoadedModel, tables: list[RawTable], options: ScoreOptions,
                       ) -> list[tuple[ScoreResult, ScoreResult, tuple[int, int]] | None]:
        """One model call for several requests' tables (a micro-batch). A table whose rows are
        not all clean gets None and is scored on its own, so its errors, warnings and
        ``errors="raise"`` behaviour are exactly those of a lone request."""
        by_row = ScoreOptions(probabilities=options.probabilities, errors="row")
        if len(tables) == 1:  # nothing to share the call with: the lone request's own call
            alone = score_with(model, tables[0], by_row)
            return [None if alone.errors else (alone, alone, (0, alone.n_rows))]
        _, parts = aligned_parts(tables, model.signature)
        out: list[tuple[ScoreResult, ScoreResult, tuple[int, int]] | None] = [None] * len(tables)
        if not parts:
            return out
        whole = score_with(model, concat([t for _, t, _ in parts], model.signature), by_row)
        for i, part, window in split_parts(whole, parts):
            if not part.errors:
                out[i] = (part, whole, window)
        return out

    def score_many(self, name: str, tables: list[RawTable], *, version: int | None = None,
                   alias: str | None = None, options: ScoreOptions = ScoreOptions(errors="row"),
                   ) -> list[ScoreResult | ScoreBridgeError]:
        """Score several tables (e.g. many spreadsheet calls) with one version in one predict call.

        Each table gets its own result, or its own error when it cannot be read against the
        signature (missing columns); the others are not affected. Outcome tracking does not
        keep these rows: spreadsheet formulas rescore on every recalculation.
        """
        self._check_size(sum(t.n_rows for t in tables))
        info, route = self._choose(name, version, alias)
        model = self.cache.get(info)
        failed, parts = aligned_parts(tables, model.signature)
        outcomes: list[ScoreResult | ScoreBridgeError | None] = list(failed)
        if parts:
            whole = self._scored(model, concat([t for _, t, _ in parts], model.signature),
                                 options, route)
            for i, part, _ in split_parts(whole, parts):
                outcomes[i] = part
        return outcomes  # type: ignore[return-value]


def split_key(table: RawTable, key: str) -> tuple[RawTable, list[Any] | None]:
    """``table`` without its business key column, and the key's values (passed through
    untouched: never a model input). Positional tables have no names and so no key."""
    if table.names is None or key not in table.names:
        return table, None
    at = table.names.index(key)
    rest = RawTable(names=table.names[:at] + table.names[at + 1:],
                    columns=table.columns[:at] + table.columns[at + 1:], n_rows=table.n_rows,
                    row_errors=table.row_errors, pending_rows=table.pending_rows)
    return rest, list(table.columns[at])
