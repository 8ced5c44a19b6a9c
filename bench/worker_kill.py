"""What a worker's death costs, for each socket model: clients score single rows, each request on a
new connection (the case where a socket per worker can lose more: connections the kernel queued in
the dead worker's own backlog are reset, where a shared socket hands them to another worker), one
of two workers is SIGKILLed, and the failed requests are counted.

    .venv/bin/python bench/worker_kill.py --clients 32 --runs 3

Figures go in docs/reliability.md; the test of the default model is
tests/api/test_under_load.py::test_killed_worker_loses_only_what_it_held.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import churn_rows, machine_notes, scorebridge, server_pid  # noqa: E402


@dataclass
class Outcome:
    requests: int
    failed: int
    failed_before_kill: int
    throughput: float  # successful requests per second before the kill


def kill_under_load(url: str, key: str, clients: int, seconds: float = 6.0,
                    kill_after: float = 2.0) -> Outcome:
    """``clients`` threads send single-row requests, each on a new connection, for ``seconds``;
    after ``kill_after`` one of the two workers is SIGKILLed."""
    rows = churn_rows(50)
    master = server_pid(url)
    victim = min(int(p) for p in
                 Path(f"/proc/{master}/task/{master}/children").read_text().split())
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()
    start = time.monotonic()
    stop = start + seconds

    def client(n: int) -> None:
        i = n
        while time.monotonic() < stop:
            try:
                ok = requests.post(f"{url}/api/v1/models/churn/predict",
                                   json={"rows": [rows[i % len(rows)]]},
                                   headers={"X-API-Key": key, "Connection": "close"},
                                   timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                results.append((time.monotonic(), ok))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    time.sleep(kill_after)
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    for t in threads:
        t.join(60)
    before = [ok for at, ok in results if at < killed_at]
    return Outcome(requests=len(results), failed=sum(not ok for _, ok in results),
                   failed_before_kill=sum(not ok for ok in before),
                   throughput=sum(before) / (killed_at - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(machine_notes())
    print(f"{args.clients} clients, a new connection per request, 2 workers x 16 threads; "
          "one worker SIGKILLed 2 s into 6 s")
    print("| socket model | failed requests per kill (runs) | median | req/s before the kill |")
    print("|---|---|---|---|")
    for model, reuse in (("a socket per worker", "on"), ("one shared socket", "off")):
        outcomes = []
        for _ in range(args.runs):
            with scorebridge(workers=2, threads=16, REUSE_PORT=reuse,
                             RATE_LIMITS="score=100000000/minute") as (url, key, _home):
                outcomes.append(kill_under_load(url, key, args.clients))
        failed = [o.failed for o in outcomes]
        assert all(o.failed_before_kill == 0 for o in outcomes), outcomes
        print(f"| {model} | {', '.join(map(str, failed))} | {statistics.median(failed):g} | "
              f"{statistics.median(o.throughput for o in outcomes):,.0f} |")


if __name__ == "__main__":
    main()
