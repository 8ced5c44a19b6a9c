"""Power BI: scoring a 1,000,000-row table the way ScoreBridge.Predict does, against raw
in-process ``predict_proba`` on the same rows in the same run.

The connector (powerbi/connector/ScoreBridge.pq) sends each batch in the columnar
``dataframe_split`` form its ``BatchBody`` builds from ``Table.ToRows`` (the column names once,
each row ending with its row number), one POST at a time, ``DefaultBatchSize`` rows each. The
records form it sent before (one object per row, 1,000 rows) is measured beside it.

    .venv/bin/python bench/powerbi_batches.py [ROWS]
"""
from __future__ import annotations

import gc
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import churn_rows, demo_artifact, load_model, machine_notes, scorebridge  # noqa: E402

OLD_BATCH = 1000  # the connector's batch before it sent dataframe_split
ROW = "scoring_row"  # the connector's row-number field (not a model input)


def connector_batch() -> int:
    """The connector's own default batch size, read from its source."""
    text = (ROOT / "powerbi" / "connector" / "ScoreBridge.pq").read_text()
    return int(re.search(r"^DefaultBatchSize = (\d+);", text, re.M).group(1))  # type: ignore[union-attr]


def bodies(rows: list[list], columns: list[str], size: int, form: str) -> list[bytes]:
    """The POST bodies of a refresh: ``form`` "split" as the connector sends now, "records" as
    it sent before."""
    options = {"errors": "row", "probabilities": True}
    out = []
    for start in range(0, len(rows), size):
        part = rows[start:start + size]
        numbered = [r + [start + k] for k, r in enumerate(part)]
        table: dict[str, Any] = (
            {"dataframe_split": {"columns": columns + [ROW], "data": numbered}} if form == "split"
            else {"records": [dict(zip(columns + [ROW], r)) for r in numbered]})
        out.append(json.dumps({**table, "options": options}).encode())
    return out


def main(n_rows: int) -> None:
    import numpy as np
    import pandas as pd

    from server.demo import FEATURES

    rows = churn_rows(n_rows)
    batch = connector_batch()
    with scorebridge() as (url, key, home):
        model = load_model(demo_artifact(home))
        frame = pd.DataFrame(rows, columns=FEATURES)
        session = requests.Session()
        headers = {"X-API-Key": key, "Content-Type": "application/json"}

        def refresh(parts: list[bytes]) -> tuple[float, float, list[Any]]:
            """One POST at a time, as the M engine walks the batches: (seconds, of which
            this client spent reading the answers' JSON, the labels)."""
            labels: list[Any] = []
            reading = 0.0
            start = time.perf_counter()
            for body in parts:
                resp = session.post(f"{url}/api/v1/models/churn/predict", data=body,
                                    headers=headers, timeout=120)
                resp.raise_for_status()
                read = time.perf_counter()
                labels += resp.json()["predictions"]
                reading += time.perf_counter() - read
            return time.perf_counter() - start, reading, labels

        refresh(bodies(rows[:batch], FEATURES, batch, "split"))  # warm up
        ways = {label: bodies(rows, FEATURES, size, form) for label, size, form in (
            (f"dataframe_split, {batch:,} rows (the connector now)", batch, "split"),
            (f"records, {OLD_BATCH:,} rows (the connector before)", OLD_BATCH, "records"),
            (f"dataframe_split, {OLD_BATCH:,} rows", OLD_BATCH, "split"))}
        # the benchmark's own rows and frame are no client's: out of the collector's sight, so
        # reading the answers is not charged for rescanning them (the workers freeze theirs too)
        gc.collect()
        gc.freeze()
        figures = {}
        for label, parts in ways.items():
            elapsed, reading, labels = refresh(parts)
            figures[label] = (elapsed, elapsed - reading)
        # the same rows in process: whole, and in the connector's batches (one thread each)
        start = time.perf_counter()
        proba = model.predict_proba(frame)
        raw = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(0, n_rows, batch):
            model.predict_proba(frame.iloc[i:i + batch])
        sliced = time.perf_counter() - start
        # rows stay aligned: the last refresh's labels are scikit-learn's, row for row
        assert labels == model.classes_[np.argmax(proba, axis=1)].tolist()
    print(f"machine: {machine_notes()}\n")
    # this Python client's reading of the answers (stdlib json) is not the server's work, and
    # Power Query reads them in its own engine: the last two columns leave it out
    print(f"| {n_rows:,} rows, one POST at a time | seconds | rows/s | × raw predict_proba | "
          "seconds without the client's reading | × raw |")
    print("|---|---|---|---|---|---|")
    for label, (elapsed, served) in figures.items():
        print(f"| {label} | {elapsed:.2f} | {n_rows / elapsed:,.0f} | {raw / elapsed:.2f}× | "
              f"{served:.2f} | {raw / served:.2f}× |")
    print(f"| raw in-process predict_proba, whole table | {raw:.2f} | {n_rows / raw:,.0f} | 1× "
          "| | |")
    print(f"| raw in-process predict_proba in batches of {batch:,} | {sliced:.2f} | "
          f"{n_rows / sliced:,.0f} | {raw / sliced:.2f}× | | |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
