"""Scheduled scoring pipelines (driven by a test clock) and the Dask backend (a LocalCluster gives
results identical to the in-process path)."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import create_engine

from server.app import create_app
from server.jobs.schedules import Schedules
from tests.conftest import KeyClient, assert_problem, churn_rows, jobs_in_process_and_on_dask, register_file


@pytest.fixture
def rooted(settings, demo_files, tmp_path):
    root = tmp_path / "data"
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    app = create_app(replace(settings, job_roots=(str(root),)))
    svc = app.extensions["scorebridge"]
    keys = {s: svc.keys.create(s)[0] for s in ("score", "read", "deploy", "admin")}
    client = KeyClient(app.test_client(), keys)
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    return app, svc, client, root


def test_file_pipeline_on_a_schedule_publishes_to_odata(rooted, demo_model):
    app, svc, client, root = rooted
    old, new = churn_rows(6, seed=1), churn_rows(9, seed=2)
    old.to_csv(root / "in" / "customers-1.csv", index=False)
    new.to_csv(root / "in" / "customers-2.csv", index=False)
    import os
    import time

    os.utime(root / "in" / "customers-1.csv", (time.time() - 100, time.time() - 100))
    resp = client.post("/api/v1/pipelines", scope="deploy", json={
        "name": "nightly", "model": "churn", "schedule": "0 6 * * *",
        "source": {"kind": "file", "glob": str(root / "in" / "customers-*.csv")},
        "sink": {"kind": "table"}})
    assert resp.status_code == 201, resp.json
    pipelines = Schedules(svc.registry, svc.jobs)
    info = pipelines.get("nightly")
    assert info.next_run_at.hour == 6 and info.next_run_at.minute == 0
    # the test clock: nothing is due before six, one run at six, the next one a day later
    assert pipelines.run_due(info.next_run_at - timedelta(minutes=1)) == []
    started = pipelines.run_due(info.next_run_at + timedelta(seconds=1))
    assert len(started) == 1
    assert pipelines.run_due(info.next_run_at + timedelta(minutes=5)) == []
    assert pipelines.get("nightly").next_run_at == info.next_run_at + timedelta(days=1)
    svc.runner.run_pending()
    feed = client.get("/odata/Scored_churn?$orderby=Row", scope="read").json["value"]
    assert [r["prediction"] for r in feed] == demo_model.predict(new).tolist()  # newest file
    listed = client.get("/api/v1/pipelines", scope="read").json["pipelines"]
    assert listed[0]["last_job_id"] == started[0] and listed[0]["last_error"] is None


def test_sql_source_and_file_sink(rooted, demo_model, tmp_path):
    app, svc, client, root = rooted
    db = tmp_path / "crm.db"
    frame = churn_rows(7, seed=4)
    frame.to_sql("customers", create_engine(f"sqlite:///{db}"), index=False)
    body = {"name": "crm", "model": "churn", "schedule": "*/5 * * * *",
            "source": {"kind": "sql", "url": f"sqlite:///{db}",
                       "query": "SELECT * FROM customers"},
            "sink": {"kind": "file", "path": str(root / "out" / "scored.csv"), "format": "csv"}}
    assert_problem(client.post("/api/v1/pipelines", json=body, scope="deploy"), 403, "admin")
    assert client.post("/api/v1/pipelines", json=body, scope="admin").status_code == 201
    shown = client.get("/api/v1/pipelines/crm", scope="read").json
    assert shown["source"]["url"] == f"sqlite:///{db}"
    resp = client.post("/api/v1/pipelines/crm/run", scope="deploy")
    assert resp.status_code == 202 and resp.json["last_job_id"]
    svc.runner.run_pending()
    scored = pd.read_csv(root / "out" / "scored.csv")
    assert scored["prediction"].tolist() == demo_model.predict(frame).tolist()


@pytest.mark.parametrize("body, status, fragment", [
    ({"schedule": "every day"}, 422, "cron"),
    ({"source": {"kind": "file", "glob": "/etc/*.csv"}}, 422, "allowed root"),
    ({"sink": {"kind": "file", "path": "/tmp/x.csv"}}, 422, "allowed root"),
    ({"sink": {"kind": "email"}}, 422, "sink"),
    ({"source": {"kind": "sql", "url": "sqlite://", "query": "DROP TABLE x"}}, 422, "SELECT"),
    ({"name": "Bad Name"}, 422, "invalid"),
    ({"extra": 1}, 400, "unknown field"),
])
def test_pipeline_validation(rooted, body, status, fragment):
    app, svc, client, root = rooted
    base = {"name": "p", "model": "churn", "schedule": "0 6 * * *",
            "source": {"kind": "file", "glob": str(root / "in" / "*.csv")},
            "sink": {"kind": "table"}}
    assert_problem(client.post("/api/v1/pipelines", json={**base, **body}, scope="admin"),
                   status, fragment)


def test_a_failed_run_is_recorded_and_the_pipeline_goes_on(rooted):
    app, svc, client, root = rooted
    client.post("/api/v1/pipelines", scope="deploy", json={
        "name": "empty", "model": "churn", "schedule": "0 * * * *",
        "source": {"kind": "file", "glob": str(root / "in" / "nothing-*.csv")},
        "sink": {"kind": "table"}})
    client.post("/api/v1/pipelines/empty/run", scope="deploy")
    shown = client.get("/api/v1/pipelines/empty", scope="read").json
    assert "no file matches" in shown["last_error"] and shown["enabled"] is True
    assert client.delete("/api/v1/pipelines/empty", scope="deploy").status_code == 204
    assert_problem(client.get("/api/v1/pipelines/empty", scope="read"), 404)


def test_dask_gives_the_same_result_as_in_process(client, services, demo_files):
    pytest.importorskip("distributed")
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    frame = pd.concat([churn_rows(3000, seed=s) for s in range(4)]).astype(object)
    frame.iloc[5, 1] = "lots"  # a bad row goes to the error column in both paths
    local, dasked, ids = jobs_in_process_and_on_dask(client, services, frame)
    pd.testing.assert_frame_equal(local, dasked)
    assert len(dasked) == 12000 and dasked.loc[5, "error"].startswith("monthly_charges")
    status = client.get(f"/api/v1/jobs/{ids[1]}", scope="score").json
    assert status["rows_done"] == 12000 and status["rows_failed"] == 1


def test_a_malformed_line_is_one_row_error_on_dask_as_in_process(client, services, demo_files):
    pytest.importorskip("distributed")
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    lines = churn_rows(12000).to_csv(index=False).splitlines()
    lines[8] += ",an extra field"  # record 7, in the first chunk
    lines[10500] = lines[10500].split(",", 1)[1]  # a field short, in the second chunk
    local, dasked, ids = jobs_in_process_and_on_dask(client, services,
                                                     ("\n".join(lines) + "\n").encode())
    pd.testing.assert_frame_equal(local, dasked)
    assert len(dasked) == 12000
    assert dasked.loc[7, "error"] == ("line 9: expected 6 fields, got 7; the line was not "
                                      "scored")
    assert dasked.loc[10499, "error"].startswith("line 10501: expected 6 fields, got 5")
    assert (dasked["error"] != "").sum() == 2 and dasked.loc[8, "prediction"] != ""
    status = client.get(f"/api/v1/jobs/{ids[1]}", scope="score").json
    assert status["status"] == "succeeded" and status["rows_failed"] == 2


def test_pipelines_from_the_cli(tmp_path, demo_files, monkeypatch):
    from click.testing import CliRunner

    from server.cli import main

    root = tmp_path / "data"
    root.mkdir()
    churn_rows(5).to_csv(root / "in.csv", index=False)
    for name in [k for k in __import__("os").environ if k.startswith("SCOREBRIDGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SCOREBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SCOREBRIDGE_NATIVE_TREES", "off")
    monkeypatch.setenv("SCOREBRIDGE_JOB_ROOTS", str(root))
    runner = CliRunner()

    def cli(*args):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    cli("register", str(demo_files["artifact"]), "--name", "churn")
    assert "next run" in cli("pipelines", "create", "daily", "--model", "churn", "--schedule",
                             "0 6 * * *", "--source-glob", str(root / "*.csv"))
    assert "daily" in cli("pipelines", "list")
    assert "queued" in cli("pipelines", "run", "daily")
    assert "deleted" in cli("pipelines", "delete", "daily")
    bad = runner.invoke(main, ["pipelines", "create", "x", "--model", "churn", "--schedule",
                               "soon", "--source-glob", str(root / "*.csv")])
    assert bad.exit_code == 1 and "cron" in bad.output
