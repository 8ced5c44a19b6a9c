"""Batch jobs: every format in and out, progress, cancellation, strict mode, allowed roots,
restart safety (SIGKILL mid-job) and publication to the OData feed."""
from __future__ import annotations

import io
import time
from dataclasses import replace

import pandas as pd
import pytest

from server.app import create_app
from tests.conftest import assert_probabilities, assert_problem, churn_rows, register_file
from tests.live import env_for, run_cli, serve, setup_cli


@pytest.fixture
def churn(client, demo_files):
    assert register_file(client, "churn", demo_files["artifact"],
                         demo_files["sample"]).status_code == 201


def _file(frame: pd.DataFrame, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "xlsx":
        frame.to_excel(buf, index=False)
    else:
        frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _read(data: bytes, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(data), keep_default_na=False)
    if fmt == "xlsx":
        return pd.read_excel(io.BytesIO(data))
    return pd.read_parquet(io.BytesIO(data))


def submit(client, frame, fmt="csv", **form):
    data = {"file": (io.BytesIO(_file(frame, fmt)), f"in.{fmt}"), "model": "churn", **form}
    return client.post("/api/v1/jobs", data=data, scope="score",
                       content_type="multipart/form-data")


@pytest.mark.parametrize("fmt_in, fmt_out", [("csv", "csv"), ("xlsx", "parquet"),
                                              ("parquet", "xlsx"), ("csv", "parquet")])
def test_formats_in_and_out(client, services, churn, demo_model, fmt_in, fmt_out):
    frame = churn_rows(37)
    resp = submit(client, frame, fmt_in, output_format=fmt_out)
    assert resp.status_code == 202, resp.json
    job = resp.json
    assert resp.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["version"] == 1
    assert services.runner.run_pending() == ["succeeded"]
    status = client.get(f"/api/v1/jobs/{job['id']}", scope="score").json
    assert status["status"] == "succeeded" and status["rows_done"] == 37
    assert status["rows_total"] in (37, None) and status["rate_rows_per_second"] > 0
    out = client.get(status["result"], scope="score")
    assert out.status_code == 200
    back = _read(out.data, fmt_out)
    assert list(back.columns[:6]) == list(frame.columns)
    assert back["prediction"].tolist() == demo_model.predict(frame).tolist()
    assert_probabilities(back["probability_yes"].astype(float), demo_model.predict_proba(frame)[:, 1])


def test_a_csv_job_written_as_xlsx_or_parquet_keeps_numbers_and_dates(client, services, churn):
    """CSV is read as text; the output shows numbers as numbers (Excel's SUM works), ISO dates as
    dates, identifiers with leading zeros and other text as text, formulas neutralised."""
    from openpyxl import load_workbook

    frame = churn_rows(4).astype(object)
    frame.loc[2, "monthly_charges"] = "lots"  # a bad number stays visible as the text it was
    frame.insert(0, "customer_id", ["007", "12", "-3.5", "=HYPERLINK(1)"])
    frame["signed_up"] = ["2024-01-31", "2024-02-29", "2024-02-30", "2024-03-01T09:30:00"]
    frame["account"] = ["+4471234", "1e3", "12345678901234567", "0.25"]
    csv = frame.to_csv(index=False).encode()
    ids = {}
    for fmt in ("xlsx", "parquet"):
        data = {"file": (io.BytesIO(csv), "in.csv"), "model": "churn", "output_format": fmt}
        ids[fmt] = client.post("/api/v1/jobs", data=data, scope="score",
                               content_type="multipart/form-data").json["id"]
    services.runner.run_pending()

    book = load_workbook(io.BytesIO(client.get(f"/api/v1/jobs/{ids['xlsx']}/result",
                                               scope="score").data))
    rows = list(book.active.iter_rows(min_row=2, values_only=True))
    header = [c.value for c in next(book.active.iter_rows(max_row=1))]
    col = {name: header.index(name) for name in header}
    assert [r[col["customer_id"]] for r in rows] == ["007", 12, -3.5, "'=HYPERLINK(1)"]
    charges = [r[col["monthly_charges"]] for r in rows]
    assert charges[2] == "lots" and all(isinstance(v, (int, float)) for i, v in enumerate(charges)
                                        if i != 2)
    assert all(isinstance(r[col["tenure_months"]], int) for r in rows)
    dates = [r[col["signed_up"]] for r in rows]
    assert [type(d).__name__ for d in dates] == ["datetime", "datetime", "str", "datetime"]
    assert dates[0].date().isoformat() == "2024-01-31" and dates[2] == "2024-02-30"
    assert dates[3].isoformat() == "2024-03-01T09:30:00"
    assert [r[col["account"]] for r in rows] == ["+4471234", "1e3", "12345678901234567", 0.25]
    assert [type(r[col["probability_yes"]]).__name__ for r in rows] == ["float", "float",
                                                                        "NoneType", "float"]

    back = pd.read_parquet(io.BytesIO(client.get(f"/api/v1/jobs/{ids['parquet']}/result",
                                                 scope="score").data))
    assert back["monthly_charges"].dtype == "float64" and pd.isna(back["monthly_charges"][2])
    assert back["tenure_months"].dtype == "float64"
    assert back["customer_id"].tolist() == ["007", "12", "-3.5", "'=HYPERLINK(1)"]
    assert back.loc[2, "error"] == "monthly_charges: expected a number, got 'lots'"


def test_bad_rows_go_to_the_error_column_unless_strict(client, services, churn):
    frame = churn_rows(5).astype(object)
    frame.loc[3, "monthly_charges"] = "lots"
    job = submit(client, frame).json
    services.runner.run_pending()
    status = client.get(f"/api/v1/jobs/{job['id']}", scope="score").json
    assert status["status"] == "succeeded" and status["rows_failed"] == 1
    back = _read(client.get(status["result"], scope="score").data, "csv")
    assert back.loc[3, "error"] == "monthly_charges: expected a number, got 'lots'"
    strict = submit(client, frame, strict="true").json
    services.runner.run_pending()
    status = client.get(f"/api/v1/jobs/{strict['id']}", scope="score").json
    assert status["status"] == "failed" and "monthly_charges" in status["error"]
    assert_problem(client.get(f"/api/v1/jobs/{strict['id']}/result", scope="score"), 409,
                   "failed")


def test_cancel_and_zero_rows_and_bad_input(client, services, churn):
    job = submit(client, churn_rows(3)).json
    assert client.delete(f"/api/v1/jobs/{job['id']}", scope="score").json["status"] == "cancelled"
    assert services.runner.run_pending() == []
    empty = submit(client, churn_rows(3).head(0)).json
    services.runner.run_pending()
    assert client.get(f"/api/v1/jobs/{empty['id']}", scope="score").json["status"] == "succeeded"
    missing = submit(client, churn_rows(3).drop(columns=["contract"])).json
    services.runner.run_pending()
    status = client.get(f"/api/v1/jobs/{missing['id']}", scope="score").json
    assert status["status"] == "failed" and "contract" in status["error"]
    broken = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                         data={"file": (io.BytesIO(b"\xff\xfe\x00bad"), "in.csv"),
                               "model": "churn"}).json
    services.runner.run_pending()
    assert client.get(f"/api/v1/jobs/{broken['id']}", scope="score").json["status"] == "failed"
    assert_problem(client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                               data={"file": (io.BytesIO(b"x"), "in.txt.exe"), "model": "churn"}),
                   422, "unsupported file type")
    assert_problem(submit(client, churn_rows(2), output_format="docx"), 400,
                   "form field 'output_format' must be 'csv', 'xlsx' or 'parquet'")
    assert_problem(client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                               data={"file": (io.BytesIO(b"a"), "in.csv"), "model": "nope"}),
                   404, "no model")
    assert_problem(client.get("/api/v1/jobs/nope", scope="score"), 404)
    assert_problem(client.post("/api/v1/jobs", data="x", content_type="text/plain",
                               scope="score"), 415)


def test_server_side_paths_only_under_allowed_roots(settings, client, demo_files, tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    churn_rows(4).to_csv(root / "in.csv", index=False)
    (tmp_path / "secret.csv").write_text("a\n1\n")
    app = create_app(replace(settings, job_roots=(str(root),)))
    key = app.extensions["scorebridge"].keys.create("admin")[0]
    from tests.conftest import KeyClient

    c = KeyClient(app.test_client(), {"deploy": key, "score": key})
    register_file(c, "churn", demo_files["artifact"], demo_files["sample"])
    ok = c.post("/api/v1/jobs", json={"model": "churn", "path": str(root / "in.csv")},
                scope="score")
    assert ok.status_code == 202
    for path in (str(tmp_path / "secret.csv"), str(root / ".." / "secret.csv"), "/etc/passwd",
                 str(root / "nope.csv")):
        resp = c.post("/api/v1/jobs", json={"model": "churn", "path": path}, scope="score")
        assert resp.status_code in (404, 422) and "secret" not in resp.get_data(as_text=True)[:0]
    assert_problem(client.post("/api/v1/jobs", json={"model": "churn", "path": "/etc/passwd"},
                               scope="score"), 422, "allowed root")
    app.extensions["scorebridge"].runner.run_pending()
    assert (root / "in.csv").exists()  # the caller's file is copied, never moved or changed


def test_published_jobs_feed_odata(client, services, churn, demo_model):
    frame = churn_rows(12)
    job = submit(client, frame, publish="true").json
    services.runner.run_pending()
    feed = client.get("/odata/Scored_churn?$orderby=Row&$count=true", scope="read").json
    assert feed["@odata.count"] == 12
    assert [r["prediction"] for r in feed["value"]] == demo_model.predict(frame).tolist()
    assert feed["value"][0]["tenure_months"] == int(frame.iloc[0]["tenure_months"])
    assert feed["value"][0]["Job"] == job["id"]
    jobs = client.get("/odata/Jobs", scope="read").json["value"]
    assert jobs[0]["Id"] == job["id"] and jobs[0]["Status"] == "succeeded"
    # a second published job: Scored_ is the latest table, JobRows_ holds every job's rows
    second = submit(client, churn_rows(4, seed=8), publish="true").json
    services.runner.run_pending()
    latest = client.get("/odata/Scored_churn?$count=true", scope="read").json
    assert latest["@odata.count"] == 4 and latest["value"][0]["Job"] == second["id"]
    every = client.get(f"/odata/JobRows_churn?$filter=Job eq '{job['id']}'&$count=true",
                       scope="read").json
    assert every["@odata.count"] == 12
    assert client.get("/odata/JobRows_churn?$count=true&$top=0",
                      scope="read").json["@odata.count"] == 16


def test_expiry(client, services, churn):
    job = submit(client, churn_rows(2)).json
    services.runner.run_pending()
    from sqlalchemy import update

    from server.registry.schema import JobRow, utcnow

    with services.registry.writing() as session:
        session.execute(update(JobRow).values(expires_at=utcnow()))
    time.sleep(0.01)
    assert services.jobs.expire() == 1
    assert_problem(client.get(f"/api/v1/jobs/{job['id']}", scope="score"), 404)


@pytest.mark.slow
def test_sigkill_mid_job_fails_it_cleanly_and_cli_remote_progress(tmp_path, demo_files):
    env = env_for(tmp_path / "home", SCOREBRIDGE_FAULTS="")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    big = pd.concat([churn_rows(1000, seed=i) for i in range(200)])  # 200,000 rows
    big.to_csv(tmp_path / "big.csv", index=False)
    import os
    import signal

    import requests

    server = serve(env)
    try:
        with open(tmp_path / "big.csv", "rb") as fh:
            job = requests.post(f"{server.url}/api/v1/jobs", headers={"X-API-Key": key},
                                files={"file": ("big.csv", fh)}, data={"model": "churn"},
                                timeout=120).json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = requests.get(f"{server.url}/api/v1/jobs/{job['id']}",
                                  headers={"X-API-Key": key}, timeout=10).json()
            if status["rows_done"] > 0:
                break
            time.sleep(0.1)
        assert status["status"] == "running" and status["rows_total"] == 200_000
        os.killpg(server.proc.pid, signal.SIGKILL)  # the whole server, mid-job
        server.proc.wait(10)
    finally:
        server.stop()
    folder = tmp_path / "home" / "jobs" / job["id"]
    assert not (folder / "output.csv").exists()  # never presented as complete
    # restarted: the job is failed with a reason (its heartbeat went stale), partial output gone
    from datetime import timedelta

    import server.jobs.service as jobs_module

    jobs_module.STALE_AFTER = timedelta(seconds=0)
    from server.config import Settings
    from server.services import build_services

    settings = Settings(home=tmp_path / "home", background=False, native_trees=False)
    jobs = build_services(settings).jobs
    assert jobs.recover() == [job["id"]]
    info = jobs.get(job["id"])
    assert info.status == "failed" and "stopped before it finished" in info.error
    assert not list(folder.glob(".*.partial"))


@pytest.mark.slow
def test_cli_jobs_against_a_live_server(tmp_path, demo_files, demo_model):
    env = env_for(tmp_path / "home")
    setup_cli("register", str(demo_files["artifact"]), "--name", "churn", env=env)
    key = setup_cli("keys", "create", "--scope", "score,read", env=env).stdout.strip()
    frame = churn_rows(25)
    frame.to_csv(tmp_path / "in.csv", index=False)
    server = serve(env)
    try:
        remote = env_for(tmp_path / "client", SCOREBRIDGE_URL=server.url,
                         SCOREBRIDGE_API_KEY=key)
        out = run_cli("jobs", "submit", "churn", str(tmp_path / "in.csv"), "--output-format",
                      "parquet", "-o", str(tmp_path / "out.parquet"), env=remote)
        assert "scored 25 rows (0 with errors)" in out.stdout
        back = pd.read_parquet(tmp_path / "out.parquet")
        assert back["prediction"].tolist() == demo_model.predict(frame).tolist()
        assert "succeeded" in run_cli("jobs", "list", env=remote).stdout
    finally:
        server.stop()


def test_hostile_workbooks_are_refused_at_submission(client, churn):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(buf.getvalue()), "bomb.xlsx"), "model": "churn"})
    assert_problem(resp, 413, "expands to")
    resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64),
                                      "locked.xlsx"), "model": "churn"})
    assert_problem(resp, 422, "password-protected")
