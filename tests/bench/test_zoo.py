"""Every model of the bench's zoo (bench/zoo.py) registers and scores as scikit-learn does, so
the benchmark's zoo cannot quietly shrink to the shapes that happen to work. Quick versions of
each pipeline (few rows, few trees); the bench trains the full ones."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio

from bench import zoo
from tests.conftest import PROBABILITY_TOLERANCE, register_file


@pytest.fixture
def database_url() -> str:
    """What the zoo checks does not depend on the registry's database: SQLite only."""
    return ""


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return replace(settings, trusted_types=zoo.SPLINE_TYPES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("zoo")
    return {m.name: zoo.train(m, folder, small=True) for m in zoo.available()}


def test_the_zoo_has_the_shapes_the_bench_promises():
    names = {m.name for m in zoo.ZOO}
    assert len(zoo.ZOO) >= 8 and len(names) == len(zoo.ZOO)
    assert any(m.regression for m in zoo.ZOO)
    assert max(len(zoo.zoo_rows(m, 1)[0]) for m in zoo.ZOO) == 20


def test_every_zoo_model_registers_and_scores_as_scikit_learn(client, trained):
    for model in zoo.available():
        paths = trained[model.name]
        resp = register_file(client, model.name, paths["artifact"], paths["sample"])
        assert resp.status_code == 201, (model.name, resp.get_data(as_text=True))
        assert resp.json["runtime"]["engine"], model.name
        fitted: Any = sio.load(paths["artifact"],
                               trusted=sio.get_untrusted_types(file=paths["artifact"]))
        rows = zoo.zoo_rows(model, 40)
        rows[3][1] = None  # a missing monthly charge: every zoo pipeline takes it
        got = client.post(f"/api/v1/models/{model.name}/predict", data=json.dumps({"rows": rows}),
                          headers={"Content-Type": "application/json"})
        assert got.status_code == 200, (model.name, got.get_data(as_text=True))
        labels, proba = zoo.reference(fitted, [r[:1] + [np.nan if r[1] is None else r[1]] + r[2:]
                                               for r in rows])
        if model.regression:
            assert np.allclose(got.json["predictions"], labels, rtol=1e-6, atol=1e-6), model.name
            continue
        assert got.json["predictions"] == labels, model.name
        assert np.abs(np.array(got.json["probabilities"]) - proba).max() <= \
            PROBABILITY_TOLERANCE, model.name
