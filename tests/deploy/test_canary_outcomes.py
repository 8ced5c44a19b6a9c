"""A canary judged on recorded outcomes (policy ``canary.outcomes``): real scoring through the
API, real outcome uploads, the worker deciding; time moves on the simulated clock only."""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import assert_problem, churn_rows, jsonable, register_file

OTHER = {"yes": "no", "no": "yes"}


@pytest.fixture
def canary(client: Any, services: Any, demo_files: Any) -> Any:
    """Production v1 with outcome tracking on; ``open(**canary)`` sets the canary policy,
    registers v2 (the same artifact) and opens its canary."""
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                         holdout=demo_files["holdout"], metadata=json.dumps({"target": "churned"}))
    assert resp.status_code == 201, resp.json
    assert client.put("/api/v1/models/churn/monitoring", json={"outcomes": {"enabled": True}},
                      scope="deploy").status_code == 200

    def open_canary(**config: Any) -> int:
        # latency is not what these tests are about: v1 and v2 are one artifact, and a stall
        # on a loaded machine would decide, at the latency gate or in the canary (the latency
        # rules have their own tests)
        policy = {"policy": "canary", "gates": {"latency_factor": 1000},
                  "canary": {"share": 0.5, "max_latency_ratio": 1000, **config}}
        resp = client.put("/api/v1/models/churn/policy", json=policy, scope="deploy")
        assert resp.status_code == 200, resp.json
        resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                             holdout=demo_files["holdout"], scope="deploy",
                             metadata=json.dumps({"target": "churned"}))
        assert resp.status_code == 201, resp.json
        services.worker.run_once()
        gated = client.get(f"/api/v1/models/churn/versions/{resp.json['version']}",
                           scope="read").json
        assert gated["gate_status"] == "passed", gated["gates"]
        assert [r.kind for r in services.worker.releases.deployments.open_rollouts()] == ["canary"]
        return resp.json["version"]

    return open_canary


def _score(client: Any, requests: int = 60) -> dict[int, list[tuple[str, str]]]:
    """(prediction id, predicted label) of every scored row, by the version that answered."""
    out: dict[int, list[tuple[str, str]]] = {1: [], 2: []}
    for i in range(requests):
        resp = client.post("/api/v1/models/churn/predict", scope="score",
                           json={"rows": jsonable(churn_rows(4, seed=i))})
        assert resp.status_code == 200, resp.json
        out[int(resp.headers["X-Model-Version"])] += list(zip(resp.json["prediction_ids"],
                                                              resp.json["predictions"]))
    assert out[1] and out[2], "both versions answered"
    return out


def _upload(client: Any, rows: list[tuple[str, str]], *, right: bool) -> None:
    """Outcomes for ``rows``: the predicted label itself (right) or the other one (wrong)."""
    outcomes = [{"prediction_id": pid, "actual": label if right else OTHER[label]}
                for pid, label in rows]
    resp = client.post("/api/v1/models/churn/outcomes", json={"outcomes": outcomes},
                       scope="score")
    assert resp.status_code == 200, resp.json
    assert resp.json["counts"] == {"recorded": len(rows)}


def _finished(client: Any) -> dict[str, Any]:
    state = client.get("/api/v1/models/churn/deployment", scope="read").json
    assert [r["kind"] for r in state["open_rollouts"]] in ([], ["watch"])
    return next(r for r in state["recent_rollouts"] if r["kind"] == "canary")


def _event(client: Any) -> dict[str, Any]:
    events = client.get("/api/v1/events?model=churn", scope="read").json["events"]
    return next(e for e in events if e["kind"] == "canary_finished")


def _production(client: Any) -> int:
    return client.get("/api/v1/models/churn", scope="read").json["production_version"]


def test_good_outcomes_promote(client, services, canary):
    v2 = canary(min_requests=10, outcomes={"metric": "roc_auc", "max_drop": 0.02,
                                           "min_outcomes": 20})
    scored = _score(client)
    _upload(client, scored[1], right=True)
    _upload(client, scored[v2], right=True)
    services.worker.run_once()
    finished = _finished(client)
    assert finished["outcome"] == "promoted" and _production(client) == v2
    outcomes = finished["detail"]["outcomes"]
    assert outcomes["status"] == "passed" and outcomes["metric"] == "roc_auc"
    assert outcomes["canary"] == {"version": v2, "matched": len(scored[v2]), "value": 1.0}
    assert outcomes["production"] == {"version": 1, "matched": len(scored[1]), "value": 1.0,
                                      "source": "live"}
    assert finished["detail"]["reason"].startswith("canary within limits over ")
    assert (f"canary v{v2}'s live roc_auc 1.0000 over {len(scored[v2])} outcomes vs production "
            "v1's live 1.0000") in finished["detail"]["reason"]
    assert _event(client)["detail"]["outcomes"] == outcomes


def test_bad_outcomes_roll_back_before_the_requests_are_in(client, services, canary):
    """Production has no outcomes of its own: the canary is held to its holdout metric."""
    v2 = canary(min_requests=100_000, max_seconds=10**6,
                outcomes={"max_drop": 0.02, "min_outcomes": 20})
    scored = _score(client)
    services.worker.run_once()  # no outcomes yet: nothing decides
    (running,) = client.get("/api/v1/models/churn/deployment", scope="read").json["open_rollouts"]
    assert running["kind"] == "canary" and running["outcomes"] == {
        "metric": "roc_auc", "max_drop": 0.02, "min_outcomes": 20, "status": "too_few",
        "canary": {"version": v2, "matched": 0}}
    _upload(client, scored[v2], right=False)
    services.worker.run_once()
    finished = _finished(client)
    assert finished["outcome"] == "rolled_back" and _production(client) == 1
    holdout = client.get("/api/v1/models/churn/versions/1", scope="read").json["metrics"]
    outcomes = finished["detail"]["outcomes"]
    assert outcomes["metric"] == "roc_auc"  # the binary classifier's default
    assert outcomes["canary"] == {"version": v2, "matched": len(scored[v2]), "value": 0.0}
    assert outcomes["production"] == {"version": 1, "matched": 0,
                                      "value": pytest.approx(holdout["roc_auc"]),
                                      "source": "holdout"}
    assert finished["detail"]["reason"] == (
        f"canary outside limits: canary v{v2}'s live roc_auc 0.0000 over {len(scored[v2])} "
        f"outcomes vs production v1's holdout {holdout['roc_auc']:.4f}: worse by "
        f"{holdout['roc_auc']:.4f}, more than 0.02")
    assert _event(client)["version"] == v2
    assert client.get(f"/api/v1/models/churn/versions/{v2}", scope="read").json["rolled_back"]


def test_too_few_outcomes_leave_it_to_error_rate_and_latency(client, services, canary):
    """Wrong outcomes, but fewer than asked for: when the canary's time is up (the simulated
    clock) it is decided, and promoted, by error rate and latency, and says so."""
    v2 = canary(min_requests=100_000, max_seconds=600,
                outcomes={"max_drop": 0.02, "min_outcomes": 1000})
    scored = _score(client, requests=20)
    _upload(client, scored[v2], right=False)
    services.worker.flush_traffic()
    releases = services.worker.releases
    started = releases.deployments.open_rollouts()[0].started_at
    assert releases.evaluate_rollouts(started + timedelta(seconds=599)) == []
    assert [outcome for _, outcome in
            releases.evaluate_rollouts(started + timedelta(seconds=601))] == ["promoted"]
    finished = _finished(client)
    assert _production(client) == v2
    assert finished["detail"]["outcomes"] == {
        "metric": "roc_auc", "max_drop": 0.02, "min_outcomes": 1000, "status": "too_few",
        "canary": {"version": v2, "matched": len(scored[v2])}}
    assert finished["detail"]["reason"] == (
        f"canary within limits over {finished['detail']['canary']['requests']} requests (error "
        f"rate 0.000); outcomes too few ({len(scored[v2])} of 1000 matched): decided by error "
        "rate and latency")


def test_canary_outcome_policy_is_validated(client, canary):
    def put(outcomes: Any) -> Any:
        return client.put("/api/v1/models/churn/policy", json={"canary": {"outcomes": outcomes}},
                          scope="deploy")

    assert_problem(put({"metric": "auc"}), 422, "'canary.outcomes.metric' must be one of")
    assert_problem(put({"metric": "r2"}), 422, "'r2' is not a classification metric")
    assert_problem(put({"min_outcomes": 0}), 422, "canary.outcomes.min_outcomes")
    assert_problem(put({"max_drop": -1}), 422, "canary.outcomes.max_drop")
    assert_problem(put({"max_drop": "x"}), 400, "canary.outcomes.max_drop")
    assert_problem(put({"wait": 1}), 400, "'canary.outcomes.wait' is an unknown field")
    assert_problem(put(3), 400, "canary.outcomes")
    # an object switches it on (fields not given keep their defaults, then their values)
    assert put({"max_drop": 0.05}).json["canary"]["outcomes"] == {
        "metric": None, "max_drop": 0.05, "min_outcomes": 200}
    assert put({"metric": "accuracy"}).json["canary"]["outcomes"] == {
        "metric": "accuracy", "max_drop": 0.05, "min_outcomes": 200}
    assert put(None).json["canary"]["outcomes"] is None
