"""The one way a stored record (a version, an event, a key, a job, a schedule, a rollout) is
shown to API and CLI clients: its named fields, datetimes as ISO 8601 text, tuples as lists."""
from __future__ import annotations

from datetime import datetime
from typing import Any


def shown(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def public_fields(record: Any, *names: str) -> dict[str, Any]:
    """``names`` of ``record``, each as clients see it."""
    return {name: shown(getattr(record, name)) for name in names}
