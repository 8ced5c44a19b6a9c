"""A version's stored compiled form back into a runner, checked against its checksum."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from ...types import Signature
from .ensembles import EnsembleRunner, is_bundle
from .estimator import classes_of, split_guards, wide_inputs
from .native import NativeRunner
from .onnx import OnnxRunner, PlannedOnnxRunner

log = logging.getLogger(__name__)

# the runtimes whose versions carry a compiled artifact
COMPILED_RUNTIMES = ("native", "onnx")


def load_runner(data: bytes, expected_sha256: str, signature: Signature, estimator: Any,
                runtime: str = "onnx") -> Any:
    """A stored compiled model (an ``OnnxRunner``, or a ``NativeRunner`` or ``EnsembleRunner`` for
    ``runtime`` "native"), checked against its checksum before use."""
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError("the compiled model's checksum does not match the registry")
    if runtime == "native":
        runner = EnsembleRunner if is_bundle(data) else NativeRunner
        return runner(data, signature, classes_of(estimator, signature), estimator)
    if data[:4] == b"PK\x03\x04":  # a bundle: the model's graph after a float64 plan
        return PlannedOnnxRunner(data, signature, classes_of(estimator, signature), estimator)
    return OnnxRunner(data, signature, classes_of(estimator, signature),
                      split_guards(estimator, signature), wide_inputs(estimator))


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
