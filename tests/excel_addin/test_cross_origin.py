"""Excel on the web, as far as CORS goes, in real headless Chromium: a page at Office's own origin
(https://excel.officeapps.live.com, served here from a local HTTPS server with a self-signed
certificate, the name mapped to it by Chromium's host resolver) loads the add-in's functions.json
and functions.js from the ScoreBridge server cross-origin, as Excel on the web does before it
registers the functions; the same page cannot call the API, key or not."""
from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

from tests.browser import browser_page
from tests.live import free_port

OFFICE_HOST = "excel.officeapps.live.com"
PAGE = b"<!doctype html><html><head><title>Excel</title></head><body>Excel on the web</body></html>"

# what Excel on the web does with the add-in's files, and what a page would try with the API
LOAD = """async (base) => {
  const out = {};
  for (const name of ["functions.json", "functions.js"]) {
    try {
      const resp = await fetch(base + "/excel/" + name, {mode: "cors", cache: "no-store"});
      out[name] = {ok: resp.ok, status: resp.status, text: await resp.text()};
    } catch (e) { out[name] = {error: String(e)}; }
  }
  return out;
}"""
CALL_API = """async ([base, key]) => {
  const out = {};
  const calls = {
    models: [base + "/api/v1/models", {headers: {"X-API-Key": key}}],
    models_query_key: [base + "/api/v1/models?api_key=" + key, {}],
    batch: [base + "/excel/v1/batch", {method: "POST", headers: {"X-API-Key": key,
            "Content-Type": "application/json"}, body: JSON.stringify({calls: []})}],
  };
  for (const [name, [url, init]] of Object.entries(calls)) {
    try {
      const resp = await fetch(url, {...init, mode: "cors", cache: "no-store"});
      out[name] = {status: resp.status, text: await resp.text()};
    } catch (e) { out[name] = {error: String(e)}; }
  }
  return out;
}"""


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for Office's host name (openssl's command line)."""
    cert, key = folder / "office.crt", folder / "office.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={OFFICE_HOST}", "-addext", f"subjectAltName=DNS:{OFFICE_HOST}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def office_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a local HTTPS server answering for https://excel.officeapps.live.com."""
    cert, key = _certificate(tmp_path_factory.mktemp("office-tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Page)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def test_excel_on_the_web_loads_the_functions_cross_origin_and_not_the_api(live, office_page):
    server, key = live
    rules = f"--host-resolver-rules=MAP {OFFICE_HOST} 127.0.0.1:{office_page}"
    with browser_page(args=(rules,), hosts=(OFFICE_HOST,), ignore_https_errors=True) as (page, _):
        page.goto(f"https://{OFFICE_HOST}/")
        assert page.evaluate("location.origin") == f"https://{OFFICE_HOST}"  # Office's own
        loaded = page.evaluate(LOAD, server.url)
        for name in ("functions.json", "functions.js"):
            assert loaded[name].get("ok") is True, (name, loaded[name])
        metadata = json.loads(loaded["functions.json"]["text"])
        assert [f["id"] for f in metadata["functions"]][:1] == ["PREDICT"]
        assert "CustomFunctions.associate" in loaded["functions.js"]["text"]
        # the API keeps its CORS rules: the browser refuses every answer to this origin
        refused = page.evaluate(CALL_API, [server.url, key])
        for name, outcome in refused.items():
            assert "Failed to fetch" in outcome.get("error", ""), (name, outcome)
