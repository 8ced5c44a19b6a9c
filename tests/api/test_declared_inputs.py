"""Every route of the URL map, with odd values in every input it declares (path, query, header,
form field, body field) and in every path segment of the routes that declare nothing: never a
5xx, and every refusal a problem document that does not echo the value.

The spec fuzzer (test_fuzz.py) only reaches what the document describes; this sweep walks Flask's
URL map itself, so a route whose inputs are not declared is exercised too."""
from __future__ import annotations

import io
import re
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from server.api.declare import Declared

ODD_TEXT = ["\u00b2", "\u0663", "\uff11", "99999999999999999999999", "-1", "0", "1.5", "1e3",
            "", " ", "x" * 5000, "\x00", "true", "[]", "{}", "%", "../../etc/passwd", "NaN",
            "Churn", "churn\n", "\u202e"]
ODD_JSON: list[Any] = [None, True, 0, -1, 1.5, 10**30, "\u00b2", "", "x" * 100_000, "\x00", [],
                       {}, [[]], {"a": {"b": []}}]
_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
BASELINE = {"name": "churn", "alias": "production", "version": "1", "job_id": "0" * 32,
            "key_id": "none", "entity_set": "Models", "filename": "init.js",
            "guide": "excel"}


@pytest.fixture(scope="module")
def swept(deployed: tuple[Any, str]) -> tuple[Any, Any, dict[str, str]]:
    app, key = deployed
    return app, app.test_client(), {"X-API-Key": key}


def _routes(app: Any) -> Iterator[tuple[str, str, Declared | None]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        meta = getattr(app.view_functions[rule.endpoint], "openapi", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.rule, method, meta["declared"] if meta else None


def _path(rule: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: quote(values.get(m.group("name"),
                                                 BASELINE.get(m.group("name"), "x")), safe=""),
                      rule)


def _check(resp: Any, where: str, sent: Any) -> None:
    assert resp.status_code < 500, (where, resp.status_code, resp.get_data(as_text=True)[:300])
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json", (where, resp.mimetype)
        if isinstance(sent, str) and len(sent) >= 100:
            assert sent[:100] not in resp.get_data(as_text=True), (where, "echoed")


def _fields(model: Any) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()] if model else []


def _requests(rule: str, method: str, declared: Declared | None) -> Iterator[tuple[str, dict]]:
    """(what is odd, keyword arguments of the test client's open) for one route."""
    path_names = [m.group("name") for m in _PARAM.finditer(rule)]
    for name in path_names:
        for value in ODD_TEXT:
            yield f"path {name}={value[:20]!r}", {"path": _path(rule, {name: value})}
    base = _path(rule, {})
    if declared is None:
        for value in ODD_TEXT[:6]:
            yield f"query ?x={value!r}", {"path": base, "query_string": {"x": value}}
        return
    for name in _fields(declared.query):
        for value in ODD_TEXT:
            yield f"query {name}={value[:20]!r}", {"path": base, "query_string": {name: value}}
    for name in _fields(declared.headers):
        for value in ODD_TEXT:
            if "\x00" in value or "\n" in value:
                continue  # not a header value any client can send
            yield f"header {name}={value[:20]!r}", {"path": base, "headers": {name: value}}
    for name in _fields(declared.form):
        for value in ODD_TEXT:
            yield f"form {name}={value[:20]!r}", {
                "path": base, "content_type": "multipart/form-data",
                "data": {name: value, "file": (io.BytesIO(value.encode()), "x.csv")}}
    if declared.body is not None:
        names = _fields(declared.body)
        for value in ODD_JSON:
            yield f"body (every field)={str(value)[:20]!r}", {
                "path": base, "json": {n: value for n in names}}
            yield f"body={str(value)[:20]!r}", {"path": base, "json": value}
            for name in names:
                yield f"body {name}={str(value)[:20]!r}", {"path": base, "json": {name: value}}
    for media_type in declared.raw:
        for value in ("", "\x00", "x" * 5000, "a,b\n\u00b2,\x00\n"):
            yield f"{media_type} body {value[:20]!r}", {
                "path": base, "data": value.encode(), "content_type": media_type}


def test_every_route_survives_odd_values_in_every_declared_input(swept: Any) -> None:
    app, client, headers = swept
    sent = 0
    for rule, method, declared in _routes(app):
        for what, kwargs in _requests(rule, method, declared):
            kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
            resp = client.open(method=method, **kwargs)
            odd = kwargs.get("json", kwargs.get("data", kwargs.get("query_string")))
            _check(resp, f"{method} {rule}: {what}", odd if isinstance(odd, str) else None)
            resp.close()
            sent += 1
    assert sent > 2000, sent


def test_every_documented_route_declares_its_path_values(swept: Any) -> None:
    """A path value the view reads without a declaration would reach it unchecked."""
    app, _, _ = swept
    for rule, _, declared in _routes(app):
        names = {m.group("name") for m in _PARAM.finditer(rule)}
        if declared is None or not names:
            continue
        assert declared.path is not None, rule
        assert names <= set(_fields(declared.path)), rule


@pytest.mark.parametrize("query, fragment", [
    ("version=\u00b2", "query parameter 'version' must be a positive integer written with the "
                       "digits 0-9"),
    ("version=\u0663", "digits 0-9"),
    ("version=99999999999999999999999", "query parameter 'version' must be at most 2147483647"),
    ("version=0", "must be at least 1"),
    ("alias=Bad%20Alias", "invalid alias"),
    ("errors=sometimes", "query parameter 'errors' must be 'raise' or 'row'"),
])
def test_a_refusal_names_the_parameter_and_what_it_expected(swept: Any, query: str,
                                                            fragment: str) -> None:
    _, client, headers = swept
    resp = client.post(f"/api/v1/models/churn/predict?{query}", headers=headers,
                       json={"rows": [[12, 70.5, "month-to-month", "electronic-check", 3,
                                       "fiber"]]})
    assert 400 <= resp.status_code < 500 and resp.mimetype == "application/problem+json"
    assert fragment in resp.json["detail"], resp.json
