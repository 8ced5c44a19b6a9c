"""ScoreBridge: serve scikit-learn models to Excel, Power BI and HTTP apps."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None) -> "Flask":
    """Build the Flask application (see :func:`server.app.create_app`)."""
    from .app import create_app as factory

    return factory(settings)
