"""The status dashboard and the model report: in-process content checks, the XLSX read back by
openpyxl, and both opened in real headless Chromium (no console errors, charts with data points,
every model shown, a screenshot kept)."""
from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook

from tests.browser import browser_page, screenshot
from tests.conftest import churn_rows, jsonable, register_file
from tests.live import env_for, run_cli, serve, setup_cli


@pytest.fixture
def busy(client, services, demo_files, wine):
    meta = json.dumps({"description": 'Churn <script>alert("x")</script> & more'})
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"], metadata=meta)
    register_file(client, "wine", wine["path"], wine["sample"])
    services.registry.set_monitoring("churn", {"sample_rate": 1.0}, actor="t")
    services.scorer.deployments.invalidate()
    for _ in range(5):
        client.post("/api/v1/models/churn/predict", json={"rows": jsonable(churn_rows(40))},
                    scope="score")
    client.post("/api/v1/models/churn/predict", json={"rows": [[1, "x", "a", "b", 1, "c"]]},
                scope="score")
    services.worker.run_once()


def test_dashboard_content(client, busy):
    resp = client.get("/dashboard", scope="read")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert 'id="model-churn"' in html and 'id="model-wine"' in html
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html  # escaped
    assert 'http-equiv="refresh"' in html
    assert "Database" in html and "Workers" in html and "Disk" in html and "Uptime" in html
    assert html.count('class="point"') > 10
    assert "promoted v1" in html  # the deployment timeline
    assert client.get("/dashboard", scope=None).status_code == 401


def test_report_html_and_xlsx(client, busy):
    html = client.get("/models/churn/report", scope="read").get_data(as_text=True)
    for part in ('id="card"', 'id="inputs"', 'id="training"', 'id="deployment"', 'id="calls"',
                 'id="versions"', 'id="drift"'):
        assert part in html
    assert "=ML.PREDICT(A2:F2,&#34;churn&#34;)" in html or '=ML.PREDICT(A2:F2,"churn")' in html
    assert "ScoreBridge.Predict(" in html and "curl -s" in html
    assert "tenure_months" in html and "month-to-month" in html
    resp = client.get("/models/churn/report.xlsx", scope="read")
    wb = load_workbook(io.BytesIO(resp.data))
    assert wb.sheetnames == ["Model card", "Inputs", "Training data", "Versions", "Deployment",
                             "Live", "Drift"]
    training = {r[0].value: r[1].value for r in wb["Training data"].iter_rows(min_row=2)}
    assert "month-to-month" in training["contract"] and " to " in training["tenure_months"]
    card = {r[0].value: r[1].value for r in wb["Model card"].iter_rows()}
    assert card["Model"] == "churn" and card["Production version"] == 1
    assert [c.value for c in wb["Inputs"][2]][:2] == ["tenure_months", "integer"]
    assert wb["Live"]._charts and sum(r[1].value or 0 for r in
                                      wb["Live"].iter_rows(min_row=2)) >= 5
    deploy = {r[0].value: r[1] for r in wb["Deployment"].iter_rows()}
    assert deploy["Call from excel"].value.startswith("=ML.PREDICT")
    assert deploy["Call from excel"].data_type == "s"  # shown, not evaluated
    # which engine answers production, and why (the suite registers without native trees)
    assert deploy["Scoring engine"].value.startswith("onnxruntime: verified on ")
    assert "<th>Scoring engine</th><td>onnxruntime: verified on " in html
    assert client.get("/models/nope/report", scope="read").status_code == 404


def test_cli_report(tmp_path, demo_files, monkeypatch):
    env = env_for(tmp_path / "home")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", env=env)
    run_cli("report", "churn", "-o", str(tmp_path / "r.html"), env=env)
    run_cli("report", "churn", "-o", str(tmp_path / "r.xlsx"), env=env)
    assert "Model report: churn" in (tmp_path / "r.html").read_text()
    assert load_workbook(tmp_path / "r.xlsx").sheetnames[0] == "Model card"


@pytest.mark.slow
def test_dashboard_and_report_in_chromium(tmp_path, demo_files, wine):
    env = env_for(tmp_path / "home", SCOREBRIDGE_PREDICTION_LOG_RATE="1.0",
                  SCOREBRIDGE_TICK_SECONDS="0.2")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), env=env)
    setup_cli("register", str(wine["path"]), "--name", "wine", "--sample", str(wine["sample"]),
              env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    server = serve(env, workers=2)
    try:
        import requests

        for _ in range(20):
            requests.post(f"{server.url}/api/v1/models/churn/predict",
                          json={"rows": jsonable(churn_rows(10))},
                          headers={"X-API-Key": key}, timeout=30).raise_for_status()
        import time

        time.sleep(1.5)  # one flush of the workers' counters
        with browser_page(1280, 900) as (page, errors):
            failed: list[str] = []  # every request the pages make answers, the favicon too
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                    if r.status >= 400 else None)
            page.goto(f"{server.url}/")  # first contact: a page of links for a person
            page.wait_for_selector("a[href='/dashboard']")
            assert page.locator("a[href='/guides/excel']").count() == 1
            page.click("a[href='/guides/powerbi']")
            page.wait_for_selector("article.guide h1")
            screenshot(page, "home-powerbi-guide.png")
            page.goto(f"{server.url}/dashboard?api_key={key}")
            page.wait_for_selector("#model-churn")
            assert page.locator("#model-wine").count() == 1
            points = page.locator("#model-churn svg.chart circle.point")
            assert points.count() > 10
            maximum = page.locator("#model-churn svg.chart .chart-max").first.text_content()
            assert maximum != "max 1" and maximum.startswith("max ")  # requests were drawn
            shot = screenshot(page, "dashboard.png")
            assert shot.stat().st_size > 20_000
            page.goto(f"{server.url}/models/churn/report?api_key={key}")
            page.wait_for_selector("#versions")
            assert page.locator("svg.chart circle.point").count() > 10
            screenshot(page, "model-report.png")
            # the API docs (Swagger UI) under the same strict Content-Security-Policy
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".opblock-tag", timeout=20_000)
            assert page.locator(".opblock").count() > 20
            screenshot(page, "api-docs.png")
            assert errors == [], errors
            assert failed == [], failed
    finally:
        server.stop()
