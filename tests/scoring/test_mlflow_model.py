"""MLflow model folders: the sklearn (skops, pickle) and onnx flavours load from the stored zip
with their signature and input example, and zips or MLmodel files reaching outside their folder,
zip bombs and unloadable flavours are refused before anything is run."""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from server.errors import ModelRejected, UnsafeArtifact
from server.scoring.loader import artifact_details, detect_format, load_artifact
from server.scoring.mlflow_model import MAX_RATIO, read_mlflow, zip_folder
from tests.model_formats import graphs, pickle_payload, save_mlflow_onnx, save_mlflow_sklearn, sources

COLUMNS = {"city": "string", "age": "number", "plan": "string", "visits": "integer"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    X = sources()["X"]
    return {"skops": save_mlflow_sklearn(sources()["mlflow"], root / "skops", X),
            "cloudpickle": save_mlflow_sklearn(sources()["mlflow"], root / "cloudpickle", X,
                                               "cloudpickle"),
            "onnx": save_mlflow_onnx(graphs()["classifier"], root / "onnx", X)}


def zipped(folder: Path, target: Path) -> Path:
    target.write_bytes(zip_folder(folder))
    return target


def test_the_sklearn_skops_flavour_loads_through_the_allowlist(folders, tmp_path):
    path = zipped(folders["skops"], tmp_path / "m.zip")
    assert detect_format("m.zip") == "mlflow"
    details = artifact_details(path, "mlflow")
    assert not details.pickled and details.declared == COLUMNS
    assert details.example is not None
    assert details.example.astype(object).equals(sources()["X"].head(5).astype(object))
    model = load_artifact(path, "mlflow")
    X = sources()["X"]
    assert model.predict(X).tolist() == sources()["mlflow"].predict(X).tolist()


def test_the_onnx_flavour_loads_with_onnxruntime(folders, tmp_path):
    path = zipped(folders["onnx"], tmp_path / "m.zip")
    model = load_artifact(path, "mlflow")
    X = sources()["X"]
    assert model.predict(X).tolist() == sources()["classifier"].predict(X).tolist()
    assert artifact_details(path, "mlflow").declared == COLUMNS


def _beside(source: Path, folder: Path, model: str) -> Path:
    """``folder`` with ``source``'s files (MLmodel, input example) except its model file."""
    folder.mkdir()
    for file in source.iterdir():
        if file.name != model:
            (folder / file.name).write_bytes(file.read_bytes())
    return folder


def test_pickled_flavours_need_trust_and_the_message_says_so(folders, tmp_path):
    marker = tmp_path / "ran"
    folder = _beside(folders["cloudpickle"], tmp_path / "hostile", "model.pkl")
    (folder / "model.pkl").write_bytes(pickle_payload(marker))
    path = zipped(folder, tmp_path / "hostile.zip")
    assert artifact_details(path, "mlflow").pickled
    with pytest.raises(UnsafeArtifact, match="serialized with cloudpickle .*--trust-pickle"):
        load_artifact(path, "mlflow")
    assert not marker.exists()
    load_artifact(path, "mlflow", trust_pickle=True)  # the payload is live: trust runs it
    assert marker.exists()
    # the genuine cloudpickle model loads once trusted
    model = load_artifact(zipped(folders["cloudpickle"], tmp_path / "cp.zip"), "mlflow",
                          trust_pickle=True)
    X = sources()["X"]
    assert model.predict(X).tolist() == sources()["mlflow"].predict(X).tolist()


def test_a_skops_member_naming_a_function_is_refused_by_the_allowlist(folders, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    folder = _beside(folders["skops"], tmp_path / "system", "model.skops")
    sio.dump(FunctionTransformer(os.system), folder / "model.skops")
    with pytest.raises(UnsafeArtifact, match="system"):
        load_artifact(zipped(folder, tmp_path / "m.zip"), "mlflow")


def _mlmodel_zip(target: Path, mlmodel: dict, members: dict[str, bytes] | None = None,
                 prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(prefix + "MLmodel", yaml.safe_dump(mlmodel))
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return target


@pytest.mark.parametrize("where", ["../../x", "/etc/passwd", "model/../../x", "C:/x"])
def test_mlmodel_paths_outside_the_folder_are_refused(tmp_path, where):
    for flavour, key in (("sklearn", "pickled_model"), ("onnx", "data")):
        spec = {key: where, "serialization_format": "skops"}
        path = _mlmodel_zip(tmp_path / "m.zip", {"flavors": {flavour: spec}},
                            {"model/MLmodel.txt": b""}, prefix="model/")
        with pytest.raises(UnsafeArtifact, match=f"{key} = '{where}'.*(outside|absolute)"):
            load_artifact(path, "mlflow")
    # the input example's path too
    meta = {"flavors": {"onnx": {"data": "model.onnx"}},
            "saved_input_example_info": {"artifact_path": where, "type": "dataframe"}}
    path = _mlmodel_zip(tmp_path / "m.zip", meta, {"model.onnx": graphs()["tensor"]})
    with pytest.raises(UnsafeArtifact, match="artifact_path"):
        artifact_details(path, "mlflow")
    assert read_mlflow(path).member == "model.onnx"  # loading alone never reads the example


def test_hostile_zips_are_refused_naming_the_member(tmp_path):
    ok = {"flavors": {"onnx": {"data": "model.onnx"}}}
    for name in ("../evil.py", "/abs/evil.py", "a/../../evil.py", "a\\..\\evil.py"):
        path = _mlmodel_zip(tmp_path / "m.zip", ok, {"model.onnx": graphs()["tensor"],
                                                     name: b"x"})
        with pytest.raises(UnsafeArtifact, match="points outside the model folder"):
            read_mlflow(path)
    link = zipfile.ZipInfo("model.onnx")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as archive:
        archive.writestr("MLmodel", yaml.safe_dump(ok))
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArtifact, match="'model.onnx' is a symbolic link"):
        read_mlflow(tmp_path / "link.zip")
    with zipfile.ZipFile(tmp_path / "none.zip", "w") as archive:
        archive.writestr("model.onnx", graphs()["tensor"])
    with pytest.raises(UnsafeArtifact, match="no MLflow model: an MLmodel file"):
        read_mlflow(tmp_path / "none.zip")
    (tmp_path / "junk.zip").write_bytes(b"PK not really")
    with pytest.raises(UnsafeArtifact, match="not a readable zip"):
        read_mlflow(tmp_path / "junk.zip")


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path):
    """64 MiB of zeros compress ~1000:1; the header says so, and nothing is decompressed."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("MLmodel", yaml.safe_dump({"flavors": {"onnx": {"data": "m.onnx"}}}))
        with archive.open("m.onnx", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(64):
                fh.write(block)
    assert bomb.stat().st_size < (64 << 20) / MAX_RATIO
    with pytest.raises(UnsafeArtifact, match="'m.onnx' expands 64 MiB .*zip bomb"):
        read_mlflow(bomb)


def test_flavours_that_run_their_own_code_are_refused_by_name(tmp_path):
    meta = {"flavors": {"python_function": {"loader_module": "my_pkg.loader"},
                        "pytorch": {"model_data": "data"}}}
    with pytest.raises(UnsafeArtifact, match=r"flavours \(python_function, pytorch\)"):
        read_mlflow(_mlmodel_zip(tmp_path / "m.zip", meta))
    bad = {"flavors": {"sklearn": {"pickled_model": "m.bin", "serialization_format": "dill"}}}
    with pytest.raises(UnsafeArtifact, match="serialization_format 'dill'"):
        read_mlflow(_mlmodel_zip(tmp_path / "m.zip", bad, {"m.bin": b""}))


def test_a_folder_zips_to_the_same_bytes_and_links_are_refused(folders, tmp_path):
    assert zip_folder(folders["skops"]) == zip_folder(folders["skops"])
    names = zipfile.ZipFile(io.BytesIO(zip_folder(folders["skops"]))).namelist()
    assert names == sorted(names) and "MLmodel" in names and "model.skops" in names
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "model.skops").symlink_to("/etc/passwd")
    with pytest.raises(UnsafeArtifact, match="symbolic link, 'model.skops'"):
        zip_folder(folder)
    with pytest.raises(UnsafeArtifact, match="no MLmodel file"):
        zip_folder(tmp_path)


def test_a_zip_of_the_folder_itself_is_read_too(folders, tmp_path):
    """``zip -r model.zip model/`` puts everything under one folder: that folder is the root."""
    path = tmp_path / "nested.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folders["onnx"].iterdir()):
            archive.write(file, f"my-model/{file.name}")
    model = read_mlflow(path, with_example=True)
    assert model.member == "my-model/model.onnx" and model.example is not None
    X = sources()["X"]
    assert np.array_equal(load_artifact(path, "mlflow").predict(X),
                          sources()["classifier"].predict(X))


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["age", "visits"], "data": [[30.5, 3], [41.0, 17]]}},
    [{"age": 30.5, "visits": 3}, {"age": 41.0, "visits": 17}],
    {"dataframe_records": [{"age": 30.5, "visits": 3}, {"age": 41.0, "visits": 17}]},
])
def test_input_examples_in_split_or_records_form(tmp_path, body):
    import json

    meta = {"flavors": {"onnx": {"data": "model.onnx"}},
            "signature": {"inputs": json.dumps([{"type": "double", "name": "age"},
                                                {"type": "long", "name": "visits"}])},
            "saved_input_example_info": {"artifact_path": "example.json", "type": "dataframe"}}
    path = _mlmodel_zip(tmp_path / "m.zip", meta, {"model.onnx": graphs()["tensor"],
                                                   "example.json": json.dumps(body).encode()})
    details = artifact_details(path, "mlflow")
    assert details.declared == {"age": "number", "visits": "integer"}
    assert details.example.to_dict("list") == {"age": [30.5, 41.0], "visits": [3, 17]}
    bad = {**meta, "signature": {"inputs": json.dumps([{"type": "binary", "name": "age"}])}}
    with pytest.raises(ModelRejected, match="'age' as 'binary'"):
        artifact_details(_mlmodel_zip(tmp_path / "b.zip", bad, {
            "model.onnx": b"", "example.json": json.dumps(body).encode()}), "mlflow")
