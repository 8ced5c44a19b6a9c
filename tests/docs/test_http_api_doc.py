"""docs/http-api.md is checked against the OpenAPI document: every operation it names exists, every
URL in its examples is a documented path, every JSON body it shows is valid for its operation, and
the JSON examples really score against a server."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest

from tests.live import ROOT

DOC = (ROOT / "docs" / "http-api.md").read_text()
SECTIONS = re.split(r"<!-- operation: ", DOC)[1:]


def _sections():
    for section in SECTIONS:
        head, body = section.split(" -->", 1)
        method, path = head.split()
        yield method.lower(), path, body


def _match(template: str, path: str) -> bool:
    pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template)
    return re.fullmatch(pattern, path) is not None


@pytest.fixture
def spec(client):
    return client.get("/openapi.json", scope=None).json


def _resolve(spec, schema):
    return {**schema, "components": spec["components"]}


def test_operations_exist_and_bodies_validate(spec):
    assert len(SECTIONS) >= 10
    for method, path, body in _sections():
        assert path in spec["paths"] and method in spec["paths"][path], (method, path)
        operation = spec["paths"][path][method]
        for block in re.findall(r"```json\n(.*?)```", body, re.S):
            example = json.loads(block)
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            jsonschema.validate(example, _resolve(spec, schema))
        urls = [u for u in re.findall(r"http://127\.0\.0\.1:8000(/[^\s\"'?`]*)", body)
                if u != "/"]  # a bare base address (C#'s BaseAddress)
        assert urls, f"no example URL for {method} {path}"
        for url in urls:
            assert _match(path, url), (path, url)


def test_every_url_in_the_document_is_documented(spec):
    for url in re.findall(r"http://127\.0\.0\.1:8000(/[^\s\"'?`)]*)", DOC):
        if url == "/":
            continue
        assert any(_match(template, url) for template in spec["paths"]), url


def test_the_examples_score(client, demo_registered):
    for _method, path, body in _sections():
        if path not in ("/api/v1/models/{name}/predict", "/invocations",
                        "/v2/models/{name}/infer", "/evaluate"):
            continue
        for block in re.findall(r"```json\n(.*?)```", body, re.S):
            url = path.replace("{name}", "churn")
            resp = client.post(url, json=json.loads(block), scope="score",
                               headers={"X-Model": "churn"})
            assert resp.status_code == 200, (url, resp.json)
