"""Power BI: scoring a 1,000,000-row table the way ScoreBridge.Predict does (records in batches of
1,000 rows, one POST each, as the M engine sends them), against raw in-process predict on the same
rows in the same run.

    .venv/bin/python bench/powerbi_batches.py [ROWS]
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import churn_rows, demo_artifact, load_model, machine_notes, scorebridge  # noqa: E402

BATCH = 1000
LARGER = 5000  # what a larger connector batch would give (the connector sends BATCH)


def main(n_rows: int) -> None:
    import pandas as pd

    from server.demo import FEATURES

    rows = churn_rows(n_rows)
    records = [dict(zip(FEATURES, r)) for r in rows]
    batches = [records[i:i + BATCH] for i in range(0, n_rows, BATCH)]
    with scorebridge() as (url, key, home):
        artifact = demo_artifact(home)
        model = load_model(artifact)
        frame = pd.DataFrame(rows, columns=FEATURES)
        start = time.perf_counter()
        model.predict_proba(frame)
        raw = time.perf_counter() - start

        def send(batch: list[dict]) -> int:
            session = getattr(send, "session", None) or requests.Session()
            resp = session.post(f"{url}/api/v1/models/churn/predict", timeout=120,
                                json={"records": batch,
                                      "options": {"errors": "row", "probabilities": True}},
                                headers={"X-API-Key": key})
            resp.raise_for_status()
            return len(resp.json()["predictions"])

        send(batches[0])
        for size, concurrency in ((BATCH, 1), (BATCH, 4), (LARGER, 1)):
            parts = [records[i:i + size] for i in range(0, n_rows, size)]
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                done = sum(pool.map(send, parts))
            elapsed = time.perf_counter() - start
            assert done == n_rows
            print(f"{n_rows:,} rows in {len(parts)} batches of {size}, {concurrency} at a time: "
                  f"{elapsed:.1f} s ({n_rows / elapsed:,.0f} rows/s)")
        # the same rows in process, in the connector's batches (one thread, as a request has)
        start = time.perf_counter()
        for i in range(0, n_rows, BATCH):
            model.predict_proba(frame.iloc[i:i + BATCH])
        sliced = time.perf_counter() - start
    print(f"raw in-process predict_proba on the same rows: {raw:.2f} s ({n_rows / raw:,.0f} rows/s)")
    print(f"raw in-process predict_proba in batches of {BATCH}: {sliced:.2f} s "
          f"({n_rows / sliced:,.0f} rows/s)")
    print(f"machine: {machine_notes()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
