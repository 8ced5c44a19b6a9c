"""The model report's screenshot in the docs (docs/images/model-report.png), taken with headless
Chromium: the demo model and a candidate trained on fewer rows, both registered with the holdout
(the candidate kept back by the manual policy), and the candidate's report, which shows
production beside it. Run once after a change to the report: ``python
bench/report_screenshot.py`` (the holdout part of the page). The app answers in process (its
test client), so no server is started."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from server.app import create_app
from server.config import Settings
from server.demo import FEATURES, TARGET, build_pipeline, make_churn_data, train_demo
from server.deploy.registration import RegistrationRequest, register

OUT = Path(__file__).resolve().parents[1] / "docs" / "images" / "model-report.png"


def main() -> None:
    import pandas as pd

    work = Path(tempfile.mkdtemp(prefix="report-shot-"))
    files = train_demo(work / "demo")
    # the candidate: the same pipeline trained on a tenth of the rows, so the versions differ
    import skops.io as sio

    small = make_churn_data(500, seed=3)
    candidate = work / "demo" / "churn_small.skops"
    sio.dump(build_pipeline().set_params(model__max_iter=40)
             .fit(small[FEATURES], small[TARGET]), candidate)
    settings = Settings(home=work / "home", background=False, auth=False)
    app = create_app(settings)
    svc = app.extensions["scorebridge"]
    for n, artifact in enumerate((files["artifact"], candidate)):
        register(svc.registry, settings, RegistrationRequest(
            name="churn", artifact=artifact, filename=artifact.name,
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
        # the holdout part: from its heading to the next section's
        top = page.locator("#performance").bounding_box()
        end = page.locator("h2", has_text="Deployment").bounding_box()
        assert top is not None and end is not None
        page.screenshot(path=str(OUT), full_page=True, clip={
            "x": 0, "y": top["y"] - 8, "width": 1280, "height": end["y"] - top["y"]})
        browser.close()
    print(OUT, OUT.stat().st_size, file=sys.stderr)


if __name__ == "__main__":
    main()
