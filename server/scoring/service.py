"""The scoring core: resolve which version answers, load it (cached), check the input, predict.

Every client goes through :meth:`Scorer.score`. Deployment state (which version an alias points at)
lives in the database; each worker keeps a copy that it refreshes when the registry's change marker
moves, at most every ``deploy_refresh_seconds``, so a promotion reaches every worker and host quickly
while the scoring path does one cheap query per refresh interval, not per request.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..codecs.table import RawTable, ScoreOptions
from ..config import Settings
from ..errors import (FieldError, InvalidInput, ModelFailure, PayloadTooLarge, ScoreBridgeError,
                      Unavailable)
from ..registry.service import PRODUCTION, Registry, VersionInfo
from .coerce import coerce
from .loader import load_artifact
from .runtime import LoadedModel
from .signature import Signature, to_python

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    """Predictions in input order; rows that could not be scored hold None and have errors."""

    model: str
    version: int
    predictions: list[Any]
    probabilities: list[list[float] | None] | None
    classes: list[Any] | None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)
    n_rows: int = 0
    kind: str = "classification"

    @property
    def rows_scored(self) -> int:
        return self.n_rows - len({e.row for e in self.errors if e.row is not None})


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
        estimator = load_artifact(self.registry.store.path(info.artifact), info.format,  # type: ignore[arg-type]
                                  trust_pickle=info.trusted_pickle,
                                  extra_trusted=self.settings.trusted_types,
                                  expected_sha256=info.sha256)
        return LoadedModel(info.model, info.version, estimator,
                           Signature.from_dict(info.signature), info.sha256)

    def loaded(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)


class DeploymentView:
    """This worker's copy of which version each (model, alias) points at."""

    def __init__(self, registry: Registry, refresh_seconds: float) -> None:
        self.registry = registry
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._marker = -1
        self._versions: dict[tuple[str, str | None, int | None], VersionInfo] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh_seconds:
            return
        marker = self.registry.change_marker()
        with self._lock:
            self._checked = now
            if marker != self._marker:
                self._marker = marker
                self._versions.clear()

    def resolve(self, name: str, version: int | None = None,
                alias: str | None = None) -> VersionInfo:
        self._refresh()
        key = (name, None if version is not None else (alias or PRODUCTION), version)
        with self._lock:
            info = self._versions.get(key)
        if info is None:
            info = self.registry.get_version(name, version=version, alias=alias)
            with self._lock:
                self._versions[key] = info
        return info


class Scorer:
    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = ModelCache(registry, settings)
        self.deployments = DeploymentView(registry, settings.deploy_refresh_seconds)

    def model_for(self, name: str, version: int | None = None,
                  alias: str | None = None) -> LoadedModel:
        return self.cache.get(self.deployments.resolve(name, version, alias))

    def score(self, name: str, table: RawTable, *, version: int | None = None,
              alias: str | None = None, options: ScoreOptions = ScoreOptions()) -> ScoreResult:
        if table.n_rows > self.settings.max_rows:
            raise PayloadTooLarge(f"{table.n_rows} rows in one request; the limit is "
                                  f"{self.settings.max_rows}: split the input or use a batch job")
        model = self.model_for(name, version, alias)
        return score_with(model, table, options)


def score_with(model: LoadedModel, table: RawTable, options: ScoreOptions) -> ScoreResult:
    """Check, coerce and predict ``table`` with an already loaded model."""
    checked = coerce(table, model.signature)
    if checked.errors and options.errors == "raise":
        raise InvalidInput(_summary(checked.errors, table.n_rows), errors=checked.errors)
    pred = model.predict(checked.frame, proba=options.probabilities)
    errors = list(checked.errors)
    if pred.failures:
        failures = [FieldError(f.message, row=int(checked.rows[f.row]))  # type: ignore[index]
                    for f in pred.failures]
        if options.errors == "raise":
            raise ModelFailure(_summary(failures, table.n_rows), errors=failures)
        errors = sorted(errors + failures, key=lambda e: e.row if e.row is not None else -1)
    output = model.signature.output
    n = table.n_rows
    predictions: list[Any] = [None] * n
    rows = checked.rows[pred.ok]
    for i, value in zip(rows.tolist(), pred.labels.tolist()):
        predictions[i] = to_python(value)
    probabilities = None
    if pred.probabilities is not None:
        probabilities = [None] * n
        for i, p in zip(rows.tolist(), pred.probabilities.tolist()):
            probabilities[i] = p
    return ScoreResult(model=model.name, version=model.version, predictions=predictions,
                       probabilities=probabilities,
                       classes=list(output.classes) if output.classes is not None else None,
                       errors=errors, warnings=_dedupe(checked.warnings), n_rows=n,
                       kind=output.kind)


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
