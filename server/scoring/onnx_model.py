"""ONNX models registered as they are: a graph from any framework, run by onnxruntime.

The graph is wrapped in an estimator-like object (``predict``, ``predict_proba``, ``classes_``,
``feature_names_in_``) so that signature inference, the runtime, gates, drift and every client
treat it as they treat a scikit-learn model. The graph is checked before onnxruntime sees it:
``onnx.checker``; operators only from the standard domains and onnxruntime's built-in contrib
domain (no custom op library is ever registered, so no code comes with a model); no tensor stored
outside the file (onnxruntime would read such paths from the server's disk).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

import numpy as np
import pandas as pd

from ..errors import ModelRejected, UnsafeArtifact
from ..types.signature import ColumnType
from .compiled.onnx import ort_session

# "" and "ai.onnx" are the standard operators, "ai.onnx.ml" the classic-ML ones; "com.microsoft"
# holds onnxruntime's contrib operators, compiled into onnxruntime itself (exporters and its own
# optimiser emit them): no code is loaded for any of them
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
CLASSES_METADATA = "classes"  # optional metadata_props key: the probability columns' labels, JSON
_NUMPY = {"tensor(float)": np.float32, "tensor(double)": np.float64,
          "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_,
          "tensor(string)": np.object_}
_COLUMN_TYPE: dict[str, ColumnType] = {
    "tensor(float)": "number", "tensor(double)": "number", "tensor(int64)": "integer",
    "tensor(int32)": "integer", "tensor(bool)": "boolean", "tensor(string)": "string"}


def load_onnx(data: bytes) -> "OnnxModel":
    """The model in ``data`` after the safety checks, as a classifier or a regressor."""
    proto = _checked(data)
    try:
        session = ort_session(data, threads=1)
    except Exception as exc:  # onnxruntime's own checks: types, shapes, unknown operators
        raise ModelRejected(f"onnxruntime cannot load the ONNX graph ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:300] if str(exc) else ''})") from None
    outputs = session.get_outputs()
    probability = _probability_output(outputs)
    if probability is None:
        if len(outputs) != 1 or outputs[0].type not in ("tensor(float)", "tensor(double)") \
                or _width(outputs[0].shape) not in (None, 1):
            raise ModelRejected(
                "the ONNX graph's outputs are not a label with probabilities, nor one value per "
                "row: " + ", ".join(f"{o.name} {o.type}{o.shape}" for o in outputs))
        return OnnxModel(session)
    label = [o for o in outputs if o.name != probability.name]
    if len(label) != 1 or label[0].type not in ("tensor(int64)", "tensor(string)"):
        raise ModelRejected("the ONNX classifier needs one label output (int64 or string) beside "
                            f"its probabilities {probability.name!r}")
    classes = _classes(proto, probability.name)
    if (label[0].type == "tensor(string)") != (classes.dtype == object):
        raise ModelRejected("the ONNX graph's class labels and its label output differ in type")
    return OnnxClassifier(session, label[0].name, probability.name, classes)


def _checked(data: bytes) -> Any:
    import onnx

    try:
        proto = onnx.load_model_from_string(data)  # parses only: no external file is read
    except Exception as exc:
        raise UnsafeArtifact(f"not a valid ONNX model ({type(exc).__name__})") from None
    for graph in _graphs(proto.graph):
        for tensor in _tensors(graph):
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                where = next((e.value for e in tensor.external_data if e.key == "location"), "?")
                raise UnsafeArtifact(
                    f"the ONNX model keeps tensor {tensor.name!r} in an external file "
                    f"({where!r}); only self-contained models are loaded: save it with "
                    "onnx.save_model(model, path, save_as_external_data=False)")
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise UnsafeArtifact(
                    f"the ONNX model uses operator {node.op_type!r} from the custom domain "
                    f"{node.domain!r}; only the standard domains ({_allowed()}) are run, and "
                    "custom op libraries are never loaded")
    for function in proto.functions:
        for node in function.node:
            if node.domain not in ALLOWED_DOMAINS and node.domain != function.domain:
                raise UnsafeArtifact(f"the ONNX model's function {function.name!r} uses "
                                     f"operator {node.op_type!r} from the custom domain "
                                     f"{node.domain!r}; only {_allowed()} are run")
    local = {f.domain for f in proto.functions}
    for opset in proto.opset_import:
        if opset.domain not in ALLOWED_DOMAINS and opset.domain not in local:
            raise UnsafeArtifact(f"the ONNX model imports the custom operator domain "
                                 f"{opset.domain!r}; only {_allowed()} are run")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise UnsafeArtifact(f"not a valid ONNX model ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    return proto


def _allowed() -> str:
    return ", ".join(repr(d) for d in sorted(ALLOWED_DOMAINS))


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph (If/Loop/Scan bodies) inside it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices


def _width(shape: list[Any]) -> int | None:
    """The columns per row of a [N] or [N, k] tensor (None when symbolic or rank 1)."""
    if len(shape) < 2:
        return 1 if len(shape) == 1 else None
    return shape[1] if isinstance(shape[1], int) and len(shape) == 2 else None


def _probability_output(outputs: list[Any]) -> Any:
    """The output holding class probabilities: a seq(map) (skl2onnx's ZipMap) or, beside a
    label, a float [N, k] tensor; None for a regressor."""
    maps = [o for o in outputs if o.type.startswith("seq(map(")]
    if maps:
        return maps[0]
    tensors = [o for o in outputs if o.type in ("tensor(float)", "tensor(double)")
               and len(o.shape) == 2]
    return tensors[0] if len(outputs) == 2 and len(tensors) == 1 else None


def _classes(proto: Any, probability: str) -> np.ndarray:
    """The labels of the probability columns, read from the graph (never guessed): a
    ``classes`` metadata entry, the ZipMap that writes the output, or the one set of class
    labels the graph's classifier operators declare."""
    meta = {p.key: p.value for p in proto.metadata_props}
    if CLASSES_METADATA in meta:
        try:
            listed = json.loads(meta[CLASSES_METADATA])
            if not isinstance(listed, list) or not listed:
                raise ValueError
            return _label_array(listed)
        except ValueError:
            raise ModelRejected(f"the ONNX metadata {CLASSES_METADATA!r} must be a JSON list of "
                                "the class labels") from None
    found: list[tuple[Any, ...]] = []
    for node in proto.graph.node:
        labels = _node_labels(node)
        if labels is None:
            continue
        if node.op_type == "ZipMap" and probability in node.output:
            return _label_array(list(labels))
        if labels not in found:
            found.append(labels)
    if len(found) == 1:
        return _label_array(list(found[0]))
    raise ModelRejected(
        "cannot tell the ONNX classifier's class labels from its graph"
        + (" (its operators declare several sets)" if found else "")
        + f": add them as metadata ({CLASSES_METADATA!r}: a JSON list in probability-column "
        "order), or convert with skl2onnx's default ZipMap output")


def _node_labels(node: Any) -> tuple[Any, ...] | None:
    from onnx import helper

    for attr in node.attribute:
        if attr.name in ("classlabels_strings", "classlabels_int64s", "classlabels_ints"):
            values = helper.get_attribute_value(attr)
            if len(values):
                return tuple(v.decode() if isinstance(v, bytes) else int(v) for v in values)
    return None


def _label_array(labels: list[Any]) -> np.ndarray:
    if all(isinstance(v, str) for v in labels):
        return np.asarray(labels, dtype=object)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=np.int64)
    raise ValueError("class labels must be all text or all integers")


class OnnxModel:
    """An ONNX regressor (and the base of the classifier): feeds typed columns to the graph.

    The graph takes either one [N, 1] input per column (skl2onnx's form for DataFrame
    pipelines: the names and types are the graph's) or one [N, k] tensor (the columns in the
    sample's order, ``k`` of them when the graph says so)."""

    runtime_note = "onnxruntime: the model is an ONNX graph, run as registered"

    def __init__(self, session: Any) -> None:
        self._session = session
        inputs = session.get_inputs()
        for item in inputs:
            if item.type not in _NUMPY:
                raise ModelRejected(f"the ONNX input {item.name!r} has type {item.type}, which "
                                    "has no column form")
        if len(inputs) == 1 and _width(inputs[0].shape) != 1:
            self._matrix: Any = inputs[0]
            width = _width(inputs[0].shape)
            if width is not None:
                self.n_features_in_ = width
            self.input_types_: dict[str, ColumnType] = {}
        else:
            wide = [i.name for i in inputs if _width(i.shape) not in (1, None) or len(i.shape) > 2]
            if wide:
                raise ModelRejected("each ONNX input must be one column ([N, 1]) when the graph "
                                    "has several inputs; these are not: " + ", ".join(wide))
            self._matrix = None
            self.feature_names_in_ = np.asarray([i.name for i in inputs], dtype=object)
            self.n_features_in_ = len(inputs)
            self.input_types_ = {i.name: _COLUMN_TYPE[i.type] for i in inputs}
        self._inputs = inputs

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    regressor_tags=RegressorTags())

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        if self._matrix is not None:
            width = getattr(self, "n_features_in_", frame.shape[1])
            if frame.shape[1] != width:
                raise ValueError(f"the ONNX input takes {width} columns, got {frame.shape[1]}")
            cols = [_column(frame.iloc[:, i], self._matrix.type) for i in range(frame.shape[1])]
            return {self._matrix.name: np.column_stack(cols) if cols else np.empty((len(frame), 0))}
        feed = {}
        for item in self._inputs:
            values = _column(frame[item.name], item.type)
            feed[item.name] = values.reshape(-1, 1) if len(item.shape) == 2 else values
        return feed

    def _run(self, frame: pd.DataFrame, names: list[str]) -> list[Any]:
        return self._session.run(names, self._feed(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        name = self._session.get_outputs()[0].name
        values = np.asarray(self._run(frame, [name])[0], dtype=np.float64).reshape(-1)
        if np.isnan(values).any():  # a value the graph cannot handle (a missing input): refused
            raise ValueError("the ONNX graph returned no value for a row")
        return values


class OnnxClassifier(OnnxModel):
    """An ONNX classifier: a label output and class probabilities (a tensor or a ZipMap's
    list of dicts), columns in ``classes_`` order."""

    def __init__(self, session: Any, label: str, probability: str, classes: np.ndarray) -> None:
        super().__init__(session)
        self._label, self._probability = label, probability
        self.classes_ = classes

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())

    def predict_with_proba(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one run of the graph."""
        labels, probs = self._run(frame, [self._label, self._probability])
        labels = np.asarray(labels).reshape(-1)
        if labels.dtype.kind in "US":
            labels = labels.astype(object)
        if isinstance(probs, list):  # ZipMap: one {label: probability} per row
            probs = np.array([[row[c] for c in self.classes_.tolist()] for row in probs],
                             dtype=np.float64).reshape(len(probs), len(self.classes_))
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.classes_):
            raise ValueError(f"the ONNX probabilities have shape {probs.shape} for "
                             f"{len(self.classes_)} classes")
        if np.isnan(probs).any():  # a value the graph cannot handle (a missing input): refused
            raise ValueError("the ONNX graph returned no probabilities for a row")
        return labels, probs

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_with_proba(frame)[0]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_with_proba(frame)[1]


def _column(values: pd.Series, kind: str) -> np.ndarray:
    """One column as the graph's element type; a value it cannot represent raises (that row is
    then reported, not guessed)."""
    if kind == "tensor(string)":
        arr = np.asarray(values, dtype=object)
        if not all(type(v) is str for v in set(arr.tolist())):
            raise ValueError("a text input holds a missing or non-text value")
        return arr
    if kind == "tensor(bool)":
        if values.isna().any():
            raise ValueError("a boolean input holds a missing value")
        return values.to_numpy(dtype=np.bool_)
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        values = pd.to_numeric(values, errors="raise")
    target = _NUMPY[kind]
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy().astype(target)
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.issubdtype(target, np.integer):
        if not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
            raise ValueError("an integer input holds a missing or fractional value")
    return numbers.astype(target)
