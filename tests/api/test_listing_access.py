"""Per-model access in every listing: a person whose sign-in (a real OpenID provider's token with
the ``sb_models`` claim) grants only "churn" sees churn and nothing of "fraud" in the catalogue,
the audit trail, jobs, pipelines, the dashboard and the OData feed, and cannot reach fraud by a
route that names it outside the path; admins and API keys still see both."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from defusedxml import ElementTree as ET

from server.app import create_app
from server.config import Settings
from tests.api.test_odata import EDM, QUALITY_DAY0, _scored_days
from tests.api.test_sign_in import BearerClient
from tests.conftest import assert_problem, churn_rows, jsonable, register_file
from tests.oidc import OidcProvider

MODELS = ("churn", "fraud")
FIXED_SETS = ("Models", "ModelVersions", "Events", "Traffic", "Drift", "Jobs", "Outcomes",
              "TrafficByUser", "OutcomeQuality", "Columns")
ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider,
          demo_files: dict[str, Path]) -> Iterator[dict[str, Any]]:
    """Two models with everything a listing shows (versions, events, traffic, drift, jobs,
    published rows, outcomes, a pipeline each), an event of no model (a key made), and the
    callers: the limited person, an admin person and an API key."""
    home = tmp_path_factory.mktemp("listing") / "home"
    root = home.parent / "data"
    (root / "in").mkdir(parents=True)
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              native_trees=False, compile=False, job_roots=(str(root),),
                              prediction_log_rows_per_second=0, prediction_log_rate=1.0,
                              **provider.settings(oidc_models_claim="sb_models")))
    app.config["TESTING"] = True
    svc = app.extensions["scorebridge"]
    client = app.test_client()
    admin = BearerClient(client, provider.token("admin"))
    for name in MODELS:
        made = register_file(admin, name, demo_files["artifact"], demo_files["sample"],
                             holdout=demo_files["holdout"],
                             metadata=json.dumps({"target": "churned"}))
        assert made.status_code == 201, made.json
        assert admin.put(f"/api/v1/models/{name}/monitoring",
                         json={"outcomes": {"enabled": True}}).status_code == 200

        def score(day: int, records: list[dict[str, Any]], name: str = name) -> list[Any]:
            svc.scorer.outcome_log.clock = lambda: QUALITY_DAY0 + timedelta(days=day)
            resp = admin.post(f"/api/v1/models/{name}/predict", json={"records": records})
            assert resp.status_code == 200, resp.json
            return [{"prediction_id": pid} for pid in resp.json["prediction_ids"]]

        def record(outcomes: list[dict[str, Any]], name: str = name) -> None:
            resp = admin.post(f"/api/v1/models/{name}/outcomes", json={"outcomes": outcomes})
            assert resp.json["counts"] == {"recorded": len(outcomes)}, resp.json

        _scored_days(score, record, days=1)
        for seed in range(6):  # enough logged rows for a drift measure
            rows = jsonable(churn_rows(300, seed=seed))
            assert admin.post(f"/api/v1/models/{name}/predict",
                              json={"rows": rows}).status_code == 200
        job = admin.post("/api/v1/jobs", content_type="multipart/form-data", data={
            "file": (io.BytesIO(churn_rows(5).to_csv(index=False).encode()), "in.csv"),
            "model": name, "publish": "true"})
        assert job.status_code == 202, job.json
        made = admin.post("/api/v1/pipelines", json={
            "name": f"nightly-{name}", "model": name, "schedule": "0 6 * * *",
            "source": {"kind": "file", "glob": str(root / "in" / "*.csv")},
            "sink": {"kind": "table"}})
        assert made.status_code == 201, made.json
    assert svc.runner.run_pending() == ["succeeded", "succeeded"]
    svc.worker.run_once()
    svc.worker.check_drift()
    svc.worker.flush_traffic()
    assert admin.post("/api/v1/keys", json={"scopes": ["read"], "name": "a key"}).status_code == 201
    key = svc.create_key("read", "listing reader")[0]
    yield {"app": app, "svc": svc, "client": client, "admin": admin,
           "limited": BearerClient(client, provider.token("limited")),
           "key": BearerClient(client, key)}
    svc.registry.engine.dispose()


def _everyone(world: dict[str, Any]) -> list[tuple[str, Any]]:
    """The callers who see every model: a person with the admin scope and an API key."""
    return [("admin", world["admin"]), ("key", world["key"])]


def test_the_limited_person_is_limited_to_churn(world):
    assert world["limited"].get("/api/v1/whoami").json["models"] == ["churn"]


def test_the_catalogue(world):
    """GET /api/v1/models: also what the Excel add-in's task pane and =ML.MODELS() list."""
    got = world["limited"].get("/api/v1/models")
    assert got.status_code == 200 and [m["name"] for m in got.json["models"]] == ["churn"]
    for who, caller in _everyone(world):
        assert [m["name"] for m in caller.get("/api/v1/models").json["models"]] == \
            ["churn", "fraud"], who


def test_the_audit_trail(world):
    mine = world["limited"].get("/api/v1/events?limit=1000").json["events"]
    assert mine and {e["model"] for e in mine} == {"churn"}
    assert {"registered", "key_created"} & {e["kind"] for e in mine} == {"registered"}
    assert world["limited"].get("/api/v1/events?model=fraud").json["events"] == []
    for who, caller in _everyone(world):
        every = caller.get("/api/v1/events?limit=1000").json["events"]
        assert {"churn", "fraud"} <= {e["model"] for e in every}, who
        assert "key_created" in {e["kind"] for e in every}, who
        # the limited person sees exactly churn's events
        assert [e["id"] for e in every if e["model"] == "churn"] == [e["id"] for e in mine]


def test_jobs_of_another_model_are_not_found(world):
    limited, admin = world["limited"], world["admin"]
    jobs = admin.get("/api/v1/jobs").json["jobs"]
    by_model = {j["model"]: j["id"] for j in jobs}
    assert set(by_model) == {"churn", "fraud"}
    assert [j["id"] for j in limited.get("/api/v1/jobs").json["jobs"]] == [by_model["churn"]]
    assert world["key"].get("/api/v1/jobs").status_code == 403  # a read key: no 'score' scope
    theirs = by_model["fraud"]
    for method, path in (("get", ""), ("get", "/result"), ("delete", "")):
        missing = getattr(limited, method)(f"/api/v1/jobs/{'0' * 32}{path}")
        hidden = getattr(limited, method)(f"/api/v1/jobs/{theirs}{path}")
        assert_problem(missing, 404, "no job")
        assert_problem(hidden, 404, "no job", theirs)
        assert hidden.json["detail"].replace(theirs, "0" * 32) == missing.json["detail"]
    assert admin.get(f"/api/v1/jobs/{theirs}").json["status"] == "succeeded"  # not cancelled
    mine = limited.get(f"/api/v1/jobs/{by_model['churn']}/result")
    assert mine.status_code == 200 and mine.data.startswith(b'"tenure_months"')


def test_scoring_another_model_by_a_field_or_header_is_refused(world):
    limited = world["limited"]
    submit = limited.post("/api/v1/jobs", content_type="multipart/form-data", data={
        "file": (io.BytesIO(churn_rows(3).to_csv(index=False).encode()), "in.csv"),
        "model": "fraud"})
    assert_problem(submit, 403, "model 'fraud'")
    split = {"dataframe_split": {"columns": list(churn_rows(1).columns), "data": [ROW]}}
    assert_problem(limited.post("/invocations", json=split, headers={"X-Model": "fraud"}),
                   403, "model 'fraud'")
    assert limited.post("/invocations", json=split, headers={"X-Model": "churn"}).status_code == 200
    script = {"script": "return tabpy.query('fraud', _arg1)['response']", "data": {"_arg1": [1]}}
    assert_problem(limited.post("/evaluate", json=script), 403, "model 'fraud'")
    x = ",".join(map(str, ROW))
    assert_problem(limited.get(f"/excel/v1/predict.txt?model=fraud&x={x}"), 403, "model 'fraud'")
    assert limited.get(f"/excel/v1/predict.txt?model=churn&x={x}").status_code == 200
    batch = limited.post("/excel/v1/batch", json={"calls": [{"model": "fraud", "values": [ROW]},
                                                            {"model": "churn", "values": [ROW]}]})
    assert batch.status_code == 200, batch.json
    refused, scored = batch.json["results"]
    assert refused["status"] == 403 and "model 'fraud'" in refused["error"]
    assert scored["model"] == "churn" and "status" not in scored


def test_pipelines_and_metrics(world):
    limited = world["limited"]
    listed = limited.get("/api/v1/pipelines").json["pipelines"]
    assert [p["model"] for p in listed] == ["churn"]
    assert sorted(p["model"] for p in world["key"].get("/api/v1/pipelines").json["pipelines"]) \
        == ["churn", "fraud"]
    # one pipeline: its name is not a model's, its model decides (another's is not there)
    assert limited.get("/api/v1/pipelines/nightly-churn").json["model"] == "churn"
    assert_problem(limited.get("/api/v1/pipelines/nightly-fraud"), 404, "no pipeline named")
    assert_problem(limited.post("/api/v1/pipelines/nightly-fraud/run"), 403, "'deploy' scope")
    assert world["key"].get("/api/v1/pipelines/nightly-fraud").json["model"] == "fraud"
    # Prometheus metrics are labelled with every model's name: not for a limited person
    assert_problem(limited.get("/metrics"), 403, "some models only")
    assert world["key"].get("/metrics").status_code == 200


def test_the_dashboard(world):
    page = world["limited"].get("/dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "churn" in page.text
    assert "fraud" not in page.text
    for who, caller in _everyone(world):
        whole = caller.get("/dashboard", headers={"Accept": "text/html"}).text
        assert "churn" in whole and "fraud" in whole, who


def _sets(caller: Any) -> list[str]:
    doc = caller.get("/odata/")
    assert doc.status_code == 200, doc.json
    return [s["name"] for s in doc.json["value"]]


def test_the_odata_service_document_and_metadata(world):
    per_model = [f"{kind}_{m}" for m in MODELS for kind in ("Predictions", "Scored", "JobRows")]
    assert _sets(world["limited"]) == list(FIXED_SETS) + per_model[:3]
    for who, caller in _everyone(world):
        assert _sets(caller) == list(FIXED_SETS) + per_model, who
    meta = world["limited"].get("/odata/$metadata")
    root = ET.fromstring(meta.data)
    names = {e.get("Name") for e in root.iter(f"{EDM}EntitySet")} | \
        {t.get("Name") for t in root.iter(f"{EDM}EntityType")}
    assert "Predictions_churn" in names and not {n for n in names if "fraud" in n}
    assert b"fraud" not in meta.data
    for kind in ("Predictions", "Scored", "JobRows"):
        hidden = world["limited"].get(f"/odata/{kind}_fraud")
        assert_problem(hidden, 404, f"no entity set '{kind}_fraud'")
        assert "fraud" not in hidden.json["detail"].split("sets:")[1]
        assert world["limited"].get(f"/odata/{kind}_churn").status_code == 200
        assert world["admin"].get(f"/odata/{kind}_fraud").status_code == 200


def _model_of(name: str, row: dict[str, Any]) -> str:
    return row["Name"] if name == "Models" else row["Model"]


@pytest.mark.parametrize("name", FIXED_SETS)
def test_each_fixed_odata_set_holds_only_the_callers_models(world, name):
    every = world["admin"].get(f"/odata/{name}?$count=true").json
    assert {_model_of(name, r) for r in every["value"]} >= set(MODELS)  # both have rows here
    mine = world["limited"].get(f"/odata/{name}?$count=true").json
    assert mine["value"] and {_model_of(name, r) for r in mine["value"]} == {"churn"}
    assert mine["value"] == [r for r in every["value"] if _model_of(name, r) == "churn"]
    assert mine["@odata.count"] == len(mine["value"]) < every["@odata.count"]
    key = "Name" if name == "Models" else "Model"
    asked = world["limited"].get(f"/odata/{name}?$filter={key} eq 'fraud'&$count=true").json
    assert asked["value"] == [] and asked["@odata.count"] == 0
    assert world["key"].get(f"/odata/{name}?$count=true").json["@odata.count"] == \
        every["@odata.count"]
