"""First contact: ``GET /`` for a person (a page of links) or a program (the same links as JSON),
the Excel and Power BI guides as pages, and the favicon browsers ask for."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from flask import Blueprint, Response, request, send_from_directory
from markdown_it import MarkdownIt
from pydantic import Field

from .. import __version__
from ..reports.render import render
from .auth import public
from .declare import Parameters
from .http import json_response
from .openapi import operation

bp = Blueprint("home", __name__)
_STATIC = Path(__file__).parent / "static"
_CHECKOUT = Path(__file__).resolve().parents[2]
GUIDES = {"excel": ("Excel guide", _CHECKOUT / "excel_addin" / "README.md"),
          "powerbi": ("Power BI guide", _CHECKOUT / "powerbi" / "README.md")}
LINKS = [
    {"rel": "dashboard", "href": "/dashboard", "title": "Status dashboard",
     "text": "health, models, traffic, latency, errors, drift and rollouts"},
    {"rel": "docs", "href": "/docs", "title": "API documentation",
     "text": "every route, tried from the browser; the OpenAPI document is /openapi.json"},
    {"rel": "models", "href": "/api/v1/models", "title": "Models",
     "text": "the catalogue: signatures, versions, aliases"},
    {"rel": "excel-guide", "href": "/guides/excel", "title": "Excel",
     "text": "=ML.PREDICT(A2:F2): the add-in for Excel on Windows, Mac and the web, "
             "WEBSERVICE() and xlwings"},
    {"rel": "powerbi-guide", "href": "/guides/powerbi", "title": "Power BI",
     "text": "the ScoreBridge connector and the OData feed at /odata/"},
    {"rel": "health", "href": "/readyz", "title": "Readiness",
     "text": "whether the database answers and production models are loaded"},
]
# raw HTML in the guides is shown as text: a page of this server never carries markup it did
# not write
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


@bp.get("/")
@public
@operation("Where to start: links to the dashboard, the API docs and the guides",
           tags=["health"], responses={"200": {"description": "The links", "content": {
               "application/json": {"schema": {"type": "object"}},
               "text/html": {"schema": {"type": "string"}}}}})
def home() -> Response:
    """A browser (which prefers HTML) gets a page; every other client gets JSON."""
    accept = request.accept_mimetypes
    if accept["text/html"] > accept["application/json"]:
        return Response(render("home.html", links=LINKS, version=__version__),
                        mimetype="text/html")
    return json_response({"name": "ScoreBridge", "version": __version__, "links": LINKS})


class GuidePath(Parameters):
    guide: Literal["excel", "powerbi"] = Field(description="which guide")


@bp.get("/guides/<guide>")
@public
@operation("The Excel or Power BI guide, as a page", tags=["health"], path=GuidePath,
           responses={"200": {"description": "HTML page", "content": {"text/html": {
               "schema": {"type": "string"}}}}})
def guide(guide: str) -> Response:
    title, source = GUIDES[guide]
    html = _MARKDOWN.render(source.read_text(encoding="utf-8"))
    return Response(render("guide.html", title=title, html=html), mimetype="text/html")


@bp.get("/favicon.ico")
@public
@operation("The site's icon", tags=["health"], responses={"200": {
    "description": "ICO image", "content": {"image/vnd.microsoft.icon": {
        "schema": {"type": "string", "format": "binary"}}}}})
def favicon() -> Response:
    return send_from_directory(_STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon",
                               max_age=86400)
