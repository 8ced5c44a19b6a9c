"""The ``scorebridge`` command line.

Without ``--url`` commands work on the local registry in ``SCOREBRIDGE_HOME``; with ``--url`` they call
a server's HTTP API with the key from ``--key`` or ``SCOREBRIDGE_API_KEY``. Every command calls one
:class:`~server.clients.Backend` method, so both paths print the same; the local one runs the same
service operations (:mod:`server.services`) as the HTTP API.
"""
from __future__ import annotations

from . import auth, batch, catalogue, deployment, keys, outcomes, scoring, serving  # noqa: F401  (they add the commands)
from .common import main

__all__ = ["main"]
