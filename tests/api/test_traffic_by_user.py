"""Scoring traffic by user: requests, errors and rows per model, hour and caller (a key or a
signed-in person), through the API, the CLI and the OData feed, on SQLite and PostgreSQL; counts
only, never what was scored."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from server.app import create_app
from server.cli import main
from server.jobs.service import caller_of
from server.registry import retention
from server.registry.deployments import Deployments, UserTraffic
from server.registry.schema import TrafficUserRow
from tests.conftest import KeyClient, assert_problem, register_file

ROWS = [[12, 70.5, "month-to-month", "electronic-check", 3, "fiber"],
        [40, 20.0, "two-year", "bank-transfer", 0, "dsl"]]


@pytest.fixture
def churn(client: KeyClient, demo_files: dict[str, Any]) -> KeyClient:
    assert register_file(client, "churn", demo_files["artifact"],
                         demo_files["sample"]).status_code == 201
    return client


def _key_id(services: Any, key: str) -> str:
    info = services.keys.verify(key)
    assert info is not None
    return f"key:{info.key_id}"


def test_scoring_is_counted_per_key_without_payloads(churn, services, keys):
    for _ in range(3):
        assert churn.post("/api/v1/models/churn/predict", json={"rows": ROWS},
                          scope="score").status_code == 200
    assert churn.post("/api/v1/models/churn/predict", json={"rows": ROWS[:1]},
                      scope="admin").status_code == 200
    # reading is not scoring: not counted
    assert churn.get("/api/v1/models/churn", scope="read").status_code == 200
    resp = churn.get("/api/v1/models/churn/traffic/users", scope="read")
    assert resp.status_code == 200, resp.json
    users = resp.json["users"]
    assert [(u["user"], u["name"], u["requests"], u["rows"], u["errors"]) for u in users] == [
        (_key_id(services, keys["score"]), "test score", 3, 6, 0),
        (_key_id(services, keys["admin"]), "test admin", 1, 1, 0)]
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    assert users[0]["first_hour"] == users[0]["last_hour"]
    assert abs(datetime.fromisoformat(users[0]["last_hour"]) - hour) <= timedelta(hours=1)
    # what is stored: the caller and counts, nothing of the rows scored
    with services.registry.reading() as session:
        stored = [tuple(r) for r in session.execute(sa.select(TrafficUserRow.__table__))]
    assert {c.name for c in TrafficUserRow.__table__.columns} == {
        "id", "model_name", "hour", "caller", "caller_name", "requests", "errors", "rows"}
    flat = repr(stored)
    assert "month-to-month" not in flat and "70.5" not in flat and len(stored) == 2


def test_the_window_and_unknown_models(churn):
    assert churn.post("/api/v1/models/churn/predict", json={"rows": ROWS},
                      scope="score").status_code == 200
    later = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    resp = churn.get("/api/v1/models/churn/traffic/users", query_string={"since": later},
                     scope="read")
    assert resp.status_code == 200 and resp.json["users"] == []
    assert resp.json["since"].startswith(later[:16])
    assert_problem(churn.get("/api/v1/models/nope/traffic/users", scope="read"), 404)
    assert_problem(churn.get("/api/v1/models/churn/traffic/users",
                             query_string={"since": "yesterday"}, scope="read"), 400, "since")
    assert churn.get("/api/v1/models/churn/traffic/users", scope=None).status_code == 401


def test_flushes_from_many_workers_add_up(services):
    deployments = Deployments(services.registry)
    hour = datetime(2026, 3, 4, 5, tzinfo=timezone.utc)
    key = ("churn", hour, "user:ada")
    deployments.add_user_traffic({key: UserTraffic("Ada", requests=2, rows=10)})
    deployments.add_user_traffic({key: UserTraffic("Ada Lovelace", requests=1, errors=1,
                                                   rows=5)})
    [ada] = deployments.traffic_by_user("churn", since=hour - timedelta(minutes=30))
    assert (ada["user"], ada["name"], ada["requests"], ada["errors"], ada["rows"]) == (
        "user:ada", "Ada Lovelace", 3, 1, 15)
    assert deployments.traffic_by_user("churn", since=hour + timedelta(hours=1)) == []


def test_retention_keeps_user_traffic_as_long_as_hourly_traffic(services):
    deployments = Deployments(services.registry)
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    old, recent = now - timedelta(days=401), now - timedelta(days=399)
    deployments.add_user_traffic({("churn", old, "key:a"): UserTraffic(requests=1),
                                  ("churn", recent, "key:a"): UserTraffic(requests=2),
                                  ("churn", recent, "key:b"): UserTraffic(requests=3)})
    done = retention.sweep(services.registry, retention.RetentionPolicy(traffic_days=400),
                           now=now)
    assert done["traffic by user removed"] == 1
    left = deployments.traffic_by_user("churn")
    assert [(u["user"], u["requests"]) for u in left] == [("key:b", 3), ("key:a", 2)]
    assert retention.sweep(services.registry, retention.RetentionPolicy(traffic_days=0),
                           now=now + timedelta(days=900))["traffic by user removed"] == 0


def test_odata_lists_traffic_by_user_per_hour(churn, services, keys):
    assert churn.post("/api/v1/models/churn/predict", json={"rows": ROWS},
                      scope="score").status_code == 200
    services.worker.flush_traffic()
    feed = churn.get("/odata/TrafficByUser?$filter=Model eq 'churn'", scope="read")
    assert feed.status_code == 200, feed.json
    [row] = feed.json["value"]
    assert row["User"] == _key_id(services, keys["score"]) and row["Name"] == "test score"
    assert (row["Requests"], row["Rows"], row["Errors"]) == (1, 2, 0)
    assert row["Hour"].endswith(":00:00Z")


def test_cli_shows_traffic_by_user(churn, services, keys, settings):
    assert churn.post("/api/v1/models/churn/predict", json={"rows": ROWS},
                      scope="score").status_code == 200
    services.worker.flush_traffic()
    env = {"SCOREBRIDGE_HOME": str(settings.home), "SCOREBRIDGE_NATIVE_TREES": "off",
           "SCOREBRIDGE_BACKGROUND": "off", "SCOREBRIDGE_DATABASE_URL": settings.database_url}
    out = CliRunner().invoke(main, ["traffic", "churn", "--by", "user"], env=env,
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert _key_id(services, keys["score"]) in out.output and "test score" in out.output
    none = CliRunner().invoke(main, ["traffic", "churn", "--since", "2999-01-01"], env=env,
                              catch_exceptions=False)
    assert none.exit_code == 0 and "no scoring traffic" in none.output


def test_a_jobs_rows_count_for_whoever_submitted_it():
    assert caller_of("user:ada (Ada Lovelace)") == ("user:ada", "Ada Lovelace")
    assert caller_of("key:04d6") == ("key:04d6", "")
    assert caller_of("cli") == ("", "")


def test_a_signed_in_person_is_counted_by_subject(tmp_path, provider, demo_files, database_url):
    from server.config import Settings

    app = create_app(Settings(home=tmp_path / "home", database_url=database_url,
                              background=False, rate_limiting=False, native_trees=False,
                              **provider.settings()))
    svc = app.extensions["scorebridge"]
    try:
        admin = svc.keys.create("admin", "setup")[0]
        client = KeyClient(app.test_client(), {"deploy": admin, "admin": admin})
        assert register_file(client, "churn", demo_files["artifact"],
                             demo_files["sample"]).status_code == 201
        token = {"Authorization": f"Bearer {provider.token('analyst')}"}
        assert app.test_client().post("/api/v1/models/churn/predict", json={"rows": ROWS},
                                      headers=token).status_code == 200
        users = app.test_client().get("/api/v1/models/churn/traffic/users",
                                      headers=token).json["users"]
        assert [(u["user"], u["name"], u["rows"]) for u in users] == [
            ("user:analyst", "Ada Analyst", 2)]
    finally:
        svc.registry.engine.dispose()
