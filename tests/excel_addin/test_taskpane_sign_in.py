"""The task pane signs in with the organisation's identity provider and scores with the token.

Headless Chromium opens the pane; its Sign in button opens the Office dialog, imitated here as
Office on the web does it (a popup window, and ``messageParent`` as a ``postMessage`` to the pane
that opened it). The dialog goes through the real OpenID provider's login page (oidc-provider on
loopback) and hands the pane a one-time code, which it redeems with its PKCE verifier. Then a
formula scores with the token, the server names the person, the access token is renewed with the
refresh token, and sign-out ends both.
"""
from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from typing import Any, Iterator

import pytest
import requests
from werkzeug.serving import make_server

from server.app import create_app
from server.auth.addin_grants import s256
from server.auth.principal import Principal
from server.config import Settings
from server.registry.schema import utcnow
from tests.browser import browser_page, screenshot
from tests.conftest import KeyClient, register_file
from tests.excel_addin.test_taskpane import wait_until
from tests.oidc import SECRET, OidcProvider

# Office.context.ui as Office on the web provides it to the pane and to the dialog's pages
OFFICE_DIALOGS = """
(() => {
  const handlers = {};
  window.Office = {
    AsyncResultStatus: { Succeeded: "succeeded", Failed: "failed" },
    EventType: { DialogMessageReceived: "dialogMessageReceived",
                 DialogEventReceived: "dialogEventReceived" },
    onReady: (start) => {
      const go = () => start({ host: "Excel" });
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go);
      else go();
    },
    context: { ui: {
      displayDialogAsync: (url, options, done) => {
        const popup = window.open(url, "office-dialog", "width=500,height=700");
        window.dialogOpened = url;
        window.addEventListener("message", (e) => {
          if (e.source === popup && e.origin === location.origin && e.data
              && typeof e.data.officeDialogMessage === "string") {
            handlers.dialogMessageReceived({ message: e.data.officeDialogMessage,
                                             origin: e.origin });
          }
        });
        done({ status: "succeeded", value: {
          addEventHandler: (type, fn) => { handlers[type] = fn; },
          close: () => popup.close() } });
      },
      messageParent: (message) => {
        window.opener.postMessage({ officeDialogMessage: message }, location.origin);
      },
    } },
  };
})();
"""
ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


@pytest.fixture(scope="module")
def addin_web(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider,
              demo_files: Any) -> Iterator[tuple[Any, str]]:
    """The server with sign-in, on the port the provider's web client returns to, serving the
    add-in and the demo model; and an admin key."""
    app = create_app(Settings(
        home=tmp_path_factory.mktemp("addin-web") / "home", background=False,
        rate_limiting=False, native_trees=False, excel_allow_local_http=True,
        **provider.settings(oidc_client_id="web", oidc_client_secret=SECRET,
                            oidc_login_scopes="openid profile email score read")))
    plain, _ = app.extensions["scorebridge"].create_key(["admin"], "test", actor="test")
    made = register_file(KeyClient(app.test_client(), {"deploy": plain}), "churn",
                         demo_files["artifact"], demo_files["sample"])
    assert made.status_code == 201, made.json
    server = make_server("127.0.0.1", provider.web_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, plain
    server.shutdown()
    thread.join(10)
    server.server_close()
    app.extensions["scorebridge"].registry.engine.dispose()


def _sign_in_in_dialog(page: Any, provider: OidcProvider, who: str) -> None:
    with page.expect_popup() as opened:
        page.click("#sign-in")
    dialog = opened.value
    dialog.wait_for_selector("input[name=login]")  # the provider's own login page
    dialog.fill("input[name=login]", who)
    dialog.fill("input[name=password]", "any")
    dialog.click("button[type=submit]")
    dialog.wait_for_load_state()
    if not dialog.is_closed() and dialog.url.startswith(provider.issuer):  # its consent page
        dialog.click("button[type=submit]")
    dialog.wait_for_event("close", timeout=15000)  # the pane closes it once it has the code


def _stored_signin(page: Any) -> dict[str, Any]:
    return json.loads(page.evaluate(
        "localStorage.getItem('scorebridge.signin@' + location.origin)") or "null")


def test_the_pane_signs_in_scores_with_the_token_renews_it_and_signs_out(addin_web, provider):
    app, admin = addin_web
    base = provider.web_url
    with browser_page() as (page, errors):
        page.context.add_init_script(OFFICE_DIALOGS)
        page.goto(base + "/excel/taskpane.html")
        page.wait_for_selector("#sign-in", state="visible")
        assert page.inner_text("#signin-who") == "Not signed in."
        _sign_in_in_dialog(page, provider, "ada")
        wait_until(page, "document.querySelector('#signin-who').textContent"
                         ".startsWith('Signed in as')")
        assert page.inner_text("#signin-who") == "Signed in as User ada."
        assert re.fullmatch(re.escape(base) + r"/excel/signin\?challenge=[A-Za-z0-9_-]{43}",
                            page.evaluate("window.dialogOpened"))
        # the dialog's page, for this browser's session: not to be framed by anyone
        shown = page.context.request.get(base + "/excel/signin?challenge=" + "b" * 43)
        assert shown.status == 200 and 'data-code="' in shown.text()
        assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]
        assert shown.headers["x-frame-options"] == "DENY"
        page.wait_for_selector("#status.ok")  # the model list, read with the token
        assert "churn" in page.inner_text("#models tbody tr")
        screenshot(page, "excel-taskpane-signed-in.png")

        # no secret in the page or the workbook: the access token in memory only, the refresh
        # token in the add-in's storage (localStorage here, OfficeRuntime.storage in Excel)
        kept = _stored_signin(page)
        assert kept["refresh"].startswith("sbr_") and "access" not in kept
        first = page.evaluate("ScoreBridge.state.signins.get(location.origin).access")
        assert first.startswith("sbt_")

        # a formula scores with the token, and the server knows who asked
        label = page.evaluate("async (row) => (await predict([row], 'churn'))[0][0]", ROW)
        assert label in ("yes", "no")
        me = page.evaluate("ScoreBridge.request('/api/v1/whoami')")
        assert (me["kind"], me["id"], me["grants"]) == ("person", "ada", ["read", "score"])
        users = requests.get(f"{base}/api/v1/models/churn/traffic/users",
                             headers={"X-API-Key": admin}, timeout=10).json()
        assert any(u["user"] == "user:ada" for u in users["users"]), users

        # the access token about to end: renewed silently with the refresh token, which is
        # good once; the old access token stops at once
        page.evaluate("ScoreBridge.state.signins.get(location.origin).accessUntil = Date.now()")
        page.evaluate("ScoreBridge.clearCache()")
        assert page.evaluate("async (row) => (await predict([row], 'churn'))[0][0]", ROW) == label
        renewed = page.evaluate("ScoreBridge.state.signins.get(location.origin).access")
        assert renewed != first and _stored_signin(page)["refresh"] != kept["refresh"]
        assert _whoami(base, first).status_code == 401
        assert _whoami(base, renewed).json()["id"] == "ada"
        reused = requests.post(f"{base}/auth/addin/token", timeout=10, json={
            "grant_type": "refresh_token", "refresh_token": kept["refresh"]})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

        # sign-out ends the tokens on the server; the cells then say what to do
        refresh = _stored_signin(page)["refresh"]
        page.click("#sign-out")
        page.wait_for_selector("#sign-in", state="visible")
        assert _stored_signin(page) is None
        assert _whoami(base, renewed).status_code == 401
        assert requests.post(f"{base}/auth/addin/token", timeout=10, json={
            "grant_type": "refresh_token", "refresh_token": refresh}).status_code == 400
        message = page.evaluate("""async (row) => {
            try { await predict([row], "churn"); } catch (e) { return e.code + " " + e.message; }
        }""", ROW)
        assert message.startswith("#N/A No API key for " + base + " and no sign-in"), message
        assert all("office.js" in e or "ERR_FAILED" in e for e in errors), json.dumps(errors)


def _whoami(base: str, token: str) -> requests.Response:
    return requests.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"},
                        timeout=10)


def test_the_token_endpoint_refuses_what_it_did_not_give(addin_web, provider):
    """A code needs its verifier and is good once; a disabled person's tokens stop; a page that
    is not an Office dialog hands nothing over and cannot be framed."""
    app, _ = addin_web
    client = app.test_client()
    bad = client.post("/auth/addin/token", json={
        "grant_type": "authorization_code", "code": "made-up", "code_verifier": "v" * 43})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_grant"
    assert bad.mimetype == "application/problem+json"
    missing = client.post("/auth/addin/token", json={"grant_type": "refresh_token"})
    assert missing.status_code == 422 and "refresh_token" in missing.json["detail"]
    odd = client.post("/auth/addin/token", json={"grant_type": "password", "code": "x"})
    assert odd.status_code == 400 and "grant_type" in odd.json["detail"]
    assert client.get("/excel/signin?challenge=short").status_code == 400
    # not signed in in this browser: to the sign-in, and back to the dialog afterwards
    away = client.get("/excel/signin?challenge=" + "a" * 43)
    assert away.status_code == 302
    assert away.headers["Location"] == "/auth/login?next=/excel/signin%3Fchallenge%3D" + "a" * 43

    grants = app.extensions["scorebridge"].addin_grants
    person = Principal(kind="person", id="bob", name="Bob", scopes=("score", "read"),
                       issuer=provider.issuer)
    verifier = "w" * 50
    code = grants.start(person, s256(verifier), utcnow() + timedelta(hours=1))
    wrong = client.post("/auth/addin/token", json={
        "grant_type": "authorization_code", "code": code, "code_verifier": "x" * 50})
    assert wrong.status_code == 400  # and the code is spent
    code = grants.start(person, s256(verifier), utcnow() + timedelta(hours=1))
    grant = client.post("/auth/addin/token", json={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier}).json
    assert grant["token_type"] == "Bearer" and 0 < grant["expires_in"] <= 900
    assert 3500 < grant["refresh_expires_in"] <= 3600  # no longer than the browser sign-in
    again = client.post("/auth/addin/token", json={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier})
    assert again.status_code == 400
    token = {"Authorization": "Bearer " + grant["access_token"]}
    assert client.get("/api/v1/whoami", headers=token).json["id"] == "bob"
    # the person's scopes hold for the add-in's token as for any other credential
    short = client.get("/api/v1/keys", headers=token)
    assert short.status_code == 403 and "'admin' scope" in short.json["detail"]
    assert 'error="insufficient_scope"' in short.headers["WWW-Authenticate"]
    app.extensions["scorebridge"].disable_person("bob", reason="left", actor="test")
    refused = client.get("/api/v1/whoami", headers=token)
    assert refused.status_code == 401 and "disabled" in refused.json["detail"]
    assert client.post("/auth/addin/token", json={
        "grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}).status_code == 401
