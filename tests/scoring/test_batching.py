"""Cross-request micro-batching: concurrent small requests share model calls, and each still gets
exactly what it would have got alone (values, errors, warnings, raise-or-row behaviour)."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from server.app import create_app
from server.errors import InvalidInput
from server.scoring.batching import MicroBatcher
from server.types import RawTable, ScoreOptions
from tests.conftest import assert_probabilities, churn_rows, jsonable, register_file


def together(n: int, work: Any) -> list[Any]:
    """Run ``work(i)`` on ``n`` threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - compared by the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_queued_items_share_one_call_and_a_lone_item_leads_at_once():
    """The first request leads alone; those arriving during its call queue and share the next
    one. A request with nobody around leads at once, however long the configured wait."""
    batcher: MicroBatcher[int, int] = MicroBatcher(max_rows=7, wait_seconds=30)
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            time.sleep(0.3)  # the others arrive meanwhile
        return [i * 10 for i in items]

    assert together(8, lambda i: batcher.submit("k", i, 1, run)) == [i * 10 for i in range(8)]
    assert [len(c) for c in calls] == [1, 7] and sorted(sum(calls, [])) == list(range(8))
    alone: MicroBatcher[int, int] = MicroBatcher(max_rows=100, wait_seconds=30)
    started = time.monotonic()
    assert alone.submit("k", 3, 1, run) == 30 and calls[-1] == [3]
    assert alone.submit("k", 4, 1, run) == 40 and calls[-1] == [4]
    assert time.monotonic() - started < 15  # neither waited for company


def test_a_busy_key_waits_for_as_many_requests_as_its_last_call_saw():
    """After a call that had company, the next leader holds the lead (up to the wait) until as
    many requests are queued as that call saw (itself and those queued behind it), then goes."""
    batcher: MicroBatcher[int, int] = MicroBatcher(max_rows=100, wait_seconds=30)
    calls: list[list[int]] = []
    release = threading.Event()

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            release.wait(10)  # two more requests queue behind this call: it saw three
        return items

    def submit_and_wait(item: int, queued: int) -> threading.Thread:
        thread = threading.Thread(target=batcher.submit, args=("k", item, 1, run))
        thread.start()
        while len(batcher._lanes["k"].queue) < queued:
            time.sleep(0.01)
        return thread

    first = threading.Thread(target=batcher.submit, args=("k", 1, 1, run))
    first.start()
    while not calls:
        time.sleep(0.01)
    threads = [first, submit_and_wait(2, 1), submit_and_wait(3, 2)]
    release.set()
    first.join(10)
    time.sleep(0.3)  # time enough for the next call, were its leader not waiting
    assert calls == [[1]]  # two of the three it expects are here: it waits
    threads.append(threading.Thread(target=batcher.submit, args=("k", 4, 1, run)))
    threads[-1].start()
    for t in threads:
        t.join(10)
    assert calls == [[1], [2, 3, 4]]


def test_max_rows_bounds_a_call_and_a_failed_call_hands_items_back():
    batcher: MicroBatcher[int, int] = MicroBatcher(max_rows=3, wait_seconds=0.2)
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        if 5 in items:
            raise RuntimeError("boom")
        return items

    out = together(9, lambda i: batcher.submit("k", i, 1, run))
    assert max(sizes) <= 3
    failed = [i for i, v in enumerate(out) if v is None]
    assert 5 in failed and all(out[i] == i for i in range(9) if i not in failed)


def test_many_threads_each_get_their_own_outcome_and_none_is_left_waiting():
    """Hand-offs under contention: every submit returns (no lost wake-up), with its own value,
    while calls stay within max_rows and the lanes are empty at the end."""
    batcher: MicroBatcher[tuple[int, int], int] = MicroBatcher(max_rows=5)
    sizes: list[int] = []

    def run(items: list[tuple[int, int]]) -> list[int]:
        sizes.append(len(items))
        return [a * 1000 + b for a, b in items]

    def work(i: int) -> list[int]:
        return [batcher.submit(("k", i % 3), (i, j), 1, run) for j in range(40)]

    out = together(24, work)
    assert out == [[i * 1000 + j for j in range(40)] for i in range(24)]
    assert max(sizes) <= 5 and sum(sizes) == 24 * 40
    assert not batcher._lanes


@pytest.fixture
def scorer(settings: Any, client: Any, demo_files: Any) -> Any:
    assert register_file(client, "churn", demo_files["artifact"],
                         demo_files["sample"]).status_code == 201
    app = create_app(replace(settings, batch_wait_ms=200.0))
    yield app.extensions["scorebridge"].scorer
    app.extensions["scorebridge"].registry.engine.dispose()


def test_concurrent_requests_are_scored_together_with_their_own_answers(scorer):
    rows = jsonable(churn_rows(12, seed=4))
    rows[3][1] = "not a number"             # a bad row: its request alone sees the error
    rows[5] = {"unknown": 1}                # not a row at all
    alone = [_outcome(lambda r=r: scorer.score(
        "churn", RawTable.positional([r]), options=ScoreOptions())) for r in rows]
    # a request that finds its key idle leads at once (by design), so on a loaded machine one
    # round of threads can arrive one after another: up to five rounds, each answer checked
    # every round, and some round must have shared calls
    shared = []
    for _ in range(5):
        calls_before = scorer.batcher.calls
        together_ = together(len(rows), lambda i: _outcome(lambda: scorer.score(
            "churn", RawTable.positional([rows[i]]), options=ScoreOptions())))
        shared.append(scorer.batcher.calls - calls_before < len(rows))
        for mine, reference in zip(together_, alone):
            if isinstance(reference, Exception):
                assert type(mine) is type(reference) and str(mine) == str(reference)
                continue
            assert mine.predictions == reference.predictions
            assert_probabilities(mine.probabilities, reference.probabilities)
            assert mine.errors == reference.errors and mine.warnings == reference.warnings
        assert isinstance(together_[3], InvalidInput)
        if shared[-1]:
            break
    assert any(shared), "no round shared a model call"


def test_row_mode_and_records_keep_their_warnings(scorer):
    frame = churn_rows(6, seed=8)
    records = [dict(r, extra=1) for r in frame.to_dict("records")]
    out = together(len(records), lambda i: scorer.score(
        "churn", RawTable.from_records([records[i]]), options=ScoreOptions(errors="row")))
    for result, record in zip(out, records):
        alone = scorer.score("churn", RawTable.from_records([record]),
                             options=ScoreOptions(errors="row"))
        assert result.predictions == alone.predictions
        assert [w.column for w in result.warnings] == [w.column for w in alone.warnings]


def _outcome(call: Any) -> Any:
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - compared by the test
        return exc
