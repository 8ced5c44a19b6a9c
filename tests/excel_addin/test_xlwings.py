"""The xlwings UDFs, called as plain Python (the decorators do nothing off Windows) against a live
server."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import assert_probabilities, churn_rows, jsonable
from tests.live import ROOT

ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]


@pytest.fixture
def udfs(live):
    server, key = live
    spec = importlib.util.spec_from_file_location(
        "scorebridge_udfs", ROOT / "excel_addin/xlwings/scorebridge_udfs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["scorebridge_udfs"] = module
    spec.loader.exec_module(module)
    module.configure(server.url, key)
    return module


def test_predict_single_row_and_block(udfs, demo_model):
    frame = churn_rows(6)
    rows = jsonable(frame)
    # xlwings hands numbers over as floats
    as_excel = [[float(v) if isinstance(v, int) else v for v in r] for r in rows]
    assert udfs.PREDICT([as_excel[0]], "churn") == demo_model.predict(frame.head(1))[0]
    block = udfs.PREDICT(as_excel, "churn")
    assert [r[0] for r in block] == demo_model.predict(frame).tolist()
    header = [["tenure_months", "monthly_charges", "contract", "payment_method",
               "support_calls", "internet_service"]] + as_excel
    assert udfs.PREDICT(header, "churn") == block
    assert udfs.PREDICT([ROW]) in ("yes", "no")  # the server's only model


def test_predict_proba(udfs, demo_model):
    frame = churn_rows(3)
    rows = jsonable(frame)
    probs = demo_model.predict_proba(frame)
    assert_probabilities([r[0] for r in udfs.PREDICT_PROBA(rows, "churn")], probs[:, 1])
    assert_probabilities([r[0] for r in udfs.PREDICT_PROBA(rows, "churn", "no")], probs[:, 0])
    assert_probabilities(udfs.PREDICT_PROBA(rows, "churn", "all"), probs)
    with pytest.raises(udfs.ScoreBridgeError, match="unknown class"):
        udfs.PREDICT_PROBA(rows, "churn", "maybe")


def test_errors_are_messages(udfs, live):
    bad = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"]
    with pytest.raises(udfs.ScoreBridgeError, match="monthly_charges: expected a number"):
        udfs.PREDICT([bad], "churn")
    block = udfs.PREDICT([ROW, bad], "churn")
    assert block[0][0] in ("yes", "no") and block[1][0].startswith("#VALUE! monthly_charges")
    with pytest.raises(udfs.ScoreBridgeError, match="no model named 'nope'"):
        udfs.PREDICT([ROW], "nope")
    udfs.configure(key="sb_000000000000_wrong")
    with pytest.raises(udfs.ScoreBridgeError, match="not valid"):
        udfs.PREDICT([ROW], "churn")
    udfs.configure(url="http://127.0.0.1:9", key=live[1])
    with pytest.raises(udfs.ScoreBridgeError, match="cannot reach"):
        udfs.PREDICT([ROW], "churn")


def test_models(udfs):
    rows = udfs.MODELS()
    assert rows[0][0] == "model" and rows[1][0] == "churn" and rows[1][1] == 1
