"""The scikit-learn fallback against the naive way: one-row requests for models the compiled path
does not take (a calibrated forest, native categorical splits, a k-NN), in process, side by side
with a plain ``predict_proba`` on a one-row DataFrame and with the naive Flask app
(bench/naive_server.py) on the same rows, in one run.

Each way runs in a child process of its own (OpenMP's idle threads spin for a while after a call,
so ways sharing a process would be charged each other's spinning), with the code under test on its
path, so a before/after pair is measured in the same run: ``--before /work/main`` adds that
checkout's ScoreBridge as a column. Times are CPU seconds of the whole process (OpenMP's threads
included) and wall-clock medians; the children run in turn, round after round, so load from other
work falls on every way alike.

    .venv/bin/python bench/fallback.py [--before CHECKOUT] [--rounds 2] [--requests 400]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# a child measures the checkout it is given (PYTHONPATH), not this file's: server comes from there
if os.environ.get("BENCH_CODE"):
    sys.path.insert(0, os.environ["BENCH_CODE"])
from bench.common import ROOT, machine_notes  # noqa: E402

# the spline model's parts, which the default allowlist leaves to an admin's review
SPLINE_TYPES = ("scipy._lib.array_api_compat.numpy._aliases.asarray",
                "scipy.interpolate._bsplines.BSpline")


def build_models(folder: Path) -> list[str]:
    """Three pipelines the compiled path leaves to scikit-learn today (their runtime notes say
    why): imputed, scaled numbers and one-hot text before a CalibratedClassifierCV of a forest
    (`calibrated_forest`); scaled numbers and ordinal text before a
    HistGradientBoostingClassifier with native categorical splits (`hgb_categorical`); and
    before 15 nearest neighbours (`knn`, as in the zoo). (This benchmark was written for a
    scaled HistGradientBoosting, a spline logistic regression and a soft VotingClassifier, and
    later measured a StackingClassifier, all compiled since: docs/performance.md.) Artifacts and
    reference samples are written into ``folder``."""
    import skops.io as sio
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from server.demo import CATEGORICAL, FEATURES, NUMERIC, TARGET, make_churn_data

    data = make_churn_data(5000, seed=11)
    data["monthly_charges"] = data["monthly_charges"].fillna(60.0)

    def encoded(text: Any) -> ColumnTransformer:
        return ColumnTransformer([("num", Pipeline([
            ("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
            NUMERIC), ("cat", text, CATEGORICAL)])

    def onehot() -> OneHotEncoder:
        return OneHotEncoder(handle_unknown="ignore", sparse_output=False)

    text_at = list(range(len(NUMERIC), len(NUMERIC) + len(CATEGORICAL)))
    models = {
        "calibrated_forest": Pipeline([("pre", encoded(onehot())), (
            "model", CalibratedClassifierCV(RandomForestClassifier(
                n_estimators=50, max_depth=8, random_state=0), cv=3))]),
        "hgb_categorical": Pipeline([("pre", encoded(OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1))), (
            "model", HistGradientBoostingClassifier(max_iter=100, categorical_features=text_at,
                                                    random_state=0))]),
        "knn": Pipeline([("pre", encoded(onehot())),
                         ("model", KNeighborsClassifier(n_neighbors=15))]),
    }
    for name, model in models.items():
        model.fit(data[FEATURES], data[TARGET])
        sio.dump(model, folder / f"{name}.skops")
        data[FEATURES].head(1000).to_csv(folder / f"{name}_sample.csv", index=False)
    return list(models)


def _timed(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    """``fn`` on ``n`` rows in turn: CPU ms per call (the whole process), wall p50 ms."""
    wall = []
    c0 = time.process_time()
    for i in range(n):
        w0 = time.perf_counter()
        fn(i)
        wall.append(time.perf_counter() - w0)
    return {"cpu_ms": (time.process_time() - c0) / n * 1e3,
            "p50_ms": statistics.median(wall) * 1e3}


def _measured(client: Any, key: str, folder: Path, name: str, n: int, way: str) -> dict[str, Any]:
    """Register ``name`` and time ``n`` one-row requests (or raw calls) the chosen way."""
    import pandas as pd
    import skops.io as sio

    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    artifact, sample = folder / f"{name}.skops", folder / f"{name}_sample.csv"
    runtime = "-"
    if way == "scorebridge":
        resp = client.post(f"/api/v1/models/{name}/versions", headers={"X-API-Key": key},
                           content_type="multipart/form-data", data={
                               "file": (io.BytesIO(artifact.read_bytes()), artifact.name),
                               "sample": (io.BytesIO(sample.read_bytes()), sample.name)})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        runtime = resp.json["runtime"]["engine"]
    frame = pd.read_csv(sample)
    rows = [[v.item() if hasattr(v, "item") else v for v in r]
            for r in frame.itertuples(index=False)]
    columns = list(frame.columns)
    bodies = [json.dumps({"rows": [r]}).encode() for r in rows]

    def scorebridge(i: int) -> Any:
        resp = client.post(f"/api/v1/models/{name}/predict", data=bodies[i % len(bodies)],
                           headers=headers)
        assert resp.status_code == 200
        return resp.get_data()

    fn: Callable[[int], Any] = scorebridge
    if way != "scorebridge":
        model = sio.load(artifact, trusted=sio.get_untrusted_types(file=artifact))
        os.environ["MODEL_FILE"] = str(artifact)
        from bench.naive_server import create_app as naive_app

        naive = naive_app().test_client()
        fn = {"raw": lambda i: model.predict_proba(pd.DataFrame(
            [rows[i % len(rows)]], columns=columns)),
            "naive": lambda i: naive.post("/predict", data=bodies[i % len(bodies)],
                                          headers=headers).get_data()}[way]
    _timed(fn, 30)  # warm up
    return {"runtime": runtime, **_timed(fn, n)}


def child(folder: Path, names: list[str], n: int, way: str) -> dict[str, Any]:
    """In this process (the code on PYTHONPATH): register each model and time one-row requests
    one ``way``: through ScoreBridge's whole scoring path (Flask's test client: JSON codec,
    coercion, the model, the encoder), the raw call, or the naive app, on the same rows."""
    import gc

    from server.app import create_app
    from server.config import Settings

    home = Path(tempfile.mkdtemp(prefix="sb-fallback-"))
    # micro-batching off: one request at a time has nothing to share, and the batch window
    # would add its wait to the wall clock
    app = create_app(Settings(home=home, background=False, rate_limiting=False,
                              micro_batching=False, prediction_log_rows_per_second=0,
                              trusted_types=SPLINE_TYPES))
    services = app.extensions["scorebridge"]
    key = services.keys.create("admin", "bench")[0]
    client = app.test_client()
    gc.freeze()  # as gunicorn's workers do (server/gunicorn_conf.py)
    gc.set_threshold(50_000, 20, 20)
    out = {name: _measured(client, key, folder, name, n, way) for name in names}
    services.registry.engine.dispose()
    return out


def thread_limit(folder: Path, names: list[str], blocks: int = 8, size: int = 25) -> None:
    """The OpenMP limit alone, in this process: one-row ``predict_proba`` with and without
    ``threads.for_rows``, in alternating blocks (an unlimited call's idle threads spin into
    whatever runs next, so the ways are not interleaved call by call)."""
    import pandas as pd
    import skops.io as sio

    from server.scoring import threads

    print("| model | OpenMP | wall p50 ms | wall p90 ms | CPU ms per call |")
    print("|---|---|---|---|---|")
    for name in names:
        artifact = folder / f"{name}.skops"
        model = sio.load(artifact, trusted=sio.get_untrusted_types(file=artifact))
        sample = pd.read_csv(folder / f"{name}_sample.csv")
        frames = [sample.iloc[i:i + 1].reset_index(drop=True) for i in range(blocks * size)]
        walls: dict[bool, list[float]] = {False: [], True: []}
        cpu = {False: 0.0, True: 0.0}
        for block in range(blocks):
            for limited in (False, True):
                c0 = time.process_time()
                for frame in frames[block * size:(block + 1) * size]:
                    w0 = time.perf_counter()
                    if limited:
                        with threads.for_rows(1):
                            model.predict_proba(frame)
                    else:
                        model.predict_proba(frame)
                    walls[limited].append(time.perf_counter() - w0)
                cpu[limited] += time.process_time() - c0
        for limited in (False, True):
            got = sorted(walls[limited])
            print(f"| {name} | {'one thread' if limited else 'as the process allows'} | "
                  f"{statistics.median(got) * 1e3:.2f} | {got[int(len(got) * 0.9)] * 1e3:.2f} | "
                  f"{cpu[limited] / len(got) * 1e3:.2f} |")


def requests_with_and_without(folder: Path, names: list[str], blocks: int = 8,
                              size: int = 25) -> None:
    """Whole one-row requests in one process, in alternating blocks: ScoreBridge with the
    OpenMP limit, ScoreBridge without it (``threads.WIDE_ROWS = 0``: the code before the
    limit), and the naive app, on the same rows."""
    import gc

    import pandas as pd

    from bench.naive_server import create_app as naive_app
    from server.app import create_app
    from server.config import Settings
    from server.scoring import threads

    app = create_app(Settings(home=Path(tempfile.mkdtemp(prefix="sb-fallback-")),
                              background=False, rate_limiting=False, micro_batching=False,
                              prediction_log_rows_per_second=0, trusted_types=SPLINE_TYPES))
    services = app.extensions["scorebridge"]
    key = services.keys.create("admin", "bench")[0]
    client = app.test_client()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    print("| model | way | wall p50 ms | wall p90 ms | CPU ms per request |")
    print("|---|---|---|---|---|")
    for name in names:
        artifact, sample = folder / f"{name}.skops", folder / f"{name}_sample.csv"
        resp = client.post(f"/api/v1/models/{name}/versions", headers={"X-API-Key": key},
                           content_type="multipart/form-data", data={
                               "file": (io.BytesIO(artifact.read_bytes()), artifact.name),
                               "sample": (io.BytesIO(sample.read_bytes()), sample.name)})
        assert resp.status_code == 201, resp.get_data(as_text=True)
        frame = pd.read_csv(sample)
        bodies = [json.dumps({"rows": [[v.item() if hasattr(v, "item") else v for v in r]]})
                  for r in frame.itertuples(index=False)]
        os.environ["MODEL_FILE"] = str(artifact)
        naive = naive_app().test_client()
        url = f"/api/v1/models/{name}/predict"
        ways = {"ScoreBridge, one OpenMP thread": (client, url, threads.WIDE_ROWS),
                "ScoreBridge without the limit (before)": (client, url, 0),
                "naive Flask app": (naive, "/predict", threads.WIDE_ROWS)}
        for body in bodies[:20]:
            client.post(url, data=body, headers=headers)
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        walls: dict[str, list[float]] = {w: [] for w in ways}
        cpu = dict.fromkeys(ways, 0.0)
        wide = threads.WIDE_ROWS
        for block in range(blocks):
            for way, (who, path, limit_from) in ways.items():
                threads.WIDE_ROWS = limit_from
                c0 = time.process_time()
                for body in bodies[block * size:(block + 1) * size]:
                    w0 = time.perf_counter()
                    assert who.post(path, data=body, headers=headers).status_code == 200
                    walls[way].append(time.perf_counter() - w0)
                cpu[way] += time.process_time() - c0
        threads.WIDE_ROWS = wide
        for way in ways:
            got = sorted(walls[way])
            print(f"| {name} | {way} | {statistics.median(got) * 1e3:.2f} | "
                  f"{got[int(len(got) * 0.9)] * 1e3:.2f} | {cpu[way] / len(got) * 1e3:.2f} |")
    services.registry.engine.dispose()


def run_child(checkout: Path, folder: Path, n: int, way: str, omp: str | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOREBRIDGE_")}
    env.pop("OMP_NUM_THREADS", None)
    if omp:
        env["OMP_NUM_THREADS"] = omp
    env["PYTHONPATH"] = env["BENCH_CODE"] = str(checkout)
    args = [sys.executable, str(ROOT / "bench" / "fallback.py"), "--child", str(folder),
            "--requests", str(n), "--way", way]
    done = subprocess.run(args, env=env, cwd=checkout, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads-only", action="store_true",
                        help="only the OpenMP limit's own effect, in this process (raw "
                        "calls, then whole requests with and without it)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--way", default="scorebridge", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        names = sorted(p.stem for p in args.child.glob("*.skops"))
        print(json.dumps(child(args.child, names, args.requests, args.way)))
        return
    folder = Path(tempfile.mkdtemp(prefix="sb-fallback-models-"))
    names = build_models(folder)
    print(f"machine: {machine_notes()}")
    print()
    thread_limit(folder, names)
    print()
    requests_with_and_without(folder, names)
    if args.threads_only:
        return
    ways = ([("before", args.before)] if args.before else []) + [("after", ROOT)]
    print()
    print(f"{args.requests} one-row requests per way and round; "
          "CPU ms per request (whole process), wall p50 ms in brackets")
    print()
    print("| model (runtime) | OMP_NUM_THREADS | round | raw `predict_proba` | naive Flask app | "
          + " | ".join(f"ScoreBridge {w}" for w, _ in ways) + " |")
    print("|---|---|---|---|---|" + "---|" * len(ways))
    for omp in (None, "1"):
        for r in range(args.rounds):
            got = {w: run_child(path, folder, args.requests, "scorebridge", omp)
                   for w, path in ways}
            base = {w: run_child(ROOT, folder, args.requests, w, omp) for w in ("raw", "naive")}
            for name in names:
                after = got["after"][name]

                def cell(f: dict[str, float]) -> str:
                    return f"{f['cpu_ms']:.2f} ({f['p50_ms']:.2f})"
                print(f"| {name} ({after['runtime']}) | {omp or 'unset'} | {r + 1} | "
                      f"{cell(base['raw'][name])} | {cell(base['naive'][name])} | "
                      + " | ".join(cell(got[w][name]) for w, _ in ways) + " |")


if __name__ == "__main__":
    main()
