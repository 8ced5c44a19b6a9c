"""Excel: 10,000 filled-down =ML.PREDICT cells and a 100,000-row spill, as the add-in sends them,
side by side with one request per cell (what the anchors do), in one run.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import churn_rows, machine_notes, scorebridge  # noqa: E402

CHUNK = 5000  # the add-in's MAX_BATCH_ROWS
PER_CELL_SAMPLE = 500


def post(session: requests.Session, url: str, key: str, body: dict) -> tuple[float, dict]:
    start = time.perf_counter()
    resp = session.post(url + "/excel/v1/batch", data=json.dumps(body),
                        headers={"X-API-Key": key, "Content-Type": "application/json"}, timeout=120)
    resp.raise_for_status()
    return time.perf_counter() - start, resp.json()


def filled_down(url: str, key: str, rows: list[list]) -> float:
    """10,000 one-row calls, batched as the add-in does: requests of 5,000 calls, in parallel."""
    chunks = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)]
    bodies = [{"probabilities": True, "calls": [{"model": "churn", "values": [r]} for r in c]}
              for c in chunks]
    start = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: post(requests.Session(), url, key, b), bodies))
    elapsed = time.perf_counter() - start
    assert sum(len(a["results"]) for _, a in answers) == len(rows)
    return elapsed


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


def main() -> None:
    from server.demo import FEATURES

    rows = churn_rows(100_000)
    with scorebridge() as (url, key, _home):
        filled_down(url, key, rows[:1000])  # warm up both workers
        batched = min(filled_down(url, key, rows[:10_000]) for _ in range(3))
        spilled = min(spill(url, key, rows, FEATURES) for _ in range(2))
        one_each = per_cell(url, key, rows[:PER_CELL_SAMPLE])
    print(f"machine: {machine_notes()}")
    print(f"10,000 filled-down cells, batched (2 requests): {batched:.2f} s")
    print(f"10,000 cells, one request per cell: {one_each * 10_000:.1f} s "
          f"(measured on {PER_CELL_SAMPLE} cells: {one_each * 1000:.1f} ms each)")
    print(f"100,000-row spill (20 requests): {spilled:.2f} s "
          f"({100_000 / spilled:,.0f} rows/s)")


if __name__ == "__main__":
    main()
