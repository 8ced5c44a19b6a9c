"""Signature inference, probing and safe loading."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from server.errors import UnsafeArtifact
from server.scoring.loader import detect_format, load_artifact, untrusted_types
from server.scoring.signature import infer_signature
from server.types import Signature, example_frame


def test_demo_signature_from_pipeline_and_sample(demo_model, demo_files):
    sample = pd.read_csv(demo_files["sample"])
    sig = infer_signature(demo_model, sample)
    assert sig.names == ["tenure_months", "monthly_charges", "contract", "payment_method",
                         "support_calls", "internet_service"]
    assert [c.type for c in sig.inputs] == ["integer", "number", "string", "string", "integer",
                                           "string"]
    assert sig.column("contract").categories == ("month-to-month", "one-year", "two-year")
    assert sig.output.classes == ("no", "yes") and sig.output.probabilities
    assert Signature.from_dict(sig.to_dict()) == sig


def test_categories_come_from_the_encoder_without_a_sample(demo_model):
    sig = infer_signature(demo_model, None)
    assert sig.column("internet_service").categories == ("dsl", "fiber", "none")
    assert sig.column("tenure_months").type == "number"
    frame = example_frame(sig)
    assert len(demo_model.predict(frame)) == 3


def test_model_without_names_gets_positional_names(wine):
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(wine["X"].to_numpy(), wine["y"])
    sig = infer_signature(model, None)
    assert sig.names == [f"x{i}" for i in range(13)]
    assert sig.output.kind == "regression"


def test_detect_format():
    assert detect_format("a.SKOPS") == "skops"
    assert detect_format("a.joblib") == "pickle"
    assert detect_format("a.onnx") == "onnx" and detect_format("m.ZIP") == "mlflow"
    with pytest.raises(UnsafeArtifact, match="'.h5'"):
        detect_format("a.h5")


def test_allowlist_takes_sklearn_classes_but_not_functions():
    assert untrusted_types(["sklearn.tree._tree.Tree",
                            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]) == []
    assert untrusted_types(["sklearn.datasets.dump_svmlight_file"]) == \
        ["sklearn.datasets.dump_svmlight_file"]
    assert untrusted_types(["builtins.eval", "os.system"]) == ["builtins.eval", "os.system"]
    assert untrusted_types(["mylib.Model"], extra_trusted=("mylib.Model",)) == []


def test_checksum_mismatch_is_refused(wine, tmp_path):
    path = tmp_path / "m.skops"
    sio.dump(wine["model"], path)
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_artifact(path, "skops", expected_sha256=good) is not None
    with pytest.raises(UnsafeArtifact, match="checksum mismatch"):
        load_artifact(path, "skops", expected_sha256="0" * 64)


def test_pickle_is_refused_without_trust(wine, tmp_path):
    import joblib

    path = tmp_path / "m.pkl"
    joblib.dump(wine["model"], path)
    with pytest.raises(UnsafeArtifact, match="trust-pickle"):
        load_artifact(path, "pickle")
    model = load_artifact(path, "pickle", trust_pickle=True)
    assert np.array_equal(model.predict(wine["X"]), wine["model"].predict(wine["X"]))
