"""ScoreBridge.Predict run from the connector's own M source against the real server.

powerbi/tools/m-eval.mjs evaluates ScoreBridge.pq (parsed by Microsoft's parser); every request
below is the one the M code built, sent to the app by tests/powerbi/m_harness.py. The input is an
"unstable" source, as a SQL query without ORDER BY is: each read is a new query in a new order,
and the reads are counted.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from server.app import create_app
from tests.conftest import PROBABILITY_TOLERANCE, KeyClient, churn_rows, jsonable, register_file
from tests.powerbi.m_harness import BASE, Sent, m_table, run_m
from tests.powerbi.test_connector import basic

FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method", "support_calls",
            "internet_service"]
TYPES = {"customer": "Int64.Type", "signed": "date", "tenure_months": "Int64.Type",
         "monthly_charges": "number", "contract": "text", "payment_method": "text",
         "support_calls": "Int64.Type", "internet_service": "text"}


def customers(n: int, seed: int = 11) -> tuple[list[dict[str, Any]], Any]:
    frame = churn_rows(n, seed=seed)
    rows = [dict(zip(FEATURES, values), customer=1000 + i,
                 signed={"$date": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}"})
            for i, values in enumerate(jsonable(frame))]
    return rows, frame


@pytest.fixture
def database_url() -> str:
    """The registry's database does not matter to the M code: SQLite only."""
    return ""


@pytest.fixture
def churn(client, keys, demo_files):
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    return client.client, basic(keys["admin"])


def predict(target, table, options=None, **kw):
    client, auth = target
    args = [BASE, "churn", table] + ([options] if options is not None else [])
    return run_m(client, auth, "ScoreBridge.Predict", *args, **kw)


def row_numbers(sent: Sent) -> list[int]:
    split = sent.body["dataframe_split"]
    assert split["columns"] == FEATURES + ["scoring_row"]
    return [r[-1] for r in split["data"]]


# -- the input is read once, and answers are joined back by the row number each request carries --

def test_rows_travel_with_their_row_number_and_come_back_to_the_same_row(churn, demo_model):
    rows, frame = customers(45)
    run = predict(churn, m_table(rows, TYPES, unstable=True), {"BatchSize": 10})
    assert run.source_reads == {"input": 1}  # one read of the SQL-like source
    # every request carries its rows' numbers: 0..44, each once, in batches of 10
    assert [len(row_numbers(p)) for p in run.posts] == [10, 10, 10, 10, 5]
    assert sorted(n for p in run.posts for n in row_numbers(p)) == list(range(45))
    # end to end: the number a row was sent with is the output row its answer lands on
    sent_as = {n: (p, k) for p in run.posts for k, n in enumerate(row_numbers(p))}
    _, out = run.table()
    expected = dict(zip((r["customer"] for r in rows), demo_model.predict(frame).tolist()))
    probabilities = dict(zip((r["customer"] for r in rows), demo_model.predict_proba(frame).tolist()))
    assert sorted(r["customer"] for r in out) == sorted(expected)
    for number, row in enumerate(out):
        post, k = sent_as[number]
        record = dict(zip(post.body["dataframe_split"]["columns"],
                          post.body["dataframe_split"]["data"][k]))
        assert {f: record[f] for f in FEATURES} == {f: row[f] for f in FEATURES}
        assert row["prediction"] == post.answer["predictions"][k] == expected[row["customer"]]
        yes = post.answer["classes"].index("yes")
        assert row["probability_yes"] == post.answer["probabilities"][k][yes]
        assert row["probability_yes"] == pytest.approx(probabilities[row["customer"]][1],
                                                       abs=PROBABILITY_TOLERANCE)
        assert "scoring_row" not in row


# -- one POST per batch, one version for the whole refresh -------------------------------------

def test_each_batch_is_posted_once_and_later_batches_are_pinned_to_the_first_answer(churn, client,
                                                                                     demo_files):
    register_file(client, "churn", demo_files["artifact"], demo_files["sample"])  # version 2
    rows, _ = customers(35)

    def canary_first(sent: Sent):
        # the first batch is routed to version 2 (as a canary may); the rest is left to routing,
        # which sends an unpinned request to production (version 1)
        if sent.method == "POST" and not routed:
            routed.append(sent)
            c, auth = churn
            resp = c.post(sent.path + "?version=2", headers={**sent.headers, **auth},
                          data=json.dumps(sent.body))
            return resp.status_code, dict(resp.headers), resp.get_data(as_text=True)
        return None

    routed: list[Sent] = []
    run = predict(churn, m_table(rows, TYPES), {"BatchSize": 10}, intercept=canary_first)
    assert len(run.posts) == math.ceil(35 / 10)  # not once per output column
    assert [p.query.get("version") for p in run.posts] == [None, "2", "2", "2"]
    _, out = run.table()
    assert {r["model_version"] for r in out} == {2}


# -- types kept, new columns typed, names that do not collide ------------------------------------

def test_input_types_are_kept_and_new_columns_typed_and_named_apart(churn):
    rows, _ = customers(12)
    for i, r in enumerate(rows):
        r["prediction"], r["Probability_yes"] = f"old {i}", 0.5
    types = {**TYPES, "prediction": "text", "Probability_yes": "number"}
    run = predict(churn, m_table(rows, types))
    columns, out = run.table()
    kinds = {c["name"]: c["type"] for c in columns}
    assert [c["name"] for c in columns] == list(types) + [
        "prediction_2", "probability_no", "probability_yes_2", "model_version", "scoring_error"]
    for name, declared in types.items():
        assert kinds[name].removeprefix("nullable ") == declared, name
    assert kinds["prediction_2"] == "nullable text"
    assert kinds["probability_no"] == kinds["probability_yes_2"] == "nullable number"
    assert kinds["model_version"].endswith("Int64.Type")
    assert kinds["scoring_error"] == "nullable text"
    assert [r["prediction"] for r in out] == [f"old {i}" for i in range(12)]
    assert all(r["prediction_2"] in ("no", "yes") for r in out)
    assert out[0]["signed"] == {"$date": "2025-01-01"}


def test_zero_rows_send_no_request_and_keep_the_columns(churn):
    run = predict(churn, m_table([], TYPES))
    columns, out = run.table()
    assert out == [] and run.posts == []
    assert [c["name"] for c in columns][-5:] == ["prediction", "probability_no", "probability_yes",
                                                  "model_version", "scoring_error"]


# -- probabilities named by the answer's classes -------------------------------------------------

def test_probabilities_follow_the_classes_of_the_answer(churn):
    rows, _ = customers(6)

    def reversed_classes(sent: Sent):
        if sent.method != "POST":
            return None
        c, auth = churn
        resp = c.post(sent.path, headers={**sent.headers, **auth}, data=json.dumps(sent.body))
        answer = resp.json
        answer["classes"] = answer["classes"][::-1]
        answer["probabilities"] = [p[::-1] for p in answer["probabilities"]]
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    plain = predict(churn, m_table(rows, TYPES)).table()[1]
    swapped = predict(churn, m_table(rows, TYPES), intercept=reversed_classes).table()[1]
    for a, b in zip(plain, swapped):
        assert a["probability_yes"] == b["probability_yes"] and a["probability_no"] == b["probability_no"]
    assert any(a["probability_yes"] != a["probability_no"] for a in plain)  # the swap is visible


# -- errors: per row in one pass, row-less ones, unpublished models, bad options ----------------

def test_row_errors_land_on_their_rows_and_row_less_errors_on_their_batch(churn):
    rows, _ = customers(8)
    rows[5]["monthly_charges"] = "lots"
    types = {**TYPES, "monthly_charges": "any"}

    def with_general_error(sent: Sent):
        if sent.method != "POST" or 0 not in row_numbers(sent):
            return None
        c, auth = churn
        answer = c.post(sent.path, headers={**sent.headers, **auth}, data=json.dumps(sent.body)).json
        answer.setdefault("errors", []).append({"message": "scored on a degraded replica"})
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    run = predict(churn, m_table(rows, types), {"BatchSize": 4}, intercept=with_general_error)
    _, out = run.table()
    errors = [r["scoring_error"] for r in out]
    assert errors[:4] == ["scored on a degraded replica"] * 4
    assert errors[4] is None and errors[6] is None and errors[7] is None
    assert errors[5] == "monthly_charges: expected a number, got 'lots'"
    assert out[5]["prediction"] is None and out[4]["prediction"] in ("no", "yes")


def test_a_model_without_production_version_says_so(churn):
    def unpublished(sent: Sent):
        if sent.method == "GET" and sent.path.endswith("/churn"):
            c, auth = churn
            detail = c.get(sent.path, headers=auth).json
            detail.update(production_version=None, signature=None)
            return 200, {"Content-Type": "application/json"}, json.dumps(detail)
        return None

    run = predict(churn, m_table(customers(3)[0], TYPES), intercept=unpublished)
    assert run.error["Reason"] == "ScoreBridge.NotPublished"
    assert "'churn' has no production version" in run.error["Message"]
    assert "[Version = N]" in run.error["Message"] and run.posts == []
    pinned = predict(churn, m_table(customers(3)[0], TYPES), {"Version": 1}, intercept=unpublished)
    assert pinned.table()[1][0]["model_version"] == 1


@pytest.mark.parametrize("options, named", [
    ({"BatchSize": 0}, "BatchSize = 0"),
    ({"BatchSize": 2.5}, "BatchSize = 2.5"),
    ({"BatchSize": 50_000}, "from 1 to 10000"),
    ({"Version": "2"}, "Version = 2"),
    ({"Probabilities": "yes"}, "Probabilities = yes"),
    ({"Version": {"number": 2}}, "Version = (a list, record"),
    ({"Batchsize": 10}, "Unknown option(s): Batchsize"),
])
def test_bad_options_stop_with_a_message_naming_the_option(churn, options, named):
    run = predict(churn, m_table(customers(3)[0], TYPES), options)
    assert run.error["Reason"] == "ScoreBridge.BadOption", run.error
    assert named in run.error["Message"]
    assert run.sent == []


def test_missing_columns_are_named(churn):
    rows = [{k: v for k, v in r.items() if k != "contract"} for r in customers(2)[0]]
    types = {k: v for k, v in TYPES.items() if k != "contract"}
    run = predict(churn, m_table(rows, types))
    assert run.error["Reason"] == "ScoreBridge.MissingColumns"
    assert run.error["Message"] == "The table lacks the model's column(s): contract"


# -- the 413 size is found once, Retry-After is honoured -----------------------------------------

def test_the_batch_size_that_works_is_carried_to_later_batches(settings, demo_files):
    app = create_app(replace(settings, max_rows=10))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    register_file(KeyClient(app.test_client(), {"deploy": key}), "churn", demo_files["artifact"],
                  demo_files["sample"])
    rows, _ = customers(40)
    run = predict((app.test_client(), basic(key)), m_table(rows, TYPES), {"BatchSize": 16})
    assert [(len(row_numbers(p)), p.status) for p in run.posts] == \
        [(16, 413)] + [(8, 200)] * 5
    assert len(run.table()[1]) == 40


def test_429_waits_for_retry_after_then_retries_with_a_new_attempt_header(churn):
    refused = []

    def busy_once(sent: Sent):
        if sent.method == "POST" and not refused:
            refused.append(sent)
            return 429, {"Retry-After": "3", "Content-Type": "application/problem+json"}, \
                json.dumps({"status": 429, "detail": "slow down"})
        return None

    run = predict(churn, m_table(customers(3)[0], TYPES), intercept=busy_once)
    assert run.delays == [3]
    assert [p.headers["X-Attempt"] for p in run.posts] == ["1", "2"]
    assert run.posts[0].body == run.posts[1].body
    assert len(run.table()[1]) == 3


# -- the navigation table ------------------------------------------------------------------------

def test_contents_lists_the_models_with_their_versions(churn):
    client, auth = churn
    run = run_m(client, auth, "ScoreBridge.Contents", BASE)
    columns, out = run.table()
    assert [r["Name"] for r in out] == ["churn"] and out[0]["ProductionVersion"] == 1
    navigation = out[0]["Data"]["$table"]
    items = {row[1]: row[2] for row in navigation["rows"]}  # Key -> Data
    assert [c["name"] for c in navigation["columns"]][:3] == ["Name", "Key", "Data"]
    versions = items
    table = versions["versions"]["$table"]
    assert [c["name"] for c in table["columns"]][:2] == ["Version", "Aliases"]
    assert table["rows"][0][0] == 1
