"""The task pane in real headless Chromium: connect with a key, list the models, show errors; one key
per server; a recalculation through Excel's API after connecting and after clearing the cache."""
from __future__ import annotations

import json
import time

from tests.browser import browser_page, screenshot


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
        page.wait_for_function("document.querySelector('#models td.inputs')"
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


# Excel.run with the one call the pane makes, recording it (the pane runs here without Office)
FAKE_EXCEL = """
window.calculations = [];
window.Excel = {
  CalculationType: { recalculate: "Recalculate", full: "Full", fullRebuild: "FullRebuild" },
  run: async (batch) => {
    const queued = [];
    const context = { workbook: { application: { calculate: (type) => queued.push(type) } },
                      sync: async () => { window.calculations.push(...queued.splice(0)); } };
    return batch(context);
  },
};
"""


def test_taskpane_recalculates_after_connect_and_after_clearing_the_cache(live):
    server, key = live
    with browser_page() as (page, errors):
        page.add_init_script(FAKE_EXCEL)
        page.goto(f"{server.url}/excel/taskpane.html")
        page.fill("#key", key)
        page.click("button[type=submit]")
        page.wait_for_selector("#status.ok")
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
