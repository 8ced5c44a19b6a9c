"""The task pane in real headless Chromium: connect with a key, list the models, show errors."""
from __future__ import annotations

import json

from tests.browser import browser_page, screenshot


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
        assert page.evaluate("localStorage.getItem('scorebridge.apiKey')") == key
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
