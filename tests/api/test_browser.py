"""CORS only for the server's own and configured origins; security headers per kind of page."""
from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app

ADDIN = "https://addins.example.com"


@pytest.fixture
def web(settings):
    app = create_app(replace(settings, cors_origins=(ADDIN,), public_url="https://sb.example.com"))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    return app.test_client(), key


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cors_for_configured_origins_only(web):
    client, key = web
    for origin in (ADDIN, "https://sb.example.com"):
        pre = client.options("/api/v1/models/churn/predict", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key, Content-Type"})
        assert pre.status_code == 200  # a preflight needs no key
        assert pre.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "x-api-key" in pre.headers["Access-Control-Allow-Headers"].lower()
        got = client.get("/api/v1/models", headers={"Origin": origin, "X-API-Key": key})
        assert got.headers["Access-Control-Allow-Origin"] == origin
        assert "X-Request-Id" in got.headers["Access-Control-Expose-Headers"]
        assert "Origin" in got.headers["Vary"]
        assert "Access-Control-Allow-Credentials" not in got.headers
    for stranger in ("https://evil.example.net", "null", "https://addins.example.com.evil.net"):
        got = client.get("/api/v1/models", headers={"Origin": stranger, "X-API-Key": key})
        assert "Access-Control-Allow-Origin" not in got.headers
        pre = client.options("/api/v1/models", headers={
            "Origin": stranger, "Access-Control-Request-Method": "GET"})
        assert "Access-Control-Allow-Origin" not in pre.headers
    # a preflight is not a way around authentication
    assert client.get("/api/v1/models", headers={"Origin": ADDIN}).status_code == 401


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_security_headers_per_kind_of_page(web):
    client, key = web
    page = client.get("/docs")
    assert page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
    pane = client.get("/excel/taskpane.html")
    assert pane.status_code == 200
    csp = pane.headers["Content-Security-Policy"]
    assert "https://*.officeapps.live.com" in csp and "https://appsforoffice.microsoft.com" in csp
    assert "X-Frame-Options" not in pane.headers  # Office on the web frames the task pane
    api = client.get("/api/v1/models", headers={"X-API-Key": key})
    assert api.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api.headers["X-Frame-Options"] == "DENY"
    for resp in (page, pane, api, client.get("/nope")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
