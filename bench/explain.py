"""Explanations: the demo model scored with and without per-row explanations, 1 row and 1,000
rows, through the scoring core (check, coerce, predict, explain) in the same run.

    .venv/bin/python bench/explain.py [REPEATS]

Targets (issue 24): 1,000 rows explained in under 0.1 s; one row's explanation adding under 2 ms.
The explainer is built once before timing (as the model cache keeps it per version). Then the
three exact TreeSHAP engines alone on the same transformed rows: the per-leaf tables (the default,
server/scoring/treeshap_tables.py), shap's TreeExplainer, and LightGBM's on the translated trees
(server/scoring/lightgbm_shap.py).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import churn_rows, load_model, machine_notes  # noqa: E402


def median_seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from server.demo import FEATURES, make_churn_data, train_demo
    from server.scoring.predict import score_with
    from server.scoring.runtime import LoadedModel
    from server.scoring.signature import infer_signature
    from server.types import RawTable, ScoreOptions

    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    estimator = load_model(train_demo(Path(tempfile.mkdtemp(prefix="sb-explain-")))["artifact"])
    sample = make_churn_data(1000, seed=2)[FEATURES]
    model = LoadedModel("churn", 1, estimator, infer_signature(estimator, sample), "bench",
                        reference=lambda: sample)
    started = time.perf_counter()
    model.explainer()
    built = time.perf_counter() - started
    plain, explained = ScoreOptions(), ScoreOptions(explain=3)
    print(f"# {machine_notes()}; explainer built in {built:.2f} s ({model.explainer().method})")
    print(f"{'rows':>6} {'plain ms':>10} {'explained ms':>13} {'added ms':>9}")
    for n in (1, 1000):
        table = RawTable.from_rows(churn_rows(n), FEATURES, len(FEATURES))
        score_with(model, table, explained)   # warm
        base = median_seconds(lambda t=table: score_with(model, t, plain), repeats)
        with_reasons = median_seconds(lambda t=table: score_with(model, t, explained), repeats)
        print(f"{n:>6} {base * 1000:>10.2f} {with_reasons * 1000:>13.2f} "
              f"{(with_reasons - base) * 1000:>9.2f}")
    engines(estimator, sample, repeats)


def engines(estimator, sample, repeats: int) -> None:  # type: ignore[no-untyped-def]
    """The exact TreeSHAP engines on the same transformed rows: the per-leaf tables (the
    default), shap's TreeExplainer, and LightGBM's pred_contrib on the translated trees
    (server/scoring/lightgbm_shap), LightGBM with one thread and with every core."""
    import os
    import warnings

    import numpy as np
    import shap

    from server.scoring import lightgbm_shap, treeshap_tables

    final = estimator[-1]
    z = np.asarray(estimator[:-1].transform(sample), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = shap.TreeExplainer(final, feature_perturbation="tree_path_dependent",
                                  model_output="raw")
    fast = lightgbm_shap.translate(final, type(final).__name__)
    started = time.perf_counter()
    tables = treeshap_tables.tables(final, type(final).__name__)
    print(f"# tables built in {time.perf_counter() - started:.2f} s")
    if fast is None or tables is None:
        return
    cores = os.cpu_count() or 1
    print(f"# TreeSHAP engines alone (ms), same rows; LightGBM with 1 and {cores} threads")
    print(f"{'rows':>6} {'tables':>10} {'shap':>10} {'lgbm x1':>10} {'lgbm xN':>10}")
    for n in (1, 1000):
        rows = np.resize(z, (n, z.shape[1]))
        cells = [median_seconds(lambda r=rows: tables(r), repeats),
                 median_seconds(lambda r=rows: tree.shap_values(r, check_additivity=False),
                                repeats)]
        for threads in (1, cores):
            cells.append(median_seconds(lambda t=threads, r=rows: fast.booster.predict(
                fast.ranks(r), pred_contrib=True, num_threads=t), repeats))
        print(f"{n:>6} " + " ".join(f"{c * 1000:>10.2f}" for c in cells))


if __name__ == "__main__":
    main()
