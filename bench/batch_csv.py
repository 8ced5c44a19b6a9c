"""Batch: a generated 1,000,000-row CSV scored end to end by a job (read, score, write), against
raw in-process predict_proba on the same rows in the same run, with peak memory of each.

    .venv/bin/python bench/batch_csv.py [ROWS] [--job-only]

``--job-only`` skips the raw side (which holds the whole file in memory) for the memory test on
large files: 50,000,000 rows make a 2 GB CSV.

Each side runs in a fresh process so its peak resident memory (ru_maxrss) is its own.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import demo_artifact, machine_notes  # noqa: E402

RAW = """
import resource, sys, time, json
import pandas as pd, skops.io as sio
path, artifact = sys.argv[1], sys.argv[2]
model = sio.load(artifact, trusted=sio.get_untrusted_types(file=artifact))
start = time.perf_counter()
frame = pd.read_csv(path)
model.predict_proba(frame)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

JOB = """
import resource, sys, time, json
from pathlib import Path
from server.app import build_registry
from server.config import Settings
from server.jobs.service import Jobs
from server.scoring.scorer import Scorer
home, path = Path(sys.argv[1]), Path(sys.argv[2])
settings = Settings(home=home, background=False)
registry = build_registry(settings)
jobs = Jobs(registry, Scorer(registry, settings), settings)
job = jobs.submit("churn", path, actor="bench")
start = time.perf_counter()
status = jobs.run(jobs.claim("bench"))
print(json.dumps({"seconds": time.perf_counter() - start, "status": status,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(n_rows: int, job_only: bool = False) -> None:
    from server.demo import FEATURES, make_churn_data

    work = Path(tempfile.mkdtemp(prefix="sb-batch-"))
    home = work / "home"
    env_cli = [sys.executable, "-m", "server.cli"]
    subprocess.run(env_cli + ["demo"], check=True, capture_output=True,
                   env={"SCOREBRIDGE_HOME": str(home), "PATH": "/usr/bin:/bin"})
    artifact = demo_artifact(home)
    csv = work / "input.csv"
    block = make_churn_data(100_000, seed=3)[FEATURES]
    with open(csv, "w") as fh:
        for i in range(0, n_rows, len(block)):
            block.head(n_rows - i).to_csv(fh, index=False, header=i == 0)
    size_mb = csv.stat().st_size / 2**20
    raw = None if job_only else json.loads(subprocess.run(
        [sys.executable, "-c", RAW, str(csv), str(artifact)], check=True, capture_output=True,
        text=True).stdout)
    job = json.loads(subprocess.run([sys.executable, "-c", JOB, str(home), str(csv)],
                                    check=True, capture_output=True, text=True).stdout)
    assert job["status"] == "succeeded"
    print(f"machine: {machine_notes()}")
    print(f"{n_rows:,}-row CSV ({size_mb:.0f} MB)")
    if raw is not None:
        print(f"raw in-process read + predict_proba: {raw['seconds']:.1f} s "
              f"({n_rows / raw['seconds']:,.0f} rows/s), peak {raw['peak_mb']:.0f} MB")
    share = f", {100 * raw['seconds'] / job['seconds']:.0f}% of raw" if raw else ""
    print(f"ScoreBridge job (read, check, score, write CSV, 10,000-row chunks): "
          f"{job['seconds']:.1f} s ({n_rows / job['seconds']:,.0f} rows/s{share}), "
          f"peak {job['peak_mb']:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":

    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 1_000_000, job_only="--job-only" in sys.argv)
