"""The report's holdout part through the HTTP API: computed at registration and stored with the
version (SQLite and PostgreSQL), computed once on demand for a version that lacks one, the same
numbers in the JSON form and the XLSX (read back with openpyxl), every chart drawn with marks,
and a candidate's report showing production's beside it."""
from __future__ import annotations

import dataclasses
import io
import json
import math
import re

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from tests.conftest import register_file

CHURN = json.dumps({"target": "churned"})


@pytest.fixture
def settings(settings):
    """The suite's settings without the compiled form (a conversion per registration, tested
    elsewhere): the analyses are scikit-learn's answers either way."""
    return dataclasses.replace(settings, compile=False)


@pytest.fixture
def two_versions(client, demo_files):
    for _ in range(2):
        resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                             metadata=CHURN, holdout=demo_files["holdout"])
        assert resp.status_code == 201, resp.json
    return client


def _same(got: list, expected: list) -> bool:
    """Equal, numbers to the last digit or two an XLSX keeps (openpyxl writes 16 of 17)."""
    def one(a: object, b: object) -> bool:
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(one, a, b))
        if isinstance(a, float) or isinstance(b, float):
            return isinstance(a, (int, float)) and isinstance(b, (int, float)) and \
                math.isclose(a, b, rel_tol=1e-14, abs_tol=1e-300)
        return a == b
    return one(got, expected)


def _marks(html: str, chart_id: str) -> int:
    figure = re.search(rf'<figure class="analysis" id="chart-{re.escape(chart_id)}">(.*?)'
                       r"</figure>", html, re.S)
    assert figure, chart_id
    return len(re.findall(r'class="(?:point|bar|cell)"', figure.group(1)))


def test_stored_at_registration_computed_on_demand_shown_beside_production(two_versions,
                                                                          services):
    client = two_versions
    stored = services.registry.get_analysis("churn", 2)
    assert stored and stored["kind"] == "binary" and stored["sample_rows"] == 600
    # a tree model's explainer is costly: its contributions wait for the first report
    assert "contribution_importance" not in stored
    body = client.get("/models/churn/report.json?version=2", scope="read").json
    completed = services.registry.get_analysis("churn", 2)
    contrib = completed["contribution_importance"]  # the explainer's view, most moving first
    assert len(contrib) == 6 and contrib[0]["mean_abs"] > 0
    assert [e["mean_abs"] for e in contrib] == sorted((e["mean_abs"] for e in contrib),
                                                      reverse=True)
    assert {k: v for k, v in completed.items() if k != "contribution_importance"} == stored
    stored = completed
    assert body["version"]["version"] == 2 and body["baseline"]["version"] == 1
    assert body["version"]["analysis"] == stored
    assert body["baseline"]["analysis"] == services.registry.get_analysis("churn", 1)
    assert body["production_version"] == 1
    html = client.get("/models/churn/report?version=2", scope="read").get_data(as_text=True)
    assert "v2 beside v1 (production)" in html
    a = stored
    assert _marks(html, "importance") == 2 * len(a["importance"]["columns"])
    assert _marks(html, "contributions") == 2 * len(contrib)
    assert _marks(html, "roc") == 2 * len(a["roc"][0]["fpr"])
    assert _marks(html, "precision-recall") == 2 * len(a["precision_recall"][0]["recall"])
    assert _marks(html, "calibration") == 2 * len(a["calibration"][0]["mean_predicted"])
    assert _marks(html, "confusion-v2") == _marks(html, "confusion-v1") == 4
    for curve in a["dependence"]["curves"]:
        assert _marks(html, f"dependence-{curve['column']}") == 2 * len(curve["grid"])
    for seg in a["segments"]:
        assert _marks(html, f"segments-{seg['column']}") == 2 * len(seg["levels"])
    assert 'id="holdout-metrics"' in html and "positive class <b>yes</b>" in html
    # production's own report: one version, no comparison
    alone = client.get("/models/churn/report.json", scope="read").json
    assert alone["version"]["version"] == 1 and alone["baseline"] is None
    assert client.get("/models/churn/report.json?version=9", scope="read").status_code == 404
    # a version registered before analyses existed gets one on first request, stored
    first = services.registry.get_analysis("churn", 1)
    with services.registry.writing() as session:
        session.execute(sa.text("DELETE FROM version_analyses"))
    assert services.registry.get_analysis("churn", 1) is None
    body = client.get("/models/churn/report.json", scope="read").json
    again = services.registry.get_analysis("churn", 1)
    assert again is not None and body["version"]["analysis"] == again
    assert {k: v for k, v in again.items() if k != "computed_at"} == \
        {k: v for k, v in first.items() if k != "computed_at"}
    bad = client.get("/models/churn/report?version=x", scope="read")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert "version" in bad.get_data(as_text=True)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_workbook_holds_the_json_numbers_and_chromium_draws_every_chart(two_versions):
    """The XLSX read back equals the JSON; then Chromium renders the candidate's report and every
    analysis chart has visible marks of both versions, with no console errors (a screenshot
    kept). The pages come from the app itself (its test client): no server process."""
    client = two_versions
    body = client.get("/models/churn/report.json?version=2", scope="read").json
    wb = load_workbook(io.BytesIO(client.get("/models/churn/report.xlsx?version=2",
                                             scope="read").data))
    for sheet in ("Holdout metrics", "Importance", "Contributions", "Partial dependence", "ROC",
                  "Precision-recall", "Calibration", "Confusion matrix", "Segments"):
        assert sheet in wb.sheetnames
    rows = {sheet: [[c.value for c in r] for r in wb[sheet].iter_rows(min_row=2)]
            for sheet in wb.sheetnames}
    for part, label in ((body["version"], "v2"), (body["baseline"], "v1 (production)")):
        a = part["analysis"]
        assert _same([[r[1], r[2], r[3]] for r in rows["Importance"] if r[0] == label],
            [[e["column"], e["mean"], e["std"]] for e in a["importance"]["columns"]])
        assert _same([[r[1], r[2]] for r in rows["Contributions"] if r[0] == label],
            [[e["column"], e["mean_abs"]] for e in a["contribution_importance"]])
        assert _same([[r[2], r[3]] for r in rows["ROC"] if r[0] == label],
            [list(p) for p in zip(a["roc"][0]["fpr"], a["roc"][0]["tpr"])])
        assert _same([[r[2], r[3]] for r in rows["Calibration"] if r[0] == label],
            [list(p) for p in zip(a["calibration"][0]["mean_predicted"],
                                  a["calibration"][0]["fraction_positive"])])
        assert _same([r[4] for r in rows["Partial dependence"] if r[0] == label],
            [v for c in a["dependence"]["curves"] for vs in c["average"].values() for v in vs])
        assert _same([r[3] for r in rows["Confusion matrix"] if r[0] == label],
            [n for row in a["confusion"]["matrix"] for n in row])
        assert _same([[r[2], r[3], r[5]] for r in rows["Segments"] if r[0] == label],
            [[lv["level"], lv["count"], lv["value"]] for s in a["segments"] for lv in s["levels"]])
    assert all(isinstance(r[2], (int, float)) for r in rows["ROC"])  # numbers, not text
    metrics = {r[0]: r[1:] for r in rows["Holdout metrics"]}
    assert _same(metrics["roc_auc"], [body["version"]["metrics"]["roc_auc"],
                                      body["baseline"]["metrics"]["roc_auc"]])
    from tests.browser import browser_page, screenshot

    def answer(route):  # type: ignore[no-untyped-def]
        path = route.request.url.split("127.0.0.1", 1)[1]
        resp = client.get(path, scope="read")
        route.fulfill(status=resp.status_code, body=resp.data, content_type=resp.mimetype)

    with browser_page(1280, 900) as (page, errors):
        page.route("http://127.0.0.1/**", answer)
        page.goto("http://127.0.0.1/models/churn/report?version=2")
        page.wait_for_selector("#performance-charts")
        ids = page.locator("#performance-charts figure.analysis").evaluate_all(
            "fs => fs.map(f => f.id)")
        assert {"chart-importance", "chart-contributions", "chart-roc",
                "chart-precision-recall", "chart-calibration", "chart-confusion-v1",
                "chart-confusion-v2", "chart-segments-contract",
                "chart-dependence-contract"} <= set(ids)
        for chart_id in ids:
            marks = page.locator(f"#{chart_id} svg .point, #{chart_id} svg .bar, "
                                 f"#{chart_id} svg .cell")
            assert marks.count() > 0, chart_id
            box = marks.first.bounding_box()
            assert box is not None and box["width"] > 0, chart_id  # drawn, not hidden
        assert page.locator("#chart-roc svg .legend").all_text_contents() == \
            ["v2", "v1 (production)"]
        both = [body["version"]["analysis"], body["baseline"]["analysis"]]
        assert page.locator("#chart-roc svg circle.point").count() == \
            sum(len(a["roc"][0]["fpr"]) for a in both)
        assert page.locator("#chart-importance svg rect.bar").count() == \
            sum(len(a["importance"]["columns"]) for a in both)
        assert page.locator("#importance tr").count() == 7  # header and six inputs
        screenshot(page, "model-report-analysis.png")
        assert errors == [], errors


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_regressor_and_multiclass_reports(client, settings, wine, tmp_path):
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import Ridge

    X = wine["X"]
    path = tmp_path / "alcohol.skops"
    features = X.drop(columns=["alcohol"])
    sio.dump(Ridge().fit(features, X["alcohol"]), path)
    holdout = tmp_path / "alcohol_holdout.csv"
    features.assign(alcohol=X["alcohol"]).to_csv(holdout, index=False)
    sample = tmp_path / "alcohol_sample.csv"
    features.to_csv(sample, index=False)
    assert register_file(client, "alcohol", path, sample, holdout=holdout,
                         metadata=json.dumps({"target": "alcohol"})).status_code == 201
    a = client.get("/models/alcohol/report.json", scope="read").json["version"]["analysis"]
    assert a["kind"] == "regression" and a["segments"] == []  # no categorical input
    html = client.get("/models/alcohol/report", scope="read").get_data(as_text=True)
    assert _marks(html, "residuals") == len(a["residuals"]["residual"]) == len(X)
    assert _marks(html, "residual-histogram-v1") == 20
    wb = load_workbook(io.BytesIO(client.get("/models/alcohol/report.xlsx", scope="read").data))
    assert _same([r[2].value for r in wb["Residuals"].iter_rows(min_row=2)],
                 a["residuals"]["residual"])
    # the CLI writes the same workbook from the local registry
    from tests.live import env_for, setup_cli

    setup_cli("report", "alcohol", "--version", "1", "-o", str(tmp_path / "r.xlsx"),
              env=env_for(settings.home))
    local = load_workbook(tmp_path / "r.xlsx")
    assert [[c.value for c in r] for r in local["Residual histogram"].iter_rows()] == \
        [[c.value for c in r] for r in wb["Residual histogram"].iter_rows()]
    assert register_file(client, "wine", wine["path"], wine["sample"], holdout=wine["holdout"],
                         metadata=json.dumps({"target": "target"})).status_code == 201
    w = client.get("/models/wine/report.json", scope="read").json["version"]["analysis"]
    assert w["kind"] == "multiclass" and [c["class"] for c in w["roc"]] == ["0", "1", "2"]
    html = client.get("/models/wine/report", scope="read").get_data(as_text=True)
    assert "one per class, that class against the rest" in html
    assert _marks(html, "roc") == sum(len(c["fpr"]) for c in w["roc"])
    assert _marks(html, "confusion-v1") == 9
    assert pd.DataFrame(w["confusion"]["matrix"]).to_numpy().sum() == 60


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_holdout_the_report_says_so(client, demo_files):
    assert register_file(client, "churn", demo_files["artifact"],
                         demo_files["sample"]).status_code == 201
    html = client.get("/models/churn/report", scope="read").get_data(as_text=True)
    assert 'id="no-analysis"' in html and "--holdout" in html
    assert client.get("/models/churn/report.json", scope="read").json["version"]["analysis"] \
        is None
    wb = load_workbook(io.BytesIO(client.get("/models/churn/report.xlsx", scope="read").data))
    assert "ROC" not in wb.sheetnames
