"""``scorebridge track``, ``outcomes`` and ``quality`` on the local registry (SQLite and
PostgreSQL): a file of outcomes by business key streamed in chunks with per-row answers, sent
twice without double counting, and the live metrics equal to scikit-learn's."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from server.config import Settings
from server.demo import FEATURES, TARGET, make_churn_data
from server.services import build_services
from server.types import RawTable
from tests.live import env_for, setup_cli

DAY0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


def test_outcomes_cli_streams_a_file_in_chunks_and_counts_nothing_twice(tmp_path: Path,
                                                                          database_url: str,
                                                                          demo_files):
    home = tmp_path / "home"
    extra = {"SCOREBRIDGE_COMPILE": "off"}
    if database_url:
        extra["SCOREBRIDGE_DATABASE_URL"] = database_url
    env = env_for(home, **extra)
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
              str(demo_files["sample"]), "--holdout", str(demo_files["holdout"]), "--target",
              TARGET, "--outcome-key", "customer_id", env=env)
    out = setup_cli("track", "churn", "--metric", "accuracy", "--json", env=env).stdout
    assert json.loads(out)["outcomes"] == {"enabled": True, "key": "customer_id",
                                           "alert": {"metric": "accuracy"}}

    # two simulated days of scoring by this process (a server would do the same)
    services = build_services(Settings(home=home, database_url=database_url, background=False,
                                       compile=False))
    scored = []
    try:
        for day in range(2):
            data = make_churn_data(150, seed=40 + day)
            keys = [f"cust-{day}-{i}" for i in range(150)]
            services.scorer.outcome_log.clock = lambda day=day: DAY0 + timedelta(days=day)
            table = RawTable(names=FEATURES + ["customer_id"],
                             columns=[data[c].tolist() for c in FEATURES] + [keys], n_rows=150)
            result = services.scorer.score("churn", table)
            scored += list(zip(keys, data[TARGET], result.predictions))
        services.scorer.outcome_log.flush(services.registry)
    finally:
        services.registry.engine.dispose()

    outcomes = tmp_path / "outcomes.csv"
    with open(outcomes, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "actual", "time"])
        for key, truth, _ in scored[:250]:
            writer.writerow([key, truth, (DAY0 + timedelta(days=9)).isoformat()])
        writer.writerow(["stranger", "yes", ""])
        writer.writerow([scored[260][0], "perhaps", ""])
    answers = tmp_path / "answers.csv"
    first = setup_cli("outcomes", "churn", str(outcomes), "--chunk-rows", "64", "--answers",
                      str(answers), env=env)
    assert "252 outcomes for churn: 1 invalid, 250 recorded, 1 unknown" in first.output
    assert "row 250: unknown" in first.output and "row 251: invalid" in first.output
    with open(answers, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["row"], r["status"]) for r in rows] == [("250", "unknown"), ("251", "invalid")]
    again = json.loads(setup_cli("outcomes", "churn", str(outcomes), "--json", env=env).stdout)
    assert again["counts"] == {"unchanged": 250, "unknown": 1, "invalid": 1}

    quality = json.loads(setup_cli("quality", "churn", "--json", env=env).stdout)
    (live,) = quality["versions"]
    y = np.array([t for _, t, _ in scored[:250]], dtype=object)
    pred = np.array([p for _, _, p in scored[:250]], dtype=object)
    assert live["matched"] == 250 and live["scored"] == 300
    assert live["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert live["metrics"]["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert [w["matched"] for w in live["windows"]] == [150, 100]
    assert quality["alert"] is None or quality["alert"]["metric"] == "accuracy"
    text = setup_cli("quality", "churn", env=env).output
    assert "250 of 300 predictions matched" in text and "accuracy" in text
    off = json.loads(setup_cli("track", "churn", "--off", "--json", env=env).stdout)
    assert off["outcomes"]["enabled"] is False and off["outcomes"]["key"] == "customer_id"
