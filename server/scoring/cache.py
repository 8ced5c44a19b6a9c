"""Loaded model versions per worker: loading is slow (artifact, checks, compiled form), so it
happens once per version and the least recently used version goes first."""
from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from typing import Callable

import pandas as pd

from .. import metrics
from ..config import Settings
from ..errors import ScoreBridgeError, Unavailable
from ..registry.service import Registry, VersionInfo
from ..types import Signature
from .compiled.stored import stored_runner
from .explain import cheap_to_explain
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
        model = LoadedModel(info.model, info.version, estimator, signature, info.sha256,
                            compiled=compiled, reference=self._sample(info.sample_artifact))
        if cheap_to_explain(estimator):  # built now, with the version; trees on first use
            try:
                model.explainer()
            except ScoreBridgeError:
                pass
        return model

    def _sample(self, key: str | None) -> Callable[[], pd.DataFrame | None]:
        """The version's stored sample, read when its explainer is built."""
        def read() -> pd.DataFrame | None:
            return pd.read_parquet(io.BytesIO(self.registry.store.read_bytes(key))) \
                if key else None
        return read

    def loaded(self) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._models)
