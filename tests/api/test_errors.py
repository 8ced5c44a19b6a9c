"""Errors from Flask itself and from unexpected failures are problem documents too."""
from __future__ import annotations

from dataclasses import replace

from server.app import create_app
from tests.conftest import assert_problem


def test_404_405_are_problems(client):
    assert_problem(client.get("/no/such/route"), 404, "/no/such/route")
    resp = client.get("/api/v1/models/churn/predict", scope="score")
    assert_problem(resp, 405, "not allowed")
    assert "POST" in resp.headers["Allow"]


def test_body_over_the_limit_is_413_before_reading(settings):
    app = create_app(replace(settings, max_request_bytes=1024))
    key = app.extensions["scorebridge"].keys.create("score")[0]
    resp = app.test_client().post("/api/v1/models/churn/predict", data=b"x" * 4096,
                                  content_type="application/json",
                                  headers={"X-API-Key": key})
    assert_problem(resp, 413, "1024 bytes")


def test_request_ids(client):
    resp = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = client.get("/healthz", headers={"X-Request-Id": "<script>" * 20})
    assert resp.headers["X-Request-Id"] != "<script>" * 20
    assert len(resp.headers["X-Request-Id"]) == 32
    assert client.get("/nope").headers["X-Request-Id"]


def test_unexpected_errors_hide_details(app, client, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(app.extensions["scorebridge"].registry, "list_models", explode)
    resp = client.get("/api/v1/models", scope="read")
    body = assert_problem(resp, 500)
    assert "secret" not in resp.get_data(as_text=True)
    assert body["request_id"] == resp.headers["X-Request-Id"]


def test_health_and_readiness(client, demo_registered):
    assert client.get("/healthz", scope=None).json["status"] == "ok"
    ready = client.get("/readyz", scope=None)
    assert ready.status_code == 200
    assert ready.json["models"] == {"churn": 1}


def test_readiness_fails_when_a_production_model_cannot_load(client, services, demo_registered):
    path = services.registry.store.path(
        services.registry.get_version("churn").artifact)
    path.write_bytes(path.read_bytes() + b"tampered")
    services.scorer.cache._models.clear()
    assert_problem(client.get("/readyz", scope=None), 503, "churn", "not loaded")


def test_tampered_artifact_is_refused_at_load(client, services, demo_registered):
    path = services.registry.store.path(services.registry.get_version("churn").artifact)
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    services.scorer.cache._models.clear()
    resp = client.post("/api/v1/models/churn/predict", json={"rows": []}, scope="score")
    body = assert_problem(resp, 503, "checksum mismatch")
    assert "churn" in body["detail"]
