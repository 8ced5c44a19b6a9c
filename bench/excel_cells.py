"""Excel: 10,000 filled-down =ML.PREDICT cells and a 100,000-row spill, as the add-in sends them
(requests of 5,000 calls asking for compact answers), side by side with one request per cell
(what the anchors do), in one run; and the 10,000 cells again for every model of the bench's zoo
(bench/zoo.py: trees, linear models, neighbours, a voting ensemble, a regression, the boosting
libraries when installed, a 20-column forest, the widest a spreadsheet sends), each with the
server's own CPU time (both workers) beside the wall clock, then in process.

    .venv/bin/python bench/excel_cells.py [--before CHECKOUT] [--models NAME ...]
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import (  # noqa: E402
    churn_rows,
    cpu_seconds,
    machine_notes,
    process_tree,
    register,
    scorebridge,
    server_pid,
)

CHUNK = 5000  # the add-in's MAX_BATCH_ROWS
PER_CELL_SAMPLE = 500
CELLS = 10_000


def zoo_setup(names: list[str] | None) -> tuple[list[str], dict[str, str], object]:
    """The zoo models to measure (those installed, or ``names``), the settings they need and
    a ``setup(home)`` that trains and registers each with its reference sample."""
    from bench import zoo

    chosen = [m for m in zoo.available() if not names or m.name in names]
    trusted = {"TRUSTED_TYPES": ",".join(zoo.SPLINE_TYPES)}
    work = Path(tempfile.mkdtemp(prefix="sb-excel-"))

    def setup(home: Path) -> None:
        for model in chosen:
            register(home, zoo.train(model, work), model.name, **trusted)
    return [m.name for m in chosen], trusted, setup


def cells(model: str, n: int = CELLS) -> list[list]:
    """``n`` one-row ranges for ``model`` (the demo's, or a zoo model's)."""
    if model == "churn":
        return churn_rows(n)
    from bench import zoo

    return zoo.zoo_rows(zoo.by_name(model), n)


def post(session: requests.Session, url: str, key: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    resp = session.post(url + "/excel/v1/batch", data=json.dumps(body),
                        headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=120)
    resp.raise_for_status()
    return time.perf_counter() - start, resp.json()


def batch_bodies(model: str, rows: list[list]) -> list[dict]:
    """One-row calls as the add-in batches them: 5,000 calls a request, compact answers."""
    return [{"probabilities": True, "compact": True,
             "calls": [{"model": model, "values": [r]} for r in rows[i:i + CHUNK]]}
            for i in range(0, len(rows), CHUNK)]


def filled_down(url: str, key: str, rows: list[list], model: str = "churn") -> tuple[float, float]:
    """10,000 one-row calls, batched as the add-in does: requests of 5,000 calls, in parallel.
    (wall seconds, the server's CPU seconds)."""
    bodies = batch_bodies(model, rows)
    server = process_tree(server_pid(url))
    cpu = cpu_seconds(server)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(requests.Session(), url, key, b), bodies))
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(server) - cpu
    results = [r for _, a in answers for r in a["results"]]
    assert len(results) == len(rows) and all("group" in r for r in results), results[:1]
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


def in_process(home: Path, models: list[str], repeats: int = 5) -> dict[str, list[float]]:
    """The server's own CPU seconds for 10,000 filled-down cells (two 5,000-call requests) per
    model, through Flask's test client in this process: no HTTP, client or other worker to
    share the cores with, so a before/after pair compares on a loaded machine."""
    import gc
    import os

    from bench import zoo
    from server.app import create_app
    from server.config import Settings

    os.environ["SCOREBRIDGE_TRUSTED_TYPES"] = ",".join(zoo.SPLINE_TYPES)
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              prediction_log_rows_per_second=0))
    services = app.extensions["scorebridge"]
    headers = {"X-API-Key": services.keys.create("admin", "bench")[0],
               "Content-Type": "application/json"}
    client = app.test_client()
    gc.freeze()  # as gunicorn's workers do (server/gunicorn_conf.py)
    gc.set_threshold(50_000, 20, 20)
    out = {}
    for model in models:
        bodies = [json.dumps(b) for b in batch_bodies(model, cells(model))]
        for body in bodies:  # warm up (the model loads)
            resp = client.post("/excel/v1/batch", data=body, headers=headers)
            assert resp.status_code == 200, resp.json
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for body in bodies:
                client.post("/excel/v1/batch", data=body, headers=headers)
            times.append(time.process_time() - start)
        out[model] = times
    services.registry.engine.dispose()
    return out


def in_process_table(home: Path, models: list[str], before: Path | None) -> None:
    """:func:`in_process` for this checkout and, when given, another, in turn, twice."""
    import os
    import subprocess

    print("| code | model | server CPU s for 10,000 cells, each try | best |")
    print("|---|---|---|---|")
    ways = ([("before", before)] if before else []) + [("after", ROOT)]
    for _ in range(2 if before else 1):
        for label, checkout in ways:
            env = dict(os.environ, PYTHONPATH=str(checkout))
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--in-process",
                                   str(home), *models], env=env, check=True,
                                  capture_output=True, text=True)
            for model, times in json.loads(done.stdout.strip().splitlines()[-1]).items():
                print(f"| {label} | {model} | " + ", ".join(f"{t:.3f}" for t in times)
                      + f" | {min(times):.3f} |")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="a checkout to compare with, in process")
    parser.add_argument("--models", nargs="*", help="only these zoo models (bench/zoo.py)")
    parser.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.in_process:  # the checkout on PYTHONPATH is the one measured, not this one
        sys.path.remove(str(ROOT))
        print(json.dumps(in_process(args.in_process, rest)))
        return
    from server.demo import FEATURES

    names, trusted, setup = zoo_setup(args.models)
    models = ["churn", *names]
    rows = churn_rows(100_000)
    with scorebridge(setup=setup, **trusted) as (url, key, home):
        runs = {}
        for model in models:
            batch = cells(model)
            filled_down(url, key, batch[:1000], model)  # warm up both workers
            runs[model] = [filled_down(url, key, batch, model) for _ in range(3)]
        spilled = min(spill(url, key, rows, FEATURES) for _ in range(2))
        one_each = per_cell(url, key, rows[:PER_CELL_SAMPLE])
    print(f"machine: {machine_notes()}")
    print("| model | 10,000 filled-down cells (2 requests): wall s (server CPU s), three runs |")
    print("|---|---|")
    for model, got in runs.items():
        print(f"| {model} | " + ", ".join(f"{wall:.2f} ({cpu:.2f})" for wall, cpu in got) + " |")
    print(f"10,000 cells, one request per cell: {one_each * CELLS:.1f} s "
          f"(measured on {PER_CELL_SAMPLE} cells: {one_each * 1000:.1f} ms each)")
    print(f"100,000-row spill (20 requests): {spilled:.2f} s "
          f"({100_000 / spilled:,.0f} rows/s)")
    in_process_table(home, models, args.before)


if __name__ == "__main__":
    main()
