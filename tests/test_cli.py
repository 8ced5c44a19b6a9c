"""The command line, locally and against a live server (--url)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from server.cli import main
from tests.conftest import churn_rows
from tests.live import env_for, run_cli, serve


@pytest.fixture
def cli(tmp_path, monkeypatch):
    for key in list(__import__("os").environ):
        if key.startswith("SCOREBRIDGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("SCOREBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SCOREBRIDGE_NATIVE_TREES", "off")
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result
    return invoke


def test_register_wine_with_cli_and_score_files(cli, wine, tmp_path):
    out = cli("register", str(wine["path"]), "--name", "wine", "--sample", str(wine["sample"]),
              "--holdout", str(wine["holdout"]), "--target", "target", "--tag", "team=lab",
              "--metrics", '{"cv": 0.9}', "--json")
    info = json.loads(out.stdout)
    assert info["version"] == 1 and info["tags"] == {"team": "lab"}
    assert info["metrics"]["cv"] == 0.9 and "accuracy" in info["metrics"]
    assert "wine" in cli("models").stdout
    X = wine["X"].head(30)
    for fmt in ("csv", "xlsx", "parquet"):
        src = tmp_path / f"in.{fmt}"
        dst = tmp_path / f"out.{fmt}"
        if fmt == "csv":
            X.to_csv(src, index=False)
        elif fmt == "xlsx":
            X.to_excel(src, index=False)
        else:
            X.to_parquet(src, index=False)
        cli("score", "wine", str(src), "-o", str(dst), "--chunk-rows", "7")
        back = {"csv": pd.read_csv, "xlsx": pd.read_excel, "parquet": pd.read_parquet}[fmt](dst)
        assert back["prediction"].tolist() == wine["model"].predict(X).tolist()
        assert np.allclose(back[["probability_0", "probability_1", "probability_2"]],
                           wine["model"].predict_proba(X))
        assert list(back.columns[:13]) == list(X.columns)


def test_versions_promote_rollback_events(cli, wine):
    cli("register", str(wine["path"]), "--name", "wine")
    cli("register", str(wine["path"]), "--name", "wine")
    assert "production" in cli("versions", "wine").stdout
    assert "-> version 2" in cli("promote", "wine", "2").stdout
    assert "-> version 1" in cli("rollback", "wine").stdout
    events = json.loads(cli("events", "wine", "--json").stdout)
    assert events[0]["kind"] == "rolled_back"
    shown = json.loads(cli("show", "wine").stdout)
    assert shown["production_version"] == 1 and len(shown["versions"]) == 2


def test_score_reports_bad_rows_in_an_error_column(cli, demo_files, tmp_path):
    cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
        str(demo_files["sample"]))
    frame = churn_rows(5).astype(object)
    frame.loc[2, "monthly_charges"] = "lots"
    frame.loc[3, "contract"] = "=HYPERLINK(\"http://evil\")"
    frame.to_csv(tmp_path / "in.csv", index=False)
    out = cli("score", "churn", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"))
    assert "1 rows with errors" in out.stdout
    back = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert back.loc[2, "error"] == "monthly_charges: expected a number, got 'lots'"
    assert back.loc[2, "prediction"] == ""
    assert back.loc[3, "contract"].startswith("'=")
    assert (back.loc[[0, 1, 3, 4], "error"] == "").all()


def test_cli_errors_are_one_line_messages(cli, tmp_path):
    bad = tmp_path / "m.pkl"
    bad.write_bytes(b"x")
    result = cli("register", str(bad), "--name", "m", ok=False)
    assert result.exit_code == 1
    assert "pickle" in result.output and "Traceback" not in result.output
    result = cli("rollback", "nope", ok=False)
    assert result.exit_code == 1 and "no model named 'nope'" in result.output


def test_keys_commands(cli):
    plain = cli("keys", "create", "--scope", "score,read", "--name", "excel").stdout.strip()
    assert plain.startswith("sb_")
    listing = cli("keys", "list").stdout
    assert "excel" in listing and plain not in listing
    key_id = plain.split("_")[1]
    assert "revoked" in cli("keys", "revoke", key_id).stdout
    assert cli("keys", "create", "--scope", "root", ok=False).exit_code == 1


@pytest.mark.slow
def test_remote_mode_against_a_live_server(tmp_path, wine, demo_files):
    home = tmp_path / "home"
    env = env_for(home, SCOREBRIDGE_JOB_ROOTS=str(tmp_path / "data"))
    admin = run_cli("keys", "create", "--scope", "admin", env=env).stdout.strip()
    server = serve(env, workers=2)
    try:
        remote = env_for(tmp_path / "elsewhere", SCOREBRIDGE_URL=server.url,
                         SCOREBRIDGE_API_KEY=admin)
        info = json.loads(run_cli("register", str(wine["path"]), "--name", "wine", "--sample",
                                  str(wine["sample"]), "--json", env=remote).stdout)
        assert info["version"] == 1 and info["created_by"].startswith("key:")
        assert "wine" in run_cli("models", env=remote).stdout
        wine["X"].head(12).to_csv(tmp_path / "in.csv", index=False)
        run_cli("score", "wine", str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"),
                env=remote)
        back = pd.read_csv(tmp_path / "out.csv")
        assert back["prediction"].tolist() == wine["model"].predict(wine["X"].head(12)).tolist()
        from openpyxl import Workbook, load_workbook

        book = Workbook()
        book.active.append(list(wine["X"].columns))
        for row in wine["X"].head(3).itertuples(index=False):
            book.active.append(list(row))
        book.save(tmp_path / "book.xlsx")
        run_cli("score", "wine", str(tmp_path / "book.xlsx"), "-o", str(tmp_path / "out.xlsx"),
                env=remote)
        scored = load_workbook(tmp_path / "out.xlsx").active
        assert [scored.cell(r, 14).value for r in (2, 3, 4)] == \
            wine["model"].predict(wine["X"].head(3)).tolist()
        run_cli("report", "wine", "-o", str(tmp_path / "wine.html"), env=remote)
        assert "Model report: wine" in (tmp_path / "wine.html").read_text()
        run_cli("register", str(wine["path"]), "--name", "wine", env=remote)
        assert "-> version 2" in run_cli("promote", "wine", "2", env=remote).stdout
        assert "-> version 1" in run_cli("rollback", "wine", env=remote).stdout
        key = run_cli("keys", "create", "--scope", "score", env=remote).stdout.strip()
        assert key.startswith("sb_")
        denied = run_cli("models", env={**remote, "SCOREBRIDGE_API_KEY": key}, check=False)
        assert denied.returncode == 1 and "'read' scope" in denied.stderr
        jobs_and_pipelines(lambda *args: run_cli(*args, env=remote), "wine", wine["X"].head(12),
                           wine["model"], tmp_path / "remote-jobs", tmp_path / "data")
        assert not (tmp_path / "elsewhere").exists()  # remote mode never touched a local registry
    finally:
        server.stop()


def jobs_and_pipelines(cli, name, frame, model, folder, root) -> None:
    """The jobs and pipelines commands, the same whether ``cli`` works locally or on a server."""
    folder.mkdir()
    frame.to_csv(folder / "in.csv", index=False)
    out = cli("jobs", "submit", name, str(folder / "in.csv"), "--output-format", "parquet",
              "-o", str(folder / "out.parquet"))
    assert f"scored {len(frame)} rows (0 with errors)" in out.stdout
    assert pd.read_parquet(folder / "out.parquet")["prediction"].tolist() == \
        model.predict(frame).tolist()
    job_id = out.stdout.split()[1]
    assert f"job {job_id}: succeeded" in cli("jobs", "cancel", job_id).stdout  # it has ended
    assert "succeeded" in cli("jobs", "list").stdout
    (root / "in").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "in" / "customers-1.csv", index=False)
    info = json.loads(cli("pipelines", "create", "nightly", "--model", name, "--schedule",
                          "0 6 * * *", "--source-glob", str(root / "in" / "customers-*.csv"),
                          "--sink", "file", "--sink-path", str(root / "scored.csv"),
                          "--json").stdout)
    assert info["name"] == "nightly" and info["model"] == name
    assert "nightly" in cli("pipelines", "list").stdout
    assert "queued" in cli("pipelines", "run", "nightly").stdout
    assert "deleted pipeline nightly" in cli("pipelines", "delete", "nightly").stdout
    assert "nightly" not in cli("pipelines", "list").stdout


def test_jobs_and_pipelines_locally(cli, wine, tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREBRIDGE_JOB_ROOTS", str(tmp_path / "data"))
    cli("register", str(wine["path"]), "--name", "wine")
    jobs_and_pipelines(cli, "wine", wine["X"].head(12), wine["model"], tmp_path / "jobs",
                       tmp_path / "data")
    # without --wait a local job waits for a server's job runner; cancelling it stops it there
    wine["X"].head(3).to_csv(tmp_path / "few.csv", index=False)
    job_id = cli("jobs", "submit", "wine", str(tmp_path / "few.csv"), "--no-wait").stdout.split()[1]
    assert f"job {job_id}: cancelled" in cli("jobs", "cancel", job_id).stdout
    failed = cli("jobs", "submit", "nope", str(tmp_path / "few.csv"), ok=False)
    assert failed.exit_code == 1 and "no model named 'nope'" in failed.output


def test_policy_and_gates_from_the_cli(cli, demo_files, wine):
    cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
        str(demo_files["sample"]))
    out = cli("policy", "churn", "canary", "--share", "0.2", "--min-requests", "50").stdout
    assert "policy canary" in out and "share=0.2" in out and "min_requests=50" in out
    out = cli("register", str(demo_files["artifact"]), "--name", "churn").stdout
    assert "gate schema" in out and "passed" in out
    listing = cli("versions", "churn").stdout
    assert "policy: canary" in listing and "canary" in listing
    out = cli("register", str(wine["path"]), "--name", "churn").stdout
    assert "FAILED" in out and "inputs differ" in out
    versions = json.loads(cli("versions", "churn", "--json").stdout)
    assert versions[0]["gate_status"] == "failed"
    assert "schema" in [g["gate"] for g in versions[0]["gates"] if not g["passed"]]
    assert versions[1]["aliases"] == ["canary"]
    events = json.loads(cli("events", "churn", "--json").stdout)
    assert events[0]["kind"] == "gates_failed"
    assert cli("policy", "churn", "sideways", ok=False).exit_code == 2
    judged = json.loads(cli("policy", "churn", "canary", "--outcome-metric", "accuracy",
                            "--min-outcomes", "50", "--json").stdout)
    assert judged["canary"]["outcomes"] == {"metric": "accuracy", "max_drop": 0.02,
                                            "min_outcomes": 50}
    assert judged["canary"]["share"] == 0.2  # the fields not given keep their values
    off = json.loads(cli("policy", "churn", "canary", "--no-outcomes", "--json").stdout)
    assert off["canary"]["outcomes"] is None
    refused = cli("policy", "churn", "canary", "--outcome-metric", "r2", ok=False)
    assert refused.exit_code == 1 and "not a classification metric" in refused.output


def test_score_a_workbook_keeps_it(cli, demo_files, demo_model, tmp_path):
    from openpyxl import load_workbook

    from tests.api.test_excel import _workbook

    cli("register", str(demo_files["artifact"]), "--name", "churn", "--sample",
        str(demo_files["sample"]))
    frame = churn_rows(4)
    (tmp_path / "book.xlsx").write_bytes(_workbook(frame))
    out = cli("score", "churn", str(tmp_path / "book.xlsx"), "-o", str(tmp_path / "out.xlsx"))
    assert "scored workbook book.xlsx with churn v1" in out.stdout
    wb = load_workbook(tmp_path / "out.xlsx")
    assert wb.sheetnames == ["customers", "notes", "ScoreBridge"]
    assert [wb["customers"].cell(r, 8).value for r in range(4, 8)] == \
        demo_model.predict(frame).tolist()
