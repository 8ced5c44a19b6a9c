"""The task pane in real headless Chromium: connect with a key, list the models, show errors; one key
per server; a recalculation through Excel's API after connecting and after clearing the cache;
outcomes recorded from a selected range, with each row's answer in the pane and the sheet."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import requests

from server.demo import FEATURES, make_churn_data
from tests.browser import browser_page, screenshot
from tests.excel_addin.conftest import TRACKED


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Polls from here: the page's CSP forbids the eval Playwright's own polling would need."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def test_taskpane_connects_lists_models_and_shows_errors(live):
    server, key = live
    with browser_page() as (page, errors):
        page.goto(f"{server.url}/excel/taskpane.html")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#status.ok")
        assert page.inner_text("#status") == "connected"
        wait_until(page, "document.querySelector('#models td.inputs')"
                         " && document.querySelector('#models td.inputs').textContent")
        row = page.inner_text("#models tbody tr")
        assert "churn" in row and "v1" in row and "tenure_months" in row
        # the key is kept in the add-in's storage, shown masked, never in the page
        assert page.input_value("#key") == "••••••••"
        assert page.evaluate("localStorage.getItem('scorebridge.apiKey@' + location.origin)") == key
        # a formula with a bad row: the pane lists the error in full
        bad = [12, "abc", "month-to-month", "electronic-check", 3, "fiber"]
        message = page.evaluate("""async (row) => {
            try { await predict([row], "churn"); } catch (e) { return e.code + " " + e.message; }
        }""", bad)
        assert message == "#VALUE! monthly_charges: expected a number, got 'abc'"
        page.wait_for_selector("#errors li:not(.muted)")
        text = page.inner_text("#errors")
        assert "monthly_charges: expected a number, got 'abc'" in text
        assert int(page.inner_text("#requests")) >= 1
        path = screenshot(page, "excel-taskpane.png")
        assert path.stat().st_size > 5000
        # Office.js could not load here (no network): that is the only console error allowed
        assert all("office.js" in e or "ERR_FAILED" in e for e in errors), json.dumps(errors)


def test_taskpane_reports_a_bad_key(live):
    server, _ = live
    with browser_page() as (page, _errors):
        page.goto(f"{server.url}/excel/taskpane.html")
        page.fill("#key", "sb_000000000000_wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#status.bad")
        errors = page.inner_text("#errors")
        assert "not valid or has been revoked" in errors
        assert "CustomFunctions" not in errors


# Excel.run with the calls the pane makes, recording them (the pane runs here without Office):
# a recalculation, and one range (window.selection: sheet, address, rowIndex, values and `next`,
# the address of the column right of it) as the selection, read again by address, with the
# values written into the column right of it recorded in window.written
FAKE_EXCEL = """
window.calculations = [];
window.selection = null;
window.written = [];
function fakeRange(sel) {
  const column = { address: sel.sheet + "!" + sel.next, load: () => {},
                   cells: sel.values.map(() => [""]),
                   get values() { return this.cells; },
                   set values(v) { this.cells = v; window.written.push(v); } };
  const range = { address: sel.sheet + "!" + sel.address, rowIndex: sel.rowIndex,
                  values: sel.values, isNullObject: false, load: () => {},
                  worksheet: { name: sel.sheet, load: () => {} },
                  getUsedRangeOrNullObject: () => range, getColumnsAfter: () => column };
  return range;
}
window.Excel = {
  CalculationType: { recalculate: "Recalculate", full: "Full", fullRebuild: "FullRebuild" },
  run: async (batch) => {
    const queued = [];
    const sel = window.selection;
    const sheet = (name) => {
      if (!sel || name !== sel.sheet) throw new Error("no sheet " + name);
      return { getRange: (address) => {
        if (address !== sel.address) throw new Error("not the range read: " + address);
        return fakeRange(sel);
      } };
    };
    const context = { workbook: { application: { calculate: (type) => queued.push(type) },
                                  getSelectedRange: () => fakeRange(sel),
                                  worksheets: { getItem: sheet } },
                      sync: async () => { window.calculations.push(...queued.splice(0)); } };
    return batch(context);
  },
};
"""


def _connect_in_excel(page, server, key: str) -> None:
    """Open the pane in the imitated Excel host and connect with ``key``."""
    page.add_init_script(FAKE_EXCEL)
    page.goto(f"{server.url}/excel/taskpane.html")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_selector("#status.ok")


def test_taskpane_recalculates_after_connect_and_after_clearing_the_cache(live):
    server, key = live
    with browser_page() as (page, errors):
        _connect_in_excel(page, server, key)
        wait_until(page, "window.calculations.length === 1")
        assert page.evaluate("window.calculations") == ["Full"]
        page.click("#clear")
        wait_until(page, "window.calculations.length === 2")
        assert page.evaluate("window.calculations") == ["Full", "Full"]
        assert all("office.js" in e or "ERR_FAILED" in e for e in errors), json.dumps(errors)


def test_taskpane_keeps_one_key_per_server(live):
    server, key = live
    other = "http://127.0.0.1:9"
    with browser_page() as (page, _errors):
        page.goto(f"{server.url}/excel/taskpane.html")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#status.ok")
        # another server: the saved key is not offered for it, and not sent to it
        page.fill("#url", other)
        page.dispatch_event("#url", "change")
        wait_until(page, "document.querySelector('#key').value === ''")
        page.click("button[type=submit]")
        page.wait_for_selector("#status.bad")
        assert f"No API key for {other}" in page.inner_text("#errors")
        assert page.evaluate(f"localStorage.getItem('scorebridge.apiKey@{other}')") is None
        # back to the first server: its own key again
        page.fill("#url", server.url)
        page.dispatch_event("#url", "change")
        wait_until(page, "document.querySelector('#key').value !== ''")
        page.click("button[type=submit]")
        page.wait_for_selector("#status.ok")


def _score_customers(server, key: str, customers: list[str]) -> None:
    """Scores one row per customer through the live server, then waits until the rows to join
    outcomes to are stored: the worker that scored writes them off the request path, all of a
    request's rows at once, so an outcome for the last customer (a probe) is recorded then."""
    data = make_churn_data(len(customers), seed=3)
    records = json.loads(data[FEATURES].assign(customer_id=customers).to_json(orient="records"))
    headers = {"X-API-Key": key}
    resp = requests.post(f"{server.url}/api/v1/models/{TRACKED}/predict", timeout=30,
                         headers=headers, json={"records": records})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["prediction_ids"]) == len(customers)
    deadline = time.monotonic() + 30
    while True:
        resp = requests.post(f"{server.url}/api/v1/models/{TRACKED}/outcomes", timeout=30,
                             headers=headers,
                             json={"outcomes": [{"key": customers[-1], "actual": "no"}]})
        assert resp.status_code == 200, resp.text
        if resp.json()["counts"] == {"recorded": 1}:
            return
        assert resp.json()["counts"] == {"unknown": 1}, resp.text
        assert time.monotonic() < deadline, "the scored rows were not stored"
        time.sleep(0.1)


def _excel_serial(at: datetime) -> float:
    return (at - datetime(1899, 12, 30, tzinfo=timezone.utc)) / timedelta(days=1)


def test_taskpane_records_outcomes_from_the_selected_range(live):
    server, key = live
    _score_customers(server, key, ["c-1", "c-2", "c-3", "probe"])
    observed = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    selection = {"sheet": "Outcomes", "address": "A1:D8", "next": "E1:E8", "rowIndex": 0,
                 "values": [
                     ["name", "customer_id", "time", "actual"],  # the key is not the first column
                     ["Ann", "c-1", "", "yes"],
                     ["Bob", "c-2", "", "maybe"],             # not one of the classes
                     ["", "", "", ""],                        # an empty row: skipped
                     ["Cy", "nobody", "", "no"],              # an unknown key
                     ["Ann", "c-1", "", "yes"],               # the same outcome again
                     ["Di", "c-3", _excel_serial(observed), "no"],  # an Excel date and time
                     ["Ed", "c-2", "", "=1+1"]]}              # a formula-like actual
    with browser_page() as (page, errors):
        _connect_in_excel(page, server, key)
        # the model that tracks outcomes is preselected once its settings are read
        wait_until(page, f"document.querySelector('#outcome-model').value === '{TRACKED}'")
        assert "customer_id" in page.inner_text("#outcome-tracking")
        page.evaluate("(s) => { window.selection = s; }", selection)
        page.click("#outcome-read")
        page.wait_for_selector("#outcome-columns:not([hidden])")
        assert "Outcomes!A1:D8: 7 rows" in page.inner_text("#outcome-range")
        # preselected by name: the model's business key, actual, time
        assert [page.eval_on_selector(f"#outcome-{c}", "s => s.selectedOptions[0].textContent")
                for c in ("key", "actual", "time")] == ["customer_id", "actual", "time"]
        page.check("#outcome-write")
        # two rows a request: three requests (six rows with values), one after another
        page.evaluate("document.querySelector('#outcomes').dataset.chunkRows = '2'")
        sent_before = int(page.evaluate("ScoreBridge.state.requests"))
        page.click("#outcome-send")
        page.wait_for_selector("#outcome-message.ok, #outcome-message.bad")
        message = page.inner_text("#outcome-message")
        assert message.startswith("Sent 6 rows in 3 requests"), message
        assert "Answers written to Outcomes!E1:E8" in message
        assert page.evaluate("ScoreBridge.state.requests") - sent_before == 3
        counts = dict(page.eval_on_selector_all(
            "#outcome-counts tbody tr", "rows => rows.map(r => [r.dataset.status,"
            " Number(r.cells[1].textContent)])"))
        assert counts == {"recorded": 2, "unchanged": 1, "unknown": 1, "invalid": 2,
                          "skipped": 1}
        problems = page.eval_on_selector_all(
            "#outcome-problems li", "items => items.map(i => [i.children[0].textContent,"
            " i.children[1].textContent])")
        assert problems == [
            ["row 3 · c-2", "invalid: 'maybe' is not one of the model's classes ('no', 'yes')"],
            ["row 5 · nobody", "unknown: no tracked prediction has this business key"],
            ["row 8 · c-2", "invalid: '=1+1' is not one of the model's classes ('no', 'yes')"],
        ], problems
        # each row's answer beside the range, as text: never a formula
        (written,) = page.evaluate("window.written")
        assert written == [["outcome status"], ["recorded"], [problems[0][1]], [""],
                           [problems[1][1]], ["unchanged"], ["recorded"], [problems[2][1]]]
        assert page.evaluate("['=1+1', '+1', '-2', '@A1', 'ok'].map("
                             "ScoreBridgeOutcomes.safeText)") == [
            "'=1+1", "'+1", "'-2", "'@A1", "ok"]
        # the 1900 date system, its 29 February 1900 that never was included
        assert page.evaluate("[1, 59, 61, 45658.5, -1, 3e6].map(ScoreBridgeOutcomes.excelTime)") \
            == ["1900-01-01T00:00:00Z", "1900-02-28T00:00:00Z", "1900-03-01T00:00:00Z",
                "2025-01-01T12:00:00Z", None, None]
        screenshot(page, "excel-taskpane-outcomes.png")

        # the server joined them: the Excel date arrived as its UTC time
        quality = requests.get(f"{server.url}/api/v1/models/{TRACKED}/outcomes/quality",
                               headers={"X-API-Key": key}, timeout=30).json()
        assert [v["matched"] for v in quality["versions"]] == [2 + 1]  # and the probe
        feed = requests.get(f"{server.url}/odata/Outcomes", headers={"X-API-Key": key},
                            params={"$filter": "BusinessKey eq 'c-3'"}, timeout=30).json()
        (row,) = feed["value"]
        assert datetime.fromisoformat(row["ObservedAt"].replace("Z", "+00:00")) == observed

        # sending again counts nothing twice
        page.click("#outcome-send")
        wait_until(page, "document.querySelector('#outcome-message').textContent"
                         ".includes('3 unchanged')")

        assert all("office.js" in e or "ERR_FAILED" in e for e in errors), json.dumps(errors)

        # a model without outcome tracking, then a refused key: said plainly, nothing written
        page.select_option("#outcome-model", "churn")
        assert "does not track outcomes" in page.inner_text("#outcome-tracking")
        page.click("#outcome-send")
        wait_until(page, "document.querySelector('#outcome-message').textContent"
                         ".includes('HTTP 4')")
        message = page.inner_text("#outcome-message")
        assert message.startswith("Nothing was recorded: ScoreBridge refused the outcomes")
        assert "model 'churn' does not track outcomes" in message
        page.select_option("#outcome-model", TRACKED)
        page.fill("#key", "sb_000000000000_wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#status.bad")
        page.click("#outcome-send")
        wait_until(page, "document.querySelector('#outcome-message').textContent"
                         ".includes('HTTP 401')")
        assert "refused the API key" in page.inner_text("#outcome-message")
        assert page.get_attribute("#outcome-message", "class") == "message bad"
        # no answer at all
        page.fill("#url", "http://127.0.0.1:9")
        page.fill("#key", "sb_000000000000_other")
        page.click("button[type=submit]")
        page.wait_for_selector("#status.bad")
        page.click("#outcome-send")
        wait_until(page, "document.querySelector('#outcome-message').textContent"
                         ".includes('Cannot reach')")
        assert page.inner_text("#outcome-message") == (
            "Nothing was recorded: Cannot reach ScoreBridge at http://127.0.0.1:9")
        assert len(page.evaluate("window.written")) == 2  # the second send's answers only
