"""ScoreBridge.Predict(..., [Explain = 3]) run from the connector's M source against the real
server (requests replayed by tests/powerbi/m_harness.py): typed reason columns holding the JSON
API's reasons for the same rows."""
from __future__ import annotations

import pytest

from tests.conftest import jsonable
from tests.powerbi.m_harness import m_table
from tests.powerbi.test_connector_m import FEATURES, TYPES, churn, customers, database_url, predict

pytest.importorskip("shap")
__all__ = ["churn", "database_url"]   # the fixtures, shared with the connector's other tests


def test_explain_adds_typed_reason_columns_with_the_apis_reasons(churn):
    rows, frame = customers(7)
    run = predict(churn, m_table(rows, TYPES), {"Explain": 3, "BatchSize": 3})
    columns, table = run.table()
    types = {c["name"]: c["type"] for c in columns}
    assert [types[f"reason_{j}"] for j in (1, 2, 3)] == ["nullable text"] * 3
    assert all(p.body["options"]["explain"] == 3 for p in run.posts) and len(run.posts) == 3
    client, auth = churn
    api = client.post("/api/v1/models/churn/predict", headers=auth,
                      json={"rows": jsonable(frame[FEATURES]), "options": {"explain": 3}}).json
    expected = [[r["text"] for r in e["reasons"]] for e in api["explanations"]]
    assert [[row[f"reason_{j}"] for j in (1, 2, 3)] for row in table] == expected
    plain_columns, _ = predict(churn, m_table(rows, TYPES)).table()
    assert not any(c["name"].startswith("reason_") for c in plain_columns)


@pytest.mark.parametrize("bad", [0, 2.5, "3"])
def test_a_bad_explain_option_is_named(churn, bad):
    run = predict(churn, m_table(customers(2)[0], TYPES), {"Explain": bad})
    assert run.error["Reason"] == "ScoreBridge.BadOption" and "Explain" in run.error["Message"]
    assert run.sent == []
