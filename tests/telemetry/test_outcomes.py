"""Outcomes through the HTTP API: predictions scored over several simulated days, actuals
recorded for part of them by prediction id (JSON) and by business key (CSV), with late,
duplicate, unknown and bad rows; live metrics equal scikit-learn's on the joined rows; a decay
crosses the alert threshold and produces exactly one event and one signed webhook delivery."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator

import numpy as np
import pytest
from sklearn import metrics as skm

from server.app import create_app
from server.demo import FEATURES, TARGET, make_churn_data
from tests.conftest import jsonable, register_file

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ROWS_PER_DAY = 60
SECRET = "s3cret"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(settings: Any, receiver: Any) -> Any:
    # scikit-learn scoring: the compiled forms have their own tests; outcomes do not depend on them
    app = create_app(replace(settings, webhook_secret=SECRET, webhook_urls=(receiver[0],),
                             compile=False))
    app.config["TESTING"] = True
    yield app
    app.extensions["scorebridge"].registry.engine.dispose()


def _score_day(client: Any, services: Any, day: int, n: int = ROWS_PER_DAY,
               seed_offset: int = 0) -> list[dict[str, Any]]:
    """Score ``n`` customers at DAY0 + ``day`` (the simulated clock); what each row got."""
    data = make_churn_data(n, seed=100 + day + seed_offset)
    frame = data[FEATURES].assign(customer_id=[f"d{day}s{seed_offset}-{i}" for i in range(n)])
    at = DAY0 + timedelta(days=day)
    services.scorer.outcome_log.clock = lambda: at
    records = json.loads(frame.to_json(orient="records"))
    resp = client.post("/api/v1/models/churn/predict", json={"records": records}, scope="score")
    assert resp.status_code == 200, resp.json
    body = resp.json
    assert len(body["prediction_ids"]) == n and len(set(body["prediction_ids"])) == n
    assert all(pid.startswith(body["request_id"] + "-") for pid in body["prediction_ids"])
    # the key column is passed through, not a model input (nor reported as an ignored one)
    assert not [w for w in body.get("warnings", []) if w.get("column") == "customer_id"]
    return [{"id": pid, "key": key, "at": at, "truth": truth, "pred": pred, "proba": proba,
             "contract": contract}
            for pid, key, truth, pred, proba, contract in zip(
                body["prediction_ids"], frame["customer_id"], data[TARGET],
                body["predictions"], body["probabilities"], data["contract"])]


def _expected(rows: list[dict[str, Any]]) -> dict[str, float]:
    """scikit-learn's metrics computed directly on joined rows."""
    y = np.array([r["actual"] for r in rows], dtype=object)
    labels = np.array([r["pred"] for r in rows], dtype=object)
    probs = np.array([r["proba"] for r in rows])
    return {"accuracy": skm.accuracy_score(y, labels),
            "f1_macro": skm.f1_score(y, labels, average="macro"),
            "roc_auc": skm.roc_auc_score(y == "yes", probs[:, 1]),
            "log_loss": skm.log_loss(y, probs, labels=["no", "yes"])}


def _assert_metrics(got: dict[str, float], rows: list[dict[str, Any]]) -> None:
    want = _expected(rows)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    # calibration: top-label expected calibration error over 10 equal-width bins
    probs = np.array([r["proba"] for r in rows])
    conf = probs.max(axis=1)
    right = np.where(probs.argmax(axis=1) == 1, "yes", "no") == \
        np.array([r["actual"] for r in rows])
    bins = np.minimum((conf * 10).astype(int), 9)
    ece = sum((bins == b).sum() * abs(conf[bins == b].mean() - right[bins == b].mean())
              for b in range(10) if (bins == b).any()) / len(rows)
    assert got["calibration_error"] == pytest.approx(ece, abs=1e-12)


def _csv(rows: list[list[Any]]) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode() + b"\n"


def test_outcomes_join_by_id_and_key_and_match_scikit_learn(client, services, demo_files,
                                                            receiver, database_url):
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                         metadata=json.dumps({"target": TARGET, "outcome_key": "customer_id"}),
                         holdout=demo_files["holdout"])
    assert resp.status_code == 201, resp.json
    holdout = resp.json["metrics"]
    resp = client.put("/api/v1/models/churn/monitoring", scope="deploy", json={
        "outcomes": {"alert": {"metric": "roc_auc", "max_drop": 0.15, "last": 100,
                               "min_outcomes": 80}}})
    assert resp.status_code == 200
    assert resp.json["outcomes"] == {"enabled": True, "key": "customer_id", "alert": {
        "metric": "roc_auc", "max_drop": 0.15, "last": 100, "min_outcomes": 80}}

    days = [_score_day(client, services, day) for day in range(4)]
    services.worker.run_once()  # the join rows are written off the request path

    # days 0 and 1 by prediction id (JSON), the outcome a week after the prediction
    by_id = [{"prediction_id": r["id"], "actual": r["truth"],
              "time": (r["at"] + timedelta(days=7)).isoformat()}
             for r in days[0] + days[1][:40]]
    resp = client.post("/api/v1/models/churn/outcomes", scope="score", json={"outcomes": by_id + [
        {"prediction_id": "nope-0", "actual": "yes"},                      # unknown id
        {"prediction_id": days[1][40]["id"], "actual": "maybe"},           # not a class
        {"prediction_id": days[1][41]["id"], "actual": "no", "time": "yesterday"},  # bad time
        {"prediction_id": days[1][42]["id"], "actual": "no",                # before prediction
         "time": (DAY0 - timedelta(days=3)).isoformat()},
        {"prediction_id": days[0][0]["id"], "actual": days[0][0]["truth"],  # the same again
         "time": (days[0][0]["at"] + timedelta(days=7)).isoformat()},
    ]})
    assert resp.status_code == 200, resp.json
    report = resp.json
    statuses = [a["status"] for a in report["answers"]]
    assert statuses == ["recorded"] * 100 + ["unknown", "invalid", "invalid", "invalid",
                                             "unchanged"]
    assert report["counts"] == {"recorded": 100, "unknown": 1, "invalid": 3, "unchanged": 1}
    messages = [a.get("message", "") for a in report["answers"][100:]]
    assert "no tracked prediction" in messages[0]
    assert "'maybe' is not one of the model's classes" in messages[1]
    assert "ISO 8601" in messages[2] and "before the prediction" in messages[3]
    assert "maybe" not in json.dumps(report["answers"][:100])

    # day 2 by business key (CSV), including a late one, a correction and unknown keys
    late_time = DAY0 + timedelta(days=5)  # earlier than outcomes already recorded: late
    lines = [["key", "actual", "time"]]
    lines += [[r["key"], r["truth"], (r["at"] + timedelta(days=10)).isoformat()]
              for r in days[2][:50]]
    flipped = "no" if days[2][0]["truth"] == "yes" else "yes"
    lines += [["no-such-customer", "yes", ""],
              [days[2][50]["key"], days[2][50]["truth"], late_time.isoformat()],
              [days[2][0]["key"], flipped, (days[2][0]["at"] + timedelta(days=11)).isoformat()],
              [days[2][51]["key"], "", ""]]
    resp = client.post("/api/v1/models/churn/outcomes", scope="score", data=_csv(lines),
                       content_type="text/csv")
    assert resp.status_code == 200, resp.json
    answers = resp.json["answers"]
    assert [a["status"] for a in answers] == ["recorded"] * 50 + [
        "unknown", "recorded", "replaced", "invalid"]
    assert answers[51].get("late") is True and resp.json["late"] == 1
    assert answers[52]["prediction_id"] == days[2][0]["id"]  # the key named the prediction
    assert "no actual" in answers[53]["message"]

    # re-sending the whole CSV counts nothing twice: same values are unchanged; the customer
    # with two rows is replaced twice, ending on the file's last row (the last row wins)
    again = client.post("/api/v1/models/churn/outcomes", scope="score", data=_csv(lines),
                        content_type="text/csv").json
    assert again["counts"] == {"unchanged": 50, "unknown": 1, "replaced": 2, "invalid": 1}

    # what the server should have joined, with scikit-learn's metrics computed directly
    joined = [dict(r, actual=r["truth"], observed=r["at"] + timedelta(days=7))
              for r in days[0] + days[1][:40]]
    joined += [dict(r, actual=r["truth"], observed=r["at"] + timedelta(days=10))
               for r in days[2][1:50]]
    joined += [dict(days[2][0], actual=flipped,  # the correction: the last row wins
                    observed=days[2][0]["at"] + timedelta(days=11))]
    joined += [dict(days[2][50], actual=days[2][50]["truth"], observed=late_time)]
    resp = client.get("/api/v1/models/churn/outcomes/quality", scope="read")
    assert resp.status_code == 200, resp.json
    (live,) = resp.json["versions"]
    assert live["version"] == 1 and live["scored"] == 4 * ROWS_PER_DAY
    assert live["matched"] == len(joined) == 151
    _assert_metrics(live["metrics"], joined)
    assert live["holdout"]["roc_auc"] == holdout["roc_auc"]
    hours = [(r["observed"] - r["at"]).total_seconds() / 3600 for r in joined]
    assert live["delay"]["median_hours"] == pytest.approx(np.median(hours))
    # one window per simulated day, each equal to scikit-learn on that day's rows
    assert [w["matched"] for w in live["windows"]] == [60, 40, 51]
    for window, day in zip(live["windows"], range(3)):
        assert window["start"] == (DAY0.replace(hour=0) + timedelta(days=day)).isoformat()
        _assert_metrics(window["metrics"], [r for r in joined if r["at"] == DAY0 +
                                            timedelta(days=day)])
    # per segment of each categorical input
    contracts = {s["value"]: s for s in live["segments"]["contract"]}
    for value, segment in contracts.items():
        rows = [r for r in joined if r["contract"] == value]
        assert segment["matched"] == len(rows)
        if len({r["actual"] for r in rows}) == 2:
            assert segment["metrics"]["roc_auc"] == pytest.approx(_expected(rows)["roc_auc"])
    assert set(live["segments"]) == {"contract", "payment_method", "internet_service"}
    # a window of prediction time
    since = (DAY0 + timedelta(days=1)).isoformat()
    windowed = client.get("/api/v1/models/churn/outcomes/quality", scope="read",
                          query_string={"since": since, "segments": "false"}).json
    assert windowed["versions"][0]["matched"] == 91 and "segments" not in windowed["versions"][0]

    # healthy so far: no outcome event. Then the model decays: the actuals turn against it
    kinds = [e["kind"] for e in client.get("/api/v1/events", scope="read").json["events"]]
    assert not [k for k in kinds if k.startswith("outcome_quality")]
    decayed = _score_day(client, services, 20, n=120)
    for part in (decayed[:40], decayed[40:80], decayed[80:]):  # three uploads
        resp = client.post("/api/v1/models/churn/outcomes", scope="score", json={"outcomes": [
            {"prediction_id": r["id"], "actual": "no" if r["pred"] == "yes" else "yes",
             "time": (r["at"] + timedelta(days=2)).isoformat()} for r in part]})
        assert resp.status_code == 200
    events = [e for e in client.get("/api/v1/events", scope="read").json["events"]
              if e["kind"].startswith("outcome_quality")]
    assert [e["kind"] for e in events] == ["outcome_quality_degraded"]
    detail = events[0]["detail"]
    assert detail["metric"] == "roc_auc" and detail["holdout"] == holdout["roc_auc"]
    assert detail["drop"] > 0.15 and detail["matched"] == 100
    services.worker.run_once()
    services.worker.run_once()
    hooks = [(h, json.loads(b)) for h, b in receiver[1]]
    outcome_hooks = [(h, p) for h, p in hooks if p["event"].startswith("outcome_quality")]
    assert len(outcome_hooks) == 1
    headers, payload = outcome_hooks[0]
    assert payload["event"] == "outcome_quality_degraded" and payload["model"] == "churn"
    body = next(b for h, b in receiver[1] if json.loads(b)["event"] == payload["event"])
    mac = hmac.new(SECRET.encode(), headers["X-ScoreBridge-Timestamp"].encode() + b"." + body,
                   hashlib.sha256).hexdigest()
    assert headers["X-ScoreBridge-Signature"] == "sha256=" + mac
    assert client.get("/api/v1/models/churn/outcomes/quality", scope="read",
                      query_string={"last": 100}).json["alert"]["degraded"] is True
    # Power BI: the joined rows as an OData set
    feed = client.get("/odata/Outcomes", scope="read", query_string={
        "$filter": "Model eq 'churn' and Version eq 1", "$count": "true", "$top": "5",
        "$orderby": "Id"}).json
    assert feed["@odata.count"] == 151 + 120
    first = feed["value"][0]
    assert first["PredictionId"] == days[0][0]["id"] and first["Actual"] == days[0][0]["truth"]
    assert first["Prediction"] == days[0][0]["pred"] and first["BusinessKey"] == days[0][0]["key"]
    assert 'EntitySet Name="Outcomes"' in client.get("/odata/$metadata", scope="read").get_data(
        as_text=True)
    report = client.get("/models/churn/report", scope="read").get_data(as_text=True)
    assert "live by day against the holdout" in report and 'data-outcome-alert="degraded"' in report
    assert f"{holdout['roc_auc']:.4f}" in report
    if not database_url:  # the pages in a real browser once (their data is the same on both)
        _pages_in_chromium(client)


def _pages_in_chromium(client: Any) -> None:
    """The dashboard and the report, rendered by headless Chromium from this app (requests to
    http://localhost are answered by the Flask test client)."""
    from urllib.parse import urlparse

    from tests.browser import browser_page, screenshot

    def serve(route: Any) -> None:
        url = urlparse(route.request.url)
        resp = client.get(url.path + (f"?{url.query}" if url.query else ""), scope="read")
        route.fulfill(status=resp.status_code, body=resp.data, headers={
            k: v for k, v in resp.headers.items() if k.lower() != "content-length"})

    with browser_page(1280, 900) as (page, errors):
        page.route("http://localhost/**", serve)
        for path, scope in (("/dashboard", "#model-churn "), ("/models/churn/report", "")):
            page.goto(f"http://localhost{path}")
            page.wait_for_selector(f"{scope}.outcome-quality")
            assert page.locator(f"{scope}[data-outcome-alert=degraded]").count() == 1
            chart = page.locator(f"{scope}h3.outcomes ~ .charts svg.chart").first
            assert chart.locator("circle.point").count() == 2 * 4  # live and holdout, 4 days
            assert "roc_auc" in chart.text_content()
            screenshot(page, f"outcomes-{path.strip('/').replace('/', '-')}.png")
        assert errors == [], errors


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # HTTP checks only
def test_outcomes_need_tracking_and_declared_inputs(client, services, demo_registered):
    from tests.conftest import assert_problem

    resp = client.post("/api/v1/models/churn/outcomes", scope="score",
                       json={"outcomes": [{"prediction_id": "x-0", "actual": "yes"}]})
    assert_problem(resp, 422, "does not track outcomes")
    # a model input cannot be the business key
    resp = client.put("/api/v1/models/churn/monitoring", scope="deploy",
                      json={"outcomes": {"enabled": True, "key": "contract"}})
    assert_problem(resp, 422, "is a model input")
    ok = client.put("/api/v1/models/churn/monitoring", scope="deploy",
                    json={"outcomes": {"enabled": True}})
    assert ok.status_code == 200
    assert_problem(client.post("/api/v1/models/churn/outcomes", scope="score",
                               json={"outcomes": [{"prediction_id": "x-0", "actul": "yes"}]}),
                   400, "actul")
    assert_problem(client.post("/api/v1/models/churn/outcomes", scope="score",
                               data=b"prediction_id,value\nx-0,yes\n", content_type="text/csv"),
                   400, "actual")
    assert_problem(client.get("/api/v1/models/churn/outcomes/quality", scope="read",
                              query_string={"window_hours": "0"}), 400, "window_hours")
    assert client.post("/api/v1/models/churn/outcomes", scope="read",
                       json={"outcomes": []}).status_code == 403
    spec = client.get("/openapi.json").json
    post = spec["paths"]["/api/v1/models/{name}/outcomes"]["post"]
    assert {"application/json", "text/csv"} <= set(post["requestBody"]["content"])
    assert "/api/v1/models/{name}/outcomes/quality" in spec["paths"]
    # CSV scoring responses carry the ids too; rows scored without tracking carry none
    csv_body = "\n".join([",".join(FEATURES)] + [",".join(map(str, row)) for row in
                         make_churn_data(3, seed=5)[FEATURES].itertuples(index=False)])
    text = client.post("/api/v1/models/churn/predict", scope="score", data=csv_body,
                       content_type="text/csv", headers={"Accept": "text/csv"}).data.decode()
    assert text.splitlines()[0].endswith(",prediction_id")
    services.set_monitoring("churn", {"outcomes": {"enabled": False}}, actor="t")
    plain = client.post("/api/v1/models/churn/predict", scope="score",
                        json={"rows": jsonable(make_churn_data(1, seed=5)[FEATURES])})
    assert "prediction_ids" not in plain.json


def test_join_rows_are_written_in_bulk_off_the_request_path_and_kept_by_retention(
        client, services, demo_registered):
    from sqlalchemy import func, select

    from server.registry import retention
    from server.registry.schema import OutcomeJoinRow

    services.set_monitoring("churn", {"outcomes": {"enabled": True}}, actor="t")
    old = DAY0 - timedelta(days=500)
    services.scorer.outcome_log.clock = lambda: old
    rows = make_churn_data(30, seed=4)[FEATURES]
    for _ in range(3):
        resp = client.post("/api/v1/models/churn/predict", scope="score",
                           json={"records": json.loads(rows.to_json(orient="records"))})
        assert resp.status_code == 200
    with services.registry.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutcomeJoinRow)) == 0  # queued
    assert services.scorer.outcome_log.pending_rows == 90
    assert services.scorer.outcome_log.flush(services.registry) == 90
    with services.registry.reading() as session:
        stored = session.scalars(select(OutcomeJoinRow)).all()
    assert len(stored) == 90 and all(r.business_key is None for r in stored)
    assert {r.segments["contract"] for r in stored} <= {"month-to-month", "one-year", "two-year"}
    policy = retention.RetentionPolicy(outcome_days=400, batch_rows=50)
    assert retention.sweep(services.registry, policy)["outcome join rows removed"] == 50
    assert retention.sweep(services.registry, policy)["outcome join rows removed"] == 40
