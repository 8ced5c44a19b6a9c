"""Safe loading of model artifacts.

skops is the default format. What may be instantiated is decided by the server's own allowlist, never
by anything inside the artifact: skops' built-in safe types, the reviewed data in ``allowlist/``
(scikit-learn's classes, not its functions, which a crafted model could call, plus the named functions
and numpy/scipy types reviewed one by one), and the names an admin lists in
``SCOREBRIDGE_TRUSTED_TYPES``.
Pickle and joblib run code when loaded, so they are loaded only for versions an admin marked trusted.
ONNX graphs (``onnx_model``) and zipped MLflow model folders (``mlflow_model``) are read by their
own modules; an MLflow model's sklearn flavour then takes the skops or pickle path here.
"""
from __future__ import annotations

import hashlib
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import ModelRejected, UnsafeArtifact
from ..types.signature import ColumnType
from .allowlist import allowlist
from .mlflow_model import read_mlflow
from .onnx_model import load_onnx

ArtifactFormat = Literal["skops", "pickle", "onnx", "mlflow"]
SKOPS_SUFFIXES = {".skops"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}
ONNX_SUFFIXES = {".onnx"}
MLFLOW_SUFFIXES = {".zip"}  # a zipped MLflow model folder (the CLI zips a folder itself)


def detect_format(filename: str) -> ArtifactFormat:
    """The artifact format from its file name; anything else is refused before it is read."""
    suffix = Path(filename).suffix.lower()
    if suffix in SKOPS_SUFFIXES:
        return "skops"
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in MLFLOW_SUFFIXES:
        return "mlflow"
    raise UnsafeArtifact(
        f"unsupported artifact type {suffix or '(no extension)'!r}: save the model with skops "
        "(skops.io.dump(model, 'model.skops')), as an ONNX graph (.onnx), or as a zipped MLflow "
        "model folder (.zip); or register a .pkl/.joblib with --trust-pickle")


@dataclass(frozen=True)
class ArtifactDetails:
    """What an artifact says of itself before it is loaded: whether loading it runs pickle, and
    for an MLflow model its declared input types and saved input example."""

    pickled: bool
    declared: dict[str, ColumnType] = field(default_factory=dict)
    example: pd.DataFrame | None = None


def artifact_details(path: Path, fmt: ArtifactFormat) -> ArtifactDetails:
    if fmt != "mlflow":
        return ArtifactDetails(pickled=fmt == "pickle")
    model = read_mlflow(path, with_example=True)
    return ArtifactDetails(pickled=model.format == "pickle", declared=model.declared,
                           example=model.example)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def untrusted_types(types: list[str], extra_trusted: tuple[str, ...] = ()) -> list[str]:
    """The subset of ``types`` that the server's allowlist does not cover."""
    allowed, listed = set(extra_trusted), allowlist()
    return [t for t in types if t not in allowed and listed.reason(t) is None]


def refusal_message(refused: list[str], shown: int = 5) -> str:
    """Which types were refused, why each is not on the list, and what an admin can do."""
    listed = allowlist()
    reasons = "; ".join(f"{_cut(name)} ({listed.refusal(name)})" for name in refused[:shown])
    more = f"; and {len(refused) - shown} more" if len(refused) > shown else ""
    return (f"the artifact holds {len(refused)} type{'s' if len(refused) > 1 else ''} outside the "
            f"server's allowlist: {reasons}{more}. To load it, an admin adds the reviewed names "
            "to SCOREBRIDGE_TRUSTED_TYPES, or registers a pickle of the model with --trust-pickle")


def _cut(name: str, limit: int = 120) -> str:
    """A type name from the artifact, cut short: the artifact, not the server, chose it."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def load_artifact(path: Path, fmt: ArtifactFormat, *, trust_pickle: bool = False,
                  extra_trusted: tuple[str, ...] = (), expected_sha256: str | None = None) -> Any:
    """Load an estimator, refusing anything the allowlist or the trust flag does not cover."""
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise UnsafeArtifact(
                f"artifact checksum mismatch: expected sha256 {expected_sha256[:12]}…, found "
                f"{actual[:12]}…; the stored file was changed after registration and is not loaded")
    if fmt == "skops":
        return _load_skops(path, extra_trusted)
    if fmt == "onnx":
        return load_onnx(path.read_bytes())
    if fmt == "mlflow":
        return _load_mlflow(path, trust_pickle, extra_trusted)
    if not trust_pickle:
        raise UnsafeArtifact(
            "pickle/joblib artifacts can run arbitrary code when loaded and are refused; save the "
            "model with skops, or have an admin register it with --trust-pickle (admin key required)")
    return _load_pickle(path)


def _load_mlflow(path: Path, trust_pickle: bool, extra_trusted: tuple[str, ...]) -> Any:
    """The model an MLflow folder's flavour holds, through the same checks as a file of its
    format (a skops member is written to a private temporary file for skops to read)."""
    model = read_mlflow(path)
    if model.format == "onnx":
        return load_onnx(model.data)
    if model.format == "pickle" and not trust_pickle:
        raise UnsafeArtifact(
            f"the MLflow model's sklearn flavour is serialized with {model.serialization} "
            f"({model.member}), which can run arbitrary code when loaded, and is refused: save it "
            "with mlflow.sklearn.save_model(..., serialization_format='skops'), or have an admin "
            "register it with --trust-pickle (admin key required)")
    with tempfile.TemporaryDirectory(prefix="scorebridge-mlflow-") as folder:
        member = Path(folder) / ("model.skops" if model.format == "skops" else "model.pkl")
        member.write_bytes(model.data)
        return load_artifact(member, model.format, trust_pickle=trust_pickle,
                             extra_trusted=extra_trusted)


def _load_skops(path: Path, extra_trusted: tuple[str, ...]) -> Any:
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt zip or schema: refuse, do not guess
        raise UnsafeArtifact(f"not a readable skops file ({type(exc).__name__})") from None
    refused = untrusted_types(found, extra_trusted)
    _require_libraries(refused)
    if refused:
        raise UnsafeArtifact(refusal_message(refused),
                             refused_types=[_cut(name) for name in refused[:20]])
    try:
        return sio.load(path, trusted=found)
    except Exception as exc:
        raise UnsafeArtifact(f"the skops file could not be loaded ({type(exc).__name__})") from None


def _require_libraries(refused: list[str]) -> None:
    """A model from an optional library this server lacks (XGBoost, LightGBM, CatBoost) is
    refused with the extra to install, not as an untrusted type nor a failed import; a type
    outside every list is refused as untrusted first."""
    needs = allowlist().needs_extra
    extras = sorted({needs[t] for t in refused if t in needs})
    if extras and all(t in needs for t in refused):
        install = f"scorebridge[{','.join(extras)}]"
        raise ModelRejected(
            f"the model needs {' and '.join(extras)}, which this server does not have installed "
            f"({', '.join(t for t in refused if t in needs)}): install {install} on the server "
            f"(pip install '{install}') and restart it")


def _load_pickle(path: Path) -> Any:
    try:
        import joblib

        return joblib.load(path)
    except Exception:
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)  # noqa: S301 - only for artifacts an admin marked trusted
        except Exception as exc:
            raise UnsafeArtifact(f"the pickle could not be loaded ({type(exc).__name__})") from None
