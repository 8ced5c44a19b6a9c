"""Sign-in tokens from a real OpenID provider (oidc-provider on loopback) on every API route."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from werkzeug.serving import make_server

from server.api.auth import SIGNED_IN, required_scope
from server.app import create_app
from server.cli import main
from server.config import Settings
from tests.api.test_auth import _routes
from tests.conftest import KeyClient, assert_problem, register_file
from tests.live import free_port
from tests.oidc import OidcProvider, private_jwk


def _app(home: Path, provider: OidcProvider, **settings: Any) -> Any:
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              native_trees=False, compile=False,
                              **provider.settings(**settings)))
    app.config["TESTING"] = True
    return app


@pytest.fixture(scope="module")
def signin(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider,
           demo_files: dict[str, Path]) -> Iterator[Any]:
    """An app that takes the provider's tokens (groups:sb-analysts maps to score+read), with the
    demo model registered by a person who signed in."""
    app = _app(tmp_path_factory.mktemp("signin") / "home", provider,
               oidc_scope_map="groups:sb-analysts=score+read; roles:SB.Admin=admin",
               oidc_jwks_cooldown_seconds=1.0)
    client = app.test_client()
    token = provider.token("releaser")
    resp = register_file(BearerClient(client, token), "churn", demo_files["artifact"],
                         demo_files["sample"])
    assert resp.status_code == 201, resp.json
    yield app
    app.extensions["scorebridge"].registry.engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class BearerClient(KeyClient):
    """Flask's test client, sending a sign-in token."""

    def __init__(self, client: Any, token: str) -> None:
        super().__init__(client, {})
        self.token = token

    def __getattr__(self, method: str) -> Any:
        def call(path: str, *, scope: str | None = None, **kw: Any) -> Any:
            headers = {**(kw.pop("headers", None) or {}), **bearer(self.token)}
            return getattr(self.client, method)(path, headers=headers, **kw)
        return call


ROW = {"rows": [[12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]]}


def test_provider_tokens_are_accepted_with_their_scopes(signin, provider):
    client = signin.test_client()
    token = provider.token("analyst")
    me = client.get("/api/v1/whoami", headers=bearer(token))
    assert me.status_code == 200, me.json
    assert me.json["kind"] == "person" and me.json["id"] == "analyst"
    assert me.json["name"] == "Ada Analyst" and me.json["email"] == "ada@example.test"
    assert me.json["grants"] == ["read", "score"] and me.json["issuer"] == provider.issuer
    assert me.json["actor"] == "user:analyst (Ada Analyst)"
    assert client.get("/api/v1/models", headers=bearer(token)).status_code == 200
    scored = client.post("/api/v1/models/churn/predict", json=ROW, headers=bearer(token))
    assert scored.status_code == 200, scored.json
    refused = client.get("/api/v1/keys", headers=bearer(token))
    assert_problem(refused, 403, "'admin' scope")
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    assert 'scope="admin"' in refused.headers["WWW-Authenticate"]


def test_groups_and_roles_grant_scopes_only_through_the_mapping(signin, provider):
    client = signin.test_client()
    me = client.get("/api/v1/whoami", headers=bearer(provider.token("grouped"))).json
    assert me["grants"] == ["read", "score"]  # sb-analysts mapped; Other.Role is not
    # a scope value that is not ours grants nothing; "admin" asked for by a client that may
    # not have it is refused by the provider itself
    assert client.get("/api/v1/whoami", headers=bearer(
        provider.sign(scope="openid profile", groups=["nobody"]))).json["grants"] == []
    assert client.get("/api/v1/whoami", headers=bearer(
        provider.sign(scope=None, scp=["deploy"]))).json["grants"] == ["deploy", "read"]
    assert client.get("/api/v1/whoami", headers=bearer(
        provider.sign(scope=None, roles=["SB.Admin"]))).json["grants"] == [
            "admin", "deploy", "read", "score"]


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _forged(provider: OidcProvider, kind: str) -> str:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": provider.audience, "sub": "mallory",
              "exp": now + 300, "iat": now, "scope": "admin"}
    if kind == "expired":
        return provider.sign(exp=now - 3600, iat=now - 7200)
    if kind == "not-yet-valid":
        return provider.sign(nbf=now + 3600)
    if kind == "wrong-issuer":
        return provider.sign(iss="https://login.example.test/other")
    if kind == "wrong-audience":
        return provider.sign(aud="api://another-api")
    if kind == "no-expiry":
        return provider.sign(exp=None)
    if kind == "alg-none":
        return f"{_segment({'alg': 'none', 'typ': 'at+jwt', 'kid': provider.kid})}." \
               f"{_segment(claims)}."
    if kind == "hs256-with-the-public-key":
        # the classic confusion: the issuer's public key (as published) used as an HMAC secret
        public_pem = provider.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = f"{_segment({'alg': 'HS256', 'typ': 'at+jwt', 'kid': provider.kid})}." \
               f"{_segment(claims)}"
        mac = hmac.new(public_pem, head.encode(), hashlib.sha256).digest()
        return head + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    if kind == "unknown-kid":
        return provider.sign(headers={"kid": "not-a-published-key"})
    if kind == "right-kid-other-key":
        return provider.sign(key=private_jwk("x")[1])
    if kind == "tampered":
        head, body, signature = provider.token("analyst").split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        payload["scope"] = "score read deploy admin"
        return f"{head}.{_segment(payload)}.{signature}"
    if kind == "id-token-type":
        return provider.sign(headers={"typ": "dpop+jwt"})
    raise AssertionError(kind)


FORGED = ["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-expiry", "alg-none",
          "hs256-with-the-public-key", "unknown-kid", "right-kid-other-key", "tampered",
          "id-token-type"]
WHY = {"expired": "expired", "not-yet-valid": "not valid yet", "wrong-issuer": "another issuer",
       "wrong-audience": "another audience", "no-expiry": "'exp'", "alg-none": "'none'",
       "hs256-with-the-public-key": "'hs256'", "unknown-kid": "unknown kid",
       "right-kid-other-key": "signature", "tampered": "signature", "id-token-type": "type"}


@pytest.mark.parametrize("kind", FORGED)
def test_bad_tokens_are_refused_with_a_bearer_challenge(signin, provider, kind):
    token = _forged(provider, kind)
    resp = signin.test_client().get("/api/v1/models", headers=bearer(token))
    body = assert_problem(resp, 401, WHY[kind])
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert "error_description=" in challenge and token not in json.dumps(body)


def test_no_credentials_point_power_query_at_the_issuer(signin, provider):
    resp = signin.test_client().get("/api/v1/models")
    assert_problem(resp, 401, "api key is required", "bearer token")
    challenge = resp.headers["WWW-Authenticate"]
    assert re.search(r'Bearer realm="ScoreBridge", authorization_uri="'
                     + re.escape(provider.issuer) + r'/auth"', challenge), challenge


def test_keys_still_work_beside_tokens(signin):
    svc = signin.extensions["scorebridge"]
    key, info = svc.create_key("read", "a script")
    client = signin.test_client()
    me = client.get("/api/v1/whoami", headers=bearer(key)).json
    assert me["kind"] == "key" and me["id"] == info.key_id and me["grants"] == ["read"]
    assert client.get("/api/v1/models", headers={"X-API-Key": key}).status_code == 200


def test_key_rotation_at_the_provider_is_picked_up_without_restart(signin, provider):
    client = signin.test_client()
    old = provider.token("analyst")
    assert client.get("/api/v1/whoami", headers=bearer(old)).status_code == 200
    new_kid = provider.rotate()
    time.sleep(1.1)  # the app's cooldown between forced key-set fetches (1 s here)
    new = provider.token("analyst")
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == new_kid
    assert client.get("/api/v1/whoami", headers=bearer(new)).status_code == 200
    # the withdrawn key no longer verifies anything
    assert_problem(client.get("/api/v1/whoami", headers=bearer(old)), 401, "unknown kid")


def test_a_flood_of_unknown_kids_makes_a_bounded_number_of_key_fetches(tmp_path, provider):
    app = _app(tmp_path / "home", provider)  # the default cooldown: 30 s
    client = app.test_client()
    before = provider.jwks_fetches()
    assert client.get("/api/v1/whoami", headers=bearer(provider.token("analyst"))).status_code \
        == 200
    for _ in range(200):
        forged = provider.sign(headers={"kid": uuid.uuid4().hex})
        assert client.get("/api/v1/whoami", headers=bearer(forged)).status_code == 401
    assert provider.jwks_fetches() - before <= 2  # the first fetch, and one forced refresh
    app.extensions["scorebridge"].registry.engine.dispose()


def test_every_route_refuses_a_token_without_the_needed_scope(signin, provider):
    client = signin.test_client()
    tokens = {"score": provider.token("analyst", "score"), "read": provider.token("analyst", "read"),
              "deploy": provider.token("releaser", "deploy")}
    grants = {"score": {"score"}, "read": {"read"}, "deploy": {"deploy", "read"}}
    checked = 0
    for rule, method, path in _routes(signin):
        scope = required_scope(signin.view_functions[rule.endpoint])
        if scope is None:
            continue
        call = getattr(client, method.lower())
        if scope == SIGNED_IN:
            assert call(path, headers=bearer(tokens["score"])).status_code == 200
            continue
        wrong = next(s for s in ("score", "read", "deploy") if scope not in grants[s])
        resp = call(path, headers=bearer(tokens[wrong]))
        assert_problem(resp, 403, f"'{scope}' scope")
        assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
        checked += 1
    assert checked >= 10


def test_events_name_the_person(signin, provider):
    client = signin.test_client()
    admin = bearer(provider.token("admin"))
    created = client.post("/api/v1/keys", json={"scopes": ["score"], "name": "for excel"},
                          headers=admin)
    assert created.status_code == 201
    assert client.delete(f"/api/v1/keys/{created.json['id']}", headers=admin).status_code == 200
    events = client.get("/api/v1/events", headers=admin).json["events"]
    by_kind = {e["kind"]: e["actor"] for e in reversed(events)}  # the newest of each kind
    assert by_kind["registered"] == "user:releaser (Rhea Releaser)"
    assert by_kind["key_created"] == by_kind["key_revoked"] == "user:admin (Ida Admin)"
    feed = client.get("/odata/Events", headers=admin).json["value"]
    assert {"user:releaser (Rhea Releaser)", "user:admin (Ida Admin)"} <= {e["Actor"] for e in feed}
    page = client.get("/dashboard", headers=admin)
    assert page.status_code == 200 and "by user:releaser (Rhea Releaser)" in page.text


def test_per_model_access(tmp_path, provider, signin):
    app = _app(signin.extensions["scorebridge"].settings.home, provider,
               oidc_models_claim="sb_models")  # the same registry, with per-model access
    client = app.test_client()
    limited, analyst = bearer(provider.token("limited")), bearer(provider.token("analyst"))
    assert client.get("/api/v1/whoami", headers=limited).json["models"] == ["churn"]
    assert client.post("/api/v1/models/churn/predict", json=ROW, headers=limited).status_code == 200
    assert_problem(client.get("/api/v1/models/fraud", headers=limited), 403, "model 'fraud'")
    # without the claim, a person may use no model (admins may use every one)
    assert_problem(client.get("/api/v1/models/churn", headers=analyst), 403, "model 'churn'")
    assert client.get("/api/v1/models/churn",
                      headers=bearer(provider.token("admin"))).status_code == 200
    app.extensions["scorebridge"].registry.engine.dispose()


def test_tokens_without_an_issuer_configured_are_refused_plainly(client, provider):
    resp = client.client.get("/api/v1/models", headers=bearer(provider.token("analyst")))
    assert_problem(resp, 401, "no identity provider is configured")


@pytest.mark.parametrize("settings, message", [
    ({"oidc_audience": ()}, "SCOREBRIDGE_OIDC_AUDIENCE is required"),
    ({"oidc_algorithms": ("RS256", "HS256")}, "HS256 not allowed"),
    ({"oidc_algorithms": ("none",)}, "none not allowed"),
    ({"oidc_scope_map": "groups:x=root"}, "claim:value=scope"),
])
def test_settings_that_would_weaken_validation_are_refused(tmp_path, provider, settings, message):
    with pytest.raises(Exception, match=message):
        _app(tmp_path / "home", provider, **settings)


def test_four_eyes_promotion(signin, provider, demo_files):
    client = signin.test_client()
    releaser, admin = provider.token("releaser"), provider.token("admin")
    as_releaser, as_admin = BearerClient(client, releaser), BearerClient(client, admin)
    name = "churn-four-eyes"
    assert register_file(as_releaser, name, demo_files["artifact"],
                         demo_files["sample"]).status_code == 201
    changed = client.put(f"/api/v1/models/{name}/policy", json={"approval": {"required": True}},
                         headers=bearer(admin))
    assert changed.status_code == 200 and changed.json["approval"] == {"required": True}
    made = register_file(as_releaser, name, demo_files["artifact"], demo_files["sample"])
    assert made.status_code == 201
    version = made.json["version"]
    signin.extensions["scorebridge"].deploy_pending("test")  # gates run; the policy holds it
    base = f"/api/v1/models/{name}"
    promote = {"version": version, "reason": "release"}

    def decide(who, decision):
        return client.post(f"{base}/versions/{version}/approval", headers=bearer(who),
                           json={"decision": decision})

    assert_problem(decide(releaser, "approve"), 403, "a second person must decide")
    key = signin.extensions["scorebridge"].create_key("deploy", "release bot")[0]
    assert_problem(decide(key, "approve"), 403, "signed-in person")
    assert_problem(client.post(f"{base}/aliases/production", json=promote,
                               headers=bearer(releaser)), 409, "needs the approval")
    assert decide(admin, "refuse").json["decision"] == "approval_refused"
    assert_problem(as_releaser.post(f"{base}/aliases/production", json=promote), 409,
                   "four-eyes")
    # the second person approves from the command line, against the server, with their token
    server = make_server("127.0.0.1", free_port(), signin, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        result = CliRunner().invoke(main, ["approve", name, str(version), "--reason", "ok",
                                           "--url", url, "--key", admin])
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"{name} v{version}: approved by user:admin (Ida Admin) "
                                     "(registered by user:releaser (Rhea Releaser))")
    done = as_releaser.post(f"{base}/aliases/production", json=promote)
    assert done.status_code == 200, done.json
    assert client.get(base, headers=bearer(admin)).json["aliases"]["production"] == version
    events = as_admin.get(f"/api/v1/events?model={name}").json["events"]
    kinds = [(e["kind"], e["actor"], e["detail"].get("registered_by")) for e in events
             if e["kind"] in ("approved", "approval_refused")]
    assert kinds == [("approved", "user:admin (Ida Admin)", "user:releaser (Rhea Releaser)"),
                     ("approval_refused", "user:admin (Ida Admin)",
                      "user:releaser (Rhea Releaser)")]
