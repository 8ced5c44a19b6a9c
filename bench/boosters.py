"""Boosting libraries in process: one XGBoost and one LightGBM classifier (100 trees, 10 numeric
inputs) scored through ScoreBridge's loaded model by the library's own predictor and by the
native trees compiled at registration, for one row and for 10,000, in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/boosters.py

Each figure is the best of several calls (CPU contention only ever adds time).
"""
from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from server.scoring.compiled.compiler import compile_version  # noqa: E402
from server.scoring.compiled.native import NativeRunner  # noqa: E402
from server.scoring.runtime import LoadedModel  # noqa: E402
from server.scoring.signature import infer_signature  # noqa: E402


def best(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    import lightgbm as lgb
    import xgboost as xgb

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(5000, 10)), columns=[f"f{i}" for i in range(10)])
    y = (train.f0 + train.f1 * train.f2 > 0).astype(int)
    rows = pd.DataFrame(rng.normal(size=(10_000, 10)), columns=train.columns)
    columns = {c: rows[c].to_numpy() for c in rows.columns}
    one = {c: v[:1] for c, v in columns.items()}
    models = {"XGBClassifier": xgb.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1),
              "LGBMClassifier": lgb.LGBMClassifier(n_estimators=100, num_leaves=31, n_jobs=1,
                                                   verbose=-1)}
    print("| model | engine | 1 row | 10,000 rows |\n|---|---|---|---|")
    for name, estimator in models.items():
        estimator.fit(train, y)
        signature = infer_signature(estimator, train)
        started = time.perf_counter()
        outcome = compile_version(estimator, signature, train.head(1000), native=True)
        compile_s = time.perf_counter() - started
        assert outcome.data is not None, outcome.note
        runner = NativeRunner(outcome.data, signature, np.asarray(estimator.classes_))
        for engine, model in (
                ("library", LoadedModel("m", 1, estimator, signature, "")),
                (f"native (compiled in {compile_s:.1f} s)",
                 LoadedModel("m", 1, estimator, signature, "", compiled=runner))):
            single = best(lambda m=model: m.predict(one), 50)
            batch = best(lambda m=model: m.predict(columns), 5)
            print(f"| {name} | {engine} | {single * 1e3:.2f} ms | {batch * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
