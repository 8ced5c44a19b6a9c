"""The OData v4 feed: direct HTTP checks and a real OData client library from PyPI."""
from __future__ import annotations

import base64

import pytest
import requests
from defusedxml import ElementTree as ET

from tests.conftest import assert_problem, register_file
from tests.live import env_for, serve, setup_cli

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
def models(client, demo_files):
    for name in ("alpha", "beta", "churn"):
        assert register_file(client, name, demo_files["artifact"],
                             demo_files["sample"]).status_code == 201
    register_file(client, "churn", demo_files["artifact"])


def get(client, url, scope="read"):
    resp = client.get(url, scope=scope)
    assert resp.headers["OData-Version"] == "4.0"
    return resp


def test_service_document_and_metadata(client, models):
    doc = get(client, "/odata/")
    assert doc.status_code == 200 and doc.mimetype == "application/json"
    assert doc.json["@odata.context"] == "http://localhost/odata/$metadata"
    assert [s["name"] for s in doc.json["value"]] == [
        "Models", "ModelVersions", "Events", "Traffic", "Drift", "Jobs",
        "Predictions_alpha", "Scored_alpha", "JobRows_alpha", "Predictions_beta", "Scored_beta",
        "JobRows_beta", "Predictions_churn", "Scored_churn", "JobRows_churn"]
    meta = get(client, "/odata/$metadata")
    root = ET.fromstring(meta.data)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    assert {"Model", "ModelVersion", "Event", "TrafficMinute", "DriftMeasure",
            "Prediction_churn"} <= set(types)
    # a model's predictions are typed from its signature
    typed = {p.get("Name"): p.get("Type") for p in types["Prediction_churn"].iter(f"{EDM}Property")}
    assert typed["tenure_months"] == "Edm.Int64" and typed["monthly_charges"] == "Edm.Double"
    assert typed["contract"] == "Edm.String" and typed["Prediction"] == "Edm.String"
    keys = [k.get("Name") for k in types["ModelVersion"].find(f"{EDM}Key")]
    assert keys == ["Model", "Version"]
    props = {p.get("Name"): p.get("Type") for p in types["Model"].iter(f"{EDM}Property")}
    assert props["ProductionVersion"] == "Edm.Int32" and props["CreatedAt"] == "Edm.DateTimeOffset"
    sets = [s.get("Name") for s in root.iter(f"{EDM}EntitySet")]
    assert sets[:6] == ["Models", "ModelVersions", "Events", "Traffic", "Drift", "Jobs"]


def test_entity_sets_and_query_options(client, models):
    rows = get(client, "/odata/Models").json["value"]
    assert [r["Name"] for r in rows] == ["alpha", "beta", "churn"]
    churn = rows[2]
    assert churn["ProductionVersion"] == 1 and churn["LatestVersion"] == 2
    assert churn["Policy"] == "auto" and churn["CreatedAt"].endswith("Z")
    sel = get(client, "/odata/Models?$select=Name,LatestVersion&$filter=Name eq 'churn'").json
    assert sel["value"] == [{"Name": "churn", "LatestVersion": 2}]
    versions = get(client, "/odata/ModelVersions?$filter=Model eq 'churn'&$orderby=Version desc"
                           "&$count=true").json
    assert versions["@odata.count"] == 2
    assert [(v["Version"], v["IsProduction"], v["Pipeline"]) for v in versions["value"]] == [
        (2, False, "pending"), (1, True, "done")]
    top = get(client, "/odata/Events?$top=2&$skip=1&$orderby=Id").json["value"]
    assert [e["Id"] for e in top] == [2, 3]
    contains = get(client, "/odata/Models?$filter=contains(Name,'ha') or ProductionVersion gt 5")
    assert [r["Name"] for r in contains.json["value"]] == ["alpha"]


def test_server_driven_paging(client, services, models):
    object.__setattr__(services.settings, "odata_page_size", 4)
    first = get(client, "/odata/Events?$orderby=Id&$filter=Kind ne 'x'").json
    assert len(first["value"]) == 4
    link = first["@odata.nextLink"]
    assert link.startswith("http://localhost/odata/Events?") and "%24skip=4" in link
    seen = [e["Id"] for e in first["value"]]
    while link:
        page = get(client, link.replace("http://localhost", "")).json
        seen += [e["Id"] for e in page["value"]]
        link = page.get("@odata.nextLink")
    total = get(client, "/odata/Events?$count=true&$top=0").json["@odata.count"]
    assert seen == sorted(seen) and len(seen) == total
    limited = get(client, "/odata/Events?$top=6&$orderby=Id").json
    assert len(limited["value"]) == 4 and "%24top=2" in limited["@odata.nextLink"]
    # Power Query folds "Keep top rows 100,000" into $top: served over pages, not refused
    kept = get(client, "/odata/Events?$top=100000&$orderby=Id").json
    assert len(kept["value"]) == 4 and "%24top=99996" in kept["@odata.nextLink"]


@pytest.mark.parametrize("query, fragment", [
    ("$filter=Name eq", "could not be understood"),
    ("$filter=Nope eq 1", "unknown property"),
    ("$filter=Name eq 'x'; DROP TABLE models", "could not be understood"),
    ("$select=Name,Password", "no property 'Password'"),
    ("$orderby=Name sideways", "$orderby"),
    ("$top=-1", "'$top' must be a whole number"),
    ("$top=²", "'$top' must be a whole number"),
    ("$skip=99999999999999999999999", "'$skip' must be at most"),
    ("$expand=Versions", "unsupported query option"),
    ("$format=xml", "$format=json"),
])
def test_bad_query_options_are_400(client, models, query, fragment):
    resp = get(client, f"/odata/Models?{query}")
    body = assert_problem(resp, 400, fragment)
    assert body["error"]["message"] == body["detail"]  # what OData clients read
    assert get(client, "/odata/Models").json["value"]  # and nothing was dropped


def test_unknown_entity_set_and_auth(client, keys, models):
    assert_problem(get(client, "/odata/Secrets"), 404, "no entity set 'Secrets'")
    anonymous = client.client.get("/odata/Models")
    assert anonymous.status_code == 401
    via_query = client.client.get(f"/odata/Models?api_key={keys['read']}")
    assert via_query.status_code == 200
    assert "api_key" not in via_query.json["value"][0]
    auth = "Basic " + base64.b64encode(f"powerbi:{keys['read']}".encode()).decode()
    assert client.client.get("/odata/", headers={"Authorization": auth}).status_code == 200
    assert client.client.get("/odata/Models", headers={"X-API-Key": keys["score"]}).status_code == 403


@pytest.mark.slow
def test_a_real_odata_client_reads_the_feed(tmp_path, demo_files, monkeypatch):
    """python-odata (an OData v4 client from PyPI) against a live server: service document,
    $metadata, $filter, $select and paging through every page."""
    from odata import ODataService

    home = tmp_path / "home"
    env = env_for(home, SCOREBRIDGE_ODATA_PAGE_SIZE="4")
    for name in ("alpha", "beta", "churn"):
        setup_cli("register", str(demo_files["artifact"]), "--name", name, env=env)
    key = setup_cli("keys", "create", "--scope", "read", env=env).stdout.strip()
    server = serve(env)
    try:
        session = requests.Session()
        session.auth = ("powerbi", key)
        service = ODataService(f"{server.url}/odata/", reflect_entities=True, session=session,
                               quiet_progress=True)
        assert {"Events", "ModelVersions", "Models", "Traffic"} <= set(service.entities)
        Model = service.entities["Models"]
        names = [m.Name for m in service.query(Model).order_by(Model.Name.asc()).all()]
        assert names == ["alpha", "beta", "churn"]
        churn = service.query(Model).filter(Model.Name == "churn").first()
        assert churn.ProductionVersion == 1
        Event = service.entities["Events"]
        kinds = service.query(Event).select(Event.Kind).all()
        assert len(kinds) == len(service.query(Event).all()) >= 9
        # pages of 4: the client follows @odata.nextLink to the end
        events = service.query(Event).order_by(Event.Id.asc()).all()
        assert [e.Id for e in events] == list(range(1, len(events) + 1))
    finally:
        server.stop()


def test_logged_predictions_are_a_typed_feed(client, services, models):
    services.registry.set_monitoring("churn", {"log": True, "sample_rate": 1.0}, actor="t")
    services.scorer.deployments.invalidate()
    from tests.conftest import churn_rows, jsonable

    rows = jsonable(churn_rows(10))
    client.post("/api/v1/models/churn/predict", json={"rows": rows}, scope="score",
                headers={"X-ScoreBridge-Client": "powerbi"})
    services.worker.run_once()
    feed = get(client, "/odata/Predictions_churn?$orderby=Id&$count=true").json
    assert feed["@odata.count"] == 10
    first = feed["value"][0]
    assert first["tenure_months"] == rows[0][0] and first["contract"] == rows[0][2]
    assert first["Client"] == "powerbi" and first["Version"] == 1
    assert first["Prediction"] in ("yes", "no") and 0 <= first["Probability"] <= 1
    big = get(client, "/odata/Predictions_churn?$filter=monthly_charges gt 60 and "
                      "contract eq 'month-to-month'&$select=Id,monthly_charges").json["value"]
    assert all(set(r) == {"Id", "monthly_charges"} and r["monthly_charges"] > 60 for r in big)
    assert get(client, "/odata/Predictions_beta").json["value"] == []
