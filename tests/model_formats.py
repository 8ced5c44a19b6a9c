"""Models in the formats other tools ship (ONNX graphs, MLflow model folders), built from
scikit-learn sources the tests compare against. Built once per session (small: ~1 s in all)."""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

OPSETS = {"": 18, "ai.onnx.ml": 3}
TEXT = ["city", "plan"]
NUMBERS = ["age", "visits"]


def frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Two text columns and two numeric ones (ages in halves: exact in float32, which the
    converted graphs compute in)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "city": rng.choice(["Lyon", "Oslo", "Porto", "Graz"], n),
        "age": rng.integers(18, 80, n) + 0.5 * rng.integers(0, 2, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "visits": rng.integers(0, 30, n),
    })


def _preprocess(impute: bool = True, scale: bool = True) -> Any:
    # (an imputer holds a numpy.dtype, which skops files may only hold once the allowlist
    # covers it: the MLflow skops model goes without; trees go unscaled, as scaled float32
    # inputs would cross their float64 split thresholds)
    steps = ([SimpleImputer()] if impute else []) + ([StandardScaler()] if scale else [])
    numbers = make_pipeline(*steps) if steps else "passthrough"
    return make_column_transformer((OneHotEncoder(handle_unknown="ignore"), TEXT),
                                   (numbers, NUMBERS))


@functools.lru_cache(maxsize=None)
def sources() -> dict[str, Any]:
    """The scikit-learn models: classifiers (text labels), a regressor, a classifier on numbers
    only (integer labels) for a single 2-D tensor graph, and one for MLflow's skops flavour."""
    X = frame()
    churn = np.where((X.age / 10 + X.visits / 5 + (X.city == "Oslo") * 2
                      + (X.plan == "pro")) > 8.5, "stays", "leaves")
    spend = 3.0 * X.age - 2 * X.visits + (X.plan == "pro") * 40.0
    tier = (X.age // 30).astype(np.int64) + (X.visits > 15)
    return {
        "X": X,
        "classifier": make_pipeline(_preprocess(), LogisticRegression()).fit(X, churn),
        "forest": make_pipeline(_preprocess(scale=False), RandomForestClassifier(
            n_estimators=8, max_depth=5, random_state=0)).fit(X, churn),
        "regressor": make_pipeline(_preprocess(), Ridge()).fit(X, spend),
        "mlflow": make_pipeline(_preprocess(impute=False), LogisticRegression()).fit(X, churn),
        "tensor": LogisticRegression(max_iter=500).fit(X[NUMBERS].astype(np.float32).values,
                                                       tier),
        "y_class": churn, "y_value": spend,
    }


def to_graph(model: Any, X: pd.DataFrame | np.ndarray, zipmap: bool = True) -> bytes:
    """``model`` converted by skl2onnx, numbers as float32 (its usual form)."""
    from skl2onnx import to_onnx

    if isinstance(X, pd.DataFrame):
        X = X.astype({c: np.float32 for c in X.columns if X[c].dtype.kind == "f"})
    else:
        X = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = None if zipmap else {id(model): {"zipmap": False}}
        if not zipmap and hasattr(model, "steps"):
            options = {id(model.steps[-1][1]): {"zipmap": False}}
        return to_onnx(model, X[:1], options=options, target_opset=OPSETS).SerializeToString()


@functools.lru_cache(maxsize=None)
def graphs() -> dict[str, bytes]:
    src = sources()
    X = src["X"]
    return {"classifier": to_graph(src["classifier"], X),
            "forest": to_graph(src["forest"], X, zipmap=False),
            "regressor": to_graph(src["regressor"], X),
            "tensor": to_graph(src["tensor"], X[NUMBERS].values)}


def save_mlflow_sklearn(model: Any, folder: Path, X: pd.DataFrame,
                        serialization: str = "skops") -> Path:
    """``model`` saved by MLflow's own sklearn flavour, with a signature and an input example."""
    import mlflow.sklearn
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(model, str(folder), serialization_format=serialization,
                                  signature=infer_signature(X, model.predict(X)),
                                  input_example=X.head(5), pip_requirements=["scikit-learn"])
    return folder


def save_mlflow_onnx(data: bytes, folder: Path, X: pd.DataFrame) -> Path:
    """An ONNX graph saved by MLflow's onnx flavour, with a column signature and an example."""
    import mlflow.onnx
    import onnx
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    kinds = {"f": "double", "i": "long", "O": "string"}
    signature = ModelSignature(inputs=Schema([ColSpec(kinds[X[c].dtype.kind], c)
                                              for c in X.columns]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.onnx.save_model(onnx.load_model_from_string(data), str(folder),
                               signature=signature, input_example=X.head(5),
                               pip_requirements=["onnxruntime"])
    return folder


def pickle_payload(marker: Path) -> bytes:
    """A pickle that, when loaded, creates ``marker`` (what a hostile model would do)."""
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    return pickle.dumps(Payload())
