"""The OData v4 feed: direct HTTP checks and a real OData client library from PyPI."""
from __future__ import annotations

import base64
import io
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import requests
from defusedxml import ElementTree as ET

from tests.conftest import assert_problem, register_file
from tests.csdl import assert_valid_csdl
from tests.live import ROOT, env_for, serve, setup_cli

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
        "Models", "ModelVersions", "Events", "Traffic", "Drift", "Jobs", "Outcomes",
        "TrafficByUser", "OutcomeQuality", "Columns", "Predictions_alpha", "Scored_alpha",
        "JobRows_alpha", "Predictions_beta", "Scored_beta", "JobRows_beta", "Predictions_churn",
        "Scored_churn", "JobRows_churn"]
    meta = get(client, "/odata/$metadata")
    root = ET.fromstring(meta.data)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    assert {"Model", "ModelVersion", "Event", "TrafficMinute", "TrafficUserHour", "DriftMeasure",
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
    assert sets[:10] == ["Models", "ModelVersions", "Events", "Traffic", "Drift", "Jobs", "Outcomes",
                        "TrafficByUser", "OutcomeQuality", "Columns"]


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



@pytest.mark.slow
def test_a_real_odata_client_reads_business_named_columns(tmp_path, business_files):
    """python-odata reflects the feed of a model whose columns have spaces, symbols, a leading
    digit and other scripts, and queries it by the derived names, over pages of 4."""
    from odata import ODataService

    env = env_for(tmp_path / "home", SCOREBRIDGE_ODATA_PAGE_SIZE="4")
    setup_cli("register", str(business_files["artifact"]), "--name", "contract-risk", "--sample",
              str(business_files["sample"]), env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    frame = business_files["frame"].head(10)
    server = serve(env)
    try:
        job = requests.post(f"{server.url}/api/v1/jobs", headers={"X-API-Key": key},
                            files={"file": ("in.csv", frame.to_csv(index=False).encode())},
                            data={"model": "contract-risk", "publish": "true"}, timeout=60).json()
        _wait_for_job(server.url, key, job["id"])
        session = requests.Session()
        session.auth = ("powerbi", key)
        assert_valid_csdl(session.get(f"{server.url}/odata/$metadata", timeout=10).content)
        service = ODataService(f"{server.url}/odata/", reflect_entities=True, session=session,
                               quiet_progress=True)
        Scored = service.entities["Scored_contract_risk"]
        rows = service.query(Scored).order_by(Scored.Row.asc()).all()  # three pages
        assert len(rows) == 10
        for row, (_, source) in zip(rows, frame.iterrows()):
            for column, prop in BUSINESS_NAMES.items():
                assert getattr(row, prop) == source[column], (prop, column)
            assert row.prediction == business_files["model"].predict(source.to_frame().T)[0]
        # (python-odata types Edm.Double as a string: the filter is on an Edm.Int64)
        size, turnover = Scored.Größe, Scored.Ümsatz__
        big = service.query(Scored).filter(turnover > 500).order_by(size.desc()).all()
        expected = frame[frame["Ümsatz €"] > 500].sort_values("Größe", ascending=False)
        assert len(expected) >= 2
        assert [r.Größe for r in big] == expected["Größe"].tolist()
        contract = Scored._2nd_contract
        picked = service.query(Scored).filter(contract == "annual").select(Scored.Row_2).all()
        assert len(picked) == (frame["2nd contract"] == "annual").sum() > 0
        Columns = service.entities["Columns"]
        labels = {c.Property: c.Label for c in service.query(Columns).all()}
        assert labels["Monthly_Charges____"] == "Monthly Charges ($)"
    finally:
        server.stop()


def _wait_for_job(url: str, key: str, job_id: str) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = requests.get(f"{url}/api/v1/jobs/{job_id}", headers={"X-API-Key": key},
                              timeout=10).json()
        if status["status"] not in ("queued", "running"):
            assert status["status"] == "succeeded", status
            return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")

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


# -- a model whose columns are named as business data names them --------------------------------

LONG = ("Average monthly charges over the customer's whole contract, in US dollars, before "
        "discounts, taxes and fees, as billed by the provider")  # 134 characters
BUSINESS_CATEGORIES = ["2nd contract", "Region", "region"]
# each column's property name, by the rule of docs/http-api.md ("Property names")
BUSINESS_NAMES = {
    "Monthly Charges ($)": "Monthly_Charges____",  # each symbol or space one "_"
    "2nd contract": "_2nd_contract",                # a digit cannot start a name
    "tenure-months": "tenure_months_2",             # "tenure_months" is valid and keeps its name
    "tenure_months": "tenure_months",
    "Größe": "Größe",                               # letters of any script are kept
    "Ümsatz €": "Ümsatz__",
    "Region": "Region",
    "region": "region_2",                           # differs only by case from "Region"
    "Row": "Row_2",                                 # the scored feeds' own key
    "id": "id_2",                                   # the prediction log's "Id", ignoring case
    'Size "XL"': "Size__XL_",
    LONG: re.sub(r"[^A-Za-z0-9_]", "_", LONG)[:128],  # cut to 128 characters
}


@pytest.fixture(scope="session")
def business_files(tmp_path_factory):
    """A small scikit-learn pipeline trained on a frame with those column names."""
    import numpy as np
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "Monthly Charges ($)": rng.uniform(20, 120, n).round(2),
        "2nd contract": rng.choice(["none", "annual", "monthly"], n),
        "tenure-months": rng.integers(0, 72, n), "tenure_months": rng.integers(0, 72, n),
        "Größe": rng.uniform(0, 1, n).round(3), "Ümsatz €": rng.integers(0, 1000, n),
        "Region": rng.choice(["north", "south"], n), "region": rng.choice(["east", "west"], n),
        "Row": rng.integers(0, 10, n), "id": rng.integers(0, 1000, n),
        'Size "XL"': rng.integers(0, 3, n), LONG: rng.uniform(0, 100, n).round(1),
    })
    assert list(frame.columns) == list(BUSINESS_NAMES)
    target = np.where(frame["Monthly Charges ($)"] > 70, "will leave", "stays")
    numeric = [c for c in frame.columns if c not in BUSINESS_CATEGORIES]
    pipeline = Pipeline([
        ("pre", ColumnTransformer([("num", "passthrough", numeric),
                                   ("cat", OneHotEncoder(handle_unknown="ignore"),
                                    BUSINESS_CATEGORIES)])),
        ("model", DecisionTreeClassifier(max_depth=3, random_state=0))]).fit(frame, target)
    folder = tmp_path_factory.mktemp("business")
    sio.dump(pipeline, folder / "risk.skops")
    frame.head(200).to_csv(folder / "sample.csv", index=False)
    return {"artifact": folder / "risk.skops", "sample": folder / "sample.csv",
            "frame": frame, "model": pipeline}


@pytest.fixture
def business(client, services, business_files):
    """"contract-risk" registered, 8 predictions logged and 10 rows published by a job."""
    assert register_file(client, "contract-risk", business_files["artifact"],
                         business_files["sample"]).status_code == 201
    services.registry.set_monitoring("contract-risk", {"log": True, "sample_rate": 1.0}, actor="t")
    services.scorer.deployments.invalidate()
    from tests.conftest import jsonable

    frame = business_files["frame"]
    resp = client.post("/api/v1/models/contract-risk/predict", scope="score",
                       json={"dataframe_split": {"columns": list(frame.columns),
                                                 "data": jsonable(frame.head(8))}})
    assert resp.status_code == 200, resp.json
    services.worker.run_once()
    job = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data", data={
        "file": (io.BytesIO(frame.head(10).to_csv(index=False).encode()), "in.csv"),
        "model": "contract-risk", "publish": "true"})
    assert job.status_code == 202, job.json
    assert services.runner.run_pending() == ["succeeded"]
    return frame


def test_metadata_of_business_column_names_is_valid_csdl(client, business):
    sets = assert_valid_csdl(get(client, "/odata/$metadata").data)
    for name in ("Predictions_contract_risk", "Scored_contract_risk", "JobRows_contract_risk"):
        props = sets[name]["props"]
        # each column is a property named by the rule, its own name kept as Core.Description
        for column, prop in BUSINESS_NAMES.items():
            assert props[prop]["annotations"].get("Description", prop) == column, (name, prop)
        assert props["Größe"]["annotations"] == {}  # a valid name needs no note
        assert sets[name]["annotations"]["Description"].endswith("model contract-risk")
    scored = sets["Scored_contract_risk"]["props"]
    assert scored["Monthly_Charges____"]["type"] == "Edm.Double"
    assert scored["tenure_months_2"]["type"] == "Edm.Int64"
    assert scored["Row"]["nullable"] == "false" and scored["Row_2"]["nullable"] == "true"
    assert scored["probability_will_leave"]["annotations"] == {
        "Description": "probability_will leave"}
    assert {"probability_stays", "prediction", "error"} <= set(scored)
    log = sets["Predictions_contract_risk"]["props"]
    assert {"Id", "id_2", "Prediction", "Probability"} <= set(log)


def test_feeds_of_business_columns_answer_with_the_declared_names(client, business):
    sets = assert_valid_csdl(get(client, "/odata/$metadata").data)
    frame = business
    for name, rows in (("Predictions_contract_risk", 8), ("Scored_contract_risk", 10),
                       ("JobRows_contract_risk", 10)):
        feed = get(client, f"/odata/{name}?$count=true").json
        assert feed["@odata.count"] == rows
        for row in feed["value"]:
            assert list(row) == list(sets[name]["props"]), name  # payload keys = metadata
    scored = get(client, "/odata/Scored_contract_risk?$orderby=Row").json["value"]
    for row, (_, source) in zip(scored, frame.head(10).iterrows()):
        for column, prop in BUSINESS_NAMES.items():
            assert row[prop] == source[column], (prop, row[prop], source[column])
        assert row["Row_2"] == source["Row"] and row["Row"] >= 0
    log = get(client, "/odata/Predictions_contract_risk?$orderby=Id").json["value"]
    assert [r["Ümsatz__"] for r in log] == frame["Ümsatz €"].head(8).tolist()
    assert [r['Size__XL_'] for r in log] == frame['Size "XL"'].head(8).tolist()


@pytest.mark.parametrize("query, expected", [
    ("$filter=Größe gt 0.5&$select=Row,Größe", lambda f: f[f["Größe"] > 0.5]["Größe"]),
    ("$filter=Ümsatz__ lt 500 and _2nd_contract eq 'annual'&$select=Row,Ümsatz__",
     lambda f: f[(f["Ümsatz €"] < 500) & (f["2nd contract"] == "annual")]["Ümsatz €"]),
    ("$filter=Monthly_Charges____ ge 70&$orderby=Monthly_Charges____ desc"
     "&$select=Monthly_Charges____",
     lambda f: f[f["Monthly Charges ($)"] >= 70]["Monthly Charges ($)"]
     .sort_values(ascending=False)),
    ("$filter=tenure_months_2 gt tenure_months&$select=tenure_months_2",
     lambda f: f[f["tenure-months"] > f["tenure_months"]]["tenure-months"]),
    ("$filter=region_2 eq 'east' and Region eq 'north'&$select=Row_2",
     lambda f: f[(f["region"] == "east") & (f["Region"] == "north")]["Row"]),
])
def test_query_options_take_the_derived_names(client, business, query, expected):
    frame = business.head(10)
    rows = get(client, f"/odata/Scored_contract_risk?{query}").json["value"]
    selected = query.split("$select=")[1].split(",")
    assert all(list(r) == selected for r in rows)
    assert [r[selected[-1]] for r in rows] == expected(frame).tolist()


def test_an_original_column_name_is_refused_with_its_property(client, business):
    body = assert_problem(get(client, "/odata/Scored_contract_risk?$select=tenure-months"), 400,
                          "no property 'tenure-months'", "is the property 'tenure_months_2'")
    assert body["error"]["message"] == body["detail"]
    assert_problem(get(client, "/odata/Scored_contract_risk?$orderby=Row asc,region desc"), 400,
                   "the column 'region' is the property 'region_2'")


def test_columns_set_maps_each_property_to_a_label_power_bi_can_use(client, business):
    rows = get(client, "/odata/Columns?$filter=Model eq 'contract-risk'&$orderby=Property").json
    by_property = {r["Property"]: r for r in rows["value"]}
    assert {p: r["Source"] for p, r in by_property.items()} == {
        **{p: c for c, p in BUSINESS_NAMES.items()},
        "probability_stays": "probability_stays",
        "probability_will_leave": "probability_will leave"}
    labels = {p: r["Label"] for p, r in by_property.items()}
    # the column's own name, unless it would clash (ignoring case) with another column
    assert labels["Monthly_Charges____"] == "Monthly Charges ($)"
    assert labels["tenure_months_2"] == "tenure-months"
    assert labels["Ümsatz__"] == "Ümsatz €"
    assert labels["region_2"] == "region_2" and labels["Row_2"] == "Row_2"
    assert labels["id_2"] == "id_2"
    fixed = {p.lower() for p in ("Row", "Job", "prediction", "error", "Id", "Prediction")}
    shown = {r["Label"].lower() for r in rows["value"]} | fixed
    assert len(shown) == len(rows["value"]) + len(fixed)  # none differ only by case


def test_models_whose_names_differ_by_a_dash_get_their_own_sets(client, services, demo_files):
    for name in ("churn-v2", "churn_v2"):
        assert register_file(client, name, demo_files["artifact"]).status_code == 201
    sets = assert_valid_csdl(get(client, "/odata/$metadata").data)
    # the first registered keeps the plain name, the later one takes the suffix
    assert sets["Predictions_churn_v2"]["annotations"]["Description"].endswith("model churn-v2")
    assert sets["Predictions_churn_v2_2"]["annotations"]["Description"].endswith("churn_v2")
    assert {"Scored_churn_v2_2", "JobRows_churn_v2_2"} <= set(sets)
    services.registry.set_monitoring("churn_v2", {"log": True, "sample_rate": 1.0}, actor="t")
    services.scorer.deployments.invalidate()
    from tests.conftest import churn_rows, jsonable

    assert client.post("/api/v1/models/churn_v2/predict", json={"rows": jsonable(churn_rows(3))},
                       scope="score").status_code == 200
    services.worker.run_once()
    assert get(client, "/odata/Predictions_churn_v2").json["value"] == []
    assert len(get(client, "/odata/Predictions_churn_v2_2").json["value"]) == 3
    names = [s["name"] for s in get(client, "/odata/").json["value"]]
    assert len(names) == len(set(names)) == len(sets)


def test_the_odata_templates_name_sets_and_properties_the_feed_has(client, business, demo_files):
    """Every set a powerbi/templates/odata-*.m navigates to exists and every field its row filters
    read is a property of it; odata-scored.m's renames, done on the business model, leave no two
    columns that differ only by case."""
    assert register_file(client, "churn", demo_files["artifact"]).status_code == 201  # as they use
    sets = assert_valid_csdl(get(client, "/odata/$metadata").data)
    templates = sorted((ROOT / "powerbi" / "templates").glob("odata-*.m"))
    assert "odata-scored.m" in [t.name for t in templates]
    for template in templates:
        text = template.read_text()
        steps = dict(re.findall(r'(\w+) = Source\{\[Name = "(\w+)", Signature = "table"\]\}', text))
        assert steps, template.name
        for step, name in steps.items():
            assert name in sets, (template.name, name)
            for condition in re.findall(rf"Table\.SelectRows\({step}, each (.*)\)", text):
                for field in re.findall(r"\[(\w+)\]", condition):
                    assert field in sets[name]["props"], (template.name, name, field)
    rows = get(client, "/odata/Columns?$filter=Model eq 'contract-risk'").json["value"]
    renames = {r["Property"]: r["Label"] for r in rows if r["Property"] != r["Label"]}
    shown = [renames.get(p, p) for p in sets["Scored_contract_risk"]["props"]]
    assert len({c.lower() for c in shown}) == len(shown)
    assert {"Monthly Charges ($)", "2nd contract", "tenure-months", "tenure_months"} <= set(shown)


# -- live quality from recorded outcomes ------------------------------------------------------

QUALITY_DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
QUALITY_PROPS = {"Model": "Edm.String", "Version": "Edm.Int32", "WindowStart": "Edm.DateTimeOffset",
                 "WindowEnd": "Edm.DateTimeOffset", "Matched": "Edm.Int32",
                 **{f"{prefix}{m}": "Edm.Double" for prefix in ("", "Holdout")
                    for m in ("Accuracy", "F1Macro", "RocAuc", "LogLoss", "CalibrationError", "R2",
                              "MAE", "RMSE")}}
METRIC_PROPS = {"Accuracy": "accuracy", "F1Macro": "f1_macro", "RocAuc": "roc_auc",
                "LogLoss": "log_loss", "CalibrationError": "calibration_error", "R2": "r2",
                "MAE": "mae", "RMSE": "rmse"}


def _scored_days(score, record, days=3, rows=40):
    """Predictions on ``days`` simulated days (``score(day, records)`` answers each row's
    reference: its prediction id or business key), then their true outcomes recorded
    (``record(outcomes)``)."""
    from server.demo import FEATURES, TARGET, make_churn_data

    outcomes = []
    for day in range(days):
        data = make_churn_data(rows, seed=70 + day)
        frame = data[FEATURES].assign(customer_id=[f"d{day}-{i}" for i in range(rows)])
        refs = score(day, json.loads(frame.to_json(orient="records")))
        outcomes += [{**ref, "actual": truth,
                      "time": (QUALITY_DAY0 + timedelta(days=day + 5)).isoformat()}
                     for ref, truth in zip(refs, data[TARGET])]
    record(outcomes)


def _expected_windows(quality):
    """GET .../outcomes/quality's windows as the OutcomeQuality entities should hold them."""
    out = []
    for item in quality["versions"]:
        for w in item["windows"]:
            out.append({"Model": quality["model"], "Version": item["version"],
                        "WindowStart": w["start"], "WindowEnd": w["end"], "Matched": w["matched"],
                        **{p: w["metrics"].get(m) for p, m in METRIC_PROPS.items()},
                        **{f"Holdout{p}": item["holdout"].get(m) for p, m in METRIC_PROPS.items()}})
    return out


def _odata_time(text):
    return datetime.fromisoformat(text).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture
def quality(client, services, demo_files):
    """churn (holdout metrics, outcome tracking on), 3 days of predictions and their outcomes;
    alpha tracks nothing (it has no rows)."""
    assert register_file(client, "alpha", demo_files["artifact"]).status_code == 201
    assert register_file(client, "churn", demo_files["artifact"], demo_files["sample"],
                         holdout=demo_files["holdout"],
                         metadata=json.dumps({"target": "churned"})).status_code == 201
    assert client.put("/api/v1/models/churn/monitoring", json={"outcomes": {"enabled": True}},
                      scope="deploy").status_code == 200

    def score(day, records):
        services.scorer.outcome_log.clock = lambda: QUALITY_DAY0 + timedelta(days=day)
        resp = client.post("/api/v1/models/churn/predict", json={"records": records},
                           scope="score")
        assert resp.status_code == 200, resp.json
        return [{"prediction_id": pid} for pid in resp.json["prediction_ids"]]

    def record(outcomes):
        resp = client.post("/api/v1/models/churn/outcomes", json={"outcomes": outcomes},
                           scope="score")
        assert resp.json["counts"] == {"recorded": len(outcomes)}, resp.json

    _scored_days(score, record)
    found = client.get("/api/v1/models/churn/outcomes/quality", scope="read").json
    return _expected_windows(found)


def test_outcome_quality_is_a_typed_set_equal_to_the_api(client, services, quality):
    sets = assert_valid_csdl(get(client, "/odata/$metadata").data)
    props = sets["OutcomeQuality"]["props"]
    assert {n: p["type"] for n, p in props.items()} == QUALITY_PROPS
    assert props["WindowStart"]["nullable"] == "false" and props["RocAuc"]["nullable"] == "true"
    assert len(quality) == 3 and [w["Matched"] for w in quality] == [40, 40, 40]
    assert quality[0]["RocAuc"] is not None and quality[0]["R2"] is None
    rows = get(client, "/odata/OutcomeQuality").json["value"]
    assert len(rows) == len(quality)
    for got, want in zip(rows, quality):
        assert set(got) == set(QUALITY_PROPS)
        assert got["WindowStart"] == _odata_time(want["WindowStart"])
        assert got["WindowEnd"] == _odata_time(want["WindowEnd"])
        for name in QUALITY_PROPS:
            if name not in ("WindowStart", "WindowEnd"):
                assert got[name] == (pytest.approx(want[name]) if isinstance(want[name], float)
                                     else want[name]), name
    # query options work on the computed rows as on every set
    second = _odata_time(quality[1]["WindowStart"])
    picked = get(client, f"/odata/OutcomeQuality?$filter=WindowStart ge {second} and RocAuc gt 0"
                         "&$select=Model,WindowStart,Matched&$orderby=WindowStart desc"
                         "&$count=true").json
    assert picked["@odata.count"] == 2
    assert picked["value"] == [{"Model": "churn", "WindowStart": _odata_time(w["WindowStart"]),
                                "Matched": 40} for w in reversed(quality[1:])]
    assert get(client, "/odata/OutcomeQuality?$filter=R2 ne null").json["value"] == []
    object.__setattr__(services.settings, "odata_page_size", 2)
    first = get(client, "/odata/OutcomeQuality?$select=WindowStart").json
    assert len(first["value"]) == 2 and "%24skip=2" in first["@odata.nextLink"]
    rest = get(client, first["@odata.nextLink"].replace("http://localhost", "")).json
    assert [r["WindowStart"] for r in first["value"] + rest["value"]] == [
        _odata_time(w["WindowStart"]) for w in quality]
    assert "@odata.nextLink" not in rest
    assert get(client, "/odata/OutcomeQuality?$top=1&$skip=1").json["value"][0]["Matched"] == 40


def test_outcome_quality_without_outcomes_is_empty_and_filters(client, models):
    assert get(client, "/odata/OutcomeQuality?$filter=RocAuc gt 0.5 and "
                       "WindowStart ge 2026-01-01T00:00:00Z").json["value"] == []
    assert_problem(get(client, "/odata/OutcomeQuality?$filter=Auc gt 1"), 400, "Auc")


@pytest.mark.slow
def test_a_real_odata_client_reads_outcome_quality(tmp_path, demo_files):
    """python-odata reads OutcomeQuality from a live server, typed, over pages of two, and it
    holds what GET /api/v1/models/churn/outcomes/quality says."""
    from odata import ODataService

    from server.config import Settings
    from server.services import build_services
    from server.types import Outcome, RawTable

    home = tmp_path / "home"
    env = env_for(home, SCOREBRIDGE_ODATA_PAGE_SIZE="2", SCOREBRIDGE_COMPILE="off")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", "--holdout",
              str(demo_files["holdout"]), "--target", "churned", "--outcome-key", "customer_id",
              env=env)
    setup_cli("track", "churn", env=env)
    key = setup_cli("keys", "create", "--scope", "read", env=env).stdout.strip()
    # three simulated days scored by this process (a server would do the same), outcomes
    # recorded through the same service the HTTP route calls
    svc = build_services(Settings(home=home, background=False, compile=False))
    try:
        def score(day, records):
            svc.scorer.outcome_log.clock = lambda: QUALITY_DAY0 + timedelta(days=day)
            names = list(records[0])
            svc.scorer.score("churn", RawTable(
                names=names, columns=[[r[n] for r in records] for n in names],
                n_rows=len(records)))
            return [{"key": r["customer_id"]} for r in records]

        def record(outcomes):
            report = svc.record_outcomes("churn", [
                Outcome(row=i, key=o["key"], actual=o["actual"],
                        time=datetime.fromisoformat(o["time"])) for i, o in enumerate(outcomes)])
            assert report["counts"] == {"recorded": len(outcomes)}, report["counts"]

        _scored_days(score, record)
    finally:
        svc.registry.engine.dispose()
    server = serve(env)
    try:
        session = requests.Session()
        session.auth = ("powerbi", key)
        expected = _expected_windows(session.get(
            f"{server.url}/api/v1/models/churn/outcomes/quality", timeout=30).json())
        assert len(expected) == 3
        service = ODataService(f"{server.url}/odata/", reflect_entities=True, session=session,
                               quiet_progress=True)
        Quality = service.entities["OutcomeQuality"]
        rows = service.query(Quality).order_by(Quality.WindowStart.asc()).all()  # two pages
        assert len(rows) == len(expected)
        for got, want in zip(rows, expected):
            assert got.Model == "churn" and got.Version == want["Version"] == 1
            assert got.WindowStart == datetime.fromisoformat(want["WindowStart"])
            assert got.WindowEnd == datetime.fromisoformat(want["WindowEnd"])
            assert got.Matched == want["Matched"] == 40
            assert isinstance(got.RocAuc, float)
            for name in METRIC_PROPS:
                for prop in (name, f"Holdout{name}"):
                    value = getattr(got, prop)
                    assert value == (pytest.approx(want[prop]) if want[prop] is not None
                                     else None), prop
        # (python-odata reflects Edm.Double as text, so filter on the other types)
        later = datetime.fromisoformat(expected[1]["WindowStart"])
        picked = service.query(Quality).filter(Quality.WindowStart >= later) \
            .filter(Quality.Matched == 40).order_by(Quality.WindowStart.asc()).all()
        assert [q.WindowStart for q in picked] == [r.WindowStart for r in rows[1:]]
        # and the joined rows the windows were computed from, typed
        Joined = service.entities["Outcomes"]
        joined = service.query(Joined).filter(Joined.Model == "churn").all()
        assert len(joined) == sum(w["Matched"] for w in expected)
        assert {o.Actual for o in joined} <= {"yes", "no"} and all(
            o.Prediction in ("yes", "no") and isinstance(o.ScoredAt, datetime) and
            o.ObservedAt >= o.ScoredAt and o.BusinessKey for o in joined)
    finally:
        server.stop()
