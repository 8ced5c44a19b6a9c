"""CORS only for the server's own and configured origins; security headers per kind of page."""
from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from server.config import OFFICE_WEB_ORIGINS, Settings

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


OFFICE = ("https://excel.officeapps.live.com", "https://inc-excel.officeapps.live.com",
          "https://usc-excel.officeapps.live.com", "https://excel.cloud.microsoft",
          "https://www.office.com", "https://contoso.sharepoint.com")
ADDIN_FILES = ("/excel/functions.json", "/excel/functions.js", "/excel/taskpane.html",
               "/excel/taskpane.js", "/excel/taskpane.css", "/excel/icons/icon-32.png")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_office_on_the_web_reads_the_addin_files_cross_origin(web):
    """Excel on the web loads functions.json and functions.js from its own origin: those files
    answer Office's origins (each by name, never '*'), and say they vary by origin."""
    client, _ = web
    for origin in OFFICE:
        for path in ADDIN_FILES:
            got = client.get(path, headers={"Origin": origin})
            assert got.status_code == 200, path
            assert got.headers["Access-Control-Allow-Origin"] == origin, (origin, path)
            assert "Origin" in got.headers["Vary"]
            assert "Access-Control-Allow-Credentials" not in got.headers
    pre = client.options("/excel/functions.json", headers={
        "Origin": OFFICE[0], "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Cache-Control"})
    assert pre.headers["Access-Control-Allow-Origin"] == OFFICE[0]
    assert pre.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    # a cache keeps the answer per origin, whether or not this request had one
    assert "Origin" in client.get("/excel/functions.json").headers["Vary"]
    # the server's own origin is answered as before
    own = client.get("/excel/functions.json", headers={"Origin": "https://sb.example.com"})
    assert own.headers["Access-Control-Allow-Origin"] == "https://sb.example.com"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_office_origins_get_nothing_else(web):
    """The API keeps its rules: an Office page may read the add-in's public files, never call
    the API (with a key or not), and look-alike origins get nothing at all."""
    client, key = web
    for origin in OFFICE:
        got = client.get("/api/v1/models", headers={"Origin": origin, "X-API-Key": key})
        assert got.status_code == 200 and "Access-Control-Allow-Origin" not in got.headers
        for path, method in (("/api/v1/models", "GET"), ("/excel/v1/batch", "POST"),
                             ("/api/v1/models/churn/predict", "POST")):
            pre = client.options(path, headers={"Origin": origin,
                                                "Access-Control-Request-Method": method,
                                                "Access-Control-Request-Headers": "X-API-Key"})
            assert "Access-Control-Allow-Origin" not in pre.headers, (origin, path)
        assert "Access-Control-Allow-Origin" not in client.get(
            "/excel/manifest.xml", headers={"Origin": origin}).headers
    for stranger in ("https://officeapps.live.com", "https://evilofficeapps.live.com",
                     "https://excel.officeapps.live.com.evil.net", "http://excel.officeapps.live.com",
                     "https://excel.officeapps.live.com:8443", "https://a..officeapps.live.com",
                     "https://x/.officeapps.live.com", "null", "https://cloud.microsoft"):
        got = client.get("/excel/functions.json", headers={"Origin": stranger})
        assert got.status_code == 200 and "Access-Control-Allow-Origin" not in got.headers, stranger


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_office_origins_are_configurable(settings):
    env = {"SCOREBRIDGE_EXCEL_ORIGINS": "https://*.officeapps.live.com, https://addins.example.com:8443/"}
    configured = Settings.from_env(env)
    assert configured.excel_origins == ("https://*.officeapps.live.com",
                                        "https://addins.example.com:8443")
    assert Settings.from_env({}).excel_origins == OFFICE_WEB_ORIGINS
    assert Settings.from_env({"SCOREBRIDGE_EXCEL_ORIGINS": ""}).excel_origins == ()
    client = create_app(replace(settings, excel_origins=configured.excel_origins)).test_client()
    for origin, allowed in (("https://excel.officeapps.live.com", True),
                            ("https://addins.example.com:8443", True),
                            ("https://addins.example.com", False), ("https://www.office.com", False)):
        got = client.get("/excel/functions.js", headers={"Origin": origin})
        assert ("Access-Control-Allow-Origin" in got.headers) is allowed, origin
    for bad in ("excel.officeapps.live.com", "https://*.example.com/path", "https://ex*.com", "*"):
        with pytest.raises(ValueError, match="SCOREBRIDGE_EXCEL_ORIGINS"):
            create_app(replace(settings, excel_origins=(bad,)))
