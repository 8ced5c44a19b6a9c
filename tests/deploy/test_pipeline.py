"""The deployment pipeline in-process: gates, policies, canary, shadow, rollback, triggers."""
from __future__ import annotations

import json
import time

import joblib
import pandas as pd
import pytest
import skops.io as sio

from server.registry.deployments import Deployments
from tests.conftest import assert_problem, churn_rows, jsonable, register_file
from tests.estimators import FailsOnHighCharges, WrongShape


@pytest.fixture
def churn_v1(client, demo_files):
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                         holdout=demo_files["holdout"], metadata=json.dumps({"target": "churned"}))
    assert resp.status_code == 201, resp.json
    assert resp.json["gate_status"] == "passed" and resp.json["aliases"] == ["production"]
    return resp.json


def set_policy(client, **body):
    resp = client.put("/api/v1/models/churn/policy", json=body, scope="deploy")
    assert resp.status_code == 200, resp.json
    return resp.json


def register_v(client, demo_files, artifact=None, scope="deploy", **meta):
    resp = register_file(client, "churn", artifact or demo_files["artifact"], demo_files["sample"],
                         holdout=demo_files["holdout"], scope=scope,
                         metadata=json.dumps({"target": "churned", **meta}))
    assert resp.status_code == 201, resp.json
    assert resp.json["pipeline"] == "pending"
    return resp.json["version"]


def version(client, v):
    return client.get(f"/api/v1/models/churn/versions/{v}", scope="read").json


def production(client):
    return client.get("/api/v1/models/churn", scope="read").json["production_version"]


def score(client, rows, **options):
    body = {"rows": rows}
    if options:
        body["options"] = options
    return client.post("/api/v1/models/churn/predict", json=body, scope="score")


def trusted_pickle(tmp_path, demo_model, cls=FailsOnHighCharges, name="flaky.pkl", **kw):
    X = churn_rows(10)
    est = cls(inner=demo_model, **kw).fit(X, demo_model.predict(X))
    path = tmp_path / name
    joblib.dump(est, path)
    return path


def kinds(client):
    return [e["kind"] for e in client.get("/api/v1/events?model=churn", scope="read").json["events"]]


def test_auto_promotes_a_version_that_passes(client, services, churn_v1, demo_files):
    v2 = register_v(client, demo_files)
    assert production(client) == 1  # nothing serves v2 before its gates ran
    services.worker.run_once()
    info = version(client, v2)
    assert info["pipeline"] == "done" and info["gate_status"] == "passed"
    assert [g["gate"] for g in info["gates"]] == ["schema", "smoke", "metric", "latency"]
    metric = next(g for g in info["gates"] if g["gate"] == "metric")
    assert metric["data"]["metric"] == "roc_auc"
    assert production(client) == v2
    assert score(client, jsonable(churn_rows(2))).headers["X-Model-Version"] == str(v2)
    state = client.get("/api/v1/models/churn/deployment", scope="read").json
    assert [r["kind"] for r in state["open_rollouts"]] == ["watch"]
    assert kinds(client)[:3] == ["watch_started", "promoted", "gates_passed"]


def test_manual_waits_for_a_person(client, services, churn_v1, demo_files):
    assert set_policy(client, policy="manual")["policy"] == "manual"
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    assert version(client, v2)["gate_status"] == "passed"
    assert production(client) == 1
    assert "awaiting_promotion" in kinds(client)


def test_each_version_is_processed_once_and_in_order(client, services, churn_v1, demo_files):
    set_policy(client, policy="manual")
    versions = [register_v(client, demo_files) for _ in range(3)]
    done = services.worker.releases.process_pending()
    assert [v.version for v in done] == versions
    assert services.worker.releases.process_pending() == []
    gates = [e for e in client.get("/api/v1/events?model=churn", scope="read").json["events"]
             if e["kind"] == "gates_passed"]
    assert sorted(e["version"] for e in gates) == [1] + versions


def test_schema_gate_fails_for_different_inputs(client, services, churn_v1, wine):
    resp = register_file(client, "churn", wine["path"], wine["sample"])
    v2 = resp.json["version"]
    services.worker.run_once()
    info = version(client, v2)
    assert info["gate_status"] == "failed"
    schema = next(g for g in info["gates"] if g["gate"] == "schema")
    assert not schema["passed"] and "missing tenure_months" in schema["detail"]
    assert production(client) == 1
    failed = next(e for e in client.get("/api/v1/events?model=churn", scope="read").json["events"]
                  if e["kind"] == "gates_failed")
    assert "schema" in failed["detail"]["reason"]


def test_metric_gate_fails_for_a_worse_model(client, services, churn_v1, demo_files, tmp_path):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from server.demo import FEATURES, TARGET, build_pipeline, make_churn_data

    data = make_churn_data(500, seed=5)
    worse = Pipeline(build_pipeline().steps[:1] + [("model", DummyClassifier())])
    worse.fit(data[FEATURES], data[TARGET])
    sio.dump(worse, tmp_path / "worse.skops")
    v2 = register_v(client, demo_files, tmp_path / "worse.skops")
    services.worker.run_once()
    metric = next(g for g in version(client, v2)["gates"] if g["gate"] == "metric")
    assert not metric["passed"]
    assert "roc_auc 0.5000" in metric["detail"] and "worse by" in metric["detail"]
    assert production(client) == 1


def test_smoke_gate_fails_on_production_sample(client, services, churn_v1, demo_files,
                                               tmp_path, demo_model):
    path = trusted_pickle(tmp_path, demo_model, limit=50.0)  # raises on production's sample
    own_sample = tmp_path / "low.csv"
    churn_rows(30).assign(monthly_charges=30.0).to_csv(own_sample, index=False)
    resp = register_file(client, "churn", path, own_sample, scope="admin",
                         metadata=json.dumps({"trust_pickle": True}))
    v2 = resp.json["version"]
    services.worker.run_once()
    smoke = next(g for g in version(client, v2)["gates"] if g["gate"] == "smoke")
    assert not smoke["passed"] and "production v1's sample" in smoke["detail"]
    assert production(client) == 1


def test_wrong_shapes_never_serve(client, services, churn_v1, tmp_path, demo_model):
    path = trusted_pickle(tmp_path, demo_model, cls=WrongShape)
    resp = register_file(client, "churn", path, demo_files_sample(tmp_path), scope="admin",
                         metadata=json.dumps({"trust_pickle": True}))
    assert_problem(resp, 422, "smoke test failed")
    assert [v["version"] for v in client.get("/api/v1/models/churn/versions",
                                             scope="read").json["versions"]] == [1]


def demo_files_sample(tmp_path):
    path = tmp_path / "sample.csv"
    churn_rows(30).to_csv(path, index=False)
    return path


def test_latency_gate(client, services, churn_v1, demo_files):
    set_policy(client, gates={"max_latency_ms": 0.001})
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    latency = next(g for g in version(client, v2)["gates"] if g["gate"] == "latency")
    assert not latency["passed"] and "exceeds the limit" in latency["detail"]
    assert production(client) == 1


def test_canary_promotion(client, services, churn_v1, demo_files):
    # this test is about the promotion, not speed: v1 and v2 are one artifact, and one stall in
    # ~40 requests (a full garbage collection: 100-200 ms on a loaded machine) makes either mean
    # latency several times the other's; the latency rule has its own test, on recorded latencies
    set_policy(client, policy="canary",
               canary={"share": 0.5, "min_requests": 10, "max_latency_ratio": 1000})
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    state = client.get("/api/v1/models/churn/deployment", scope="read").json
    assert state["open_rollouts"][0]["kind"] == "canary"
    assert production(client) == 1
    rows = jsonable(churn_rows(3))
    served = [score(client, rows).headers["X-Model-Version"] for _ in range(80)]
    assert {"1", "2"} <= set(served)
    services.worker.run_once()
    assert production(client) == v2
    finished = next(r for r in client.get("/api/v1/models/churn/deployment",
                                          scope="read").json["recent_rollouts"]
                    if r["kind"] == "canary")
    assert finished["outcome"] == "promoted"
    assert "within limits" in finished["detail"]["reason"]


@pytest.mark.parametrize("canary_ms, outcome", [(4.5, "promoted"), (5.5, "rolled_back")])
def test_canary_latency_is_compared_with_production(client, services, churn_v1, demo_files,
                                                    canary_ms, outcome):
    """The latency rule on latencies recorded as given (timed requests would measure the
    machine): production's mean is 2 ms, so the limit at a ratio of 1.5 (plus 2 ms) is 5 ms."""
    set_policy(client, policy="canary",
               canary={"share": 0.5, "min_requests": 10, "max_latency_ratio": 1.5})
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    assert services.worker.releases.deployments.open_rollouts()[0].kind == "canary"
    for _ in range(20):
        services.scorer.traffic.record("churn", 1, 0.002, 1, error=False)
        services.scorer.traffic.record("churn", v2, canary_ms / 1000, 1, error=False)
    services.worker.run_once()
    finished = next(r for r in client.get("/api/v1/models/churn/deployment",
                                          scope="read").json["recent_rollouts"]
                    if r["kind"] == "canary")
    assert finished["outcome"] == outcome
    assert finished["detail"]["canary"]["mean_latency_ms"] == pytest.approx(canary_ms)
    assert production(client) == (v2 if outcome == "promoted" else 1)
    if outcome == "rolled_back":
        assert finished["detail"]["reason"] == ("canary outside limits: mean latency "
                                                f"{canary_ms:.1f} ms vs production 2.0 ms")


def test_canary_rollback_on_errors(client, services, churn_v1, tmp_path, demo_model):
    # the misbehaving wrapper is scikit-learn only, production v1 is compiled: let the latency
    # gate allow the difference, as this test is about the canary
    set_policy(client, policy="canary", canary={"share": 0.5, "min_requests": 10},
               gates={"latency_factor": 1000})
    path = trusted_pickle(tmp_path, demo_model)
    resp = register_file(client, "churn", path, demo_files_sample(tmp_path), scope="admin",
                         metadata=json.dumps({"trust_pickle": True}))
    v2 = resp.json["version"]
    services.worker.run_once()
    high = jsonable(churn_rows(2).assign(monthly_charges=5000.0))
    answers = [score(client, high, errors="row") for _ in range(80)]
    assert all(a.status_code == 200 for a in answers)
    by_version = {a.headers["X-Model-Version"] for a in answers}
    assert by_version == {"1", "2"}
    services.worker.run_once()
    assert production(client) == 1
    assert version(client, v2)["rolled_back"] is True
    finished = client.get("/api/v1/models/churn/deployment", scope="read").json["recent_rollouts"][0]
    assert finished["outcome"] == "rolled_back" and "error rate" in finished["detail"]["reason"]
    # the canary no longer serves anything
    assert {score(client, high, errors="row").headers["X-Model-Version"]
            for _ in range(20)} == {"1"}


def test_shadow_agreement_and_promotion(client, services, churn_v1, demo_files):
    set_policy(client, policy="shadow", shadow={"min_requests": 20, "promote_at_agreement": 0.99})
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    rows = jsonable(churn_rows(5))
    for _ in range(3):
        resp = score(client, rows)
        assert resp.headers["X-Model-Version"] == "1"  # answers come from production only
    services.scorer.shadow.drain()
    services.worker.flush_traffic()
    state = client.get("/api/v1/models/churn/deployment", scope="read").json
    shadow = state["open_rollouts"][0]
    assert shadow["kind"] == "shadow" and shadow["version"] == v2
    assert shadow["traffic"]["shadow_compared"] == 15
    assert shadow["traffic"]["agreement"] == 1.0
    for _ in range(2):
        score(client, rows)
    services.scorer.shadow.drain()
    services.worker.run_once()
    assert production(client) == v2


def test_automatic_rollback_after_promotion(client, services, churn_v1, tmp_path, demo_model):
    set_policy(client, rollback={"min_requests": 5, "max_error_rate": 0.2},
               gates={"latency_factor": 1000})
    path = trusted_pickle(tmp_path, demo_model)
    resp = register_file(client, "churn", path, demo_files_sample(tmp_path), scope="admin",
                         metadata=json.dumps({"trust_pickle": True}))
    v2 = resp.json["version"]
    services.worker.run_once()
    assert production(client) == v2
    high = jsonable(churn_rows(2).assign(monthly_charges=5000.0))
    for _ in range(10):
        assert score(client, high, errors="row").status_code == 200
    services.worker.run_once()
    assert production(client) == 1
    events = client.get("/api/v1/events?model=churn", scope="read").json["events"]
    rolled = next(e for e in events if e["kind"] == "rolled_back")
    assert "error rate" in rolled["detail"]["reason"]


def test_manual_promotion_ends_a_canary(client, services, churn_v1, demo_files):
    set_policy(client, policy="canary", canary={"share": 0.5, "min_requests": 1000})
    v2 = register_v(client, demo_files)
    services.worker.run_once()
    client.post("/api/v1/models/churn/aliases/production", json={"version": v2}, scope="deploy")
    state = client.get("/api/v1/models/churn/deployment", scope="read").json
    assert state["open_rollouts"] == [] and state["production"] == v2
    assert "canary" not in state["aliases"]


def test_version_registered_while_no_server_runs(settings, demo_files, tmp_path):
    """Registered with no worker alive; a server started later processes it, once."""
    from server.app import build_registry, create_app
    from server.deploy.registration import RegistrationRequest, register

    registry = build_registry(settings)
    for _ in range(2):
        register(registry, settings, RegistrationRequest(
            name="churn", artifact=demo_files["artifact"], filename="churn.skops",
            actor="offline", sample=pd.read_csv(demo_files["sample"])))
    assert registry.get_version("churn", 2).pipeline == "pending"
    app = create_app(settings)  # "the server starts"
    app.extensions["scorebridge"].worker.run_once()
    assert registry.get_version("churn").version == 2
    assert registry.get_version("churn", 2).pipeline == "done"
    assert Deployments(registry).claim_next("again") is None


def test_stale_claims_are_taken_up_again(client, services, churn_v1, demo_files):
    from datetime import timedelta

    from sqlalchemy import update

    from server.registry.schema import VersionRow, utcnow

    v2 = register_v(client, demo_files)
    claimed = Deployments(services.registry).claim_next("a worker that dies")
    assert claimed.version == v2
    assert services.worker.releases.process_pending() == []  # claimed: nobody else takes it
    with services.registry.writing() as session:
        session.execute(update(VersionRow).values(claimed_at=utcnow() - timedelta(minutes=10))
                        .where(VersionRow.pipeline == "processing"))
    assert [v.version for v in services.worker.releases.process_pending()] == [v2]


def test_a_stale_claims_late_result_is_not_rolled_out_twice(client, services, churn_v1,
                                                           demo_files):
    """A worker whose claim went stale (and was taken up by another that rolled the version
    out) finishes late: its result is dropped, so the version is promoted once."""
    from datetime import timedelta

    from sqlalchemy import update

    from server.registry.deployments import RolloutPlan
    from server.registry.schema import VersionRow, utcnow

    v2 = register_v(client, demo_files)
    deployments = Deployments(services.registry)
    assert deployments.claim_next("a slow worker").version == v2
    with services.registry.writing() as session:
        session.execute(update(VersionRow).values(claimed_at=utcnow() - timedelta(minutes=10))
                        .where(VersionRow.pipeline == "processing"))
    assert [v.version for v in services.worker.releases.process_pending()] == [v2]
    late = deployments.finish("churn", v2, [], True, "pipeline",
                              RolloutPlan("promote", reason="late"), worker="a slow worker")
    assert late is False
    events = services.registry.events("churn")
    assert [e.version for e in events if e.kind == "promoted"].count(v2) == 1
    assert [e.version for e in events if e.kind == "gates_passed"].count(v2) == 1
    assert services.registry.get_version("churn").version == v2


def test_policy_validation(client, churn_v1):
    assert_problem(client.put("/api/v1/models/churn/policy", json={"policy": "yolo"},
                              scope="deploy"), 400, "'policy' must be 'manual', 'auto', 'canary' or 'shadow'")
    assert_problem(client.put("/api/v1/models/churn/policy", json={"canary": {"share": 2}},
                              scope="deploy"), 422, "canary.share")
    assert_problem(client.put("/api/v1/models/churn/policy", json={"canary": {"speed": 1}},
                              scope="deploy"), 400, "'canary.speed' is an unknown field")
    assert_problem(client.put("/api/v1/models/churn/policy", json={"canary": {"share": "x"}},
                              scope="deploy"), 400, "'canary.share' must be a valid number")
    assert_problem(client.put("/api/v1/models/churn/policy", json=[1], scope="deploy"), 400)
    assert_problem(client.put("/api/v1/models/nope/policy", json={"policy": "auto"},
                              scope="deploy"), 404)
    assert client.put("/api/v1/models/churn/policy", json={"policy": "auto"},
                      scope="read").status_code == 403


def test_drop_folder(settings, demo_files, tmp_path, monkeypatch):
    from dataclasses import replace

    from server.app import create_app
    from server.deploy import dropfolder

    monkeypatch.setattr(dropfolder, "SETTLE_SECONDS", 0.0)
    watch = tmp_path / "drop"
    watch.mkdir()
    app = create_app(replace(settings, watch_dir=watch))
    svc = app.extensions["scorebridge"]
    (watch / "churn.skops").write_bytes(demo_files["artifact"].read_bytes())
    (watch / "churn.sample.csv").write_bytes(demo_files["sample"].read_bytes())
    (watch / "churn.json").write_text(json.dumps({"description": "dropped", "tags": {"k": "v"}}))
    (watch / "bad.skops").write_bytes(b"not a model")
    svc.worker.run_once()  # first sight: sizes noted
    svc.worker.run_once()  # settled: registered
    model = svc.registry.get_model("churn")
    assert model.production.version == 1 and model.description == "dropped"
    assert model.versions[0].tags["k"] == "v"
    assert not list(watch.glob("*.skops"))
    done = list((watch / "done").iterdir())
    assert len(done) == 1 and (done[0] / "churn.sample.csv").exists()
    failed = list((watch / "failed").iterdir())
    assert len(failed) == 1
    assert "not a readable skops file" in (failed[0] / "bad.error.txt").read_text()
    assert any(e.kind == "drop_failed" for e in svc.registry.events())
    (watch / "churn.skops").write_bytes(demo_files["artifact"].read_bytes())
    svc.worker.run_once()
    svc.worker.run_once()
    svc.worker.run_once()  # the pipeline processes v2 on the tick after it was dropped
    assert svc.registry.get_version("churn").version == 2


def test_webhooks_are_signed_and_retried(settings, demo_files, tmp_path):
    import hashlib
    import hmac
    import threading
    from dataclasses import replace
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from server.app import create_app

    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    down_url = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    try:
        app = create_app(replace(settings, webhook_secret="s3cret", webhook_urls=(
            f"http://127.0.0.1:{server.server_port}/hook", down_url)))
        svc = app.extensions["scorebridge"]
        from server.deploy.registration import RegistrationRequest, register

        register(svc.registry, settings, RegistrationRequest(
            name="churn", artifact=demo_files["artifact"], filename="churn.skops", actor="t",
            sample=pd.read_csv(demo_files["sample"])))
        start = time.monotonic()
        svc.worker.run_once()
        assert time.monotonic() - start < 10
        kinds = [json.loads(body)["event"] for _, body in received]
        assert {"model_created", "registered", "gates_passed", "promoted"} <= set(kinds)
        for headers, body in received:
            expected = hmac.new(b"s3cret", headers["X-ScoreBridge-Timestamp"].encode() + b"." + body,
                                hashlib.sha256).hexdigest()
            assert headers["X-ScoreBridge-Signature"] == "sha256=" + expected
        # the receiver that is down: attempts recorded, retry scheduled, nothing marked delivered
        from sqlalchemy import select

        from server.registry.schema import WebhookDeliveryRow

        with svc.registry.reading() as session:
            down = session.scalars(select(WebhookDeliveryRow)
                                   .where(WebhookDeliveryRow.url == down_url)).all()
        assert down and all(d.attempts == 1 and d.delivered_at is None and not d.failed
                            for d in down)
        assert all(d.last_error for d in down)
    finally:
        server.shutdown()
        server.server_close()


def test_orphaned_artifacts_are_collected_by_the_worker(services, churn_v1):
    orphan = services.registry.store.put_bytes(b"left by a crash between store and database")
    assert services.registry.store.path(orphan).exists()
    assert services.worker.collect_garbage(min_age_seconds=3600) == []  # too young: kept
    assert services.worker.collect_garbage(min_age_seconds=0) == [orphan]
    assert services.registry.store.path(services.registry.get_version("churn").artifact).exists()


def test_drop_folder_takes_onnx_graphs_and_mlflow_zips_but_no_pickle(settings, tmp_path,
                                                                      monkeypatch):
    from dataclasses import replace

    from server.app import create_app
    from server.deploy import dropfolder
    from server.scoring.mlflow_model import zip_folder
    from tests.model_formats import graphs, save_mlflow_sklearn, sources

    monkeypatch.setattr(dropfolder, "SETTLE_SECONDS", 0.0)
    watch = tmp_path / "drop"
    watch.mkdir()
    svc = create_app(replace(settings, watch_dir=watch)).extensions["scorebridge"]
    X = sources()["X"]
    (watch / "graph.onnx").write_bytes(graphs()["classifier"])
    X.head(50).to_csv(watch / "graph.sample.csv", index=False)
    (watch / "flow.zip").write_bytes(
        zip_folder(save_mlflow_sklearn(sources()["mlflow"], tmp_path / "flow", X)))
    (watch / "pickled.pkl").write_bytes(b"never read")
    svc.worker.run_once()  # first sight: sizes noted
    svc.worker.run_once()  # settled: registered
    assert svc.registry.get_version("graph").format == "onnx"
    assert svc.registry.get_version("flow").format == "mlflow"
    assert sorted(p.name for p in watch.iterdir() if p.is_file()) == ["pickled.pkl"]
    assert len(list((watch / "done").iterdir())) == 2
