"""Explanations: the demo model scored with and without per-row explanations, 1 row and 1,000
rows, through the scoring core (check, coerce, predict, explain) in the same run.

    .venv/bin/python bench/explain.py [REPEATS]

Targets (issue 24): 1,000 rows explained in under 0.1 s; one row's explanation adding under 2 ms.
The explainer is built once before timing (as the model cache keeps it per version).
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
    print(f"# {machine_notes()}; explainer built in {built:.2f} s (shap import included)")
    print(f"{'rows':>6} {'plain ms':>10} {'explained ms':>13} {'added ms':>9}")
    for n in (1, 1000):
        table = RawTable.from_rows(churn_rows(n), FEATURES, len(FEATURES))
        score_with(model, table, explained)   # warm
        base = median_seconds(lambda t=table: score_with(model, t, plain), repeats)
        with_reasons = median_seconds(lambda t=table: score_with(model, t, explained), repeats)
        print(f"{n:>6} {base * 1000:>10.2f} {with_reasons * 1000:>13.2f} "
              f"{(with_reasons - base) * 1000:>9.2f}")


if __name__ == "__main__":
    main()
