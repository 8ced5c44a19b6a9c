"""Soak: a sustained mixed load against one server for a set time, with p99 latency and the
server's resident memory recorded every interval.

The mix is what a company's clients send at once: single-row API calls, 1,000-row batches,
Excel add-in batches of one-row calls, and Power BI/OData pages of the prediction log. Every
response must be a success; memory after warm-up (the first interval) may grow by less than 10 %.

    .venv/bin/python bench/soak.py [--minutes 10] [--interval 60] [--clients 8]

starts its own server (demo model, loopback); ``tests/api/test_soak.py`` runs the same loop for
20 seconds against a live server. Latest long-run figures: docs/reliability.md.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import BENCH_LIMITS, churn_rows, process_tree, server_pid  # noqa: E402

MEMORY_GROWTH_LIMIT = 0.10


@dataclass
class Interval:
    """One reporting interval: requests, failures (with the first few), latency, memory."""

    requests: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    rss_mb: float = 0.0

    @property
    def p99_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[98] * 1000


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (gunicorn master and workers)."""
    total = 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines()
                       if line.startswith("VmRSS:")), 0)
    return total / 1024


def workload(url: str, key: str) -> list[tuple[str, Callable[[requests.Session], Any]]]:
    """(name, request) pairs; the mix repeats them in this order with these weights."""
    from server.demo import FEATURES

    rows = churn_rows(1000, seed=9)
    headers = {"X-API-Key": key}
    predict = f"{url}/api/v1/models/churn/predict"
    singles = itertools.cycle(rows)
    excel = {"probabilities": True,
             "calls": [{"model": "churn", "values": [r]} for r in rows[:200]]}

    def single(s: requests.Session) -> requests.Response:
        return s.post(predict, json={"rows": [next(singles)]}, headers=headers, timeout=60)

    def batch(s: requests.Session) -> requests.Response:
        return s.post(predict, json={"records": [dict(zip(FEATURES, r)) for r in rows],
                                     "options": {"errors": "row"}}, headers=headers, timeout=60)

    def excel_batch(s: requests.Session) -> requests.Response:
        return s.post(f"{url}/excel/v1/batch", json=excel, headers=headers, timeout=60)

    def odata_page(s: requests.Session) -> requests.Response:
        return s.get(f"{url}/odata/Predictions_churn?$top=200&$orderby=Id desc",
                     headers=headers, timeout=60)

    return [("single", single)] * 12 + [("batch", batch), ("excel", excel_batch),
                                        ("excel", excel_batch), ("odata", odata_page)]


def soak(url: str, key: str, server_pid: int, seconds: float, interval: float,
         clients: int = 8, report: Callable[[int, Interval], None] | None = None,
         ) -> list[Interval]:
    """Run the mix from ``clients`` threads for ``seconds``; one Interval per ``interval``."""
    mix = workload(url, key)
    intervals: list[Interval] = [Interval()]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(offset: int) -> None:
        session = requests.Session()
        for name, call in itertools.islice(itertools.cycle(mix), offset, None):
            if time.monotonic() >= stop:
                return
            start = time.perf_counter()
            try:
                resp = call(session)
                problem = None if resp.ok else f"{name}: HTTP {resp.status_code} {resp.text[:200]}"
            except requests.RequestException as exc:
                problem = f"{name}: {type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - start
            with lock:
                current = intervals[-1]
                current.requests += 1
                current.latencies.append(elapsed)
                if problem:
                    current.failures += 1
                    if len(current.examples) < 5:
                        current.examples.append(problem)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, i * 3) for i in range(clients)]
        while time.monotonic() < stop:
            time.sleep(max(0.0, min(interval, stop - time.monotonic())))
            with lock:
                intervals[-1].rss_mb = tree_rss_mb(server_pid)
                if report is not None:
                    report(len(intervals), intervals[-1])
                if time.monotonic() < stop:
                    intervals.append(Interval())
        for future in futures:
            future.result()
    return intervals


def memory_growth(intervals: list[Interval]) -> float:
    """Growth of resident memory from the end of warm-up (the first interval) to the end."""
    warm, last = intervals[0].rss_mb, intervals[-1].rss_mb
    return (last - warm) / warm if warm else 0.0


def print_interval(number: int, data: Interval) -> None:
    print(f"| {number} | {data.requests:,} | {data.failures} | {data.p99_ms:.1f} ms | "
          f"{data.rss_mb:,.0f} MB |", flush=True)


def main() -> None:
    from bench.common import machine_notes, scorebridge

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {machine_notes()}; {args.clients} clients for {args.minutes:g} min\n")
    print("| interval | requests | failures | p99 latency | server memory (RSS) |")
    print("|---|---|---|---|---|")
    with scorebridge(**BENCH_LIMITS) as (url, key, _home):
        intervals = soak(url, key, server_pid(url), args.minutes * 60, args.interval, args.clients,
                         report=print_interval)
    failures = sum(i.failures for i in intervals)
    growth = memory_growth(intervals)
    print(f"\n{sum(i.requests for i in intervals):,} requests, {failures} failures; memory "
          f"growth after warm-up {100 * growth:+.1f} % (limit {100 * MEMORY_GROWTH_LIMIT:.0f} %)")
    for example in [e for i in intervals for e in i.examples][:5]:
        print("  ", example)
    sys.exit(0 if failures == 0 and growth < MEMORY_GROWTH_LIMIT else 1)


if __name__ == "__main__":
    main()
