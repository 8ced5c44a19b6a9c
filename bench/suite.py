"""The benchmark suite, in one run and one command (``make bench``):

- two models: the demo churn model (ColumnTransformer + OneHotEncoder + HistGradientBoosting) and
  a second one (the same inputs through a 100-tree RandomForest);
- three ways to score each: raw in-process ``predict_proba`` (the limit), the naive Flask +
  gunicorn app in ``bench/naive_server.py`` in its strongest form (sync workers, one per core,
  ``OMP_NUM_THREADS=1``), and ScoreBridge as ``scorebridge serve`` starts it;
- single-row requests at concurrency 1, 8 and 32 (throughput, p50, p99) and 1,000- and
  10,000-row requests (rows/s), driven by ``wrk`` so the load generator costs little CPU; every
  server's answers are checked against in-process scikit-learn first;
- the zoo (``bench/zoo.py``): the demo and every pipeline shape users bring, each against the
  naive app serving that same model, single rows at concurrency 1 and 32 and 1,000/10,000-row
  requests, one table per model with its runtime note, written to docs/performance-zoo.md;
- then the Excel and CSV-job benchmarks (``bench/excel_cells.py``, ``bench/batch_csv.py``);
- with ``--matrix``, the worker-model measurements: workers × threads, ``--preload``, and
  micro-batching off / on / with a bounded wait.

    .venv/bin/python bench/suite.py [--seconds 10] [--matrix] [--skip-files] [--no-zoo]
    .venv/bin/python bench/suite.py --quick            # the zoo only, 2-second loads
    .venv/bin/python bench/suite.py --zoo-only knn     # some zoo models, full loads

Everything binds 127.0.0.1 and every load stops after ``--seconds``. Output is Markdown, ready
for docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (  # noqa: E402
    BENCH_LIMITS,
    BIN,
    ROOT,
    churn_rows,
    cpu_seconds,
    demo_artifact,
    free_port,
    load_model,
    machine_notes,
    process_tree,
    register,
    scorebridge,
    server_pid,
    wait_ready,
)
from bench.naive_server import FLOOR_KEY  # noqa: E402

CONCURRENCY = (1, 8, 32)
BATCH_SIZES = (1_000, 10_000)
SECOND = "forest"


@dataclass
class Load:
    """What wrk measured for one scenario."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    cpu_us: float | None = None  # the server's CPU time per request (all its processes)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, bodies: list[bytes], headers: dict[str, str], connections: int,
        seconds: float, server: list[int] | None = None) -> Load:
    """POST the ``bodies`` in turn to ``url`` over ``connections`` keep-alive connections for
    ``seconds``; with the ``server``'s process ids, also its CPU time per request."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as fh:
        fh.write(b"\n".join(bodies) + b"\n")
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    script.write('wrk.method = "POST"\n')
    for name, value in headers.items():
        script.write(f'wrk.headers["{name}"] = "{value}"\n')
    script.write(f'local bodies = {{}}\nfor line in io.lines("{fh.name}") do '
                 'bodies[#bodies + 1] = line end\nlocal i = 0\n'
                 'request = function()\n  i = i % #bodies + 1\n'
                 '  return wrk.format(nil, nil, nil, bodies[i])\nend\n')
    script.close()
    before = cpu_seconds(server) if server else 0.0
    try:
        out = subprocess.run(
            ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d",
             f"{max(int(seconds), 1)}s", "--timeout", "30s", "--latency", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(fh.name)
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket:
        # a sync worker closes the connection after each answer: wrk counts those as read errors
        errors += int(socket.group(1)) + int(socket.group(3)) + int(socket.group(4))
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    cpu = (cpu_seconds(server) - before) / done * 1e6 if server and done else None
    return Load(rps, p50, p99, errors, done, cpu)


def train_forest(workdir: Path) -> dict[str, Path]:
    """The second model: the demo's inputs through a 100-tree random forest."""
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from server.demo import FEATURES, TARGET, build_pipeline, make_churn_data

    data = make_churn_data(5000, seed=11)
    data["monthly_charges"] = data["monthly_charges"].fillna(data["monthly_charges"].median())
    pre = build_pipeline().steps[0][1]
    model = Pipeline([("preprocess", pre), ("model", RandomForestClassifier(
        n_estimators=100, max_depth=12, random_state=0))]).fit(data[FEATURES], data[TARGET])
    paths = {"artifact": workdir / "forest.skops", "sample": workdir / "forest_sample.csv"}
    sio.dump(model, paths["artifact"])
    data[FEATURES].head(1000).to_csv(paths["sample"], index=False)
    return paths


def raw_figures(model: Any, rows: list[list]) -> dict[str, float]:
    """In-process scikit-learn: one-row latency and rows/s at the batch sizes (``predict_proba``,
    or ``predict`` for a regression)."""
    import pandas as pd

    columns = list(model.feature_names_in_)
    call = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    one = pd.DataFrame(rows[:1], columns=columns)
    for _ in range(20):
        call(one)
    times = []
    for i in range(300):
        frame = pd.DataFrame(rows[i:i + 1], columns=columns)
        start = time.perf_counter()
        call(frame)
        times.append(time.perf_counter() - start)
    out = {"p50_ms": statistics.median(times) * 1000, "rps": 1 / statistics.mean(times)}
    for size in BATCH_SIZES:
        frame = pd.DataFrame(rows[:size], columns=columns)
        best = min(_timed(lambda frame=frame: call(frame)) for _ in range(5))
        out[f"rows_{size}"] = size / best
    return out


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_answers(url: str, headers: dict[str, str], model: Any, rows: list[list]) -> None:
    """The server's labels are in-process scikit-learn's, its probabilities within 1e-6 (a
    regression's values within 1e-6 relative)."""
    from bench.zoo import reference

    body = requests.post(url, data=json.dumps({"rows": rows}), headers=headers, timeout=120)
    body.raise_for_status()
    answer = body.json()
    labels, proba = reference(model, rows)
    if proba is None:
        assert np.allclose(answer["predictions"], labels, rtol=1e-6, atol=1e-9), \
            f"{url}: values differ from scikit-learn"
        return
    assert answer["predictions"] == labels, f"{url}: labels differ from scikit-learn"
    got = np.array(answer["probabilities"], dtype=float)
    assert np.abs(got - proba).max() <= 1e-6, f"{url}: probabilities differ from scikit-learn"


def single_rows(rows: list[list]) -> list[bytes]:
    """One-row bodies, a different customer each (a fixed row could happen to take an
    unusual path: a tree's split edge, a tie)."""
    return [json.dumps({"rows": [r]}).encode() for r in rows[:1000]]


def http_figures(url: str, headers: dict[str, str], rows: list[list], seconds: float,
                 concurrency: tuple[int, ...] = CONCURRENCY) -> dict[str, Load]:
    """Single rows at each concurrency, then the batch sizes (two connections per core: with a
    socket per worker the kernel places connections by a hash, and two connections land on the
    same worker half the time, leaving a core idle; the sync baseline takes one request per
    worker at a time either way). The server's CPU time per request is measured too: on a
    machine shared with the load generator, throughput varies from run to run far more than
    the work a request costs."""
    one = single_rows(rows)
    server = process_tree(server_pid(url))
    wrk(url, one, headers, 8, 2)  # warm up every worker and thread
    out = {f"c{c}": wrk(url, one, headers, c, seconds, server) for c in concurrency}
    for size in BATCH_SIZES:
        out[f"rows_{size}"] = wrk(url, [json.dumps({"rows": rows[:size]}).encode()], headers,
                                  2 * (os.cpu_count() or 1), seconds, server)
    return out


@contextmanager
def naive_server(artifact: Path, app: str = "create_app()",
                 worker: tuple[str, ...] = ("--worker-class", "sync"),
                 headers: dict[str, str] | None = None,
                 probe: list[list] | None = None) -> Iterator[str]:
    """The baseline: gunicorn sync workers, one per core, one OpenMP thread each (its best
    form on this machine: more workers or threads measured slower). The ceiling's apps run here
    too, with their own ``worker`` form and the ``headers`` their readiness check needs;
    ``probe`` is the row that check sends (a demo row by default)."""
    port = free_port()
    env = dict(os.environ, MODEL_FILE=str(artifact), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(os.cpu_count()),
         *worker, f"bench.naive_server:{app}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(lambda: requests.post(url + "/predict", json={"rows": probe or churn_rows(1)},
                                         headers=headers, timeout=5).status_code == 200)
        yield url + "/predict"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def table(title: str, figures: dict[str, dict[str, Any]],
          concurrency: tuple[int, ...] = CONCURRENCY, note: str = "") -> str:
    """Markdown: one row per scenario, one column per way of scoring (``note``: a line under
    the title, such as the version's runtime note)."""
    ways = list(figures)
    lines = [f"#### {title}", "", *([note, ""] if note else []),
             "| scenario | " + " | ".join(ways) + " |", "|---" * (len(ways) + 1) + "|"]
    for c in concurrency:
        cells = []
        for way in ways:
            f = figures[way].get(f"c{c}")
            if isinstance(f, Load):
                cells.append(f"{f.rps:,.0f} req/s, p50 {f.p50_ms:.2f} ms, p99 {f.p99_ms:.1f} ms"
                             + (f", **{f.errors} errors**" if f.errors else ""))
            elif c == 1 and "p50_ms" in figures[way]:
                cells.append(f"{figures[way]['rps']:,.0f} calls/s, p50 "
                             f"{figures[way]['p50_ms']:.2f} ms (one thread)")
            else:
                cells.append("—")
        lines.append(f"| 1 row, concurrency {c} | " + " | ".join(cells) + " |")
    for size in BATCH_SIZES:
        cells = []
        for way in ways:
            f = figures[way].get(f"rows_{size}")
            rate = f.rps * size if isinstance(f, Load) else f
            cells.append(f"{rate:,.0f} rows/s" if rate else "—")
        lines.append(f"| {size:,}-row requests | " + " | ".join(cells) + " |")
    cells = []
    for way in ways:
        f = figures[way].get("c32")
        cells.append(f"{f.cpu_us:,.0f} µs" if isinstance(f, Load) and f.cpu_us else "—")
    lines.append("| server CPU per request, 1 row at concurrency 32 | " + " | ".join(cells) + " |")
    sb, naive = figures.get("ScoreBridge", {}), figures.get("naive Flask", {})
    ratios = [f"{label}: **{sb[k].rps / naive[k].rps:.1f}×**" for k, label in
              [(f"c{c}", f"1 row at concurrency {c}") for c in concurrency]
              + [(f"rows_{n}", f"{n:,}-row requests") for n in BATCH_SIZES]
              if isinstance(sb.get(k), Load) and isinstance(naive.get(k), Load)
              and naive[k].rps > 0]
    if ratios:
        lines += ["", "ScoreBridge / naive (throughput), " + "; ".join(ratios) + "."]
    return "\n".join(lines)


def compare(seconds: float) -> None:
    rows = churn_rows(20_000, seed=5)
    work = Path(tempfile.mkdtemp(prefix="sb-suite-"))
    forest = train_forest(work)
    with scorebridge(**BENCH_LIMITS, setup=lambda home: register(home, forest, SECOND)) \
            as (url, key, home):
        models = {"churn": demo_artifact(home), SECOND: demo_artifact(home, SECOND)}
        results: dict[str, dict[str, dict[str, Any]]] = {}
        for name, artifact in models.items():
            model = load_model(artifact)
            results[name] = {"raw predict_proba": raw_figures(model, rows)}
            with naive_server(artifact) as naive_url:
                check_answers(naive_url, {"Content-Type": "application/json"}, model, rows[:10_000])
                results[name]["naive Flask"] = http_figures(
                    naive_url, {"Content-Type": "application/json"}, rows, seconds)
            headers = {"Content-Type": "application/json", "X-API-Key": key}
            sb_url = f"{url}/api/v1/models/{name}/predict"
            check_answers(sb_url, headers, model, rows[:10_000])
            results[name]["ScoreBridge"] = http_figures(sb_url, headers, rows, seconds)
            runtime = requests.get(f"{url}/api/v1/models/{name}/versions/1",
                                   headers={"X-API-Key": key}, timeout=10).json()["runtime"]
            print(table(f"{name} (ScoreBridge runtime: {runtime['engine']})", results[name]))
            print()
        ceiling(rows, results["churn"]["naive Flask"]["c32"], seconds)


ZOO_CONCURRENCY = (1, 32)
ZOO_FRAGMENT = ROOT / "docs" / "performance-zoo.md"


def zoo(seconds: float, fragment: Path, only: list[str] | None = None) -> None:
    """The demo model and every pipeline of bench/zoo.py (those whose libraries are installed),
    in one server and one run: raw in-process scoring, the naive app for that same model and
    ScoreBridge, single rows at concurrency 1 and 32 and 1,000/10,000-row requests, answers
    checked first. One table per model, with its runtime note, printed and written to
    ``fragment`` (docs/performance.md includes it)."""
    from bench import zoo as pipelines

    chosen = [m for m in pipelines.available() if not only or m.name in only]
    work = Path(tempfile.mkdtemp(prefix="sb-zoo-"))
    print(f"training {len(chosen)} zoo pipelines...", file=sys.stderr)
    trained = {m.name: pipelines.train(m, work) for m in chosen}
    trusted = {"TRUSTED_TYPES": ",".join(pipelines.SPLINE_TYPES)}

    def setup(home: Path) -> None:
        for name, paths in trained.items():
            register(home, paths, name, **trusted)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out = [f"<!-- written by `bench/suite.py` ({'--quick, ' if seconds < 5 else ''}"
           f"{seconds:g}-second loads) on {started}; do not edit by hand -->", "",
           f"Machine: {machine_notes()}, wrk {wrk_version()}; load average at the start "
           f"{os.getloadavg()[0]:.1f} (other sessions share the cores when it is above 0).", ""]
    summary = ["| model | shape | ScoreBridge runtime | c=1 p50 (naive) | c=32 × naive | "
               "1,000 rows × naive | 10,000 rows × naive |", "|---|---|---|---|---|---|---|"]
    tables = []
    with scorebridge(**BENCH_LIMITS, **trusted, setup=setup) as (url, key, home):
        entries = [("churn", "the demo: one-hot before HistGradientBoosting", churn_rows(20_000,
                                                                                      seed=5))]
        entries += [(m.name, m.shape, pipelines.zoo_rows(m, 20_000)) for m in chosen]
        for name, shape, rows in entries:
            print(f"measuring {name}...", file=sys.stderr)
            artifact = demo_artifact(home, name)
            model = load_model(artifact)
            figures: dict[str, dict[str, Any]] = {"raw in-process": raw_figures(model, rows)}
            plain = {"Content-Type": "application/json"}
            with naive_server(artifact, probe=rows[:1]) as naive_url:
                check_answers(naive_url, plain, model, rows[:10_000])
                figures["naive Flask"] = http_figures(naive_url, plain, rows, seconds,
                                                      ZOO_CONCURRENCY)
            headers = {**plain, "X-API-Key": key}
            sb_url = f"{url}/api/v1/models/{name}/predict"
            check_answers(sb_url, headers, model, rows[:10_000])
            figures["ScoreBridge"] = http_figures(sb_url, headers, rows, seconds, ZOO_CONCURRENCY)
            runtime = requests.get(f"{url}/api/v1/models/{name}/versions/1",
                                   headers={"X-API-Key": key}, timeout=10).json()["runtime"]
            note = f"Runtime: **{runtime['engine']}**" + (
                f". Note: {runtime['note']}" if runtime["note"] else "")
            tables.append(table(f"{name}: {shape}", figures, ZOO_CONCURRENCY, note))
            print(tables[-1] + "\n")
            sb, naive = figures["ScoreBridge"], figures["naive Flask"]
            summary.append(
                f"| {name} | {shape} | {runtime['engine']} | {sb['c1'].p50_ms:.2f} ms "
                f"({naive['c1'].p50_ms:.2f} ms) | " + " | ".join(
                    f"{sb[k].rps / naive[k].rps:.1f}×" if naive[k].rps else "—"
                    for k in ("c32", "rows_1000", "rows_10000"))
                + " |")
            # after each model, so a run cut short still leaves what it measured
            fragment.write_text("\n".join(out + summary + [""] + tables) + "\n")
    print(f"written: {fragment}", file=sys.stderr)


def ceiling(rows: list[list], naive: Load, seconds: float) -> None:
    """What Flask + gunicorn answer at concurrency 32 with no work at all, in ScoreBridge's
    worker form (gthread, one worker per core, a socket each): the most any server on this
    stack can reach.
    Then the same with the request handling ScoreBridge must do before any scoring (an API key
    and Flask-Limiter): the most a server with those duties can reach."""
    one = single_rows(rows)
    print("The stack's own ceiling, under gunicorn in ScoreBridge's worker form (gthread, "
          f"{os.cpu_count()} × 16, a socket per worker), at concurrency 32, against the naive "
          "baseline above:\n")
    print("| server | req/s | p50 | server CPU per request | × naive |")
    print("|---|---|---|---|---|")
    for label, app, headers in (
            ("Flask answering a constant", "create_constant_app()", {}),
            ("the same behind an API key and Flask-Limiter", "create_floor_app()",
             {"X-API-Key": FLOOR_KEY})):
        headers = {"Content-Type": "application/json", **headers}
        with naive_server(Path("unused"), app, ("--worker-class", "gthread", "--threads", "16",
                                                "--reuse-port"), headers) as url:
            wrk(url, one, headers, 8, 2)
            load = wrk(url, one, headers, 32, seconds, process_tree(server_pid(url)))
        print(f"| {label} | {load.rps:,.0f} | {load.p50_ms:.2f} ms | {load.cpu_us:,.0f} µs | "
              f"**{load.rps / naive.rps:.1f}×** |")
    print()


def matrix(seconds: float) -> None:
    """Worker model: single rows at concurrency 1 and 32, and memory, per configuration."""
    one = single_rows(churn_rows(1000, seed=5))
    configs = [("2 workers × 8 threads", 2, 8, {}),
               ("2 × 16 (the default: batch wait 2 ms under load)", 2, 16, {}),
               ("2 × 32", 2, 32, {}), ("4 × 8", 4, 8, {}),
               ("1 × 16", 1, 16, {}),
               ("2 × 16, micro-batching off", 2, 16, {"MICRO_BATCHING": "off"}),
               ("2 × 16, no batch wait", 2, 16, {"BATCH_WAIT_MS": "0"}),
               ("2 × 16, batch wait 1 ms", 2, 16, {"BATCH_WAIT_MS": "1"}),
               ("2 × 16, batch wait 4 ms", 2, 16, {"BATCH_WAIT_MS": "4"}),
               ("2 × 16, --preload", 2, 16, {"PRELOAD": "on"}),
               # the other worker classes: one request at a time per process, or greenlets
               ("2 sync workers", 2, 1, {"gunicorn_args": "--worker-class sync"}),
               ("2 gevent workers", 2, 1, {"gunicorn_args": "--worker-class gevent"})]
    print("| configuration | c=1 p50 | c=32 req/s | c=32 p50 / p99 | c=32 server CPU per request "
          "| workers' memory (PSS) |")
    print("|---|---|---|---|---|---|")
    for label, workers, threads, extra in configs:
        with scorebridge(workers, threads, **BENCH_LIMITS, **extra) as (url, key, _home):
            target = f"{url}/api/v1/models/churn/predict"
            headers = {"Content-Type": "application/json", "X-API-Key": key}
            wrk(target, one, headers, 8, 2)
            low = wrk(target, one, headers, 1, seconds)
            high = wrk(target, one, headers, 32, seconds, process_tree(server_pid(url)))
            memory = workers_pss_mb(url)
        print(f"| {label} | {low.p50_ms:.2f} ms | {high.rps:,.0f} | {high.p50_ms:.1f} / "
              f"{high.p99_ms:.1f} ms | {high.cpu_us:,.0f} µs | {memory:,.0f} MB |")


def workers_pss_mb(url: str) -> float:
    """Proportional set size of the server's processes (shared pages counted once)."""
    total = 0
    for pid in process_tree(server_pid(url)):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    parser.add_argument("--matrix", action="store_true", help="also measure worker models")
    parser.add_argument("--skip-files", action="store_true",
                        help="skip the Excel and CSV-job benchmarks")
    parser.add_argument("--quick", action="store_true",
                        help="only the zoo (every model, 2-second loads): a quick look")
    parser.add_argument("--no-zoo", action="store_true", help="skip the zoo")
    parser.add_argument("--zoo-only", nargs="*", metavar="NAME",
                        help="only the zoo (optionally only these models of bench/zoo.py)")
    parser.add_argument("--fragment", type=Path, default=ZOO_FRAGMENT,
                        help="where the zoo's tables go (default docs/performance-zoo.md)")
    args = parser.parse_args()
    print(f"machine: {machine_notes()}, wrk {wrk_version()}\n")
    if args.quick or args.zoo_only is not None:
        zoo(2.0 if args.quick else args.seconds, args.fragment, args.zoo_only)
        return
    compare(args.seconds)
    if not args.no_zoo:
        zoo(args.seconds, args.fragment)
    if args.matrix:
        matrix(args.seconds)
    if not args.skip_files:
        for script, extra in (("excel_cells.py", []), ("batch_csv.py", ["1000000"])):
            print(f"\n#### {script}\n")
            subprocess.run([sys.executable, str(ROOT / "bench" / script), *extra], check=True)


def wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    match = re.search(r"wrk \S*?(\d[\d.]+)", out.stdout + out.stderr)
    return match.group(1) if match else "?"


if __name__ == "__main__":
    main()
