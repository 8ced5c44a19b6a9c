"""First contact: ``GET /`` answers a person with a page and a program with JSON, the guides are
pages, the favicon exists."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_home_is_a_page_for_browsers_and_json_for_programs(client):
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for href in ("/dashboard", "/docs", "/guides/excel", "/guides/powerbi"):
        assert f'href="{href}"' in html
    for accept in ("application/json", "*/*", None):
        answer = client.get("/", headers={"Accept": accept} if accept else {})
        assert answer.mimetype == "application/json", accept
        assert {link["href"] for link in answer.json["links"]} >= {"/dashboard", "/docs"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_guides_are_pages_without_foreign_markup(client):
    for guide, heading in (("excel", "Excel"), ("powerbi", "Power BI")):
        page = client.get(f"/guides/{guide}")
        assert page.status_code == 200 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        assert "<h1>" in html and heading in html and "<script" not in html
    assert client.get("/guides/word").status_code == 400


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_favicon(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.data[:4] == b"\x00\x00\x01\x00"
