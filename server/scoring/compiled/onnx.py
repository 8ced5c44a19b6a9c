"""The ONNX form: a pipeline converted by skl2onnx and run by onnxruntime.

scikit-learn pays milliseconds of Python overhead per call whatever the number of rows; the same
pipeline as an ONNX graph answers one row in microseconds. Input the graph cannot represent
(missing text, numbers beyond float32, values on a float32 split edge) goes to scikit-learn for
that call. The native-trees form reuses the feeding helpers and the session builder here.
"""
from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from typing import Any

import numpy as np
import pandas as pd

from ...types import Signature
from ..preprocess_plan import plan
from ..runtime import final_estimator
from .estimator import matrix_guards, wide_inputs

WIDE_ROWS = 2_000
OPSETS = {"": 18, "ai.onnx.ml": 3}  # from this many rows a call is spread over every core
FLOAT32_MAX = float(np.finfo(np.float32).max)


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
                if (np.abs(values) > FLOAT32_MAX).any():
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
            assert self._class_index is not None  # set with self.classes
            index = self._class_index.get_indexer(flat)
        if (index < 0).any():
            raise ValueError("the compiled model returned a label outside the classes")
        return self.classes[index], np.asarray(probabilities, dtype=np.float64)


class PlannedOnnxRunner(OnnxRunner):
    """The model's own graph fed by a float64 plan of the steps before it (:mod:`..preprocess_plan`):
    for pipelines whose preprocessing has no exact graph (splines, quantiles, target encoding).
    A float32 graph (tree ensembles too large for native code) has its split edges guarded on
    the plan's matrix, column by column, as ``OnnxRunner`` guards inputs."""

    def __init__(self, bundle: bytes, signature: Signature, classes: np.ndarray | None,
                 estimator: Any) -> None:
        with zipfile.ZipFile(io.BytesIO(bundle)) as z:
            manifest = json.loads(z.read("manifest.json"))
            graph = z.read("model.onnx")
        super().__init__(graph, signature, classes)
        self._plan = plan(estimator, signature)
        self._double_matrix = manifest["precision"] == "float64"
        guards = {} if self._double_matrix else matrix_guards(estimator)
        self._columns = [(j, t, t.astype(np.float32)) for j, t in guards.items()]
        self._wide_inputs = wide_inputs(estimator)

    def prepare(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        matrix = self._plan.matrix_or_none(inputs)
        if matrix is None:
            return None
        if self._double_matrix:
            return {"X": matrix}, np.empty(0, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            if (np.abs(matrix) > FLOAT32_MAX).any():
                return None
        narrow = matrix.astype(np.float32)
        edges = [np.flatnonzero(np.isnan(matrix).any(axis=1))]
        for j, wide, thin in self._columns:
            values = matrix[:, j] if self._wide_inputs else narrow[:, j]
            edges.append(np.flatnonzero(np.searchsorted(wide, values)
                                        != np.searchsorted(thin, narrow[:, j])))
        return {"X": narrow}, np.unique(np.concatenate(edges))


def convert_final(estimator: Any, signature: Signature, width: int, double: bool) -> bytes:
    """The bundle for ``PlannedOnnxRunner``: the pipeline's model alone as a graph over the
    ``width`` features the plan makes."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    final = final_estimator(estimator)
    number = DoubleTensorType if double else FloatTensorType
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # plain arrays out, not a ZipMap of dictionaries, where the converter has it
            model = convert_sklearn(final, initial_types=[("X", number([None, width]))],
                                    options={id(final): {"zipmap": False}}
                                    if signature.output.kind == "classification" else None,
                                    target_opset=OPSETS)
        except NameError as exc:  # "Option 'zipmap' not in [...]": a classifier without it
            if "zipmap" not in str(exc):
                raise
            model = convert_sklearn(final, initial_types=[("X", number([None, width]))],
                                    target_opset=OPSETS)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps(
            {"format": 1, "precision": "float64" if double else "float32"}))
        bundle.writestr("model.onnx", model.SerializeToString())
    return out.getvalue()


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
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

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


def convert(estimator: Any, signature: Signature, double: bool) -> bytes:
    from skl2onnx import convert_sklearn

    options = {id(final_estimator(estimator)): {"zipmap": False}} \
        if signature.output.kind == "classification" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(estimator, initial_types=_initial_types(signature, double),
                                options=options, target_opset=OPSETS)
    return model.SerializeToString()


def convert_preprocessing(estimator: Any, signature: Signature) -> bytes:
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
