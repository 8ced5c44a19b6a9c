"""Compiling a version at registration: native trees, else an ONNX graph, kept only when verified.

A compiled form is used only when it reproduces scikit-learn on the reference sample (identical
labels, probabilities within ``TOLERANCE``); otherwise the version is scored by scikit-learn and
the reason is recorded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...types import Signature
from .. import boosting
from ..preprocess_plan import NotCompiled, checked_plan
from ..runtime import final_estimator
from . import ensembles, native
from .estimator import classes_of, exact_in_float32, pre_steps, split_guards, wide_inputs
from .onnx import OnnxRunner, PlannedOnnxRunner, convert, convert_final, convert_preprocessing

TOLERANCE = 1e-6


@dataclass
class Compiled:
    """The outcome of compiling one version: the compiled bytes when verified, which runtime
    they are for ("onnx": an ONNX graph, "native": a native-trees bundle), and why (or why
    not)."""

    data: bytes | None
    note: str
    runtime: str = "onnx"
    uncompiled: str = "sklearn"  # the runtime without a compiled form: a booster's library


def compile_version(estimator: Any, signature: Signature, sample: pd.DataFrame,
                    native: bool = False, max_nodes: int | None = None) -> Compiled:
    """Convert ``estimator`` and keep the result only if it reproduces scikit-learn on ``sample``
    (the typed reference rows), label for label and probability for probability. With
    ``native``, a tree ensemble (up to ``max_nodes``) is first compiled to machine code
    (``native.py``: float64, exact and fastest), after its preprocessing as a float64 graph or,
    when that could not be exact, a float64 plan (``preprocess_plan.py``). Then the ONNX graph:
    double precision first (exact for linear models, neighbours, naive Bayes), else the model's
    own double graph after the float64 plan; tree ensembles run in float32 in onnxruntime, as
    in scikit-learn's own tree code. A classifier without ``predict_proba`` is compiled only in
    float64, and verified on its labels."""
    labels_only = signature.output.kind == "classification" and \
        not signature.output.probabilities
    outcome = Compiled(None, "")
    final = final_estimator(estimator)
    library = boosting.library(final)
    if library is not None:
        return _compile_booster(estimator, signature, sample, library, native, max_nodes)
    if type(final).__module__.startswith("sklearn.neighbors"):
        # found on 2 of 10,000 rows of the zoo's k-NN (bench/suite.py): a graph keeps other
        # neighbours than scikit-learn's search where several lie at the k-th distance
        return Compiled(None, "scikit-learn: neighbours are not compiled: where several "
                              "training rows lie at the same distance, which of them count is "
                              "scikit-learn's search's choice, and a compiled graph's differs")
    trees = any(hasattr(final, a) for a in ("tree_", "estimators_", "_predictors"))
    skipped = ""
    if native and trees:
        outcome = _compile_native(estimator, signature, sample, max_nodes)
        if outcome.data is not None:
            return outcome
        skipped = f"; native trees not used: {outcome.note}"
    # trees compare in float32 (scikit-learn's own tree code does): never in double
    notes: list[str] = []
    # numeric transformers first through the float64 plan: verified bit for bit, where their
    # graph converters can be inexact or slow (a QuantileTransformer's takes a minute)
    planned_first = bool(pre_steps(estimator)) and not exact_in_float32(estimator)
    for double in ((False,) if trees else (True,) if labels_only else (True, False)):
        attempts = [_compile_planned, _compile] if planned_first else [_compile, _compile_planned]
        for attempt in attempts if double or trees else [_compile]:
            outcome = attempt(estimator, signature, sample, double, trees)
            if outcome.data is not None:
                return Compiled(outcome.data, outcome.note + skipped, outcome.runtime)
            notes.append(outcome.note.removeprefix("scikit-learn: "))
    # every attempt's reason, so the note says what stopped each (the double graph's first)
    return Compiled(None, "scikit-learn: " + "; ".join(notes) + skipped, outcome.runtime)


def _compile_booster(estimator: Any, signature: Signature, sample: pd.DataFrame, library: str,
                     native: bool, max_nodes: int | None) -> Compiled:
    """XGBoost and LightGBM: native trees when treelite compiles them and they verify, else the
    library's own predictor (no ONNX form: skl2onnx converts neither without extra packages).
    CatBoost: always its own predictor."""
    own = boosting.runs_in(library)
    if library == "catboost":
        return Compiled(None, f"{own}: treelite does not compile CatBoost models",
                        uncompiled=library)
    if not native:
        return Compiled(None, f"{own}: native trees are turned off (SCOREBRIDGE_NATIVE_TREES)",
                        uncompiled=library)
    outcome = _compile_native(estimator, signature, sample, max_nodes)
    if outcome.data is not None:
        return outcome
    return Compiled(None, f"{own}; native trees not used: {outcome.note}", uncompiled=library)


def _compile_native(estimator: Any, signature: Signature, sample: pd.DataFrame,
                    max_nodes: int | None) -> Compiled:
    if ensembles.is_ensemble(final_estimator(estimator)):
        return _compile_ensemble(estimator, signature, sample, max_nodes)
    why = native.unsuitable(estimator, signature,
                            native.NODE_BUDGET if max_nodes is None else max_nodes)
    planned = bool(pre_steps(estimator)) and not exact_in_float32(estimator)
    if why is None and not pre_steps(estimator) and \
            any(c.type == "string" for c in signature.inputs):
        why = "text inputs reach the trees without an encoder"
    if why is not None:
        return Compiled(None, why, "native")
    try:
        if planned:
            checked_plan(estimator, signature, sample)
        preprocessing = convert_preprocessing(estimator, signature) \
            if pre_steps(estimator) and not planned else None
        data = native.build(estimator, signature, preprocessing, planned)
    except NotCompiled as exc:
        return Compiled(None, str(exc), "native")
    except Exception as exc:  # treelite, skl2onnx and the C compiler raise many kinds
        return Compiled(None, f"compilation failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''})", "native")
    classes = classes_of(estimator, signature)
    engine = "treelite (native trees" + (", after the float64 preprocessing plan)" if planned
                                         else ")")
    return _verified(lambda: native.NativeRunner(data, signature, classes, estimator), data,
                     "native", engine, "float64", estimator, sample, classes)


def _compile_ensemble(estimator: Any, signature: Signature, sample: pd.DataFrame,
                      max_nodes: int | None) -> Compiled:
    """A voting or stacking ensemble: its tree members as native trees, the rest scikit-learn's
    own, after the float64 plan (:mod:`.ensembles`)."""
    why = ensembles.unsuitable(estimator, native.NODE_BUDGET if max_nodes is None else max_nodes)
    if why is not None:
        return Compiled(None, why, "native")
    try:
        checked_plan(estimator, signature, sample)
        data = ensembles.build(estimator)
    except NotCompiled as exc:
        return Compiled(None, str(exc), "native")
    except Exception as exc:  # treelite and the C compiler raise many kinds
        return Compiled(None, f"compilation failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''})", "native")
    trees, others = ensembles.member_names(estimator)
    engine = f"treelite (native trees for the members {', '.join(trees)}" + (
        f"; {', '.join(others)} by scikit-learn on the plan's matrix" if others else "") + \
        (", after the float64 preprocessing plan)" if pre_steps(estimator) else ")")
    classes = classes_of(estimator, signature)
    return _verified(lambda: ensembles.EnsembleRunner(data, signature, classes, estimator), data,
                     "native", engine, "float64", estimator, sample, classes)


def _compile_planned(estimator: Any, signature: Signature, sample: pd.DataFrame,
                     double: bool, trees: bool) -> Compiled:
    """The model's own graph after the float64 plan (float32 for tree ensembles, their split
    edges guarded on the plan's matrix)."""
    final = final_estimator(estimator)
    try:
        planned = checked_plan(estimator, signature, sample)
    except NotCompiled as exc:
        return Compiled(None, f"scikit-learn: {exc}")
    try:
        data = convert_final(estimator, signature, planned.width, double)
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        return Compiled(None, f"scikit-learn: no ONNX conversion for {type(final).__name__} "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    classes = classes_of(estimator, signature)
    outcome = _verified(
        lambda: PlannedOnnxRunner(data, signature, classes, estimator),
        data, "onnx", "onnxruntime (after the float64 preprocessing plan)",
        "float64" if double else "float32", estimator, sample, classes)
    return outcome if outcome.data is not None else \
        Compiled(None, f"scikit-learn: {outcome.note}", outcome.runtime)


def _compile(estimator: Any, signature: Signature, sample: pd.DataFrame,
             double: bool, trees: bool) -> Compiled:
    if not double and not exact_in_float32(estimator):
        if trees:
            return Compiled(None, "scikit-learn: numeric transformers (such as scalers) before "
                                  "a tree model would run in float32 when compiled and could "
                                  "move rows across split thresholds")
        return Compiled(None, "scikit-learn: float32 not tried, as numeric transformers before "
                              "the model would lose precision in it")
    try:
        data = convert(estimator, signature, double)
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        return Compiled(None, "scikit-learn: no ONNX conversion for this pipeline "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    classes = classes_of(estimator, signature)
    guards = {} if double else split_guards(estimator, signature)
    if "" in guards:
        return Compiled(None, "scikit-learn: the model splits on derived features whose float32 "
                              "thresholds cannot be checked")
    wide = wide_inputs(estimator)
    outcome = _verified(lambda: OnnxRunner(data, signature, classes, guards, wide),
                        data, "onnx", "onnxruntime", "float64" if double else "float32",
                        estimator, sample, classes)
    return outcome if outcome.data is not None else \
        Compiled(None, f"scikit-learn: {outcome.note}", outcome.runtime)


def _verified(make_runner: Any, data: bytes, runtime: str, engine: str, precision: str,
              estimator: Any, sample: pd.DataFrame, classes: np.ndarray | None) -> Compiled:
    """``data`` when the runner ``make_runner`` builds reproduces scikit-learn on ``sample``
    (the rows it answers itself), else why not."""
    try:
        runner = make_runner()
        prepared = runner.prepare(sample)
        if prepared is None:
            sample = sample.dropna(subset=runner._text) if runner._text else sample
            prepared = runner.prepare(sample)
        if prepared is not None and len(prepared[1]):  # verify the rows the graph answers
            sample = sample.drop(index=sample.index[prepared[1]])
            prepared = runner.prepare(sample)
        feed = prepared[0] if prepared is not None else None
        if feed is None or len(sample) == 0:
            return Compiled(None, "the reference sample cannot be fed to the compiled model, so "
                                  "it could not be verified", runtime)
        labels, probabilities = runner.run(feed)
    except Exception as exc:
        return Compiled(None, "the compiled model does not run "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                        runtime)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(estimator.predict(sample))
        expected_p = np.asarray(estimator.predict_proba(sample)) \
            if classes is not None and runner.signature.output.probabilities else None
    if classes is None:
        worst = float(np.max(np.abs(labels - expected.astype(np.float64))
                             / np.maximum(1.0, np.abs(expected.astype(np.float64)))))
        if not worst <= TOLERANCE:
            return Compiled(None, f"compiled values differ by up to {worst:.2g} (relative) on "
                                  f"the reference sample", runtime)
        return Compiled(data, f"{engine}: verified on {len(sample)} reference rows "
                              f"(values within {worst:.1g}; {precision})", runtime)
    mismatched = int((labels != expected).sum())
    if mismatched:
        return Compiled(None, f"the compiled model disagrees on {mismatched} of {len(sample)} "
                              f"reference labels", runtime)
    if expected_p is None:
        return Compiled(data, f"{engine}: verified on {len(sample)} reference rows (labels "
                              f"identical; {precision})", runtime)
    worst = float(np.max(np.abs(probabilities - expected_p))) if len(sample) else 0.0
    if not worst <= TOLERANCE:
        return Compiled(None, f"compiled probabilities differ by up to {worst:.2g} on the "
                              f"reference sample", runtime)
    return Compiled(data, f"{engine}: verified on {len(sample)} reference rows (labels "
                          f"identical, probabilities within {max(worst, 1e-9):.1g}; "
                          f"{precision})", runtime)
