"""Scheduled outcome sources (``monitoring.outcomes.sources``), on a SQLite and a PostgreSQL
registry: a real SQLite database as the SQL source and a folder of CSV files as the glob source,
read by the deployment worker's runs; a second run records nothing new, new rows and a new file
are read on the next, a changed file is read again (answered ``unchanged``); a broken source is
an event with its reason while the others still run; declarations are checked field by field
and a SQL URL's password is never shown."""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.app import create_app
from server.demo import FEATURES, TARGET, make_churn_data
from server.telemetry.outcome_source_runs import OutcomeSourceRunner
from server.telemetry.outcome_sources import parse_sources
from tests.conftest import assert_problem, register_file
from tests.live import env_for, setup_cli

DAY0 = datetime(2026, 4, 6, 9, 0, tzinfo=timezone.utc)
N = 60
PASSWORD = "hunter2-not-shown"


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    folder = tmp_path / "outcomes"
    folder.mkdir()
    return folder


@pytest.fixture
def app(settings: Any, roots: Path) -> Any:
    app = create_app(replace(settings, compile=False, job_roots=(str(roots),)))
    app.config["TESTING"] = True
    yield app
    app.extensions["scorebridge"].registry.engine.dispose()


@pytest.fixture
def tracked(client: Any, demo_files: Any) -> None:
    """``churn`` tracking outcomes by ``customer_id``."""
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                         metadata=json.dumps({"outcome_key": "customer_id"}))
    assert resp.status_code == 201, resp.json


@pytest.fixture
def scored(client: Any, services: Any, tracked: None) -> list[dict[str, Any]]:
    """N customers scored on DAY0."""
    data = make_churn_data(N, seed=7)
    frame = data[FEATURES].assign(customer_id=[f"c-{i}" for i in range(N)])
    services.scorer.outcome_log.clock = lambda: DAY0
    resp = client.post("/api/v1/models/churn/predict", scope="score",
                       json={"records": json.loads(frame.to_json(orient="records"))})
    assert resp.status_code == 200, resp.json
    services.scorer.outcome_log.flush(services.registry)
    return [{"key": f"c-{i}", "truth": t, "pid": pid}
            for i, (t, pid) in enumerate(zip(data[TARGET], resp.json["prediction_ids"]))]


def _crm(path: Path, rows: list[tuple[str, str, datetime]]) -> None:
    """The business's own table (a real SQLite database), written as an application would."""
    engine = sa.create_engine(f"sqlite:///{path}")
    meta = sa.MetaData()
    table = sa.Table("crm", meta, sa.Column("customer_id", sa.String),
                     sa.Column("churned", sa.String), sa.Column("closed_at", sa.DateTime))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"customer_id": k, "churned": a,
                                       "closed_at": t.replace(tzinfo=None)} for k, a, t in rows])
    engine.dispose()


def _csv(path: Path, rows: list[dict[str, Any]], key: str = "customer_id") -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([key, "actual", "time"])
        for r in rows:
            writer.writerow([r["key"], r["truth"], (DAY0 + timedelta(days=9)).isoformat()])


def _events(client: Any, kind: str) -> list[dict[str, Any]]:
    events = client.get("/api/v1/events?model=churn&limit=500", scope="read").json["events"]
    return [e for e in events if e["kind"] == kind]


def _run_worker(services: Any) -> None:
    """One tick of the deployment worker, and the outcome-source thread it starts."""
    services.worker._last_sources = 0.0  # due to look again, whatever the monotonic clock says
    services.worker.run_once()
    thread = services.worker.sources_thread
    assert thread is not None
    thread.join(60)
    assert not thread.is_alive()


def test_sources_are_read_once_new_data_next_time_and_a_broken_one_stops_nothing(
        client, services, scored, roots, tmp_path, database_url):
    crm = tmp_path / "crm.db"
    closed = DAY0 + timedelta(days=8)
    _crm(crm, [(r["key"], r["truth"], closed + timedelta(minutes=i))
               for i, r in enumerate(scored[:20])])
    _csv(roots / "week-1.csv", scored[20:40])
    query = ("SELECT customer_id AS key, churned AS actual, closed_at AS time FROM crm "
             "WHERE closed_at > :since")
    resp = client.put("/api/v1/models/churn/monitoring", scope="admin", json={"outcomes": {
        "sources": [
            {"name": "crm", "kind": "sql", "url": f"sqlite:///{crm}", "query": query,
             "every_minutes": 60},
            {"name": "broken", "kind": "sql", "url": f"sqlite:///{crm}",
             "query": "SELECT key, actual FROM no_such_table"},
            {"kind": "files", "glob": str(roots / "*.csv"), "every_minutes": 15}]}})
    assert resp.status_code == 200, resp.json
    files_name = resp.json["outcomes"]["sources"][2]["name"]
    assert files_name.startswith("files-")

    _run_worker(services)
    runs = {e["detail"]["source"]: e["detail"] for e in _events(client, "outcome_source_run")}
    assert runs["crm"]["counts"] == {"recorded": 20}
    assert runs[files_name]["counts"] == {"recorded": 20}
    assert runs[files_name]["files"] == [str(roots / "week-1.csv")]
    assert runs["crm"]["high_water"].startswith((closed + timedelta(minutes=19)).date().isoformat())
    failed = _events(client, "outcome_source_failed")
    assert len(failed) == 1 and failed[0]["detail"]["source"] == "broken"
    assert "no such table" in failed[0]["detail"]["reason"]
    quality = client.get("/api/v1/models/churn/outcomes/quality", scope="read").json
    assert quality["versions"][0]["matched"] == 40

    # nothing is due yet; due again an hour later, nothing new: nothing recorded, no new events
    assert services.worker.outcome_sources.run_due() == []
    later = datetime.now(timezone.utc) + timedelta(hours=1, minutes=1)
    services.worker.outcome_sources.clock = lambda: later
    again = {r.source: r for r in services.worker.outcome_sources.run_due()}
    assert {s: (r.status, r.rows) for s, r in again.items()} == {
        "crm": ("ok", 0), files_name: ("ok", 0), "broken": ("failed", 0)}
    assert len(_events(client, "outcome_source_run")) == 2
    assert len(_events(client, "outcome_source_failed")) == 1  # the same reason: said once

    # new CRM rows and a new file are read on the next run; a changed file is read again
    _crm(crm, [(r["key"], r["truth"], closed + timedelta(hours=5)) for r in scored[40:50]])
    _csv(roots / "week-2.csv", scored[50:60])
    with open(roots / "week-1.csv", "a") as fh:
        fh.write("c-0,not-a-class,\n")
    resp = client.post("/api/v1/models/churn/outcomes/sources/run", scope="deploy")
    assert resp.status_code == 200, resp.json
    runs = {r["source"]: r for r in resp.json["runs"]}
    assert runs["crm"]["counts"] == {"recorded": 10}
    assert runs[files_name]["counts"] == {"recorded": 10, "unchanged": 20, "invalid": 1}
    assert runs[files_name]["problems"][0]["file"] == "week-1.csv"
    assert sorted(runs[files_name]["files"]) == [str(roots / "week-1.csv"),
                                                 str(roots / "week-2.csv")]
    assert runs["broken"]["status"] == "failed"
    quality = client.get("/api/v1/models/churn/outcomes/quality", scope="read").json
    assert quality["versions"][0]["matched"] == 60

    # the listing, over HTTP and from the command line (local registry, in this process)
    listed = {s["name"]: s for s in resp.json["sources"]}
    assert listed["crm"]["state"] == "ok" and listed["crm"]["since"]
    assert listed["broken"]["state"] == "failed" and "no such table" in listed["broken"]["error"]
    assert listed[files_name]["files_read"] == 2 and listed[files_name]["rows"] == 31
    env = env_for(services.settings.home, SCOREBRIDGE_COMPILE="off",
                  SCOREBRIDGE_JOB_ROOTS=str(roots),
                  **({"SCOREBRIDGE_DATABASE_URL": database_url} if database_url else {}))
    out = json.loads(setup_cli("outcome-sources", "churn", "--json", env=env).stdout)
    assert [s["name"] for s in out["sources"]] == ["crm", "broken", files_name]
    out = setup_cli("outcome-sources", "churn", "--run", "--source", "crm", env=env).stdout
    assert "crm: ok: 0 rows (nothing new)" in out and "outcome sources of churn" in out


def test_declared_sources_are_checked_field_by_field(client, tracked, roots, tmp_path):
    def put(source: Any, scope: str = "admin") -> Any:
        return client.put("/api/v1/models/churn/monitoring", scope=scope,
                          json={"outcomes": {"sources": [source]}})

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert_problem(put({"kind": "ftp", "glob": "/x"}), 400, "outcomes.sources.0", "'sql'")
    assert_problem(put({"kind": "sql", "url": url}), 400, "outcomes.sources.0.sql.query",
                   "required")
    assert_problem(put({"kind": "sql", "url": url, "query": "DELETE FROM crm"}), 400,
                   "outcomes.sources.0.sql.query", "must be a select")
    assert_problem(put({"kind": "sql", "url": url, "query": "SELECT 1; DROP TABLE crm"}), 400,
                   "outcomes.sources.0.sql.query", "one statement")
    assert_problem(put({"kind": "sql", "url": "mysql://u:p@h/db", "query": "SELECT 1"}), 400,
                   "outcomes.sources.0.sql.url", "sqlite or postgresql")
    assert_problem(put({"kind": "files", "glob": str(roots / "*.csv"), "every_minutes": 0}),
                   400, "outcomes.sources.0.files.every_minutes", "at least 1")
    assert_problem(put({"kind": "files", "glob": "*.csv"}), 400, "outcomes.sources.0.files.glob",
                   "absolute")
    assert_problem(put({"kind": "files", "glob": "/etc/*.conf"}), 422,
                   "outcomes.sources[0].glob", "allowed root")
    assert_problem(put({"kind": "sql", "url": url, "query": "SELECT 1"}, scope="deploy"), 403,
                   "outcomes.sources[0]", "admin")
    resp = client.put("/api/v1/models/churn/monitoring", scope="admin", json={"outcomes": {
        "sources": [{"kind": "files", "glob": str(roots / "*.csv"), "name": "a"},
                    {"kind": "files", "glob": str(roots / "*.txt"), "name": "a"}]}})
    assert_problem(resp, 422, "outcomes.sources[1].name", "two sources")


def test_a_password_is_stored_never_shown(client, services, tracked):
    url = f"postgresql://crm:{PASSWORD}@127.0.0.1:5432/no_such_database"
    source = {"name": "crm", "kind": "sql", "url": url,
              "query": "SELECT key, actual, time FROM crm WHERE time > :since"}
    resp = client.put("/api/v1/models/churn/monitoring", scope="admin",
                      json={"outcomes": {"sources": [source]}})
    assert resp.status_code == 200, resp.json
    shown = resp.json["outcomes"]["sources"][0]["url"]
    assert shown == "postgresql://crm:***@127.0.0.1:5432/no_such_database"
    stored = services.registry.get_model("churn").monitoring["outcomes"]["sources"][0]
    assert stored["url"] == url

    # sent back as shown, by a deploy key (the SQL source is unchanged): the password stays
    resp = client.put("/api/v1/models/churn/monitoring", scope="deploy", json={"outcomes": {
        "sources": [{**source, "url": shown, "every_minutes": 30}]}})
    assert resp.status_code == 200, resp.json
    stored = services.registry.get_model("churn").monitoring["outcomes"]["sources"][0]
    assert stored["url"] == url and stored["every_minutes"] == 30

    run = client.post("/api/v1/models/churn/outcomes/sources/run", scope="deploy")
    assert run.status_code == 200 and run.json["runs"][0]["status"] == "failed"
    answers = [resp, run,
               client.get("/api/v1/models/churn/outcomes/sources", scope="read"),
               client.get("/api/v1/models/churn/monitoring", scope="read"),
               client.get("/api/v1/events?model=churn&limit=500", scope="read")]
    for answer in answers:
        assert answer.status_code == 200
        assert PASSWORD not in answer.get_data(as_text=True)
    events = answers[-1].json["events"]
    assert {"monitoring_changed", "outcome_source_failed"} <= {e["kind"] for e in events}

    # a settings change keeps what the runs wrote (and the answer does not show it)
    resp = client.put("/api/v1/models/churn/monitoring", scope="deploy",
                      json={"sample_rate": 0.5})
    assert resp.status_code == 200 and "state" not in resp.json
    listed = client.get("/api/v1/models/churn/outcomes/sources", scope="read").json
    assert listed["sources"][0]["state"] == "failed"


def test_one_worker_of_all_runs_a_source_and_a_dead_ones_claim_is_taken_over(
        client, services, tracked, roots):
    resp = client.put("/api/v1/models/churn/monitoring", scope="deploy", json={"outcomes": {
        "sources": [{"name": "drops", "kind": "files", "glob": str(roots / "*.csv")}]}})
    assert resp.status_code == 200, resp.json
    now = datetime.now(timezone.utc)
    host_a = OutcomeSourceRunner(services.registry, "host-a:1", (str(roots),), 300,
                                 clock=lambda: now)
    host_b = OutcomeSourceRunner(services.registry, "host-b:1", (str(roots),), 300,
                                 clock=lambda: now)
    source = services.registry.get_model("churn").monitoring["outcomes"]["sources"][0]
    # host A has claimed the run and is reading (its claim, as a run in progress leaves it)
    assert isinstance(host_a._claim("churn", parse_sources([source])[0], {"drops"}, True), dict)

    skipped = host_b.run_model("churn", force=True)
    assert [(r.status, r.reason.split(" since")[0]) for r in skipped] == [
        ("skipped", "running on host-a:1")]
    assert host_b.run_due() == []
    listed = client.get("/api/v1/models/churn/outcomes/sources", scope="read").json
    assert listed["sources"][0]["state"] == "running"

    # host A died: once its heartbeat is older than the claim timeout, B takes the run over
    host_b.clock = lambda: now + timedelta(seconds=301)
    taken = host_b.run_model("churn", force=True)
    assert [(r.status, r.source) for r in taken] == [("ok", "drops")]
    state = services.registry.get_model("churn").monitoring["state"]["outcome_sources"]
    assert "running" not in state["drops"] and state["drops"]["status"] == "ok"


def test_a_postgresql_source_reads_only_new_rows_and_cannot_write(client, services, scored,
                                                                  database_url):
    if not database_url:
        pytest.skip("a PostgreSQL source: the run on the PostgreSQL registry covers it")
    engine = sa.create_engine(database_url)  # the business table, in the test's own schema
    closed = DAY0 + timedelta(days=8)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE crm (customer_id text, churned text, "
                                 "closed_at timestamptz)"))
            conn.execute(sa.text("CREATE SEQUENCE crm_seq"))  # nextval() writes
            conn.execute(sa.text("INSERT INTO crm VALUES (:k, :a, :t)"),
                         [{"k": r["key"], "a": r["truth"], "t": closed} for r in scored[:20]])
        url = database_url.replace("postgresql+psycopg://", "postgresql://")
        resp = client.put("/api/v1/models/churn/monitoring", scope="admin", json={"outcomes": {
            "sources": [
                {"name": "crm", "kind": "sql", "url": url,
                 "query": "SELECT customer_id AS key, churned AS actual, closed_at AS time "
                          "FROM crm WHERE closed_at > :since"},
                {"name": "sneaky", "kind": "sql", "url": url,
                 "query": "SELECT nextval('crm_seq')::text AS key, 'yes' AS actual"}]}})
        assert resp.status_code == 200, resp.json
        runs = {r["source"]: r for r in client.post(
            "/api/v1/models/churn/outcomes/sources/run", scope="deploy").json["runs"]}
        assert runs["crm"]["counts"] == {"recorded": 20}
        assert runs["crm"]["high_water"] == closed.isoformat()
        assert runs["sneaky"]["status"] == "failed" and "read-only" in runs["sneaky"]["reason"]
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT last_value FROM crm_seq")).scalar() == 1
            assert conn.execute(sa.text("SELECT is_called FROM crm_seq")).scalar() is False

        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO crm VALUES (:k, :a, :t)"),
                         [{"k": r["key"], "a": r["truth"], "t": closed + timedelta(hours=1)}
                          for r in scored[20:25]])
        runs = {r["source"]: r for r in client.post(
            "/api/v1/models/churn/outcomes/sources/run?source=crm", scope="deploy").json["runs"]}
        assert list(runs) == ["crm"] and runs["crm"]["counts"] == {"recorded": 5}
    finally:
        engine.dispose()
