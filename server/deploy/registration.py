"""Registering a model version: the one path the HTTP upload and the CLI share.

The artifact is checksummed, loaded safely, its signature inferred, probed and smoke-scored before
anything is recorded; then it is stored (atomically) and recorded in one transaction. A model that
fails any step is refused with the reason and leaves no trace.
"""
from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..codecs.file_reader import frame_to_table
from ..codecs.parquet import frame_to_parquet
from ..config import Settings
from ..errors import Forbidden, InvalidInput, ModelRejected, NotFound
from ..evaluation.analysis import analyse, unavailable
from ..evaluation.contributions import mean_abs_contributions
from ..registry.service import NewVersion, Registry, VersionInfo, validate_name
from ..scoring.coerce import coerce
from ..scoring.compiled.compiler import Compiled, compile_version
from ..scoring.explain import cheap_to_explain
from ..scoring.loader import artifact_details, detect_format, load_artifact, sha256_file
from ..scoring.metrics import evaluate
from ..scoring.runtime import LoadedModel
from ..scoring.signature import declare_types, infer_signature
from ..telemetry.reference import reference_statistics
from ..types import Column, Signature, example_frame
from .gates import GateResult, latency_gate, metric_gate, schema_gate, smoke_test
from .policy import GateConfig

log = logging.getLogger(__name__)
SMOKE_ROWS = 200
STORED_SAMPLE_ROWS = 1_000
STORED_HOLDOUT_ROWS = 100_000
REFERENCE_ROWS = 10_000
_UNKNOWN_PROBE = "__scorebridge_unknown_category__"


@dataclass
class RegistrationRequest:
    name: str
    artifact: Path
    filename: str
    actor: str
    sample: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None
    target: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    trust_pickle: bool = False
    may_trust_pickle: bool = False
    outcomes: dict[str, Any] | None = None  # outcome tracking to switch on: {"enabled", "key"}


def outcome_settings(track: bool, key: str | None) -> dict[str, Any] | None:
    """The outcome tracking a registration asks for (None: leave the model's as it is); a
    business key implies tracking."""
    if not track and not key:
        return None
    return {"enabled": True, **({"key": key} if key else {})}


def _environment() -> dict[str, str]:
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "pandas": pd.__version__}


def _probe(model: LoadedModel, row: pd.DataFrame) -> Signature:
    """Learn, per column, whether the model copes with a missing value or an unseen category."""
    columns = []
    for col in model.signature.inputs:
        trial = row.copy()
        numeric = col.type in ("number", "integer")
        trial[col.name] = trial[col.name].astype(float if numeric else object)
        trial.iloc[0, trial.columns.get_loc(col.name)] = np.nan
        accepts_missing = not model.predict(trial, proba=False).failures
        accepts_unknown = None
        if col.is_categorical and col.type != "boolean" and col.categories:
            # a number beyond the known ones for numeric categories (XGBoost refuses those)
            unknown: Any = _UNKNOWN_PROBE if col.type == "string" else \
                max(float(c) for c in col.categories) + 1
            trial = row.copy()
            trial[col.name] = trial[col.name].astype(object if col.type == "string" else float)
            trial.iloc[0, trial.columns.get_loc(col.name)] = unknown
            accepts_unknown = not model.predict(trial, proba=False).failures
        columns.append(Column(**{**col.__dict__, "accepts_missing": accepts_missing,
                                 "accepts_unknown": accepts_unknown}))
    return model.signature.with_columns(columns)


def register(registry: Registry, settings: Settings, req: RegistrationRequest) -> VersionInfo:
    validate_name(req.name)
    fmt = detect_format(req.filename)
    details = artifact_details(req.artifact, fmt)
    if details.pickled and req.trust_pickle and not req.may_trust_pickle:
        raise Forbidden("only an admin key may register a pickle with trust_pickle")
    sha = sha256_file(req.artifact)
    estimator = load_artifact(req.artifact, fmt, trust_pickle=req.trust_pickle,
                              extra_trusted=settings.trusted_types)
    if not hasattr(estimator, "predict"):
        raise ModelRejected(f"the artifact holds a {type(estimator).__name__}, which has no "
                            "predict method")
    sample = req.sample if req.sample is not None else details.example
    if sample is not None and len(sample) == 0:
        raise InvalidInput("the sample has no rows")
    # an ONNX graph's input types, an MLflow signature's: the artifact's own word on its inputs
    declared = {**getattr(estimator, "input_types_", {}), **details.declared}
    signature = declare_types(infer_signature(estimator, sample), declared, sample is not None)
    # explained against the sample as stored, as when the version is served
    model = LoadedModel(req.name, 0, estimator, signature, sha, reference=lambda: None
                        if sample is None else _kept(sample, model.signature.names,
                                                     STORED_SAMPLE_ROWS))
    frame = sample[signature.names] if sample is not None else example_frame(signature)
    model.signature = _probe(model, frame.head(1))
    predictions = smoke_test(model, frame.head(SMOKE_ROWS))
    metrics = dict(req.metrics)
    analysis = None
    if req.holdout is not None:
        if not req.target or req.target not in req.holdout.columns:
            raise InvalidInput(f"the holdout set needs its target column {req.target!r}")
        missing = [c for c in signature.names if c not in req.holdout.columns]
        if missing:
            raise InvalidInput("the holdout set lacks input columns: " + ", ".join(missing))
        try:
            metrics.update(evaluate(model, req.holdout[signature.names], req.holdout[req.target]))
        except ValueError as exc:
            raise ModelRejected(f"holdout evaluation failed: {exc}") from None
        analysis = _analysis(model, req.holdout.head(STORED_HOLDOUT_ROWS), req.target)
    runs_as = getattr(estimator, "runtime_note", None)  # a graph already (ONNX): not converted
    compiled = Compiled(None, runs_as) if runs_as else \
        _compile(model, frame.head(REFERENCE_ROWS), settings) if settings.compile else \
        Compiled(None, "scikit-learn: compilation is turned off (SCOREBRIDGE_COMPILE)")
    reference: dict[str, Any] = {}
    if sample is not None:
        ref_frame = sample[signature.names].head(REFERENCE_ROWS)
        ref_preds = model.predict(ref_frame, proba=False).labels if len(ref_frame) > SMOKE_ROWS \
            else predictions
        reference = reference_statistics(model.signature, ref_frame, ref_preds)
    gates: list[dict[str, Any]] = []
    if not _has_production(registry, req.name):
        # the first version serves at once, so it is gated here rather than in the pipeline
        results = [schema_gate(model, None),
                   GateResult("smoke", True, f"scored {min(len(frame), SMOKE_ROWS)} sample rows"),
                   metric_gate(model, None, None, None, GateConfig()),
                   latency_gate(model, None, frame.head(1), GateConfig())]
        failed = [r for r in results if not r.passed]
        if failed:
            raise ModelRejected("gate failed: " + "; ".join(f"{r.gate}: {r.detail}" for r in failed))
        gates = [r.as_dict() for r in results]
    new = NewVersion(sha256=sha, format=fmt, size_bytes=req.artifact.stat().st_size,
                     signature=model.signature.to_dict(), reference=reference, metrics=metrics,
                     tags=dict(req.tags), environment=_environment(),
                     description=req.description, trusted_pickle=details.pickled,
                     sample_artifact=_store_frame(registry, sample, signature.names,
                                                  STORED_SAMPLE_ROWS),
                     holdout_artifact=_store_frame(registry, req.holdout,
                                                   signature.names + [req.target or ""],
                                                   STORED_HOLDOUT_ROWS),
                     target=req.target if req.holdout is not None else None, gates=gates,
                     runtime=compiled.runtime if compiled.data or runs_as else compiled.uncompiled,
                     runtime_note=compiled.note,
                     compiled_artifact=registry.store.put_bytes(compiled.data)
                     if compiled.data else None, analysis=analysis)
    key = registry.store.put(req.artifact, sha)
    return registry.add_version(req.name, new, key, actor=req.actor,
                                description=req.description or None)


def _analysis(model: LoadedModel, holdout: pd.DataFrame, target: str) -> dict[str, Any]:
    """The report's analysis of the version on the holdout rows stored with it (a tree model's
    mean absolute contributions wait for the first report: its explainer is costly). A model that
    passed the holdout evaluation is not refused for an analysis that fails (a permuted column
    it cannot score): the report says why it has none."""
    try:
        return analyse(model, holdout[model.signature.names + [target]], target,
                       contributions=mean_abs_contributions
                       if cheap_to_explain(model.estimator) else None)
    except (ValueError, TypeError) as exc:
        log.warning("no holdout analysis for %s: %s", model.name, exc)
        return unavailable(str(exc))


def _compile(model: LoadedModel, frame: pd.DataFrame, settings: Settings) -> Compiled:
    """The compiled form, verified on the reference rows as the scoring path types them."""
    checked = coerce(frame_to_table(frame), model.signature)
    return compile_version(model.estimator, model.signature, checked.frame,
                           native=settings.native_trees,
                           max_nodes=settings.native_trees_max_nodes)


def _has_production(registry: Registry, name: str) -> bool:
    try:
        registry.get_version(name)
        return True
    except NotFound:
        return False


def _store_frame(registry: Registry, frame: pd.DataFrame | None, columns: list[str],
                 limit: int) -> str | None:
    """Keep a sample or holdout set with the version, for the deployment gates to reuse."""
    if frame is None:
        return None
    return registry.store.put_bytes(frame_to_parquet(_kept(frame, columns, limit)))


def _kept(frame: pd.DataFrame, columns: list[str], limit: int) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]].head(limit)
