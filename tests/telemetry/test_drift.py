"""Drift and data quality: synthetic shifted data crosses the thresholds, unshifted data does not;
the monitoring API and the drift events."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from server.demo import FEATURES, make_churn_data
from server.scoring.signature import infer_signature
from server.telemetry.drift import monitor, psi
from server.telemetry.reference import reference_statistics
from tests.conftest import jsonable


@pytest.fixture(scope="module")
def reference(demo_model):
    sample = make_churn_data(3000, seed=21)[FEATURES]
    sig = infer_signature(demo_model, sample)
    return sig, reference_statistics(sig, sample, demo_model.predict(sample))


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    """Logged inputs as the prediction log gives them back: one list per column, NaN as None."""
    return {k: [None if isinstance(v, float) and np.isnan(v) else v for v in values]
            for k, values in frame.to_dict("list").items()}


def test_same_distribution_does_not_drift(reference, demo_model):
    sig, ref = reference
    live = make_churn_data(1500, seed=99)[FEATURES]
    report = monitor(sig, ref, _columns(live), demo_model.predict(live).tolist())
    assert report["status"] == "ok", {k: (f["psi"], f["status"]) for k, f in
                                      report["features"].items()}
    assert not report["dataset_drift"] and report["drifting_features"] == []
    for feature in report["features"].values():
        assert feature["psi"] < 0.1
    assert report["features"]["monthly_charges"]["wasserstein"] < 0.1
    assert report["features"]["contract"]["jensen_shannon"] < 0.1


def test_shifted_data_drifts(reference, demo_model):
    sig, ref = reference
    live = make_churn_data(1500, seed=99)[FEATURES].copy()
    live["tenure_months"] = live["tenure_months"] + 60  # far beyond the training range
    live["contract"] = "month-to-month"
    live["monthly_charges"] = live["monthly_charges"] * 1.8
    live.loc[:200, "internet_service"] = "satellite"  # a category the model never saw
    live.loc[:300, "support_calls"] = np.nan
    report = monitor(sig, ref, _columns(live), demo_model.predict(live).tolist())
    features = report["features"]
    assert report["status"] == "drift" and report["dataset_drift"]
    assert {"tenure_months", "contract", "monthly_charges"} <= set(report["drifting_features"])
    assert features["tenure_months"]["psi"] >= 0.25
    assert features["tenure_months"]["out_of_range_rate"] > 0.5
    assert features["contract"]["jensen_shannon"] >= 0.1
    assert features["internet_service"]["unknown_rate"] == pytest.approx(201 / 1500)
    assert features["support_calls"]["null_rate"] == pytest.approx(301 / 1500)
    assert report["prediction"]["psi"] > 0  # churn predictions shift with month-to-month


def test_psi_basics():
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    assert psi(np.array([0.9, 0.1]), np.array([0.1, 0.9])) > 1.0


def test_too_few_rows_is_insufficient_data(reference):
    sig, ref = reference
    assert monitor(sig, ref, {}, [])["status"] == "insufficient data"


def test_monitoring_api_and_events(client, services, demo_registered):
    # a fixed sample: 350 rows drawn from 1,800 of the training distribution can, by chance,
    # show a PSI above "watch"; the test is about the API and the events, not that chance
    services.scorer.prediction_log.rng = np.random.default_rng(11)
    assert client.put("/api/v1/models/churn/monitoring", json={"sample_rate": 1.0},
                      scope="deploy").json == {"sample_rate": 1.0}
    normal = make_churn_data(300, seed=5)[FEATURES]
    client.post("/api/v1/models/churn/predict", json={"rows": jsonable(normal)}, scope="score")
    services.worker.run_once()
    report = client.get("/api/v1/models/churn/monitoring", scope="read").json
    assert report["rows"] == 50 and report["version"] == 1  # 50 sampled rows per request
    for seed in range(6):
        fresh = make_churn_data(300, seed=100 + seed)[FEATURES]
        client.post("/api/v1/models/churn/predict", json={"rows": jsonable(fresh)},
                    scope="score")
    services.worker.run_once()
    report = client.get("/api/v1/models/churn/monitoring?hours=1", scope="read").json
    assert report["rows"] == 350 and report["status"] in ("ok", "watch")
    assert services.worker.check_drift() in ([], [("churn", "watch")])
    for seed in range(30):
        batch = make_churn_data(300, seed=200 + seed)[FEATURES]
        batch = batch.assign(tenure_months=batch["tenure_months"] + 60,
                             contract="month-to-month",
                             monthly_charges=batch["monthly_charges"] * 2)
        client.post("/api/v1/models/churn/predict", json={"rows": jsonable(batch)},
                    scope="score")
    services.worker.run_once()
    report = client.get("/api/v1/models/churn/monitoring", scope="read").json
    assert report["status"] == "drift" and "tenure_months" in report["drifting_features"]
    assert services.worker.check_drift() == [("churn", "drift")]
    assert services.worker.check_drift() == []  # only changes make events
    feed = client.get("/odata/Drift?$filter=Model eq 'churn' and Feature eq 'tenure_months'"
                      "&$orderby=Id desc&$top=1", scope="read").json["value"]
    assert feed[0]["Status"] == "drift" and feed[0]["PSI"] >= 0.25 and feed[0]["Rows"] >= 30
    kinds = [e["kind"] for e in client.get("/api/v1/events?model=churn", scope="read").json["events"]]
    assert "drift_detected" in kinds
    assert client.put("/api/v1/models/churn/monitoring", json={"log": False},
                      scope="deploy").status_code == 200
    before = client.get("/api/v1/models/churn/monitoring", scope="read").json["rows"]
    client.post("/api/v1/models/churn/predict", json={"rows": jsonable(normal)}, scope="score")
    services.worker.run_once()
    assert client.get("/api/v1/models/churn/monitoring", scope="read").json["rows"] == before
    assert_bad = client.put("/api/v1/models/churn/monitoring", json={"sample_rate": 2},
                            scope="deploy")
    assert assert_bad.status_code == 400


def test_logging_never_fails_scoring_and_keeps_no_keys(client, services, keys, demo_registered,
                                                       monkeypatch):
    from sqlalchemy import select

    from server.registry.schema import PredictionRow

    services.registry.set_monitoring("churn", {"sample_rate": 1.0}, actor="t")
    services.scorer.deployments.invalidate()
    rows = jsonable(make_churn_data(20, seed=3)[FEATURES])

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(services.registry, "writing", locked)
    resp = client.post("/api/v1/models/churn/predict", json={"rows": rows}, scope="score")
    assert resp.status_code == 200  # scoring never waits for telemetry
    services.worker.run_once()  # the flushes fail and are kept for later
    monkeypatch.undo()
    services.worker.run_once()
    with services.registry.reading() as session:
        logged = session.scalars(select(PredictionRow)).all()
    assert len(logged) == 20
    text = " ".join(str(r.inputs) + str(r.prediction) + r.request_id for r in logged)
    assert not any(k in text for k in keys.values()) and "sb_" not in text
    report = client.get("/api/v1/models/churn/monitoring", scope="read").json
    assert report["rows"] == 20


def test_each_worker_logs_at_most_its_budget_of_rows_per_second(services, demo_registered,
                                                                 monkeypatch):
    """Heavy traffic does not turn the sample into a copy of the traffic: the budget (a bucket
    of one second's worth, refilled continuously) caps the rows logged, whatever the share."""
    from server.scoring import prediction_log
    from server.scoring.prediction_log import PredictionLog
    from server.types import RawTable

    clock = [1000.0]
    monkeypatch.setattr(prediction_log.time, "monotonic", lambda: clock[0])
    log = PredictionLog(rows_per_second=30)
    result = services.scorer.score("churn", RawTable.from_records(
        make_churn_data(40, seed=6)[FEATURES].to_dict("records")))
    pending = log._pending
    log.offer(1.0, "churn", 1, result, 0.001, "http", "r1")  # 40 rows wanted, 30 in the bucket
    log.offer(1.0, "churn", 1, result, 0.001, "http", "r2")  # the bucket is empty
    assert len(pending) == 30 and {e["request_id"] for e in pending} == {"r1"}
    clock[0] += 0.5  # half a second refills half the budget
    log.offer(1.0, "churn", 1, result, 0.001, "http", "r3")
    assert len(pending) == 45
    clock[0] += 60  # a quiet minute: one second's worth at most
    for rid in ("r4", "r5"):
        log.offer(1.0, "churn", 1, result, 0.001, "http", rid)
    assert len(pending) == 75
    unlimited = PredictionLog()
    unlimited.offer(1.0, "churn", 1, result, 0.001, "http", "r6")
    assert len(unlimited._pending) == 40


def test_workers_sharing_a_registry_check_drift_once_per_round(client, services, settings,
                                                               demo_registered):
    """Each worker's drift timer fires; the lease lets only one of them take the round, so the
    snapshot rows (and the work) are not multiplied by the number of workers."""
    from sqlalchemy import func, select

    from server.deploy.worker import DeploymentWorker
    from server.registry.schema import DriftRow, LeaseRow

    client.put("/api/v1/models/churn/monitoring", json={"sample_rate": 1.0}, scope="deploy")
    for seed in range(3):
        rows = make_churn_data(300, seed=300 + seed)[FEATURES]
        client.post("/api/v1/models/churn/predict", json={"rows": jsonable(rows)}, scope="score")
    services.worker.run_once()
    other = DeploymentWorker(services.registry, services.scorer, settings)

    def snapshots() -> int:
        with services.registry.reading() as session:
            return session.scalar(select(func.count()).select_from(DriftRow))

    for worker in (services.worker, other):
        worker._last_drift = float("-inf")  # both timers due now
        worker.run_once()
    per_round = len(FEATURES) + 1  # one row per input, one for the prediction
    assert snapshots() == per_round
    with services.registry.writing() as session:  # the lease runs out: the next round is taken
        session.get(LeaseRow, "drift").expires_at = datetime.now(timezone.utc)
    other._last_drift = float("-inf")
    other.run_once()
    assert snapshots() == 2 * per_round
