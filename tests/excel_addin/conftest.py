"""A live server for the add-in's tests, serving the session's demo model as 'churn' and, with
outcome tracking on (business key ``customer_id``), as 'renewals'."""
from __future__ import annotations

import pytest

from tests.live import env_for, serve, setup_cli

TRACKED = "renewals"  # the demo model with outcome tracking: only the outcome test writes to it


@pytest.fixture(scope="package")
def live(tmp_path_factory, demo_files):
    """A live server (two workers) shared by the package's modules: they only read from it,
    except that the task pane's outcome test records outcomes for TRACKED."""
    home = tmp_path_factory.mktemp("excel") / "home"
    env = env_for(home, SCOREBRIDGE_DEFAULT_MODEL="churn")  # the one a call naming none gets
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), "--holdout", str(demo_files["holdout"]), "--target",
              "churned", env=env)
    setup_cli("register", str(demo_files["artifact"]), "--name", TRACKED, "--sample",
              str(demo_files["sample"]), "--outcome-key", "customer_id", env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    server = serve(env, workers=2)
    yield server, key
    server.stop()
