"""The xlwings UDFs, called as plain Python (the decorators do nothing off Windows) against a live
server."""
from __future__ import annotations

import datetime as dt
import http.server
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any, Iterator

import pytest
import xlwings

from tests.conftest import assert_probabilities, churn_rows, jsonable
from tests.live import ROOT

ROW = [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]
BAD = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"]
EMPTY = [None] * 6
COM_NA = -2146826246   # how pywin32 hands xlwings a #N/A cell


def load_udfs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "scorebridge_udfs", ROOT / "excel_addin/xlwings/scorebridge_udfs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["scorebridge_udfs"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def udfs(live: Any) -> ModuleType:
    server, key = live
    module = load_udfs()
    module.configure(server.url, key)
    return module


def recorded_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The options the module gives xlwings' decorators, as Windows xlwings would receive them."""
    seen: dict[str, dict[str, Any]] = {}

    def func(f: Any = None, **kwargs: Any) -> Any:
        def inner(g: Any) -> Any:
            seen.setdefault(g.__name__, {})["func"] = kwargs
            return g
        return inner(f) if f is not None else inner

    def arg(name: str, convert: Any = None, **kwargs: Any) -> Any:
        def inner(g: Any) -> Any:
            seen.setdefault(g.__name__, {})[name] = kwargs
            return g
        return inner

    monkeypatch.setattr(xlwings, "func", func)
    monkeypatch.setattr(xlwings, "arg", arg)
    load_udfs()
    return seen


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
    assert udfs.PREDICT([ROW], "churn", 1.0) == udfs.PREDICT([ROW], "churn")


def test_predict_proba(udfs, demo_model):
    frame = churn_rows(3)
    rows = jsonable(frame)
    probs = demo_model.predict_proba(frame)
    assert_probabilities([r[0] for r in udfs.PREDICT_PROBA(rows, "churn")], probs[:, 1])
    assert_probabilities([r[0] for r in udfs.PREDICT_PROBA(rows, "churn", "no")], probs[:, 0])
    assert_probabilities(udfs.PREDICT_PROBA(rows, "churn", "all"), probs)
    assert udfs.PREDICT_PROBA(rows, "churn", "maybe").startswith("#VALUE! unknown class maybe")


def test_all_classes_is_a_rectangle_whatever_the_rows(udfs):
    block = udfs.PREDICT_PROBA([ROW, BAD, EMPTY], "churn", "all")
    assert [len(r) for r in block] == [2, 2, 2]
    assert block[1] == [block[1][0]] * 2 and block[1][0].startswith("#VALUE! monthly_charges")
    assert block[2] == ["", ""]
    assert udfs.PREDICT_PROBA([BAD], "churn", "all")[0][0].startswith("#VALUE! monthly_charges")


def test_failures_are_error_text_never_exceptions(udfs, live):
    """Classic xlwings shows an exception as its traceback, and an asynchronous UDF that raises
    stays '#N/A waiting...': every failure is returned as text starting with its error."""
    assert udfs.PREDICT([BAD], "churn").startswith(
        "#VALUE! monthly_charges: expected a number")
    block = udfs.PREDICT([ROW, BAD], "churn")
    assert block[0][0] in ("yes", "no") and block[1][0].startswith("#VALUE! monthly_charges")
    assert udfs.PREDICT([ROW], "nope").startswith("#N/A no model named 'nope'")
    assert udfs.PREDICT([ROW], "churn", 1.5).startswith("#VALUE! version must be a whole number")
    assert udfs.PREDICT([ROW], 42).startswith("#VALUE! model must be")
    udfs.configure(key="sb_000000000000_wrong")
    assert udfs.PREDICT([ROW], "churn").startswith("#VALUE! ") and "not valid" in \
        udfs.PREDICT([ROW], "churn")
    assert udfs.MODELS().startswith("#VALUE! ")
    udfs.configure(url="http://127.0.0.1:9", key=live[1])
    assert udfs.PREDICT([ROW], "churn").startswith("#N/A cannot reach ScoreBridge")
    assert len(udfs.PREDICT([ROW], "x" * 300)) <= udfs.MAX_TEXT


@pytest.fixture
def html_proxy() -> Iterator[str]:
    """A proxy in front of a dead server: 502 with an HTML page."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body><h1>502 Bad Gateway</h1></body></html>")

        def log_message(self, *args: Any) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    proxy.server_close()


def test_a_proxy_error_page_is_a_clear_not_available(udfs, html_proxy):
    udfs.configure(url=html_proxy)
    assert udfs.PREDICT([ROW], "churn") == "#N/A HTTP 502 Bad Gateway"


def test_error_cells_are_asked_for_as_text_and_fail_their_row(udfs, monkeypatch):
    options = recorded_options(monkeypatch)
    for name in ("PREDICT", "PREDICT_PROBA"):
        assert options[name]["features"] == {"ndim": 2, "err_to_str": True}
    # err_to_str gives the seven classic errors as text; newer ones (#SPILL!...) stay COM codes
    block = udfs.PREDICT([ROW, [12, 70.5, "#N/A", "electronic-check", 3, "fiber"],
                          [12, COM_NA, "month-to-month", "electronic-check", 3, "fiber"],
                          [-2146826243, 70.5, "month-to-month", "electronic-check", 3, "fiber"]],
                         "churn")
    assert block[0][0] in ("yes", "no")
    assert block[1][0] == "#VALUE! contract: the cell holds the Excel error #N/A"
    assert block[2][0] == "#VALUE! monthly_charges: the cell holds the Excel error #N/A"
    assert block[3][0] == "#VALUE! tenure_months: the cell holds the Excel error #SPILL!"


def test_dates_go_as_excel_serial_numbers(udfs):
    """The Office add-in sends a date cell's number; xlwings hands over a datetime."""
    assert udfs.excel_serial(dt.datetime(2024, 1, 1)) == 45292
    assert udfs.excel_serial(dt.datetime(2024, 1, 1, 12)) == 45292.5
    assert udfs.excel_serial(dt.date(1900, 3, 1)) == 61
    assert udfs.excel_serial(dt.datetime(1899, 12, 30, 6)) == 0.25   # a time-only cell
    as_date = [dt.datetime(1900, 1, 12)] + ROW[1:]   # serial 12: a tenure of 12 months
    assert udfs.PREDICT([as_date], "churn") == udfs.PREDICT([ROW], "churn")


def test_calls_made_together_share_one_request(udfs, demo_model):
    """A filled-down column of asynchronous formulas: xlwings runs them on a thread pool at the
    same time, and they go as one request, each getting its own row's answer."""
    frame = churn_rows(8)
    rows = jsonable(frame)
    sent: list[int] = []

    def spy(calls: list[dict[str, Any]]) -> list[Any]:
        sent.append(len(calls))
        return udfs._send_batch(calls)

    udfs._coalescer = udfs.Coalescer(spy, window=0.3)
    start = threading.Barrier(len(rows))
    answers: dict[int, Any] = {}

    def cell(i: int) -> None:
        start.wait()
        answers[i] = udfs.PREDICT([rows[i]], "churn")

    threads = [threading.Thread(target=cell, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [answers[i] for i in range(len(rows))] == demo_model.predict(frame).tolist()
    assert sum(sent) == len(rows) and len(sent) <= 2


def test_functions_are_asynchronous_unless_asked_not_to(monkeypatch):
    options = recorded_options(monkeypatch)
    assert options["PREDICT"]["func"] == {"async_mode": "threading"}
    assert options["PREDICT_PROBA"]["func"] == {"async_mode": "threading"}
    monkeypatch.setenv("SCOREBRIDGE_XLWINGS_SYNC", "1")
    options = recorded_options(monkeypatch)
    assert options["PREDICT"]["func"] == {} and options["PREDICT_PROBA"]["func"] == {}


def test_a_request_refused_for_one_call_is_sent_call_by_call(udfs):
    """Until the server answers a bad call with its own error, one bad call (a version 1.5 sent
    by another client) fails the whole request: each call is then sent alone."""
    results = udfs._send_batch([{"model": "churn", "values": [ROW]},
                                {"model": "churn", "version": 1.5, "values": [ROW]}])
    assert results[0]["predictions"][0] in ("yes", "no")
    assert isinstance(results[1], udfs.ScoreBridgeError) and "version" in str(results[1])


def test_models(udfs):
    rows = udfs.MODELS()
    assert rows[0][0] == "model" and rows[1][0] == "churn" and rows[1][1] == 1
