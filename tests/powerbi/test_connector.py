"""The Power BI connector: lint with Microsoft's M parser and language services, the reproducible
.mez build, and contract tests of every request the connector sends (no M evaluator runs on Linux,
so the server is checked against the exact requests the M code makes)."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import zipfile
from dataclasses import replace
from xml.etree import ElementTree

import pytest

from server.app import create_app
from tests.conftest import KeyClient, assert_problem, churn_rows, jsonable, register_file
from tests.live import ROOT
from tests.powerbi.m_harness import run_m

PBI = ROOT / "powerbi"
CONNECTOR = (PBI / "connector" / "ScoreBridge.pq").read_text()
LINT = PBI / "tools" / "node_modules" / "@microsoft" / "powerquery-parser"


def lint(*paths):
    if shutil.which("node") is None or not LINT.exists():
        pytest.skip("run `make test` first (it installs Node tooling)")
    return subprocess.run(["node", str(PBI / "tools" / "lint.mjs"), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_every_m_file_lints_clean():
    proc = lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ScoreBridge.pq" in proc.stdout and "odata-models.m" in proc.stdout
    assert " 0 failed" in proc.stdout


def test_lint_catches_syntax_errors_and_unknown_names(tmp_path):
    (tmp_path / "broken.m").write_text("let\n    a = (1 + \nin\n    a")
    (tmp_path / "unknown.m").write_text("let\n    a = Table.NoSuchFunction(1)\nin\n    a")
    proc = lint(tmp_path / "broken.m", tmp_path / "unknown.m")
    assert proc.returncode == 1
    assert "syntax:" in proc.stdout
    assert "Cannot find the name 'Table.NoSuchFunction'" in proc.stdout
    assert "0 passed, 2 failed" in proc.stdout


def test_mez_is_reproducible(tmp_path):
    a, b = tmp_path / "a" / "ScoreBridge.mez", tmp_path / "b" / "ScoreBridge.mez"
    for out in (a, b):
        subprocess.run(["python3", str(PBI / "build_mez.py"), str(out)], check=True,
                       capture_output=True)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as mez:
        names = mez.namelist()
        assert names == sorted(names)
        assert "ScoreBridge.pq" in names and "resources.resx" in names
        assert "ScoreBridge.query.pq" not in names
        assert {f"ScoreBridge{n}.png" for n in (16, 20, 24, 32, 40, 48, 64)} <= set(names)
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in mez.infolist())
        for icon in re.findall(r'Extension\.Contents\("([^"]+)"\)', CONNECTOR):
            assert icon in names
        # what is packed is what Microsoft's parser accepts, and the resources are well-formed XML
        packed = tmp_path / "packed" / "ScoreBridge.pq"
        packed.parent.mkdir()
        packed.write_bytes(mez.read("ScoreBridge.pq"))
        proc = lint(packed)
        assert proc.returncode == 0 and "1 passed, 0 failed" in proc.stdout, proc.stdout
        strings = {d.get("name") for d in ElementTree.fromstring(mez.read("resources.resx")).iter("data")}
    for key in set(re.findall(r'Extension\.LoadString\("([^"]+)"\)', CONNECTOR)):
        assert key in strings, key


def test_connector_declares_the_data_source_the_way_power_bi_needs():
    assert re.search(r"^section ScoreBridge;", CONNECTOR, re.M)
    assert 'TestConnection = (dataSourcePath) => {"ScoreBridge.Contents", dataSourcePath}' in CONNECTOR
    assert re.search(r"Key = \[KeyLabel", CONNECTOR) and "Anonymous = []" in CONNECTOR
    # model, table and options do not become part of the credential's data source path
    predict_type = CONNECTOR[CONNECTOR.index("PredictType = type function"):]
    predict_type = predict_type[:predict_type.index(") as table meta")]
    assert predict_type.count("DataSource.Path = false") == 3
    # Web.Contents keeps a fixed base URL (variable parts only in RelativePath/Query)
    for call in re.findall(r"Web\.Contents\(\s*(\w+)", CONNECTOR):
        assert call == "base"


def basic(key):
    """How Power BI sends a Key credential: the key as Basic password, no user name."""
    return {"Authorization": "Basic " + base64.b64encode(f":{key}".encode()).decode()}


@pytest.fixture
def pbi(client, keys, demo_files):
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    return client.client, basic(keys["admin"])


FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method", "support_calls",
            "internet_service"]


def _records(n):
    return [dict(zip(FEATURES, r)) for r in jsonable(churn_rows(n))]


def test_contract_contents_and_versions(pbi):
    client, auth = pbi
    catalogue = client.get("/api/v1/models", headers={**auth, "Accept": "application/json"})
    assert catalogue.status_code == 200
    model = catalogue.json["models"][0]
    assert {"name", "production_version", "description"} <= set(model)
    detail = client.get("/api/v1/models/churn", headers=auth).json
    for v in detail["versions"]:
        assert {"version", "aliases", "gate_status", "created_at", "created_by",
                "description"} <= set(v)
        assert isinstance(v["aliases"], list)
    sig = detail["signature"]
    assert [c["name"] for c in sig["inputs"]][0] == "tenure_months"
    assert sig["output"] == {"kind": "classification", "type": "string",
                             "classes": ["no", "yes"], "probabilities": True}
    pinned = client.get("/api/v1/models/churn/versions/1", headers=auth).json
    assert pinned["signature"] == sig


def batch_body(client, auth, records, probabilities=True):
    """The body the connector sends for a batch of these records, built by its own BatchBody
    function from the rows as Table.ToRows gives them and the column names."""
    columns = list(records[0]) if records else FEATURES
    rows = [[r[c] for c in columns] for r in records]
    run = run_m(client, auth, "BatchBody", rows, columns, probabilities)
    assert run.error is None and run.sent == [], run.error
    return run.result


def test_contract_predict_batches(pbi, demo_model):
    client, auth = pbi
    body = batch_body(client, auth, _records(25))
    assert body == {"dataframe_split": {"columns": FEATURES, "data": [
        [r[c] for c in FEATURES] for r in _records(25)]},
        "options": {"errors": "row", "probabilities": True}}
    headers = {**auth, "Content-Type": "application/json", "Accept": "application/json",
               "X-Attempt": "1"}
    resp = client.post("/api/v1/models/churn/predict", json=body, headers=headers)
    assert resp.status_code == 200
    out = resp.json
    assert out["version"] == 1 and len(out["predictions"]) == 25
    assert out["predictions"] == demo_model.predict(churn_rows(25)).tolist()
    assert len(out["probabilities"][0]) == 2
    # a pinned version (Options [Version = 1], or the first answer's version) and an empty batch
    resp = client.post("/api/v1/models/churn/predict?version=1", headers=headers,
                       json=batch_body(client, auth, []))
    assert resp.status_code == 200 and resp.json["predictions"] == []
    # a bad row: the batch still answers, the row's error names the column
    bad = _records(2)
    bad[1]["monthly_charges"] = "lots"
    resp = client.post("/api/v1/models/churn/predict", headers=headers,
                       json=batch_body(client, auth, bad))
    assert resp.json["errors"] == [{"row": 1, "column": "monthly_charges",
                                    "message": "expected a number, got 'lots'"}]
    assert resp.json["probabilities"][1] is None


def test_contract_missing_model_and_columns(pbi):
    client, auth = pbi
    resp = client.get("/api/v1/models/nope", headers=auth)
    assert_problem(resp, 404, "no model named 'nope'")
    records = [{"tenure_months": 1}]
    resp = client.post("/api/v1/models/churn/predict", headers=auth,
                       json=batch_body(client, auth, records))
    assert_problem(resp, 422, "missing column", "monthly_charges")


def test_contract_413_lets_the_connector_halve(settings, demo_files):
    app = create_app(replace(settings, max_rows=10))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    client = KeyClient(app.test_client(), {"deploy": key})
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    headers = basic(key)
    resp = app.test_client().post("/api/v1/models/churn/predict", headers=headers,
                                  json=batch_body(app.test_client(), headers, _records(16)))
    assert_problem(resp, 413, "limit is 10")
    for half in (_records(16)[:8], _records(16)[8:]):
        assert app.test_client().post("/api/v1/models/churn/predict", headers=headers,
                                      json=batch_body(app.test_client(), headers, half)
                                      ).status_code == 200


def test_contract_auth_ways(pbi, settings, keys):
    client, _ = pbi
    assert client.get("/api/v1/models", headers=basic(keys["read"])).status_code == 200
    resp = client.get("/api/v1/models", headers=basic("sb_000000000000_bad"))
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")  # Power BI re-prompts
    anonymous = create_app(replace(settings, auth=False)).test_client()
    assert anonymous.get("/api/v1/models").status_code == 200


def test_every_relative_path_the_connector_uses_is_tested():
    """A new RelativePath in the connector must come with a contract test above."""
    paths = set(re.findall(r'"(api/v1/[a-z/]*)"', CONNECTOR))
    assert paths == {"api/v1/models", "api/v1/models/", "api/v1/whoami"}
    assert '"/versions/"' in CONNECTOR and '"/predict"' in CONNECTOR
    # the Aad kind's discovery (whoami's 401 challenge, the resource metadata):
    # tests/powerbi/test_connector_aad.py
    assert '".well-known/oauth-protected-resource"' in CONNECTOR


def test_contract_429_carries_retry_after(settings, demo_files):
    """The connector waits Retry-After seconds on 429 (and 503) before trying again."""
    app = create_app(replace(settings, rate_limiting=True, rate_limits={
        "score": "2/minute", "read": "100/minute", "deploy": "100/minute", "admin": "100/minute"}))
    svc = app.extensions["scorebridge"]
    admin = svc.keys.create("admin")[0]
    register_file(KeyClient(app.test_client(), {"deploy": admin}), "churn",
                  demo_files["artifact"], demo_files["sample"])
    headers = basic(svc.keys.create("score")[0])
    body = batch_body(app.test_client(), headers, _records(3))
    statuses = [app.test_client().post("/api/v1/models/churn/predict", json=body,
                                       headers=headers) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 60
    assert "429" in CONNECTOR and "Retry-After" in CONNECTOR


def test_readme_documents_the_options_the_connector_checks():
    readme = (PBI / "README.md").read_text()
    known = re.search(r'known = \{([^}]*)\}', CONNECTOR)
    assert known, "CheckOptions' list of options moved"
    for option in re.findall(r'"(\w+)"', known.group(1)):
        assert f"`{option}`" in readme, option
    limit = int(re.search(r"^MaxBatchSize = (\d+);", CONNECTOR, re.M).group(1))
    assert f"1 to {limit:,}" in readme
    assert "`prediction_2`" in readme and "ignoring case" in readme
    # Microsoft: Private data does not fold into other sources, not even other Private ones
    assert "not even another\nPrivate one" in readme or "not even another Private one" in readme
    assert "zero-row" not in readme.lower() and "schema pass with zero rows" not in readme
