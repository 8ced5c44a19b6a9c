"""WSGI entry point for gunicorn: ``gunicorn wsgi:app``.

Settings come from ``SCOREBRIDGE_*`` environment variables (see ``server.config``).
"""
from server.app import create_app

app = create_app()
