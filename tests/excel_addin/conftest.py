"""A live server for the add-in's tests, serving the session's demo model as 'churn'."""
from __future__ import annotations

import pytest

from tests.live import env_for, serve, setup_cli


@pytest.fixture(scope="package")
def live(tmp_path_factory, demo_files):
    """A live server (two workers) serving the session's demo model as 'churn', shared by the
    package's modules (they only read from it)."""
    home = tmp_path_factory.mktemp("excel") / "home"
    env = env_for(home)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), "--holdout", str(demo_files["holdout"]), "--target",
              "churned", env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    server = serve(env, workers=2)
    yield server, key
    server.stop()
