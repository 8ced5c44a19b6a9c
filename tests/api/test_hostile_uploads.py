"""Hostile skops artifacts uploaded over HTTP: refused as a problem document naming the type,
nothing executed, nothing recorded (the corpus is tests/scoring/hostile.py)."""
from __future__ import annotations

import pytest

from tests.conftest import assert_problem, register_file
from tests.scoring.hostile import PAYLOADS, plant


# refused before the registry is written: SQLite alone says as much as PostgreSQL would
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_hostile_upload_is_refused_with_the_type_named(client, tmp_path, payload):
    path, marker, names = plant(tmp_path, payload)
    resp = register_file(client, "hostile", path, scope="admin")
    body = assert_problem(resp, 422, *names, "SCOREBRIDGE_TRUSTED_TYPES", "--trust-pickle")
    assert body["type"].endswith("unsafe-artifact") and body["refused_types"] == names
    assert not marker.exists()
    assert client.get("/api/v1/models", scope="read").json["models"] == []
    events = client.get("/api/v1/events", scope="read").json["events"]
    assert not [e for e in events if e.get("model") == "hostile"]
