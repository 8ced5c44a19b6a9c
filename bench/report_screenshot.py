"""The model report's screenshot in the docs (docs/images/model-report.png), taken with headless
Chromium: the demo model registered twice with its holdout (the second a candidate kept back by
the manual policy), and the candidate's report, which shows production beside it. Run once after
a change to the report: ``python bench/report_screenshot.py``. The app answers in process (its
test client), so no server is started."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from server.app import create_app
from server.config import Settings
from server.demo import train_demo
from server.deploy.registration import RegistrationRequest, register

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "model-report.png"


def main() -> None:
    import pandas as pd

    work = Path(tempfile.mkdtemp(prefix="report-shot-"))
    files = train_demo(work / "demo")
    settings = Settings(home=work / "home", background=False, auth=False)
    app = create_app(settings)
    svc = app.extensions["scorebridge"]
    for n in range(2):
        register(svc.registry, settings, RegistrationRequest(
            name="churn", artifact=files["artifact"], filename=files["artifact"].name,
            actor="screenshot", sample=pd.read_csv(files["sample"]),
            holdout=pd.read_csv(files["holdout"]), target="churned"))
        if n == 0:
            svc.registry.set_policy("churn", {"policy": "manual"}, actor="screenshot")
    client = app.test_client()

    def answer(route):  # type: ignore[no-untyped-def]
        resp = client.get(route.request.url.split("127.0.0.1", 1)[1])
        route.fulfill(status=resp.status_code, body=resp.data, content_type=resp.mimetype)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda r: answer(r) if "127.0.0.1" in r.request.url else r.abort())
        page.goto("http://127.0.0.1/models/churn/report?version=2")
        page.wait_for_selector("#performance-charts")
        OUT.parent.mkdir(parents=True, exist_ok=True)
        page.locator("#performance").scroll_into_view_if_needed()
        page.screenshot(path=str(OUT), full_page=True)
        browser.close()
    print(OUT, OUT.stat().st_size, file=sys.stderr)


if __name__ == "__main__":
    main()
