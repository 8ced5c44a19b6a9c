"""What browsers are told: CORS for the server's own origin and configured add-in origins only,
and security headers on every response, with a Content-Security-Policy per kind of page.

The dashboard, model report and API docs load nothing but the server's own files (no inline
script or style), so their policy allows only 'self' and no framing by other sites. The Excel
add-in's pages must be framed by Office on the web and load office.js from Microsoft's CDN, so
their policy names exactly those origins.
"""
from __future__ import annotations

from typing import cast

from flask import Flask, Response, request
from flask_cors import CORS

from ..config import Settings

EXPOSED = ["X-Request-Id", "X-Model-Version", "Retry-After", "Location", "Content-Disposition"]
ALLOWED_HEADERS = ["X-API-Key", "Authorization", "Content-Type", "Accept", "X-Request-Id",
                   "OData-Version", "OData-MaxVersion", "Prefer"]
# where Office hosts add-ins: Office on the web frames the task pane from these
OFFICE_FRAMERS = ("https://*.office.com https://*.office365.com https://*.officeapps.live.com "
                  "https://*.sharepoint.com https://*.microsoft365.com https://*.cloud.microsoft")
OFFICE_SCRIPTS = "https://appsforoffice.microsoft.com"

PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'self'")
ADDIN_POLICY = (f"default-src 'self'; script-src 'self' {OFFICE_SCRIPTS}; "
                f"style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
                f"connect-src 'self' https:; frame-src 'self' https:; object-src 'none'; "
                f"base-uri 'self'; frame-ancestors 'self' {OFFICE_FRAMERS}")
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def origins(settings: Settings) -> list[str]:
    """The origins whose pages may call the API from a browser."""
    own = [settings.public_url] if settings.public_url else []
    own.append(f"http://{settings.host}:{settings.port}")
    return sorted(set(own + list(settings.cors_origins)))


COMMON = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))
ADDIN_HEADERS = COMMON + (("Content-Security-Policy", ADDIN_POLICY),)
PAGE_HEADERS = COMMON + (("Content-Security-Policy", PAGE_POLICY),
                         ("X-Frame-Options", "SAMEORIGIN"))
API_HEADERS = COMMON + (("Content-Security-Policy", API_POLICY), ("X-Frame-Options", "DENY"))


def install(app: Flask, settings: Settings) -> None:
    before = list(app.after_request_funcs.get(None, ()))
    CORS(app, origins=origins(settings), expose_headers=EXPOSED, allow_headers=ALLOWED_HEADERS,
         methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], max_age=600,
         supports_credentials=False, vary_header=True)
    after = app.after_request_funcs[None]
    (cors,) = [f for f in after if f not in before]  # flask-cors' own response hook

    def cross_origin_only(response: Response) -> Response:
        """flask-cors' hook, for requests that carry an Origin (every cross-origin request a
        browser makes does); for the others it adds nothing and only matched paths and origins
        against its rules, on every response."""
        return cast(Response, cors(response)) if "HTTP_ORIGIN" in request.environ else response

    after[after.index(cors)] = cross_origin_only

    @app.after_request
    def security_headers(response: Response) -> Response:
        wanted: tuple[tuple[str, str], ...]
        if request.path.startswith("/excel/"):
            wanted = ADDIN_HEADERS
        elif response.mimetype == "text/html":
            wanted = PAGE_HEADERS
        else:
            wanted = API_HEADERS
        headers = response.headers
        for name, value in wanted:
            if name not in headers:  # a view's own choice stands
                headers.add(name, value)
        return response
