"""Prometheus metrics: names and labels, client kinds, and counts that add up over several
gunicorn workers."""
from __future__ import annotations

import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import client_kind
from tests.conftest import churn_rows, jsonable
from tests.live import ROOT, env_for, serve, setup_cli


def samples(text: str, name: str) -> list:
    out = []
    for family in text_string_to_metric_families(text):
        out += [s for s in family.samples if s.name == name]
    return out


def test_client_kinds():
    assert client_kind("excel", "/excel/v1/batch") == "excel"
    assert client_kind("xlwings", "/excel/v1/batch") == "xlwings"
    assert client_kind(None, "/odata/<entity_set>") == "odata"
    assert client_kind(None, "/invocations") == "mlflow"
    assert client_kind(None, "/v2/models/<name>/infer") == "v2"
    assert client_kind("nonsense", "/api/v1/models/<name>/predict") == "http"
    assert client_kind("PowerBI", "/api/v1/models/<name>/predict") == "powerbi"


def test_metrics_endpoint(client, demo_registered):
    for _ in range(3):
        client.post("/api/v1/models/churn/predict", json={"rows": jsonable(churn_rows(4))},
                    scope="score", headers={"X-ScoreBridge-Client": "powerbi"})
    client.post("/api/v1/models/churn/predict", json={"rows": [[1, "x", "a", "b", 1, "c"]]},
                scope="score")
    client.get("/api/v1/models", scope=None)
    resp = client.get("/metrics", scope="read")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    requests_ = {tuple(sorted(s.labels.items())): s.value
                 for s in samples(text, "scorebridge_requests_total")}
    key = tuple(sorted({"model": "churn", "version": "1", "route":
                        "/api/v1/models/<name>/predict", "client": "powerbi",
                        "status": "200"}.items()))
    assert requests_[key] >= 3
    rows = [s for s in samples(text, "scorebridge_rows_scored_total")
            if s.labels == {"model": "churn", "version": "1", "client": "powerbi"}]
    assert rows and rows[0].value >= 12
    kinds = {s.labels["kind"]: s.value for s in samples(text, "scorebridge_errors_total")}
    assert kinds.get("bad_input", 0) >= 1 and kinds.get("auth", 0) >= 1
    info = [s for s in samples(text, "scorebridge_model_info") if s.labels["model"] == "churn"]
    assert any(s.labels["version"] == "1" and s.value == 1 for s in info)
    assert samples(text, "scorebridge_request_duration_seconds_count")
    assert samples(text, "scorebridge_model_load_seconds_count")
    assert "sb_" not in text  # no key ever appears
    assert client.get("/metrics", scope=None).status_code == 401


@pytest.mark.slow
def test_counts_add_up_over_several_workers(tmp_path, demo_files):
    env = env_for(tmp_path / "home")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    server = serve(env, workers=3)
    try:
        body = {"rows": jsonable(churn_rows(5))}
        pids = set()
        for _ in range(60):  # new connections spread over the workers
            resp = requests.post(f"{server.url}/api/v1/models/churn/predict", json=body,
                                 headers={"X-API-Key": key}, timeout=30)
            assert resp.status_code == 200
        for _ in range(20):
            pids.add(requests.get(f"{server.url}/readyz", timeout=10).json()["worker"])
        text = requests.get(f"{server.url}/metrics", headers={"X-API-Key": key}, timeout=10).text
        total = sum(s.value for s in samples(text, "scorebridge_requests_total")
                    if s.labels["route"] == "/api/v1/models/<name>/predict")
        rows = sum(s.value for s in samples(text, "scorebridge_rows_scored_total"))
        assert total == 60 and rows == 300
        assert len(pids) >= 2  # more than one worker answered, and their counts were summed
        assert re.search(r'scorebridge_model_info\{model="churn",version="1"\} 1\.0', text)
    finally:
        server.stop()


def test_grafana_dashboard_uses_metrics_that_exist(client, demo_registered):
    import json

    client.post("/api/v1/models/churn/predict", json={"rows": jsonable(churn_rows(2))},
                scope="score")
    exposed = {f.name for f in text_string_to_metric_families(
        client.get("/metrics", scope="read").get_data(as_text=True))}
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(re.findall(r"(scorebridge_[a-z_]+?)(?:_bucket|_total)?\b", " ".join(exprs)))
    assert used
    for name in used:
        assert name in exposed, name
