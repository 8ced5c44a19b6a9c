"""What browsers are told: CORS for the server's own origin and configured add-in origins only,
and security headers on every response, with a Content-Security-Policy per kind of page.

The Excel add-in's static files (functions.json, functions.js, the task pane's files and icons)
are the exception: Excel on the web reads them from its own origin (``*.officeapps.live.com`` and
the other Office on the web origins, ``SCOREBRIDGE_EXCEL_ORIGINS``), so those files answer those
origins too. Nothing else does: the API still refuses them, and a page at an Office origin can
read the add-in's public files but never call the API with a key.

The dashboard, model report and API docs load nothing but the server's own files (no inline
script or style), so their policy allows only 'self' and no framing by other sites. The Excel
add-in's pages must be framed by Office on the web and load office.js from Microsoft's CDN, so
their policy names exactly those origins.
"""
from __future__ import annotations

import re
from typing import Any, Callable, TypeVar, cast

from flask import Flask, Response, request
from flask_cors import CORS

from ..config import OFFICE_WEB_ORIGINS, Settings

F = TypeVar("F", bound=Callable[..., Any])

EXPOSED = ["X-Request-Id", "X-Model-Version", "Retry-After", "Location", "Content-Disposition"]
ALLOWED_HEADERS = ["X-API-Key", "Authorization", "Content-Type", "Accept", "X-Request-Id",
                   "OData-Version", "OData-MaxVersion", "Prefer"]
# where Office hosts add-ins: Office on the web frames the task pane from these
OFFICE_FRAMERS = " ".join(OFFICE_WEB_ORIGINS)
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


_ORIGIN_PATTERN = re.compile(r"(https?://)(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[0-9]{1,5})?)")
_SUBDOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")


def origin_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether an ``Origin`` is one of ``patterns``: ``https://host[:port]`` exactly, or
    ``https://*.domain`` for any host under ``domain`` (not ``domain`` itself, and never a host
    that merely ends in the same letters). A pattern of another form stops the server at start,
    so a typo cannot open or close more than meant."""
    exact: set[str] = set()
    under: list[tuple[str, str]] = []  # (scheme, ".domain[:port]")
    for pattern in patterns:
        found = _ORIGIN_PATTERN.fullmatch(pattern.lower())
        if found is None:
            raise ValueError(f"SCOREBRIDGE_EXCEL_ORIGINS: {pattern[:80]!r} is not an origin "
                             "(https://host, https://host:port or https://*.domain)")
        scheme, wildcard, host = found.groups()
        if wildcard:
            under.append((scheme, "." + host))
        else:
            exact.add(scheme + host)

    def matches(origin: str) -> bool:
        if origin in exact:
            return True
        return any(origin.startswith(scheme) and origin.endswith(domain)
                   and _SUBDOMAIN.fullmatch(origin[len(scheme):-len(domain)]) is not None
                   for scheme, domain in under)
    return matches


def shared_with_office(view: F) -> F:
    """Marks a view serving the add-in's public files, which Office on the web's pages read
    cross-origin (and only those views: nothing that takes a key)."""
    view.shared_with_office = True  # type: ignore[attr-defined]
    return view


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
    _share_addin_files_with_office(app, origin_matcher(settings.excel_origins))

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


def _share_addin_files_with_office(app: Flask, is_office: Callable[[str], bool]) -> None:
    """Registered after flask-cors, so it runs before it: the add-in's files answer an Office
    origin here, and flask-cors then leaves a response that already carries the header alone
    (the server's own and configured origins still get theirs from flask-cors)."""

    @app.after_request
    def addin_files_for_office(response: Response) -> Response:
        view = app.view_functions.get(request.endpoint or "")
        if not getattr(view, "shared_with_office", False):
            return response
        response.vary.add("Origin")  # a cache must not give one origin's answer to another
        origin = request.headers.get("Origin", "")
        if origin and is_office(origin) and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method == "OPTIONS":  # a preflight: public files, read-only
                response.headers["Access-Control-Allow-Methods"] = "GET, HEAD"
                wanted = request.headers.get("Access-Control-Request-Headers")
                if wanted:
                    response.headers["Access-Control-Allow-Headers"] = wanted[:1000]
                response.headers["Access-Control-Max-Age"] = "600"
        return response
