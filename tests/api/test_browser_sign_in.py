"""Browser sign-in: headless Chromium through the real provider's login page to the dashboard,
sign-out, and a cross-site form post refused; the session cookie and CSRF rules through the API."""
from __future__ import annotations

import re
import threading
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server

from server.app import create_app
from server.config import Settings
from tests.browser import browser_page, screenshot
from tests.conftest import assert_problem
from tests.live import free_port
from tests.oidc import SECRET, OidcProvider


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, provider: OidcProvider) -> Iterator[Any]:
    """The app with browser sign-in, served on the port the provider's web client redirects to."""
    app = create_app(Settings(
        home=tmp_path_factory.mktemp("web") / "home", background=False, rate_limiting=False,
        native_trees=False, **provider.settings(
            oidc_client_id="web", oidc_client_secret=SECRET,
            oidc_login_scopes="openid profile email score read admin")))
    server = make_server("127.0.0.1", provider.web_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app
    server.shutdown()
    thread.join(10)
    server.server_close()
    app.extensions["scorebridge"].registry.engine.dispose()


def _serve_page(html: str) -> tuple[Any, str]:
    """Another site's page (localhost, not 127.0.0.1: another site for SameSite)."""
    def page(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        return [html.encode()]
    server = make_server("127.0.0.1", free_port(), page, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_port}/"


def _sign_in(page: Any, provider: OidcProvider, who: str, landing: str = "/dashboard") -> None:
    page.click("#sign-in")
    page.wait_for_selector("input[name=login]")  # the provider's own login page
    page.fill("input[name=login]", who)
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    if page.url.startswith(provider.issuer):  # its consent page
        page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(provider.web_url + landing)))


def test_chromium_signs_in_sees_the_dashboard_and_signs_out(web, provider):
    with browser_page(1000, 800) as (page, errors):
        page.goto(provider.web_url + "/dashboard")
        assert "Sign in with " + provider.issuer in page.inner_text("#sign-in")  # not a prompt
        _sign_in(page, provider, "ada")
        assert "ScoreBridge status" in page.content()
        assert "user:ada (User ada)" in page.inner_text("header")
        cookie = next(c for c in page.context.cookies() if c["name"] == "scorebridge_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert len(cookie["value"]) >= 40 and "ada" not in cookie["value"]
        screenshot(page, "sign-in-dashboard.png")

        # another site's page posts a sign-out form into this session: refused
        attacker, url = _serve_page(
            f'<form method="post" action="{provider.web_url}/auth/logout" '
            'enctype="multipart/form-data"><input name="csrf_token" value="guessed">'
            '<button id="go" type="submit">win a prize</button></form>')
        try:
            page.goto(url)
            page.click("#go")
            page.wait_for_load_state()
            assert '"status": 403' in page.content() or '"status":403' in page.content()
        finally:
            attacker.shutdown()
            attacker.server_close()
        page.goto(provider.web_url + "/dashboard")
        assert "user:ada (User ada)" in page.inner_text("header")  # still signed in

        token = next(c for c in page.context.cookies()
                     if c["name"] == "scorebridge_session")["value"]
        page.goto(provider.web_url + "/auth/logout")
        csrf = page.get_attribute("input[name=csrf_token]", "value")
        _session_rules(web, token, csrf)
        page.goto(provider.web_url + "/dashboard")
        page.click("#sign-out-link")
        page.click("#sign-out")
        page.wait_for_load_state()
        assert "You are signed out." in page.content()
        page.goto(provider.web_url + "/dashboard")
        assert page.locator("#sign-in").count() == 1  # asked to sign in again
        client = web.test_client()
        client.set_cookie("scorebridge_session", token)
        assert client.get("/api/v1/whoami").status_code == 401  # the session is gone
        page.goto(provider.web_url + "/dashboard")
        assert not [e for e in errors if "127.0.0.1:" + str(provider.web_port) in e]


def _session_rules(web: Any, token: str, csrf: str) -> None:
    """What a browser's session may do through the API, and what it needs for it."""
    client = web.test_client()
    client.set_cookie("scorebridge_session", token)
    me = client.get("/api/v1/whoami").json
    assert me["kind"] == "person" and me["id"] == "ada" and me["grants"] == [
        "admin", "deploy", "read", "score"]
    body = {"scopes": ["read"], "name": "from the browser"}
    assert_problem(client.post("/api/v1/keys", json=body), 403, "csrf token")
    assert_problem(client.post("/api/v1/keys", json=body, headers={"X-CSRF-Token": "nope"}),
                   403, "csrf token")
    assert_problem(client.post("/api/v1/keys", json=body, headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"}), 403, "cross-site")
    made = client.post("/api/v1/keys", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    events = client.get("/api/v1/events").json["events"]
    assert events[0]["kind"] == "key_created" and events[0]["actor"] == "user:ada (User ada)"
    # a callback cannot be replayed without its pending sign-in, and a login's redirect
    # target stays on this server
    assert_problem(client.get("/auth/callback?code=x&state=y"), 401, "no sign-in is in progress")
    start = client.get("/auth/login?next=//evil.example/x")
    assert start.status_code == 302 and "code_challenge_method=S256" in start.headers["Location"]
    assert "nonce=" in start.headers["Location"]
    # a person cut off here loses their browser session too (and gets it back when enabled)
    svc = web.extensions["scorebridge"]
    svc.disable_person("ada", actor="test")
    assert_problem(client.get("/api/v1/whoami"), 401, "disabled")
    svc.enable_person("ada", actor="test")
    assert client.get("/api/v1/whoami").status_code == 200


def test_over_https_the_cookie_is_secure(web, provider):
    client = web.test_client()
    start = client.get("/auth/login", base_url="https://127.0.0.1")
    assert "Secure" in start.headers["Set-Cookie"] and "HttpOnly" in start.headers["Set-Cookie"]


def test_without_browser_sign_in_the_pages_are_not_there(client):
    assert_problem(client.get("/auth/login", scope=None), 404, "not configured")
    html = client.get("/dashboard", scope=None, headers={"Accept": "text/html"})
    assert html.status_code == 401 and "Basic" in html.headers["WWW-Authenticate"]


def test_next_is_kept_on_this_server(web):
    page = web.test_client().get("/dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 401 and "/auth/login?next=/dashboard" in page.text
    assert "WWW-Authenticate" not in page.headers or "Basic" not in page.headers[
        "WWW-Authenticate"]



def test_the_api_docs_try_requests_with_the_browser_sign_in(web, provider):
    """/docs offers the sign-in; once signed in, what "Try it out" sends carries the session's
    CSRF token, so a state-changing request works with no key pasted in."""
    with browser_page(1200, 900) as (page, errors):
        page.goto(provider.web_url + "/docs")
        page.wait_for_selector("#signin-bar #sign-in")
        page.wait_for_selector(".swagger-ui .opblock")
        _sign_in(page, provider, "ida", landing="/docs")
        page.wait_for_selector("#signin-bar #sign-out-link")
        assert "Signed in as user:ida" in page.inner_text("#signin-bar")
        page.wait_for_selector(".swagger-ui .opblock")
        sent = page.evaluate("""async () => {
            const req = window.ui.getConfigs().requestInterceptor(
                { url: "/api/v1/keys", method: "POST", headers: {"Content-Type": "application/json"},
                  body: JSON.stringify({ scopes: ["read"], name: "from the docs" }) });
            const r = await fetch(req.url, { method: req.method, headers: req.headers,
                                             body: req.body });
            return { status: r.status, body: await r.json(), csrf: "X-CSRF-Token" in req.headers };
        }""")
        assert sent["csrf"] and sent["status"] == 201, sent
        assert sent["body"]["name"] == "from the docs"
        # another origin's page cannot read the token
        assert not [e for e in errors if "127.0.0.1:" + str(provider.web_port) in e], errors
    client = web.test_client()
    assert client.get("/auth/session").json == {"sign_in": True, "who": None, "csrf_token": None}
