"""Outcomes: a generated outcome file joined to as many tracked predictions by ``scorebridge
outcomes`` (streamed in chunks, with its progress bar), at two sizes, beside the baseline of
holding the same file in memory with pandas, in the same run, with peak memory of each.

    .venv/bin/python bench/outcomes.py [ROWS]      # default 1,000,000

Set-up (not timed): the demo model is registered with outcome tracking on a business key, and
ROWS rows are scored through the scorer and flushed as join rows (SQLite). Each measured side runs
in a fresh process so its peak resident memory (ru_maxrss) is its own; the small file (a tenth)
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine_notes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

BASELINE = """
import resource, sys, time, json
import pandas as pd
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(frame),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CLI = """
import resource, sys, time, json
from click.testing import CliRunner
from server.cli import main
start = time.perf_counter()
result = CliRunner().invoke(main, ["outcomes", "churn", sys.argv[1], "--json"],
                            catch_exceptions=False)
assert result.exit_code == 0, result.output
print(json.dumps({"seconds": time.perf_counter() - start,
                  "counts": json.loads(result.stdout)["counts"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def set_up(home: Path, rows: int) -> None:
    """Register the demo model with tracking on ``customer_id`` and score ``rows`` rows."""
    from server.config import Settings
    from server.demo import FEATURES, make_churn_data, train_demo
    from server.deploy.registration import RegistrationRequest
    from server.services import build_services
    from server.types import RawTable

    files = train_demo(home / "demo", n_rows=3000)
    services = build_services(Settings(home=home, background=False, compile=False))
    services.register(RegistrationRequest(
        name="churn", artifact=files["artifact"], filename="churn.skops", actor="bench",
        outcomes={"enabled": True, "key": "customer_id"}))
    services.deploy_pending("bench")
    data = make_churn_data(10_000, seed=3)
    columns = [data[c].tolist() for c in FEATURES]
    for start in range(0, rows, 10_000):
        n = min(10_000, rows - start)
        keys = [f"C{start + i}" for i in range(n)]
        table = RawTable(names=FEATURES + ["customer_id"], n_rows=n,
                         columns=[c[:n] for c in columns] + [keys])
        services.scorer.score("churn", table)
        services.scorer.outcome_log.flush(services.registry)
    services.registry.engine.dispose()


def write_outcomes(path: Path, rows: int) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "actual", "time"])
        for i in range(rows):
            writer.writerow([f"C{i}", "yes" if i % 3 == 0 else "no", "2030-01-01T00:00:00Z"])


def measure(script: str, path: Path, env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="sb-outcomes-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "SCOREBRIDGE_HOME": str(home), "OMP_NUM_THREADS": "1"}
        env = {k: v for k, v in env.items() if k not in ("SCOREBRIDGE_DATABASE_URL",
                                                         "SCOREBRIDGE_URL")}
        os.environ["SCOREBRIDGE_HOME"] = str(home)
        start = time.perf_counter()
        set_up(home, rows)
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
