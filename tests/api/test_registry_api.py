"""Registration by upload, catalogue, promotion, rollback and events over HTTP."""
from __future__ import annotations

import json
import pickle

import joblib
import pytest

from tests.conftest import assert_problem, jsonable, register_file


def test_register_wine_by_upload(client, wine):
    resp = register_file(client, "wine", wine["path"], wine["sample"],
                         metadata=json.dumps({"description": "wine cultivars",
                                              "tags": {"team": "lab"}, "target": "target",
                                              "metrics": {"cv_accuracy": 0.97}}),
                         holdout=wine["holdout"])
    assert resp.status_code == 201, resp.json
    info = resp.json
    assert resp.headers["Location"] == "/api/v1/models/wine/versions/1"
    assert info["version"] == 1 and info["aliases"] == ["production"]
    assert len(info["sha256"]) == 64 and info["format"] == "skops"
    assert info["tags"] == {"team": "lab"} and info["metrics"]["cv_accuracy"] == 0.97
    assert info["metrics"]["accuracy"] == pytest.approx(1.0)
    names = [c["name"] for c in info["signature"]["inputs"]]
    assert names == list(wine["X"].columns)
    assert info["signature"]["output"] == {"kind": "classification", "type": "integer",
                                           "classes": [0, 1, 2], "probabilities": True}
    catalogue = client.get("/api/v1/models", scope="read").json["models"]
    assert [m["name"] for m in catalogue] == ["wine"]
    assert catalogue[0]["production_version"] == 1
    detail = client.get("/api/v1/models/wine", scope="read").json
    assert detail["signature"]["inputs"][0]["name"] == "alcohol"
    assert detail["description"] == "wine cultivars"


def test_second_version_waits_for_promotion(client, wine):
    register_file(client, "wine", wine["path"])
    resp = register_file(client, "wine", wine["path"])
    assert resp.json["version"] == 2 and resp.json["aliases"] == []
    X = jsonable(wine["X"].head(1))
    assert client.post("/api/v1/models/wine/predict", json={"rows": X},
                       scope="score").json["version"] == 1
    resp = client.post("/api/v1/models/wine/aliases/production", json={"version": 2},
                       scope="deploy")
    assert resp.status_code == 200 and resp.json["aliases"] == ["production"]
    assert client.post("/api/v1/models/wine/predict", json={"rows": X},
                       scope="score").json["version"] == 2
    resp = client.post("/api/v1/models/wine/rollback", json={"reason": "bad metrics"},
                       scope="deploy")
    assert resp.status_code == 200 and resp.json["version"] == 1
    assert client.post("/api/v1/models/wine/predict", json={"rows": X},
                       scope="score").json["version"] == 1
    versions = client.get("/api/v1/models/wine/versions", scope="read").json["versions"]
    assert [v["rolled_back"] for v in versions] == [True, False]
    assert_problem(client.post("/api/v1/models/wine/rollback", scope="deploy"), 409,
                   "no earlier production version")
    kinds = [e["kind"] for e in client.get("/api/v1/events?model=wine", scope="read").json["events"]]
    assert kinds == ["rolled_back", "promoted", "registered", "promoted", "gates_passed",
                     "registered", "model_created"]


def test_alias_requests_are_validated(client, wine):
    register_file(client, "wine", wine["path"])
    assert_problem(client.post("/api/v1/models/wine/aliases/production", json={"version": "2"},
                               scope="deploy"), 400, "positive integer")
    assert_problem(client.post("/api/v1/models/wine/aliases/production", json={"version": 7},
                               scope="deploy"), 404, "no version 7")
    assert_problem(client.post("/api/v1/models/wine/aliases/Bad%20Alias", json={"version": 1},
                               scope="deploy"), 422, "invalid alias")
    assert_problem(client.post("/api/v1/models/wine/aliases/staging", json={"version": 1,
                               "extra": 1}, scope="deploy"), 400, "unknown field")
    assert_problem(client.post("/api/v1/models/wine/aliases/staging", data="{",
                               content_type="application/json", scope="deploy"), 400, "json")


def test_pickle_without_trust_is_refused(client, wine, tmp_path):
    path = tmp_path / "wine.pkl"
    joblib.dump(wine["model"], path)
    body = assert_problem(register_file(client, "wine", path), 422, "pickle", "--trust-pickle")
    assert body["type"].endswith("unsafe-artifact")
    assert client.get("/api/v1/models", scope="read").json["models"] == []


def test_pickle_trust_needs_admin_and_is_recorded(client, wine, tmp_path):
    path = tmp_path / "wine.joblib"
    joblib.dump(wine["model"], path)
    meta = json.dumps({"trust_pickle": True})
    assert_problem(register_file(client, "wine", path, metadata=meta, scope="deploy"), 403,
                   "admin")
    resp = register_file(client, "wine", path, metadata=meta, scope="admin")
    assert resp.status_code == 201 and resp.json["trusted_pickle"] is True
    assert resp.json["format"] == "pickle"
    resp = client.post("/api/v1/models/wine/predict", json={"rows": jsonable(wine["X"].head(3))},
                       scope="score")
    assert resp.json["predictions"] == wine["model"].predict(wine["X"].head(3)).tolist()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_never_loaded(client, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    assert_problem(register_file(client, "evil", path), 422, "pickle")
    assert not marker.exists()


def test_skops_with_untrusted_types_is_refused(client, tmp_path, wine):
    import os

    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(os.getcwd), wine["model"])
    sio.dump(model, tmp_path / "odd.skops")
    body = assert_problem(register_file(client, "odd", tmp_path / "odd.skops"), 422, "allowlist")
    assert "getcwd" in body["detail"]


@pytest.mark.parametrize("filename, content, fragments, status", [
    ("model.txt", b"hello", ["unsupported artifact type"], 422),
    ("model.skops", b"not a zip", ["not a readable skops file"], 422),
    ("model.skops", b"", ["not a readable skops file"], 422),
])
def test_bad_artifacts(client, tmp_path, filename, content, fragments, status):
    path = tmp_path / filename
    path.write_bytes(content)
    assert_problem(register_file(client, "m", path), status, *fragments)


def test_model_that_is_not_an_estimator(client, tmp_path):
    import skops.io as sio

    sio.dump({"a": 1}, tmp_path / "dict.skops")
    assert_problem(register_file(client, "m", tmp_path / "dict.skops"), 422, "no predict method")


def test_unfitted_model_fails_the_smoke_test(client, tmp_path, wine):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    sio.dump(LogisticRegression(), tmp_path / "unfitted.skops")
    assert_problem(register_file(client, "m", tmp_path / "unfitted.skops", wine["sample"]), 422)


def test_upload_validation(client, wine, tmp_path):
    assert_problem(client.post("/api/v1/models/wine/versions", json={}, scope="deploy"), 415,
                   "multipart")
    assert_problem(client.post("/api/v1/models/wine/versions", data={"x": "1"}, scope="deploy",
                               content_type="multipart/form-data"), 400,
                   "form field 'file' is required")
    assert_problem(register_file(client, "wine", wine["path"], metadata="{bad"), 400, "json")
    assert_problem(register_file(client, "wine", wine["path"], metadata='{"owner": "me"}'), 400,
                   "'metadata.owner' is an unknown field")
    assert_problem(register_file(client, "wine", wine["path"], metadata='{"metrics": {"a": "x"}}'),
                   400, "must be a number")
    assert_problem(register_file(client, "Wine!", wine["path"]), 422, "invalid model name")
    assert_problem(register_file(client, "wine", wine["path"], holdout=wine["holdout"]), 422,
                   "target")
    bad_sample = tmp_path / "s.csv"
    bad_sample.write_text("a,b\n1,2\n")
    assert_problem(register_file(client, "wine", wine["path"], bad_sample), 422,
                   "sample lacks", "alcohol")
    assert client.get("/api/v1/models", scope="read").json["models"] == []


def test_path_traversal_in_names_is_refused(client, wine):
    for name in ("..%2F..%2Fetc", "a/../b", "%2e%2e"):
        resp = register_file(client, name, wine["path"])
        assert resp.status_code in (404, 422)
        assert resp.mimetype == "application/problem+json"


def test_path_traversal_in_upload_file_names_writes_nowhere_else(client, settings, wine,
                                                                 tmp_path):
    """A client chooses the uploaded file's name; the server never uses it as a path (artifacts
    are stored by content hash, job inputs under fixed names), so a name that climbs out of the
    upload folder lands nothing outside it."""
    before = {p for p in tmp_path.rglob("*")}
    hostile = "../../../../evil.skops"
    with open(wine["path"], "rb") as fh:
        resp = client.post("/api/v1/models/wine/versions", scope="deploy",
                           data={"file": (fh, hostile)}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.json
    csv = tmp_path / "rows.csv"
    wine["X"].head(3).to_csv(csv, index=False)
    with open(csv, "rb") as fh:
        job = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                          data={"model": "wine", "file": (fh, "../../../../evil.csv")})
    assert job.status_code == 202, job.json
    created = {p for p in tmp_path.rglob("*")} - before - {csv}
    assert not [p for p in created if "evil" in p.name], created
    assert all(p.is_relative_to(settings.home) for p in created), created
    # where the names would point from any folder of the server's data
    for folder in [settings.home, *settings.home.parents]:
        assert not (folder / "evil.skops").exists() and not (folder / "evil.csv").exists()


def test_upload_size_limit(settings, wine, keys):
    from dataclasses import replace

    from server.app import create_app
    from tests.conftest import KeyClient

    app = create_app(replace(settings, max_upload_bytes=1000))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    client = KeyClient(app.test_client(), {"deploy": key})
    assert_problem(register_file(client, "wine", wine["path"]), 413, "1000 bytes")


def test_missing_model_and_version(client):
    assert_problem(client.get("/api/v1/models/nope", scope="read"), 404, "no model named")
    assert_problem(client.get("/api/v1/models/nope/versions/1", scope="read"), 404)
    assert_problem(client.get("/api/v1/events?limit=0", scope="read"), 400, "at least 1")


FULL_STORE = """
import hashlib, json, sys
from pathlib import Path
from server.app import create_app
from server.config import Settings

home, artifact, sample = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
app = create_app(Settings(home=home, background=False, rate_limiting=False, native_trees=False))
svc = app.extensions["scorebridge"]
key = svc.keys.create("admin", "test")[0]
with open(artifact, "rb") as a, open(sample, "rb") as s:
    resp = app.test_client().post("/api/v1/models/churn/versions", headers={"X-API-Key": key},
                                  data={"file": (a, "churn.skops"), "sample": (s, "s.csv")},
                                  content_type="multipart/form-data")
print(json.dumps({"status": resp.status_code, "type": resp.content_type, "body": resp.json,
                  "models": [m.name for m in svc.registry.list_models()],
                  "stored": sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest())
                                   for p in (home / "artifacts").rglob("*") if p.is_file())}))
"""


@pytest.mark.slow
def test_a_full_disk_during_an_upload_is_507_and_records_nothing(tmp_path, demo_files):
    """The artifact store on a real 512 KB tmpfs (private mount namespace, no root needed) and a
    1 MB model uploaded through the API: 507 with a problem document, no version or model
    recorded, no partial file left in the store (what was stored whole before the disk filled,
    the reference sample, is an unreferenced blob that garbage collection removes)."""
    from tests.live import on_small_disk

    home = tmp_path / "home"
    store = home / "artifacts"
    store.mkdir(parents=True)
    result = on_small_disk(store, "512k", FULL_STORE, home, demo_files["artifact"],
                           demo_files["sample"])
    assert result["status"] == 507, result
    assert result["type"] == "application/problem+json"
    assert "disk" in result["body"]["detail"]
    assert result["models"] == []
    assert all(name == digest for name, digest in result["stored"]), result["stored"]
