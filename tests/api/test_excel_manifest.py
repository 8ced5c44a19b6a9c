"""The add-in's manifest and files over HTTP: rendered only for an https URL (plain http for this
machine when a developer allows it), an id kept by the installation whatever its URL, a version
that follows the functions, and every URL in it served."""
from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from defusedxml import ElementTree as ET

from server import __version__
from server.api.excel import _ID_NAMESPACE
from server.app import create_app
from tests.conftest import assert_problem

NS = {"o": "http://schemas.microsoft.com/office/appforoffice/1.1",
      "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
      "ov": "http://schemas.microsoft.com/office/taskpaneappversionoverrides"}
PUBLIC = "https://models.example.com"
GUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
SRC = Path(__file__).resolve().parents[2] / "excel_addin" / "src"


def check_manifest(xml: bytes, base: str) -> ET:
    """What Office needs of a manifest and cannot be checked here by Microsoft's validator (it
    is a web service): well-formed XML, a GUID id, a version of 1 to 4 parts of at most 65535,
    every resid defined, every URL under ``base``, and https unless ``base`` is loopback http."""
    root = ET.fromstring(xml)
    assert GUID.match(root.find("o:Id", NS).text)
    version = root.find("o:Version", NS).text
    assert re.fullmatch(r"\d{1,5}(\.\d{1,5}){3}", version), version
    assert all(int(part) <= 65535 for part in version.split("."))
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    for el in root.iter():
        resid = el.get("resid")
        if resid is not None:
            assert resid in ids, f"resid {resid} does not resolve"
    urls = [el.get("DefaultValue") for el in root.iter()
            if (el.get("DefaultValue") or "").startswith(("http://", "https://"))]
    urls += [el.text for el in root.iter() if el.tag.endswith("AppDomain")]
    assert urls and all(u == base or u.startswith(base + "/") for u in urls), urls
    if not re.match(r"http://(localhost|127\.0\.0\.1)(:\d+)?$", base):
        assert all(u.startswith("https://") for u in urls), urls
    return root


def addin_id(xml: bytes) -> str:
    return re.search(rb"<Id>(.*?)</Id>", xml).group(1).decode()


def version_of(xml: bytes) -> str:
    return re.search(rb"<Version>(.*?)</Version>", xml).group(1).decode()


def manifest(settings, base_url: str = "http://localhost", **changes):
    """The manifest from a fresh app (a worker started with these settings)."""
    app = create_app(replace(settings, **changes))
    try:
        return app.test_client().get("/excel/manifest.xml", base_url=base_url)
    finally:
        app.extensions["scorebridge"].registry.engine.dispose()


def test_manifest_refuses_a_plain_http_url(client, settings):
    """No SCOREBRIDGE_PUBLIC_URL and a request over http (as `make serve` answers): refused
    with what to do, never a manifest Excel on the web would not load."""
    body = assert_problem(client.get("/excel/manifest.xml", scope=None), 409,
                          "needs an https url", "SCOREBRIDGE_PUBLIC_URL",
                          "SCOREBRIDGE_EXCEL_ALLOW_LOCAL_HTTP")
    assert "is not set and this request came over http" in body["detail"]
    resp = manifest(settings, public_url="http://models.example.com")
    assert_problem(resp, 409, "SCOREBRIDGE_PUBLIC_URL is 'http://models.example.com'")
    # the developer's allowance is for this machine only
    resp = manifest(settings, public_url="http://models.example.com", excel_allow_local_http=True)
    assert_problem(resp, 409, "https url")


def test_manifest_over_http_for_development_on_this_machine(settings):
    resp = manifest(settings, excel_allow_local_http=True)
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    root = check_manifest(resp.data, "http://localhost")
    assert root.find(".//bt:String[@id='Functions.Namespace']", NS).get("DefaultValue") == "ML"
    assert root.find(".//o:Set", NS).get("Name") == "SharedRuntime"
    runtime = root.find(".//ov:Runtime", NS)
    assert runtime.get("lifetime") == "long" and runtime.get("resid") == "Taskpane.Url"
    loopback = manifest(settings, base_url="http://127.0.0.1:8000", excel_allow_local_http=True)
    check_manifest(loopback.data, "http://127.0.0.1:8000")


def test_manifest_for_the_public_https_url_or_an_https_request(settings):
    resp = manifest(settings, public_url=PUBLIC, excel_namespace="ACME")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    root = check_manifest(resp.data, PUBLIC)
    assert root.find(".//bt:String[@id='Functions.Namespace']", NS).get("DefaultValue") == "ACME"
    # TLS in gunicorn (or a proxy the app trusts to say so): the request's own URL will do
    check_manifest(manifest(settings, base_url="https://sb.example.org").data,
                   "https://sb.example.org")
    assert_problem(manifest(settings, public_url=PUBLIC, excel_namespace="no spaces"), 422,
                   "namespace")


def test_the_addin_id_is_the_installations_whatever_its_url(settings, tmp_path):
    """A new URL is not a new add-in (that would leave every formula #NAME?): the first id is
    kept in the registry, so every worker and host gives it, at any URL."""
    first = manifest(settings, public_url=PUBLIC).data
    # the first id is the one earlier versions derived from the URL: an upgrade keeps it
    assert addin_id(first) == str(uuid.uuid5(_ID_NAMESPACE, PUBLIC))
    moved = manifest(settings, public_url="https://scoring.example.net").data
    assert addin_id(moved) == addin_id(first)
    # another worker on the same database, reached at another address
    assert addin_id(manifest(settings, base_url="https://10.0.0.7").data) == addin_id(first)
    # another installation (its own database) has its own add-in
    elsewhere = replace(settings, home=tmp_path / "elsewhere", database_url="")
    assert addin_id(manifest(elsewhere, public_url="https://b.example.net").data) != \
        addin_id(first)


def test_a_configured_addin_id_is_used_and_checked(settings):
    chosen = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    resp = manifest(settings, public_url=PUBLIC, excel_addin_id=chosen)
    check_manifest(resp.data, PUBLIC)
    assert addin_id(resp.data) == chosen
    for bad in ("not-a-guid", "0f8fad5bd9cb469fa16570867728950e", "{0f8fad5b-d9cb-469f-a165}",
                chosen + "0"):
        assert_problem(manifest(settings, public_url=PUBLIC, excel_addin_id=bad), 409,
                       "SCOREBRIDGE_EXCEL_ADDIN_ID must be a GUID")


def test_the_version_changes_with_the_functions(settings, tmp_path):
    """Office keeps the functions' metadata until the manifest's version changes."""
    addin = tmp_path / "addin" / "src"
    shutil.copytree(SRC, addin)
    shutil.copy(SRC.parent / "manifest.template.xml", addin.parent)
    base = replace(settings, public_url=PUBLIC, excel_addin_dir=addin)
    before = version_of(manifest(base).data)
    assert before.split(".")[:3] == (re.findall(r"\d+", __version__) + ["0"] * 3)[:3]
    assert version_of(manifest(base).data) == before  # the same files, the same version
    metadata = addin / "functions.json"
    metadata.write_text(metadata.read_text().replace('"PREDICT"', '"PREDICT2"', 1))
    after_json = version_of(manifest(base).data)
    script = addin / "functions.js"
    script.write_text(script.read_text() + "\n// changed\n")
    after_js = version_of(manifest(base).data)
    renamed = version_of(manifest(base, excel_namespace="ACME").data)
    assert len({before, after_json, after_js, renamed}) == 4
    assert {v.split(".")[0] for v in (before, after_json, after_js, renamed)} == {before[0]}


def test_namespace_reaches_the_task_pane(settings):
    app = create_app(replace(settings, excel_namespace="ACME"))
    assert b"=ACME.PREDICT" in app.test_client().get("/excel/taskpane.html").data
    app.extensions["scorebridge"].registry.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_addin_files_are_served_and_resolve(settings):
    app = create_app(replace(settings, public_url=PUBLIC))
    client = app.test_client()
    root = check_manifest(client.get("/excel/manifest.xml").data, PUBLIC)
    for el in root.iter():
        url = el.get("DefaultValue") or ""
        if url.startswith(PUBLIC + "/excel/"):
            assert client.get(url.removeprefix(PUBLIC)).status_code == 200, url
    html = client.get("/excel/taskpane.html").get_data(as_text=True)
    for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
        if not asset.startswith("https://"):
            assert client.get(f"/excel/{asset}").status_code == 200, asset
    assert client.get("/excel/functions.json").json["functions"][0]["id"] == "PREDICT"
    assert client.get("/excel/secret.py").status_code == 404
    assert client.get("/excel/icons/../../server/app.py").status_code == 404


def test_the_manifest_names_the_entra_app_registration_when_sign_in_uses_one(settings):
    """``WebApplicationInfo`` (Microsoft 365 reads it for the add-in's sign-in) is the last child
    of VersionOverrides, with the app's client id and App ID URI; another issuer's client (not a
    GUID) or no sign-in leaves it out: the add-in signs in through the server's pages then."""
    client_id = "0f3c2a9e-8d41-4b7a-9c55-2e1d7f6a8b90"
    entra = dict(public_url=PUBLIC, oidc_issuer="https://login.example.test/tenant/v2.0",
                 oidc_audience=(f"api://models.example.com/{client_id}",),
                 oidc_client_id=client_id, oidc_client_secret="s",
                 oidc_resource_scopes=("access_as_user",))
    root = check_manifest(manifest(settings, **entra).data, PUBLIC)
    overrides = root.find("ov:VersionOverrides", NS)
    last = list(overrides)[-1]
    assert last.tag == "{%s}WebApplicationInfo" % NS["ov"]
    assert last.find("ov:Id", NS).text == client_id
    assert last.find("ov:Resource", NS).text == f"api://models.example.com/{client_id}"
    assert [s.text for s in last.findall("ov:Scopes/ov:Scope", NS)] == [
        "openid", "profile", "access_as_user"]
    okta = manifest(settings, **{**entra, "oidc_client_id": "0oa1b2c3d4OktaClient"})
    assert b"WebApplicationInfo" not in okta.data
    assert b"WebApplicationInfo" not in manifest(settings, public_url=PUBLIC).data
