"""The compiled scoring path: a pipeline converted to ONNX (skl2onnx) and run by onnxruntime.

scikit-learn pays milliseconds of Python overhead per call whatever the number of rows; the same
pipeline as an ONNX graph answers one row in microseconds. A version is compiled at registration
and the compiled form is used only when it reproduces scikit-learn on the reference sample
(identical labels, probabilities within ``TOLERANCE``); otherwise the version is scored by
scikit-learn and the reason is recorded. At scoring time, input the graph cannot represent
(missing text, numbers beyond float32) goes to scikit-learn for that call, so the compiled path
never changes an answer the model would give.
"""
from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .runtime import final_estimator
from ..types import Signature

log = logging.getLogger(__name__)
TOLERANCE = 1e-6
WIDE_ROWS = 2_000
OPSETS = {"": 18, "ai.onnx.ml": 3}  # from this many rows a call is spread over every core
_FLOAT32_MAX = float(np.finfo(np.float32).max)
# the runtimes whose versions carry a compiled artifact
COMPILED_RUNTIMES = ("native", "onnx")


@dataclass
class Compiled:
    """The outcome of compiling one version: the compiled bytes when verified, which runtime
    they are for ("onnx": an ONNX graph, "native": a native-trees bundle), and why (or why
    not)."""

    data: bytes | None
    note: str
    runtime: str = "onnx"


def text_column(values: Any) -> np.ndarray | None:
    """A text input as the graphs take it (a column of str), or None when a value is missing or
    not text (which has no ONNX string form). Checked on the distinct values: a handful, where
    pd.isna looks at every cell."""
    values = np.asarray(values, dtype=object)
    try:
        texts = all(type(v) is str for v in set(values.tolist()))
    except TypeError:
        texts = False
    return values.reshape(-1, 1) if texts else None


def with_text(feed: dict[str, np.ndarray], inputs: Any, names: list[str],
              edges: list[np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """``feed`` completed with the text inputs ``names``, and the rows of ``edges`` merged (the
    rows scikit-learn must answer); None when a text value has no ONNX string form."""
    for name in names:
        values = text_column(inputs[name])
        if values is None:
            return None
        feed[name] = values
    return feed, (np.unique(np.concatenate(edges)) if edges else np.empty(0, dtype=np.int64))


class OnnxRunner:
    """One verified ONNX graph and how to feed it from a typed frame."""

    runtime = "onnx"

    def __init__(self, data: bytes, signature: Signature, classes: np.ndarray | None,
                 guards: dict[str, np.ndarray] | None = None, wide_inputs: bool = True) -> None:
        self.session = ort_session(data, threads=1)
        # large batches (jobs, 10,000-row requests) use every core; small ones stay on one
        self._wide = ort_session(data, threads=os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 \
            else self.session
        self.signature = signature
        self.classes = classes
        self._class_index = pd.Index(classes) if classes is not None else None
        self._class_position = {c: i for i, c in enumerate(classes.tolist())} \
            if classes is not None else {}
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = outputs[:2] if classes is not None else outputs[:1]
        self._text = [c.name for c in signature.inputs if c.type == "string"]
        self._numbers = [c.name for c in signature.inputs if c.type != "string"]
        kinds = {i.name: i.type for i in self.session.get_inputs()}
        self._double = any(kinds.get(n) == "tensor(double)" for n in self._numbers)
        self._guards = {name: (t, t.astype(np.float32)) for name, t in (guards or {}).items()}
        self._wide_inputs = wide_inputs  # scikit-learn compares float64 inputs (else float32)

    def feed(self, inputs: Any) -> dict[str, np.ndarray] | None:
        """The graph's inputs when the graph can answer every row, else None (see
        :meth:`prepare` for the rows it cannot)."""
        prepared = self.prepare(inputs)
        return None if prepared is None or len(prepared[1]) else prepared[0]

    def prepare(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """(the graph's inputs, rows that scikit-learn must answer instead), or None when the
        rows hold what the graph cannot represent at all."""
        feed: dict[str, np.ndarray] = {}
        edges: list[np.ndarray] = []
        for name in self._numbers:
            values = np.asarray(inputs[name], dtype=np.float64)
            if self._double:
                feed[name] = values.reshape(-1, 1)
                continue
            with np.errstate(invalid="ignore"):
                if (np.abs(values) > _FLOAT32_MAX).any():
                    return None
            narrow = values.astype(np.float32)
            guard = self._guards.get(name)
            if guard is not None:  # values on which the two comparisons could disagree
                edges.append(np.flatnonzero(
                    np.searchsorted(guard[0], values if self._wide_inputs else narrow)
                    != np.searchsorted(guard[1], narrow)))
            feed[name] = narrow.reshape(-1, 1)
        return with_text(feed, inputs, self._text, edges)

    def run(self, feed: dict[str, np.ndarray],
            labels: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(labels as scikit-learn would type them, probabilities as float64) or (values, None);
        ``labels=False`` skips mapping the graph's labels (a caller that takes the arg-max)."""
        rows = len(next(iter(feed.values()))) if feed else 0
        session = self._wide if rows >= WIDE_ROWS else self.session
        result = session.run(self._outputs, feed)
        if self.classes is None:
            return np.asarray(result[0], dtype=np.float64).reshape(-1), None
        if not labels:
            return None, np.asarray(result[1], dtype=np.float64)
        labels, probabilities = result
        flat = np.asarray(labels).reshape(-1)
        if len(flat) <= 64:  # a dictionary beats an Index for a handful of rows
            index = np.fromiter((self._class_position.get(v, -1) for v in flat.tolist()),
                                np.int64, len(flat))
        else:
            index = self._class_index.get_indexer(flat)
        if (index < 0).any():
            raise ValueError("the compiled model returned a label outside the classes")
        return self.classes[index], np.asarray(probabilities, dtype=np.float64)


def ort_session(data: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle threads sleep instead of spinning: other requests and workers need the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _initial_types(signature: Signature, double: bool) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import (DoubleTensorType, FloatTensorType,
                                            StringTensorType)

    number = DoubleTensorType if double else FloatTensorType

    types = []
    for col in signature.inputs:
        if col.type == "boolean":
            raise ValueError(f"boolean input {col.name!r} has no compiled form")
        if col.type == "string":
            types.append((col.name, StringTensorType([None, 1])))
        else:
            types.append((col.name, number([None, 1])))
    return types


def _convert(estimator: Any, signature: Signature, double: bool) -> bytes:
    from skl2onnx import convert_sklearn

    options = {id(final_estimator(estimator)): {"zipmap": False}} if signature.output.kind == "classification" \
        else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(estimator, initial_types=_initial_types(signature, double),
                                options=options, target_opset=OPSETS)
    return model.SerializeToString()


def _convert_preprocessing(estimator: Any, signature: Signature) -> bytes:
    """The steps before the model as a float64 graph (its output: the model's feature matrix)."""
    from skl2onnx import convert_sklearn
    from sklearn.pipeline import Pipeline

    steps = estimator.steps[:-1]
    transformer = steps[0][1] if len(steps) == 1 else Pipeline(steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(transformer, initial_types=_initial_types(signature, True),
                                target_opset=OPSETS)
    return model.SerializeToString()


def compile_version(estimator: Any, signature: Signature, sample: pd.DataFrame,
                    native: bool = False, max_nodes: int | None = None) -> Compiled:
    """Convert ``estimator`` and keep the result only if it reproduces scikit-learn on ``sample``
    (the typed reference rows), label for label and probability for probability. With
    ``native``, a tree ensemble (up to ``max_nodes``) is first compiled to machine code
    (``native.py``: float64, exact and fastest). Then the ONNX graph: double precision first
    (exact for linear models, neighbours, naive Bayes); tree ensembles run in float32 in
    onnxruntime, as in scikit-learn's own tree code."""
    if signature.output.kind == "classification" and not signature.output.probabilities:
        return Compiled(None, "scikit-learn: the classifier has no predict_proba to verify")
    outcome = Compiled(None, "")
    final = final_estimator(estimator)
    trees = any(hasattr(final, a) for a in ("tree_", "estimators_", "_predictors"))
    skipped = ""
    if native and trees:
        outcome = _compile_native(estimator, signature, sample, max_nodes)
        if outcome.data is not None:
            return outcome
        skipped = f"; native trees not used: {outcome.note}"
    # trees compare in float32 (scikit-learn's own tree code does): never in double
    for double in ((False,) if trees else (True, False)):
        outcome = _compile(estimator, signature, sample, double)
        if outcome.data is not None:
            break
    return Compiled(outcome.data, outcome.note + skipped, outcome.runtime)


def _compile_native(estimator: Any, signature: Signature, sample: pd.DataFrame,
                    max_nodes: int | None) -> Compiled:
    from . import native

    why = native.unsuitable(estimator, signature,
                            native.NODE_BUDGET if max_nodes is None else max_nodes)
    if why is None and not _exact_in_float32(estimator):
        why = "numeric transformers (such as scalers) before the trees"
    if why is None and not _steps(estimator) and any(c.type == "string" for c in signature.inputs):
        why = "text inputs reach the trees without an encoder"
    if why is not None:
        return Compiled(None, why, "native")
    try:
        preprocessing = _convert_preprocessing(estimator, signature) \
            if _steps(estimator) else None
        data = native.build(estimator, signature, preprocessing)
    except Exception as exc:  # treelite, skl2onnx and the C compiler raise many kinds
        return Compiled(None, f"compilation failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''})", "native")
    classes = _classes(estimator, signature)
    return _verified(lambda: native.NativeRunner(data, signature, classes), data, "native",
                     "treelite (native trees)", "float64", estimator, sample, classes)


def _compile(estimator: Any, signature: Signature, sample: pd.DataFrame,
             double: bool) -> Compiled:
    if not double and not _exact_in_float32(estimator):
        return Compiled(None, "scikit-learn: numeric transformers (such as scalers) before a "
                              "tree model would run in float32 when compiled and could move "
                              "rows across split thresholds")
    try:
        data = _convert(estimator, signature, double)
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        return Compiled(None, "scikit-learn: no ONNX conversion for this pipeline "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    classes = _classes(estimator, signature)
    guards = {} if double else split_guards(estimator, signature)
    if "" in guards:
        return Compiled(None, "scikit-learn: the model splits on derived features whose float32 "
                              "thresholds cannot be checked")
    outcome = _verified(lambda: OnnxRunner(data, signature, classes, guards, _wide(estimator)),
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
        expected_p = np.asarray(estimator.predict_proba(sample)) if classes is not None else None
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
    worst = float(np.max(np.abs(probabilities - expected_p))) if len(sample) else 0.0
    if not worst <= TOLERANCE:
        return Compiled(None, f"compiled probabilities differ by up to {worst:.2g} on the "
                              f"reference sample", runtime)
    return Compiled(data, f"{engine}: verified on {len(sample)} reference rows (labels "
                          f"identical, probabilities within {max(worst, 1e-9):.1g}; "
                          f"{precision})", runtime)


EXACT_STEPS = ("OneHotEncoder", "OrdinalEncoder")


def _exact_in_float32(estimator: Any) -> bool:
    """Whether numbers reach the model unchanged (passthrough or exact integer encodings), so
    the float32 graph compares the same values with the same thresholds as scikit-learn."""
    for step in _steps(estimator):
        if step in (None, "passthrough"):
            continue
        if not hasattr(step, "transformers_"):
            return False
        for _, transformer, _ in step.transformers_:
            if _identity(transformer) or transformer == "drop":
                continue
            if type(transformer).__name__ not in EXACT_STEPS:
                return False
    return True


def _identity(transformer: Any) -> bool:
    """'passthrough', which a fitted ColumnTransformer holds as an identity FunctionTransformer."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer).__name__ == "FunctionTransformer" and \
        getattr(transformer, "func", 0) is None and \
        getattr(transformer, "inverse_func", 0) is None


def split_guards(estimator: Any, signature: Signature) -> dict[str, np.ndarray]:
    """Per numeric input feeding a tree model unchanged: its split thresholds as scikit-learn
    holds them (float64). The compiled graph holds them in float32 and compares float32 inputs;
    scikit-learn compares float32 inputs (forests, single trees, gradient boosting) or float64
    ones (histogram gradient boosting). A value on which the two comparisons could disagree is
    sent to scikit-learn (see ``OnnxRunner.feed``)."""
    by_feature: dict[int, list[np.ndarray]] = {}
    for features, thresholds in _splits(final_estimator(estimator)):
        for feature in np.unique(features):
            by_feature.setdefault(int(feature), []).append(thresholds[features == feature])
    positions = _passthrough_positions(estimator, signature)
    encoded = _encoded_positions(estimator)
    guards = {}
    for feature, parts in by_feature.items():
        name = positions.get(feature)
        if name is None:
            if feature in encoded:
                continue  # 0/1 or category codes: exact in float32
            return {"": np.empty(0)}  # a threshold on a derived feature: cannot be guarded
        guards[name] = np.unique(np.concatenate(parts)).astype(np.float64)
    return guards


def _splits(final: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(feature index, threshold) arrays of every numeric split of a fitted tree model."""
    if hasattr(final, "_predictors"):  # HistGradientBoosting
        for trees in final._predictors:
            for tree in trees:
                nodes = tree.nodes
                numeric = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
                yield nodes["feature_idx"][numeric], nodes["num_threshold"][numeric]
        return
    trees = [final] if hasattr(final, "tree_") else \
        list(np.ravel(getattr(final, "estimators_", [])))
    for tree in trees:
        inner = tree.tree_
        split = inner.feature >= 0
        yield inner.feature[split], inner.threshold[split]


def _steps(estimator: Any) -> list[Any]:
    """The steps before the model (none for a bare estimator)."""
    return [step for _, step in estimator.steps[:-1]] if hasattr(estimator, "steps") else []


def _outputs_of(estimator: Any, keep: Any) -> dict[int, tuple[int, Any]]:
    """Model feature index -> (position within its transformer's columns, those columns), for
    the transformers of a single fitted ColumnTransformer that ``keep`` accepts."""
    steps = _steps(estimator)
    if len(steps) != 1 or not hasattr(steps[0], "output_indices_"):
        return {}
    ct = steps[0]
    return {index: (offset, columns)
            for name, transformer, columns in ct.transformers_
            if keep(transformer) and name in ct.output_indices_
            for offset, index in enumerate(range(ct.output_indices_[name].start,
                                                 ct.output_indices_[name].stop))}


def _encoded_positions(estimator: Any) -> set[int]:
    """Model feature indices produced by exact encoders (one-hot, ordinal)."""
    return set(_outputs_of(estimator, lambda t: type(t).__name__ in EXACT_STEPS))


def _passthrough_positions(estimator: Any, signature: Signature) -> dict[int, str]:
    """Model feature index -> input column, for inputs passed through unchanged."""
    if not _steps(estimator):
        return {i: c.name for i, c in enumerate(signature.inputs)}
    out: dict[int, str] = {}
    for index, (offset, columns) in _outputs_of(estimator, _identity).items():
        column = np.atleast_1d(columns)[offset]
        out[index] = signature.inputs[column].name if isinstance(column, (int, np.integer)) \
            else str(column)
    return out


def _classes(estimator: Any, signature: Signature) -> np.ndarray | None:
    return np.asarray(estimator.classes_) if signature.output.kind == "classification" \
        else None


def load_runner(data: bytes, expected_sha256: str, signature: Signature, estimator: Any,
                runtime: str = "onnx") -> Any:
    """A stored compiled model (an ``OnnxRunner``, or a ``NativeRunner`` for ``runtime``
    "native"), checked against its checksum before use."""
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError("the compiled model's checksum does not match the registry")
    if runtime == "native":
        from .native import NativeRunner

        return NativeRunner(data, signature, _classes(estimator, signature))
    return OnnxRunner(data, signature, _classes(estimator, signature),
                      split_guards(estimator, signature), _wide(estimator))


def stored_runner(path: Path, runtime: str, signature: Signature, estimator: Any, model: str,
                  version: int) -> Any:
    """The version's compiled runner from its stored file (named by its checksum), or None
    with the reason logged: scikit-learn still answers, only slower (a damaged file, native
    code built for another machine)."""
    if runtime not in COMPILED_RUNTIMES:
        return None
    try:
        return load_runner(path.read_bytes(), path.name, signature, estimator, runtime)
    except Exception as exc:
        log.error("compiled form of %s v%s unusable (%s); scoring with scikit-learn", model,
                  version, exc)
        return None


def _wide(estimator: Any) -> bool:
    """Whether scikit-learn compares the inputs in float64 (histogram gradient boosting) rather
    than float32 (its other tree models)."""
    return hasattr(final_estimator(estimator), "_predictors")
