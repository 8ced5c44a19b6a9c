"""The connector's organisational-account (Aad) credential, run from its own M source against the
real app pointed at a real OpenID provider (oidc-provider on loopback, tests/oidc.py).

Power Query asks the connector's ``AuthorizationUri``, ``Resource`` and ``Scope`` functions before
it has a credential, then sends the provider's token as ``Authorization: Bearer`` on every request
the connector makes; here the token is a real one the provider issued."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from server.app import create_app
from server.config import Settings
from tests.conftest import KeyClient, assert_problem, register_file
from tests.oidc import OidcProvider
from tests.powerbi.m_harness import BASE, CONNECTOR, m_table, run_m
from tests.powerbi.test_connector import lint
from tests.powerbi.test_connector_m import FEATURES, TYPES, customers

SOURCE = CONNECTOR.read_text()


def _app(home: Path, **settings: Any) -> Any:
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              native_trees=False, compile=False, **settings))
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def aad(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider,
        demo_files: dict[str, Path]) -> Iterator[Any]:
    """An app that takes the provider's tokens, with the demo model registered."""
    app = _app(tmp_path_factory.mktemp("aad") / "home", **provider.settings())
    key = app.extensions["scorebridge"].keys.create("admin", "setup")[0]
    resp = register_file(KeyClient(app.test_client(), {"deploy": key}), "churn",
                         demo_files["artifact"], demo_files["sample"])
    assert resp.status_code == 201, resp.json
    yield app
    app.extensions["scorebridge"].registry.engine.dispose()


def bearer(token: str) -> dict[str, str]:
    """How Power Query sends an organisational account: the token as Bearer."""
    return {"Authorization": f"Bearer {token}"}


def test_the_connector_declares_aad_beside_key_and_lints():
    kinds = SOURCE[SOURCE.index("Authentication = ["):SOURCE.index("Label = Extension.LoadString"
                                                                   '("DataSourceLabel")')]
    assert re.search(r"Key = \[KeyLabel", kinds) and "Anonymous = []" in kinds
    assert re.search(r"Aad = \[\s*AuthorizationUri = AadAuthorizationUri,\s*Resource = "
                     r"AadResource,\s*Scope = AadScope\s*\]", kinds), kinds
    # Power Query sends the credential itself (Bearer for Aad, Basic for Key): never the connector
    assert not re.search(r'(#"Authorization"|\bAuthorization)\s*=', SOURCE)
    proc = lint(CONNECTOR)
    assert proc.returncode == 0 and "1 passed, 0 failed" in proc.stdout, proc.stdout


def test_authorization_uri_comes_from_the_servers_challenge(aad, provider):
    discovery = requests.get(provider.issuer + "/.well-known/openid-configuration",
                             timeout=10).json()
    # a credential handed to the harness is dropped: Power Query asks this before it has one
    run = run_m(aad.test_client(), bearer(provider.token("analyst")), "AadAuthorizationUri", BASE)
    assert run.error is None, run.error
    assert run.result == discovery["authorization_endpoint"]
    [sent] = run.sent
    assert (sent.method, sent.path, sent.status) == ("GET", "/api/v1/whoami", 401)
    assert "Authorization" not in sent.headers


def test_resource_and_scope_come_from_the_protected_resource_metadata(aad, provider):
    run = run_m(aad.test_client(), {}, "AadResource", BASE)
    assert run.error is None and run.result == provider.audience
    assert [(s.path, s.status) for s in run.sent] == [("/.well-known/oauth-protected-resource",
                                                       200)]
    run = run_m(aad.test_client(), {}, "AadScope", BASE)
    assert run.error is None and run.result == ".default"


def test_configured_scopes_reach_power_query_relative_to_the_resource(tmp_path, provider):
    app = _app(tmp_path / "home", **provider.settings(
        oidc_resource_scopes=("score", "read", "urn:other:scope")))
    metadata = app.test_client().get("/.well-known/oauth-protected-resource").json
    assert metadata["scopes_supported"] == [f"{provider.audience}/score",
                                            f"{provider.audience}/read", "urn:other:scope"]
    run = run_m(app.test_client(), {}, "AadScope", BASE)
    assert run.error is None and run.result == "score read urn:other:scope"
    app.extensions["scorebridge"].registry.engine.dispose()


def test_without_sign_in_the_aad_functions_say_so(tmp_path):
    app = _app(tmp_path / "home")
    for call in ("AadAuthorizationUri", "AadResource"):  # AadScope reads what AadResource does
        run = run_m(app.test_client(), {}, call, BASE)
        assert run.error is not None and run.error["Reason"] == "ScoreBridge.NoSignIn", call
        assert "API key" in run.error["Message"]
    app.extensions["scorebridge"].registry.engine.dispose()


def test_navigation_and_scoring_with_a_providers_token(aad, provider):
    token = provider.token("analyst")  # score + read
    client = aad.test_client()
    run = run_m(client, bearer(token), "ScoreBridge.Contents", BASE)
    _, out = run.table()
    assert [r["Name"] for r in out] == ["churn"]
    versions = {row[1]: row[2] for row in out[0]["Data"]["$table"]["rows"]}["versions"]
    assert versions["$table"]["rows"][0][0] == 1
    assert run.sent and all(s.status == 200 for s in run.sent)

    rows, _ = customers(5)
    run = run_m(client, bearer(token), "ScoreBridge.Predict", BASE, "churn", m_table(rows, TYPES))
    _, scored = run.table()
    assert len(scored) == 5 and all(r["prediction"] in ("no", "yes") for r in scored)
    assert all(r["scoring_error"] is None for r in scored)
    assert [p.status for p in run.posts] == [200]
    assert run.posts[0].body["dataframe_split"]["columns"] == FEATURES + ["scoring_row"]


def test_the_same_requests_without_a_token_or_its_scope_are_refused(aad, provider):
    client = aad.test_client()
    run = run_m(client, {}, "ScoreBridge.Contents", BASE)
    assert run.error is not None and run.error["Reason"] == "DataSource.Error", run.error
    assert [s.status for s in run.sent] == [401]
    # a token without the score scope reads the catalogue but may not score
    reader = bearer(provider.token("analyst", scope="read"))
    rows, _ = customers(2)
    run = run_m(client, reader, "ScoreBridge.Predict", BASE, "churn", m_table(rows, TYPES))
    assert run.error is not None and [s.status for s in run.sent][-1] == 403


def test_protected_resource_metadata_is_public_and_declared(aad, provider, tmp_path):
    resp = aad.test_client().get("/.well-known/oauth-protected-resource")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.json == {"resource": provider.audience,
                         "authorization_servers": [provider.issuer],
                         "scopes_supported": [f"{provider.audience}/.default"],
                         "bearer_methods_supported": ["header"], "resource_name": "ScoreBridge"}
    # the challenge points at it (RFC 9728 section 5.1)
    challenge = aad.test_client().get("/api/v1/models").headers["WWW-Authenticate"]
    assert 'resource_metadata="http://localhost/.well-known/oauth-protected-resource"' in challenge
    spec = aad.test_client().get("/openapi.json").json
    op = spec["paths"]["/.well-known/oauth-protected-resource"]["get"]
    assert op["security"] == [] and {"200", "404"} <= set(op["responses"])
    assert "ProtectedResource" in spec["components"]["schemas"]
    plain = _app(tmp_path / "home")
    assert_problem(plain.test_client().get("/.well-known/oauth-protected-resource"), 404,
                   "sign-in is not configured")
    plain.extensions["scorebridge"].registry.engine.dispose()


def test_the_odata_feed_takes_the_same_tokens(aad, provider):
    """Power BI's built-in OData connector with an organisational account: the same challenge,
    the same tokens."""
    client = aad.test_client()
    refused = client.get("/odata/")
    assert refused.status_code == 401
    assert 'authorization_uri="' + provider.issuer in refused.headers["WWW-Authenticate"]
    token = bearer(provider.token("analyst"))
    root = client.get("/odata/", headers=token)
    assert root.status_code == 200 and root.headers["OData-Version"] == "4.0"
    assert client.get("/odata/$metadata", headers=token).status_code == 200
    models = client.get("/odata/Models", headers=token)
    assert models.status_code == 200, models.json
    assert [m["Name"] for m in models.json["value"]] == ["churn"]
    assert client.get("/odata/Models", headers=bearer(provider.sign(
        aud="api://another-api"))).status_code == 401
