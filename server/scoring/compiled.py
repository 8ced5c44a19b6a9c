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
from typing import Any

import numpy as np
import pandas as pd

from .signature import Signature

log = logging.getLogger(__name__)
TOLERANCE = 1e-6
WIDE_ROWS = 2_000  # from this many rows a call is spread over every core
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Compiled:
    """The outcome of compiling one version: ONNX bytes when verified, and why (or why not)."""

    onnx: bytes | None
    note: str


class OnnxRunner:
    """One verified ONNX graph and how to feed it from a typed frame."""

    def __init__(self, data: bytes, signature: Signature, classes: np.ndarray | None) -> None:
        self.session = _session(data, threads=1)
        # large batches (jobs, 10,000-row requests) use every core; small ones stay on one
        self._wide = _session(data, threads=os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 \
            else self.session
        self.signature = signature
        self.classes = classes
        self._class_index = pd.Index(classes) if classes is not None else None
        outputs = [o.name for o in self.session.get_outputs()]
        self._outputs = outputs[:2] if classes is not None else outputs[:1]
        self._text = [c.name for c in signature.inputs if c.type == "string"]
        self._numbers = [c.name for c in signature.inputs if c.type != "string"]

    def feed(self, inputs: Any) -> dict[str, np.ndarray] | None:
        """The graph's inputs (from a DataFrame or a mapping of column arrays), or None when the
        rows hold what the graph cannot represent."""
        feed: dict[str, np.ndarray] = {}
        for name in self._numbers:
            values = np.asarray(inputs[name], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                if (np.abs(values) > _FLOAT32_MAX).any():
                    return None
            feed[name] = values.astype(np.float32).reshape(-1, 1)
        for name in self._text:
            values = np.asarray(inputs[name], dtype=object)
            if pd.isna(values).any():
                return None  # a missing text value has no ONNX string form
            feed[name] = values.reshape(-1, 1)
        return feed

    def run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """(labels as scikit-learn would type them, probabilities as float64) or (values, None)."""
        rows = len(next(iter(feed.values()))) if feed else 0
        session = self._wide if rows >= WIDE_ROWS else self.session
        result = session.run(self._outputs, feed)
        if self.classes is None:
            return np.asarray(result[0], dtype=np.float64).reshape(-1), None
        labels, probabilities = result
        index = self._class_index.get_indexer(np.asarray(labels).reshape(-1))
        if (index < 0).any():
            raise ValueError("the compiled model returned a label outside the classes")
        return self.classes[index], np.asarray(probabilities, dtype=np.float64)


def _session(data: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle threads sleep instead of spinning: other requests and workers need the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _initial_types(signature: Signature) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = []
    for col in signature.inputs:
        if col.type == "boolean":
            raise ValueError(f"boolean input {col.name!r} has no compiled form")
        if col.type == "string":
            types.append((col.name, StringTensorType([None, 1])))
        else:
            types.append((col.name, FloatTensorType([None, 1])))
    return types


def _convert(estimator: Any, signature: Signature) -> bytes:
    from skl2onnx import convert_sklearn

    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if signature.output.kind == "classification" \
        else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(estimator, initial_types=_initial_types(signature),
                                options=options)
    return model.SerializeToString()


def compile_version(estimator: Any, signature: Signature, sample: pd.DataFrame) -> Compiled:
    """Convert ``estimator`` and keep the result only if it reproduces scikit-learn on ``sample``
    (the typed reference rows), label for label and probability for probability."""
    if signature.output.kind == "classification" and not signature.output.probabilities:
        return Compiled(None, "scikit-learn: the classifier has no predict_proba to verify")
    try:
        data = _convert(estimator, signature)
    except Exception as exc:  # skl2onnx raises many kinds for unsupported models
        return Compiled(None, "scikit-learn: no ONNX conversion for this pipeline "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    classes = np.asarray(estimator.classes_) if signature.output.kind == "classification" \
        else None
    try:
        runner = OnnxRunner(data, signature, classes)
        feed = runner.feed(sample)
        if feed is None:
            usable = sample.dropna(subset=runner._text) if runner._text else sample
            feed = runner.feed(usable)
            sample = usable
        if feed is None or len(sample) == 0:
            return Compiled(None, "scikit-learn: the reference sample cannot be fed to the "
                                  "compiled model, so it could not be verified")
        labels, probabilities = runner.run(feed)
    except Exception as exc:
        return Compiled(None, "scikit-learn: the compiled model does not run "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(estimator.predict(sample))
        expected_p = np.asarray(estimator.predict_proba(sample)) if classes is not None else None
    if classes is None:
        worst = float(np.max(np.abs(labels - expected.astype(np.float64))
                             / np.maximum(1.0, np.abs(expected.astype(np.float64)))))
        if not worst <= TOLERANCE:
            return Compiled(None, f"scikit-learn: compiled values differ by up to {worst:.2g} "
                                  f"(relative) on the reference sample")
        return Compiled(data, f"onnxruntime: verified on {len(sample)} reference rows "
                              f"(values within {worst:.1g})")
    mismatched = int((labels != expected).sum())
    if mismatched:
        return Compiled(None, f"scikit-learn: the compiled model disagrees on {mismatched} of "
                              f"{len(sample)} reference labels")
    worst = float(np.max(np.abs(probabilities - expected_p))) if len(sample) else 0.0
    if not worst <= TOLERANCE:
        return Compiled(None, f"scikit-learn: compiled probabilities differ by up to "
                              f"{worst:.2g} on the reference sample")
    return Compiled(data, f"onnxruntime: verified on {len(sample)} reference rows (labels "
                          f"identical, probabilities within {max(worst, 1e-9):.1g})")


def load_runner(data: bytes, expected_sha256: str, signature: Signature,
                estimator: Any) -> OnnxRunner:
    """A stored compiled model, checked against its checksum before use."""
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError("the compiled model's checksum does not match the registry")
    classes = np.asarray(estimator.classes_) if signature.output.kind == "classification" \
        else None
    return OnnxRunner(data, signature, classes)
