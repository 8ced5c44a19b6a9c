"""Headless Chromium (Debian's) driven by Playwright, kept on this machine: any request that is
not for 127.0.0.1 (or a host a test maps to a local server) is aborted (Office.js' CDN, fonts), so
tests never reach the network."""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@contextmanager
def browser_page(width: int = 420, height: int = 900, *, args: tuple[str, ...] = (),
                 hosts: tuple[str, ...] = (),
                 ignore_https_errors: bool = False) -> Iterator[tuple[object, list[str]]]:
    """A page and the list its console errors are collected in. ``args`` go to Chromium (e.g.
    ``--host-resolver-rules`` mapping ``hosts`` to a local server), ``hosts`` are let through
    besides 127.0.0.1 and localhost, ``ignore_https_errors`` accepts a self-signed certificate."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    allowed = {"127.0.0.1", "localhost", *hosts}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS + list(args),
                                    headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height},
                                    ignore_https_errors=ignore_https_errors)
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def local_only(route):  # type: ignore[no-untyped-def]
                host = urlparse(route.request.url).hostname
                if host in allowed:
                    route.continue_()
                else:
                    route.abort()

            page.context.route("**/*", local_only)  # the page's popups too
            yield page, errors
        finally:
            browser.close()


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
