"""A version's analysis as the report needs it: the stored one, or (for a version registered
before analyses existed, or in an older format) computed once from its stored holdout and kept."""
from __future__ import annotations

import logging
from typing import Any, Callable

from ..codecs.parquet import frame_from_parquet
from ..errors import ScoreBridgeError
from ..registry.service import Registry, VersionInfo
from ..scoring.runtime import LoadedModel
from .analysis import FORMAT, analyse, contribution_importance, unavailable
from .contributions import mean_abs_contributions

log = logging.getLogger(__name__)


def analysis_for(registry: Registry, info: VersionInfo,
                 load: Callable[[VersionInfo], LoadedModel] | None) -> dict[str, Any] | None:
    """None when the version has no holdout set (or cannot be loaded to compute it)."""
    stored = registry.get_analysis(info.model, info.version)
    if stored is not None and stored.get("format") == FORMAT:
        if "contribution_importance" in stored or "unavailable" in stored or load is None or \
                not info.holdout_artifact or not info.target:
            return stored
        return _with_contributions(registry, info, load, stored)
    if not info.holdout_artifact or not info.target or load is None:
        return stored
    try:
        model = _scikit_learn(load(info))
        holdout = frame_from_parquet(registry.store.read_bytes(info.holdout_artifact))
        data = analyse(model, holdout, info.target, contributions=mean_abs_contributions)
    except ScoreBridgeError as exc:  # cannot load now: try again on the next request
        log.warning("no analysis for %s v%s: %s", info.model, info.version, exc.detail)
        return stored
    except (ValueError, KeyError, TypeError) as exc:
        data = unavailable(f"the holdout could not be analysed: {exc}")
    return registry.save_analysis(info.model, info.version, data)


def _with_contributions(registry: Registry, info: VersionInfo,
                        load: Callable[[VersionInfo], LoadedModel],
                        stored: dict[str, Any]) -> dict[str, Any]:
    """The stored analysis completed with the mean absolute contributions (left for the first
    report of a tree model), kept for the next request."""
    try:
        model = _scikit_learn(load(info))
        holdout = frame_from_parquet(registry.store.read_bytes(info.holdout_artifact or ""))
        part = contribution_importance(model, holdout, info.target or "", stored,
                                       mean_abs_contributions)
    except ScoreBridgeError as exc:
        log.warning("no contributions for %s v%s: %s", info.model, info.version, exc.detail)
        return stored
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("no contributions for %s v%s: %s", info.model, info.version, exc)
        part = None
    return registry.complete_analysis(info.model, info.version, "contribution_importance", part)


def _scikit_learn(loaded: LoadedModel) -> LoadedModel:
    """scikit-learn's own answers, as at registration (not a compiled form's float32 ones)."""
    return LoadedModel(loaded.name, loaded.version, loaded.estimator, loaded.signature,
                       loaded.sha256, reference=loaded.reference)
