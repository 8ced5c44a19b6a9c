"""Excel: 10,000 filled-down =ML.PREDICT cells and a 100,000-row spill, as the add-in sends them,
side by side with one request per cell (what the anchors do), in one run; and the 10,000 cells
again for a 16-column random forest (the width of a model users bring, compiled to native trees),
with the server's own CPU time (both workers) beside the wall clock.

    .venv/bin/python bench/excel_cells.py
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import BIN, churn_rows, cpu_seconds, machine_notes, process_tree, scorebridge, server_pid  # noqa: E402

CHUNK = 5000  # the add-in's MAX_BATCH_ROWS
PER_CELL_SAMPLE = 500
WIDE = "wide"
EXTRA = [f"x{i}" for i in range(10)]  # numbers beside the demo's six columns: 16 in all


def wide_rows(n: int) -> list[list]:
    import numpy as np

    rng = np.random.default_rng(5)
    extra = rng.normal(0, 1, (n, len(EXTRA))).round(3).tolist()
    return [r + e for r, e in zip(churn_rows(n, seed=3), extra)]


def register_wide(home: Path) -> None:
    """A 50-tree random forest on 16 columns (13 numbers, 3 one-hot texts), as a user might
    register one: `scorebridge register` with a reference sample."""
    import os
    import subprocess

    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from server.demo import CATEGORICAL, FEATURES, NUMERIC, TARGET, make_churn_data

    frame = pd.DataFrame(wide_rows(5000), columns=FEATURES + EXTRA)
    y = make_churn_data(5000, seed=3)[TARGET]
    model = Pipeline([("pre", ColumnTransformer([
        ("num", "passthrough", NUMERIC + EXTRA),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL)])),
        ("model", RandomForestClassifier(n_estimators=50, max_depth=10, random_state=0))])
    model.fit(frame, y)
    sio.dump(model, home / "wide.skops")
    frame.head(1000).to_csv(home / "wide_sample.csv", index=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREBRIDGE_")}
    env["SCOREBRIDGE_HOME"] = str(home)
    subprocess.run([str(BIN / "scorebridge"), "register", str(home / "wide.skops"), "--name",
                    WIDE, "--sample", str(home / "wide_sample.csv")], env=env, check=True,
                   capture_output=True)


def post(session: requests.Session, url: str, key: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    resp = session.post(url + "/excel/v1/batch", data=json.dumps(body),
                        headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=120)
    resp.raise_for_status()
    return time.perf_counter() - start, resp.json()


def filled_down(url: str, key: str, rows: list[list], model: str = "churn") -> tuple[float, float]:
    """10,000 one-row calls, batched as the add-in does: requests of 5,000 calls, in parallel.
    (wall seconds, the server's CPU seconds)."""
    chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    bodies = [{"probabilities": True, "calls": [{"model": model, "values": [r]} for r in c]}
              for c in chunks]
    server = process_tree(server_pid(url))
    cpu = cpu_seconds(server)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(requests.Session(), url, key, b), bodies))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(server) - cpu
    assert sum(len(a["results"]) for _, a in answers) == len(rows)
    return elapsed, cpu


def spill(url: str, key: str, rows: list[list], header: list[str]) -> float:
    """One =ML.PREDICT over 100,000 rows: parts of 5,000 rows, each carrying the header hint."""
    parts = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    bodies = [{"probabilities": True, "calls": [{"model": "churn", "values": [header] + p}]}
              if i == 0 else
              {"probabilities": True, "calls": [{"model": "churn", "values": p,
                                                  "header": header}]}
              for i, p in enumerate(parts)]
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda b: post(requests.Session(), url, key, b), bodies))
    elapsed = time.perf_counter() - start
    assert sum(len(a["results"][0]["predictions"]) for _, a in answers) == len(rows)
    return elapsed


def per_cell(url: str, key: str, rows: list[list]) -> float:
    """One request per cell (xlwings Server, WEBSERVICE): the mean seconds per cell."""
    session = requests.Session()
    times = []
    for r in rows:
        start = time.perf_counter()
        session.post(url + "/api/v1/models/churn/predict", json={"rows": [r]},
                     headers={"X-API-Key": key}, timeout=30).raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.mean(times)


def in_process(home: Path, repeats: int = 5) -> dict[str, list[float]]:
    """The server's own CPU seconds for 10,000 filled-down cells (two 5,000-call requests),
    through Flask's test client in this process: no HTTP, client or other worker to share the
    cores with, so a before/after pair compares on a loaded machine."""
    import gc

    from server.app import create_app
    from server.config import Settings

    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              prediction_log_rows_per_second=0))
    services = app.extensions["scorebridge"]
    headers = {"X-API-Key": services.keys.create("admin", "bench")[0],
               "Content-Type": "application/json"}
    client = app.test_client()
    out = {}
    for model, rows in (("churn", churn_rows(10_000)), (WIDE, wide_rows(10_000))):
        bodies = [json.dumps({"probabilities": True, "calls": [
            {"model": model, "values": [r]} for r in rows[i:i + CHUNK]]})
            for i in range(0, len(rows), CHUNK)]
        for body in bodies:  # warm up (the model loads)
            assert client.post("/excel/v1/batch", data=body, headers=headers).status_code == 200
        gc.freeze()  # as gunicorn's workers do (server/gunicorn_conf.py)
        gc.set_threshold(50_000, 20, 20)
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for body in bodies:
                client.post("/excel/v1/batch", data=body, headers=headers)
            times.append(time.process_time() - start)
        out[model] = times
    services.registry.engine.dispose()
    return out


def in_process_table(home: Path, before: Path | None) -> None:
    """:func:`in_process` for this checkout and, when given, another, in turn, twice."""
    import os
    import subprocess

    print("| code | model | server CPU s for 10,000 cells, each try |")
    print("|---|---|---|")
    ways = ([("before", before)] if before else []) + [("after", ROOT)]
    for _ in range(2):
        for label, checkout in ways:
            env = dict(os.environ, PYTHONPATH=str(checkout))
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--in-process",
                                   str(home)], env=env, check=True, capture_output=True,
                                  text=True)
            for model, times in json.loads(done.stdout.strip().splitlines()[-1]).items():
                print(f"| {label} | {model} | " + ", ".join(f"{t:.3f}" for t in times) + " |")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="a checkout to compare with, in process")
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:  # the checkout on PYTHONPATH is the one measured, not this one
        sys.path.remove(str(ROOT))
        print(json.dumps(in_process(args.in_process)))
        return
    from server.demo import FEATURES


    rows = churn_rows(100_000)
    wide = wide_rows(10_000)
    with scorebridge(setup=register_wide) as (url, key, home):
        filled_down(url, key, rows[:1000])  # warm up both workers
        filled_down(url, key, wide[:1000], WIDE)
        runs = [filled_down(url, key, rows[:10_000]) for _ in range(3)]
        wide_runs = [filled_down(url, key, wide, WIDE) for _ in range(3)]
        spilled = min(spill(url, key, rows, FEATURES) for _ in range(2))
        one_each = per_cell(url, key, rows[:PER_CELL_SAMPLE])
    print(f"machine: {machine_notes()}")
    for label, got in (("demo model, 6 columns", runs), ("random forest, 16 columns", wide_runs)):
        print(f"10,000 filled-down cells, batched (2 requests), {label}: "
              + ", ".join(f"{wall:.2f} s ({cpu:.2f} s server CPU)" for wall, cpu in got))
    print(f"10,000 cells, one request per cell: {one_each * 10_000:.1f} s "
          f"(measured on {PER_CELL_SAMPLE} cells: {one_each * 1000:.1f} ms each)")
    print(f"100,000-row spill (20 requests): {spilled:.2f} s "
          f"({100_000 / spilled:,.0f} rows/s)")
    in_process_table(home, args.before)


if __name__ == "__main__":
    main()
