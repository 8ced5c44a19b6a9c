"""Outcomes: a generated outcome file joined to as many tracked predictions by ``scorebridge
outcomes`` (streamed in chunks, with its progress bar), at two sizes, beside the baseline of
holding the same file in memory with pandas, in the same run, with peak memory of each.

    .venv/bin/python bench/outcomes.py [ROWS]      # default 1,000,000

Set-up (not timed): the demo model is registered with outcome tracking on a business key, one
batch is scored through the scorer, and ROWS join rows shaped like it are bulk-inserted (SQLite;
``SCOREBRIDGE_DATABASE_URL`` for PostgreSQL). The outcome file is half by prediction id, half by
business key, 1 % unknown. Each measured side runs
in a fresh process so its peak resident memory (VmHWM) is its own; the small file (a tenth)
shows the join's memory does not grow with the file.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine_notes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAY0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=60)
SPREAD_SECONDS = 30 * 86400 / 1_000_000  # a million predictions over 30 days
SHAPES = 2000  # rows scored through the real scorer, whose shapes the join rows take
INSERT_ROWS = 20_000

PEAK = """
def peak_mb():  # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's)
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM")) / 1024
"""

BASELINE = PEAK + """
import sys, time, json
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame),
                  "peak_mb": peak_mb()}))
"""

CLI = PEAK + """
import sys, time, json
from click.testing import CliRunner
from server.cli import main
start = time.perf_counter()
result = CliRunner().invoke(main, ["outcomes", "churn", sys.argv[1], "--json"],
                            catch_exceptions=False)
assert result.exit_code == 0, result.output
print(json.dumps({"seconds": time.perf_counter() - start,
                  "counts": json.loads(result.stdout)["counts"],
                  "peak_mb": peak_mb()}))
"""


def set_up(home: Path, rows: int, database_url: str) -> None:
    """Register the demo model with tracking on ``customer_id``, score one batch through the real
    scorer, and bulk-insert ``rows`` join rows shaped like that batch's (prediction,
    probabilities, segments; ids as the scorer makes them, spread over 30 days). The scoring path
    is not what is measured here, so it runs once, not once per row."""
    from sqlalchemy import insert, select

    from server.config import Settings
    from server.demo import FEATURES, make_churn_data, train_demo
    from server.deploy.registration import RegistrationRequest
    from server.registry.schema import OutcomeJoinRow
    from server.services import build_services
    from server.types import RawTable

    files = train_demo(home / "demo", n_rows=3000)
    services = build_services(Settings(home=home, database_url=database_url, background=False,
                                       compile=False))
    services.register(RegistrationRequest(
        name="churn", artifact=files["artifact"], filename="churn.skops", actor="bench",
        outcomes={"enabled": True, "key": "customer_id"}))
    services.deploy_pending("bench")
    data = make_churn_data(SHAPES, seed=3)
    table = RawTable(names=FEATURES + ["customer_id"], n_rows=SHAPES,
                     columns=[data[c].tolist() for c in FEATURES] + [["x"] * SHAPES])
    services.scorer.score("churn", table)
    services.scorer.outcome_log.flush(services.registry)
    with services.registry.writing() as session:
        shapes = [dict(r._mapping) for r in session.execute(select(
            OutcomeJoinRow.prediction, OutcomeJoinRow.probabilities, OutcomeJoinRow.segments))]
        session.query(OutcomeJoinRow).delete()
    for start in range(0, rows, INSERT_ROWS):
        with services.registry.writing() as session:
            session.execute(insert(OutcomeJoinRow.__table__), [
                {"model_name": "churn", "version": 1, "prediction_id": prediction_id(i),
                 "business_key": f"C{i}", "created_at": created_at(i), **shapes[i % SHAPES]}
                for i in range(start, min(start + INSERT_ROWS, rows))])
        print(f"\rset-up: {min(start + INSERT_ROWS, rows):,} of {rows:,} tracked predictions",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    services.registry.engine.dispose()


def prediction_id(i: int) -> str:
    return f"{i // 1000:032x}-{i % 1000}"  # a request id and the row's place in it


def created_at(i: int) -> datetime:
    return DAY0 + timedelta(seconds=i * SPREAD_SECONDS)


def write_outcomes(path: Path, rows: int) -> None:
    """Half by prediction id, half by business key, a week after each prediction, one in a
    hundred for a prediction that does not exist."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prediction_id", "customer_id", "actual", "time"])
        for i in range(rows):
            at = (created_at(i) + timedelta(days=7)).isoformat()
            actual = "yes" if i % 3 == 0 else "no"
            pid, key = (prediction_id(i), "") if i % 2 else ("", f"C{i}")
            if i % 100 == 99:  # not tracked: unknown
                pid, key = (f"gone-{i}", "") if i % 2 else ("", f"gone-{i}")
            writer.writerow([pid, key, actual, at])


def measure(script: str, path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True,
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)  # progress on stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="sb-outcomes-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "SCOREBRIDGE_HOME": str(home), "OMP_NUM_THREADS": "1"}
        env = {k: v for k, v in env.items() if k != "SCOREBRIDGE_URL"}
        os.environ["SCOREBRIDGE_HOME"] = str(home)
        start = time.perf_counter()
        set_up(home, rows, os.environ.get("SCOREBRIDGE_DATABASE_URL", ""))
        print(f"set-up: {rows:,} tracked predictions in {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
        small, large = Path(tmp) / "small.csv", Path(tmp) / "large.csv"
        write_outcomes(small, rows // 10)
        write_outcomes(large, rows)
        results = {
            "baseline pandas, whole file": measure(BASELINE, large, env),
            f"scorebridge outcomes, {rows // 10:,} rows": measure(CLI, small, env),
            f"scorebridge outcomes, {rows:,} rows": measure(CLI, large, env),
        }
    print(machine_notes())
    print(f"{'side':<42} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for side, r in results.items():
        n = r.get("rows") or sum(r.get("counts", {}).values())
        print(f"{side:<42} {r['seconds']:>8.1f} {n / r['seconds']:>9,.0f} {r['peak_mb']:>8.0f}"
              + (f"  {r['counts']}" if "counts" in r else ""))


if __name__ == "__main__":
    main()
