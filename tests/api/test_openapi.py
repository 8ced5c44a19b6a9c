"""The OpenAPI document covers every documented route and is a valid OpenAPI 3 document."""
from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_openapi_is_valid_and_complete(app, client):
    spec = client.get("/openapi.json", scope=None).json
    validate(spec)
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/docs", "/reports/assets")) or rule.rule == "/openapi.json":
            continue
        if rule.rule.startswith("/excel/") and "/v1/" not in rule.rule and \
                rule.rule != "/excel/manifest.xml":
            continue  # the add-in's static files
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)


def test_security_follows_scopes(client):
    spec = client.get("/openapi.json", scope=None).json
    predict = spec["paths"]["/api/v1/models/{name}/predict"]["post"]
    assert predict["x-required-scope"] == "score"
    assert {"ApiKeyHeader": []} in predict["security"]
    assert {"ApiKeyQuery": []} not in predict["security"]
    models = spec["paths"]["/api/v1/models"]["get"]
    assert {"ApiKeyQuery": []} in models["security"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_docs_are_served_locally(client):
    page = client.get("/docs", scope=None)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "https://" not in html and "http://" not in html
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        resp = client.get(asset, scope=None)
        assert resp.status_code == 200, asset
        assert len(resp.get_data()) > 100
    assert client.get("/docs/assets/../../server/app.py", scope=None).status_code == 404
