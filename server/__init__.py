"""ScoreBridge: serve scikit-learn models to Excel, Power BI and HTTP apps.

This module imports nothing of ours: every layer may read ``__version__`` without pulling in the
application (the app factory is :func:`server.app.create_app`).
"""
from __future__ import annotations

__version__ = "0.1.0"
