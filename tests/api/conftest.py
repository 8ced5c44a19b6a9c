"""A deployed app shared by a module's tests: for sweeps that send thousands of requests and
change nothing a later test reads."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from server.app import create_app
from server.config import Settings
from tests.conftest import KeyClient, register_file


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory,
             demo_files: dict[str, Path]) -> Iterator[tuple[Any, str]]:
    """An app on SQLite with the demo model deployed, and an admin key."""
    home = tmp_path_factory.mktemp("deployed") / "home"
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              native_trees=False))
    app.config["TESTING"] = True
    svc = app.extensions["scorebridge"]
    key = svc.keys.create("admin", "sweep")[0]
    client = KeyClient(app.test_client(), {"deploy": key, "admin": key})
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    assert resp.status_code == 201, resp.json
    yield app, key
    svc.registry.engine.dispose()
