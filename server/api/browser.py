"""What browsers are told: CORS for the server's own origin and configured add-in origins only,
and security headers on every response, with a Content-Security-Policy per kind of page.

The dashboard, model report and API docs load nothing but the server's own files (no inline
script or style), so their policy allows only 'self' and no framing by other sites. The Excel
add-in's pages must be framed by Office on the web and load office.js from Microsoft's CDN, so
their policy names exactly those origins.
"""
from __future__ import annotations

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


def install(app: Flask, settings: Settings) -> None:
    CORS(app, origins=origins(settings), expose_headers=EXPOSED, allow_headers=ALLOWED_HEADERS,
         methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], max_age=600,
         supports_credentials=False, vary_header=True)

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/excel/"):
            headers.setdefault("Content-Security-Policy", ADDIN_POLICY)
        elif response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        else:
            headers.setdefault("Content-Security-Policy", API_POLICY)
            headers.setdefault("X-Frame-Options", "DENY")
        return response
