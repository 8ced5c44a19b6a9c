"""HTML rendering of the dashboard and the report with Jinja (autoescaped), outside Flask, so the
CLI renders exactly what the server serves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True))


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)
