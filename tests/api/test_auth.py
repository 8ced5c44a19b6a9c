"""Authentication and scopes, for every route in the URL map."""
from __future__ import annotations

import base64
import re

import pytest

from server.api.auth import SIGNED_IN, required_scope
from tests.conftest import assert_problem

PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/assets/<path:filename>",
          # the Excel add-in's files: Excel loads them before any key can be entered
          "/excel/manifest.xml", "/excel/taskpane.html", "/excel/<name>", "/excel/icons/<name>",
          # liveness probes of the MLflow and V2 protocols (as in those servers)
          "/ping", "/health", "/version", "/v2", "/v2/health/live", "/v2/health/ready",
          "/reports/assets/<path:filename>",
          # first contact: where to start, the guides, the favicon browsers ask for
          "/", "/guides/<guide>", "/favicon.ico",
          # browser sign-in (they answer 404 unless it is configured)
          "/auth/login", "/auth/callback", "/auth/logout", "/auth/session",
          # the Excel add-in's sign-in: its dialog page and token endpoint (404 likewise)
          "/excel/signin", "/auth/addin/token", "/auth/addin/revoke",
          # what a client reads before it has a token (RFC 9728; 404 unless sign-in is configured)
          "/.well-known/oauth-protected-resource"}
SAMPLE_VALUES = {"name": "churn", "alias": "staging", "version": "1", "key_id": "abc",
                 "filename": "init.js", "entity_set": "Models", "job_id": "abc",
                 "guide": "excel", "subject": "someone", "pipeline": "nightly"}


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_VALUES[m.group(1)], rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method, path


def test_public_routes_are_exactly_the_documented_ones(app):
    public = {rule.rule for rule, _, _ in _routes(app)
              if required_scope(app.view_functions[rule.endpoint]) is None}
    assert public == PUBLIC


def test_every_other_route_refuses_no_key_revoked_key_and_wrong_scope(app, services, keys):
    client = app.test_client()
    revoked, info = services.keys.create("admin", "to revoke")
    services.keys.revoke(info.key_id)
    checked = 0
    for rule, method, path in _routes(app):
        scope = required_scope(app.view_functions[rule.endpoint])
        if scope is None:
            continue
        call = getattr(client, method.lower())
        assert_problem(call(path), 401, "api key is required")
        assert_problem(call(path, headers={"X-API-Key": revoked}), 401, "revoked")
        assert_problem(call(path, headers={"X-API-Key": "sb_nope_nope"}), 401, "not valid")
        if scope == SIGNED_IN:  # any valid key will do (whoami)
            assert call(path, headers={"X-API-Key": keys["score"]}).status_code == 200
            continue
        wrong = next(s for s in ("score", "read", "deploy")
                     if scope not in services.keys.verify(keys[s]).grants)
        assert_problem(call(path, headers={"X-API-Key": keys[wrong]}), 403, f"'{scope}' scope")
        checked += 1
    assert checked >= 10


def test_401_carries_a_challenge(client):
    resp = client.get("/api/v1/models", scope=None)
    assert resp.status_code == 401
    assert "Basic" in resp.headers["WWW-Authenticate"]


@pytest.mark.parametrize("how", ["header", "bearer", "basic", "basic-user", "query"])
def test_four_ways_to_present_a_key(app, keys, how):
    client = app.test_client()
    key = keys["read"]
    headers, path = {}, "/api/v1/models"
    if how == "header":
        headers["X-API-Key"] = key
    elif how == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif how == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f":{key}".encode()).decode()
    elif how == "basic-user":
        headers["Authorization"] = "Basic " + base64.b64encode(f"anyone:{key}".encode()).decode()
    else:
        path += f"?api_key={key}"
    assert client.get(path, headers=headers).status_code == 200


def test_query_key_is_refused_on_post(app, keys, demo_registered):
    resp = app.test_client().post(f"/api/v1/models/churn/predict?api_key={keys['score']}",
                                  json={"rows": []})
    assert_problem(resp, 401, "accepted on get only")


def test_bad_basic_header(app):
    resp = app.test_client().get("/api/v1/models", headers={"Authorization": "Basic %%%"})
    assert_problem(resp, 401, "base64")


def test_scope_implications(services, keys):
    assert services.keys.verify(keys["admin"]).grants == {"score", "read", "deploy", "admin"}
    assert services.keys.verify(keys["deploy"]).grants == {"deploy", "read"}
    assert services.keys.verify(keys["score"]).grants == {"score"}


def test_keys_are_hashed_at_rest(services, keys):
    from sqlalchemy import select

    from server.registry.schema import ApiKeyRow

    with services.registry.reading() as session:
        stored = session.scalars(select(ApiKeyRow.hashed)).all()
    for plain in keys.values():
        assert plain not in stored and all(plain not in h for h in stored)
        assert all(len(h) == 64 for h in stored)


def test_auth_off_opens_everything(tmp_path):
    from server.app import create_app
    from server.config import Settings

    app = create_app(Settings(home=tmp_path, auth=False))
    assert app.test_client().get("/api/v1/models").status_code == 200
    assert app.test_client().get("/api/v1/keys").status_code == 200


def test_key_admin_over_http(client):
    resp = client.post("/api/v1/keys", json={"scopes": ["score"], "name": "excel"})
    assert resp.status_code == 201
    plain, key_id = resp.json["key"], resp.json["id"]
    assert client.get("/api/v1/keys").json["keys"][-1]["id"] == key_id
    assert "key" not in client.get("/api/v1/keys").json["keys"][-1]
    assert client.delete(f"/api/v1/keys/{key_id}").status_code == 200
    assert client.client.get("/api/v1/models", headers={"X-API-Key": plain}).status_code == 401
    assert_problem(client.post("/api/v1/keys", json={"scopes": ["root"]}), 400, "'scopes.0'",
                   "'score', 'read', 'deploy' or 'admin'")
    assert_problem(client.post("/api/v1/keys", json={"scopes": "score"}), 400, "scopes")
    assert_problem(client.delete("/api/v1/keys/nope"), 404, "no api key")
