"""ONNX graphs as models: the adapter answers as the scikit-learn source does, the signature comes
from the graph and the sample, and graphs that would load code or read files are refused."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper

from server.errors import ModelRejected, UnsafeArtifact
from server.scoring.loader import detect_format, load_artifact
from server.scoring.onnx_model import OnnxClassifier, load_onnx
from server.scoring.runtime import LoadedModel
from server.scoring.signature import declare_types, infer_signature
from tests.model_formats import NUMBERS, graphs, sources


def test_pipeline_classifiers_answer_as_scikit_learn():
    """A ZipMap output (list of dicts) and a plain probability tensor give the same answer,
    classes read from the graph, labels identical, probabilities within float32's reach."""
    src = sources()
    X = src["X"]
    for name in ("classifier", "forest"):
        model = load_onnx(graphs()[name])
        assert isinstance(model, OnnxClassifier)
        assert model.classes_.tolist() == src[name].classes_.tolist()
        assert model.feature_names_in_.tolist() == list(X.columns)
        assert model.input_types_ == {"city": "string", "age": "number", "plan": "string",
                                      "visits": "integer"}
        assert model.predict(X).tolist() == src[name].predict(X).tolist()
        np.testing.assert_allclose(model.predict_proba(X), src[name].predict_proba(X),
                                   atol=1e-5)


def test_regressor_and_single_tensor_graphs():
    src = sources()
    X = src["X"]
    regressor = load_onnx(graphs()["regressor"])
    assert not hasattr(regressor, "predict_proba") and not hasattr(regressor, "classes_")
    np.testing.assert_allclose(regressor.predict(X), src["regressor"].predict(X), rtol=1e-5)
    tensor = load_onnx(graphs()["tensor"])
    assert not hasattr(tensor, "feature_names_in_") and tensor.n_features_in_ == 2
    assert tensor.classes_.tolist() == [0, 1, 2, 3]
    assert tensor.predict(X[NUMBERS]).tolist() == \
        src["tensor"].predict(X[NUMBERS].values.astype(np.float32)).tolist()
    with pytest.raises(ValueError, match="takes 2 columns"):
        tensor.predict(X)


def test_signature_from_the_graph_and_the_sample():
    X = sources()["X"]
    model = load_onnx(graphs()["classifier"])
    sig = declare_types(infer_signature(model, None), model.input_types_, sampled=False)
    assert [(c.name, c.type) for c in sig.inputs] == [
        ("city", "string"), ("age", "number"), ("plan", "string"), ("visits", "integer")]
    assert sig.output.kind == "classification" and sig.output.probabilities
    assert sig.output.classes == ("leaves", "stays")
    sampled = declare_types(infer_signature(model, X), model.input_types_, sampled=True)
    assert sampled.column("city").categories == ("Graz", "Lyon", "Oslo", "Porto")
    # a sample whose types contradict the graph refuses the model, naming the column
    with pytest.raises(ModelRejected, match="'visits' is declared integer"):
        declare_types(infer_signature(model, X.assign(visits=X.visits + 0.5)),
                      model.input_types_, sampled=True)
    # one 2-D tensor: the sample's columns, in order, as many as the tensor is wide
    tensor = load_onnx(graphs()["tensor"])
    assert infer_signature(tensor, X[NUMBERS]).names == NUMBERS
    with pytest.raises(ModelRejected, match="lacks the model's input columns: x0, x1"):
        infer_signature(tensor, X)
    regression = infer_signature(load_onnx(graphs()["regressor"]), X).output
    assert regression.kind == "regression"


def test_the_runtime_isolates_rows_the_graph_cannot_take():
    """A missing text value has no ONNX form and a NaN probability is no answer: those rows
    fail alone, the others score."""
    X = sources()["X"].head(6).copy()
    model = load_onnx(graphs()["classifier"])
    loaded = LoadedModel("m", 1, model, infer_signature(model, X), "0")
    X["city"] = X["city"].astype(object)
    X.loc[2, "city"] = None
    out = loaded.predict(X)
    assert out.ok.tolist() == [0, 1, 3, 4, 5] and [f.row for f in out.failures] == [2]
    assert out.labels.tolist() == sources()["classifier"].predict(X.drop(index=2)).tolist()


def test_format_by_suffix_and_through_the_loader(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(graphs()["regressor"])
    assert detect_format("Model.ONNX") == "onnx"
    model = load_artifact(path, "onnx")
    X = sources()["X"]
    np.testing.assert_allclose(model.predict(X), sources()["regressor"].predict(X), rtol=1e-5)


def _graph(nodes, inputs, outputs, initializers=(), opsets=(("", 18),), **kw):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                             **kw)


def _matrix_input(name="X"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 2])


def test_custom_op_domains_are_refused_by_name():
    model = _graph([helper.make_node("RunShell", ["X"], ["Y"], domain="evil.ops")],
                   [_matrix_input()], [helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                                      [None])],
                   opsets=(("", 18), ("evil.ops", 1)))
    with pytest.raises(UnsafeArtifact, match="'RunShell' from the custom domain 'evil.ops'"):
        load_onnx(model.SerializeToString())
    # inside a subgraph (an If branch) as well
    branch = helper.make_graph([helper.make_node("RunShell", ["X"], ["Z"], domain="evil.ops")],
                               "b", [], [helper.make_tensor_value_info("Z", TensorProto.FLOAT,
                                                                       [None])])
    cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    nested = _graph([helper.make_node("If", ["c"], ["Y"], then_branch=branch, else_branch=branch)],
                    [_matrix_input()], [helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                                      [None])],
                    initializers=[cond], opsets=(("", 18), ("evil.ops", 1)))
    with pytest.raises(UnsafeArtifact, match="evil.ops"):
        load_onnx(nested.SerializeToString())


@pytest.mark.parametrize("location", ["/etc/passwd", "../../secret.bin", "weights.bin"])
def test_external_data_is_refused_before_any_file_is_read(location):
    weights = helper.make_tensor("W", TensorProto.FLOAT, [2, 1], [0.0, 0.0])
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = weights.external_data.add()
        entry.key, entry.value = key, value
    model = _graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], [_matrix_input()],
                   [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
                   initializers=[weights])
    with pytest.raises(UnsafeArtifact, match=f"external file .*{location}"):
        load_onnx(model.SerializeToString())


def test_graphs_the_checker_or_onnxruntime_refuse():
    with pytest.raises(UnsafeArtifact, match="not a valid ONNX model"):
        load_onnx(b"certainly not protobuf \x00\xff" * 10)
    broken = _graph([helper.make_node("MatMul", ["X", "missing"], ["Y"])], [_matrix_input()],
                    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    with pytest.raises(UnsafeArtifact, match="not a valid ONNX model"):
        load_onnx(broken.SerializeToString())


def test_class_labels_are_read_never_guessed():
    """A classifier graph whose operators declare no labels is refused, unless the labels are
    given as metadata; a label output is required beside the probabilities."""
    probs = helper.make_tensor_value_info("P", TensorProto.FLOAT, [None, 2])
    label = helper.make_tensor_value_info("L", TensorProto.INT64, [None])
    nodes = [helper.make_node("Softmax", ["X"], ["P"], axis=1),
             helper.make_node("ArgMax", ["P"], ["L"], axis=1, keepdims=0)]
    model = _graph(nodes, [_matrix_input()], [label, probs])
    with pytest.raises(ModelRejected, match="cannot tell the ONNX classifier's class labels"):
        load_onnx(model.SerializeToString())
    helper.set_model_props(model, {"classes": json.dumps([0, 1])})
    labelled = load_onnx(model.SerializeToString())
    X = pd.DataFrame({"a": [0.0, 3.0], "b": [1.0, -1.0]})
    assert labelled.classes_.tolist() == [0, 1] and labelled.predict(X).tolist() == [1, 0]
    only_probs = _graph(nodes[:1], [_matrix_input()], [probs])
    with pytest.raises(ModelRejected, match="not a label with probabilities"):
        load_onnx(only_probs.SerializeToString())



def test_onnxruntime_contrib_operators_are_allowed():
    """com.microsoft operators are compiled into onnxruntime (no code comes with the model):
    a graph using one (as exporters and onnxruntime's optimiser write them) loads and runs."""
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    model = _graph([helper.make_node("Gelu", ["X"], ["H"], domain="com.microsoft"),
                    helper.make_node("ReduceSum", ["H", "axes"], ["Y"], keepdims=0)],
                   [_matrix_input()], [helper.make_tensor_value_info("Y", TensorProto.FLOAT,
                                                                      [None])],
                   initializers=[axes], opsets=(("", 18), ("com.microsoft", 1)))
    X = pd.DataFrame({"a": [0.0, 1.0], "b": [2.0, -1.0]})
    values = X.to_numpy()
    gelu = 0.5 * values * (1 + np.vectorize(math.erf)(values / math.sqrt(2)))
    np.testing.assert_allclose(load_onnx(model.SerializeToString()).predict(X),
                               gelu.sum(axis=1), rtol=1e-5)
