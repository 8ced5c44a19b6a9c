"""Batch input that is damaged: malformed CSV lines become error rows at their place, Windows'
CSV encoding is read, and a disk that fills up fails the job cleanly (a real, full tmpfs)."""
from __future__ import annotations

import io
import textwrap

import pandas as pd
import pytest

from server.codecs.file_reader import iter_chunks
from tests.conftest import churn_rows, register_file
from tests.live import env_for, on_small_disk, setup_cli


@pytest.fixture
def churn(client, demo_files):
    assert register_file(client, "churn", demo_files["artifact"],
                         demo_files["sample"]).status_code == 201


def run_job(client, services, data: bytes, name: str = "in.csv", **form):
    job = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                      data={"file": (io.BytesIO(data), name), "model": "churn", **form}).json
    services.runner.run_pending()
    status = client.get(f"/api/v1/jobs/{job['id']}", scope="score").json
    out = client.get(status["result"], scope="score").data if status["result"] else None
    return status, out


def test_malformed_lines_are_error_rows_in_place(client, services, churn, demo_model):
    good = churn_rows(6)
    lines = good.to_csv(index=False).splitlines()
    # line 3: a field too many; line 6: one too few; blank lines; a quoted line break
    damaged = [lines[0], lines[1], lines[2] + ",extra", "", lines[3], lines[4],
               ",".join(lines[5].split(",")[:4]), lines[6]]
    status, out = run_job(client, services, ("\r\n".join(damaged) + "\r\n\r\n").encode())
    assert status["status"] == "succeeded", status
    assert status["rows_done"] == 6 and status["rows_failed"] == 2
    back = pd.read_csv(io.BytesIO(out), keep_default_na=False, dtype=str)
    assert back["error"].tolist()[1] == "line 3: expected 6 fields, got 7; the line was not scored"
    assert back["error"].tolist()[4] == "line 6: expected 6 fields, got 4; the line was not scored"
    kept = [0, 2, 3, 5]
    assert back.loc[kept, "error"].tolist() == [""] * 4
    assert back.loc[[1, 4], "prediction"].tolist() == ["", ""]
    expected = demo_model.predict(good.iloc[[0, 2, 3, 5]]).tolist()
    assert back.loc[kept, "prediction"].tolist() == expected
    strict, _ = run_job(client, services, ("\n".join(damaged) + "\n").encode(), strict="true")
    assert strict["status"] == "failed" and "line 3" in strict["error"]


def test_malformed_lines_keep_their_place_across_chunks(tmp_path):
    rows = ["a,b"] + [f"{i},x" for i in range(25)]
    rows[8] = "7,x,oops"      # record 7
    rows[21] = "20"           # record 20
    rows[12] = '11,"two\nlines"'
    path = tmp_path / "in.csv"
    path.write_text("\n".join(rows) + "\n")
    chunks = list(iter_chunks(path, chunk_rows=4))
    flat = [v for c in chunks for v in c.arrow().column("a").to_pylist()]
    bad = [k + sum(len(c) for c in chunks[:n]) for n, c in enumerate(chunks) for k in c.malformed]
    assert len(flat) == 25
    assert bad == [7, 20]
    assert [v for v in flat if v is not None] == [str(i) for i in range(25) if i not in (7, 20)]
    assert flat[7] is None and flat[20] is None and flat[11] == "11"


def test_windows_csv_and_utf8_bom(client, services, churn, demo_model):
    frame = churn_rows(4).assign(note=["café", "naïve", "Zürich", "€"])
    status, out = run_job(client, services, frame.to_csv(index=False).encode("cp1252"))
    assert status["status"] == "succeeded", status
    back = pd.read_csv(io.BytesIO(out), keep_default_na=False)
    assert back["note"].tolist() == ["café", "naïve", "Zürich", "€"]
    assert back["prediction"].tolist() == demo_model.predict(frame).tolist()
    status, out = run_job(client, services, b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())
    assert status["status"] == "succeeded"
    assert list(pd.read_csv(io.BytesIO(out)).columns[:2]) == ["tenure_months", "monthly_charges"]


FULL_DISK = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from server.config import Settings
    from server.errors import ScoreBridgeError
    from server.services import build_services

    home, data = Path(sys.argv[1]), Path(sys.argv[2])
    settings = Settings(home=home, background=False, native_trees=False)
    jobs = build_services(settings).jobs
    job = jobs.submit("churn", data, actor="test")
    status = jobs.run(jobs.claim("test"))
    info = jobs.get(job.id)
    print(json.dumps({"status": status, "error": info.error,
                      "files": sorted(p.name for p in (jobs.root / job.id).iterdir())}))
""")


@pytest.mark.slow
def test_a_full_disk_fails_the_job_cleanly(tmp_path, demo_files):
    """The jobs folder on a real 1.5 MB tmpfs (a private mount namespace, no root needed): the
    input fits, the output does not; the job fails with the reason and leaves no output."""
    home = tmp_path / "home"
    setup_cli("register", "--name", "churn", str(demo_files["artifact"]), "--sample",
              str(demo_files["sample"]), env=env_for(home))
    data = tmp_path / "in.csv"
    churn_rows(12_000).to_csv(data, index=False)  # ~0.6 MB in, ~1.3 MB out
    jobs = home / "jobs"
    jobs.mkdir()
    result = on_small_disk(jobs, "1500k", FULL_DISK, home, data)
    assert result["status"] == "failed"
    assert "disk is full" in result["error"]
    assert result["files"] == ["input.csv"]  # no output, no partial file
