"""Small scikit-learn calls run on one OpenMP thread, large ones on what the process allows, and
one thread's limit never reaches another's call (OpenMP's thread count is per calling thread)."""
from __future__ import annotations

import threading
from typing import Iterator

import pytest
import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
from threadpoolctl import threadpool_info, threadpool_limits

from server.scoring import threads


def openmp_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp"]


@pytest.fixture(autouse=True)
def two_threads() -> Iterator[None]:
    """Two OpenMP threads for the test's own thread, whatever OMP_NUM_THREADS says (the suite
    may run with 1, where a limit of one could not be told from no limit)."""
    with threadpool_limits(2, user_api="openmp"):
        yield


def test_small_calls_use_one_thread_and_large_ones_keep_the_process_setting():
    before = openmp_threads()
    assert before and set(before) == {2}, "scikit-learn's OpenMP runtime is loaded"
    with threads.for_rows(1):
        assert set(openmp_threads()) == {1}
    assert openmp_threads() == before
    with threads.for_rows(threads.WIDE_ROWS):
        assert openmp_threads() == before


def test_a_limit_in_one_thread_leaves_the_others_alone():
    inside, release = threading.Event(), threading.Event()
    seen: dict[str, list[int]] = {}

    def small_call() -> None:
        with threads.for_rows(1):
            seen["inside"] = openmp_threads()
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=small_call)
    worker.start()
    assert inside.wait(10)
    try:
        seen["other"] = openmp_threads()
    finally:
        release.set()
        worker.join(10)
    assert set(seen["inside"]) == {1}
    assert set(seen["other"]) == {2}


def test_forget_finds_the_runtimes_again():
    with threads.for_rows(1):
        pass
    threads.forget()
    with threads.for_rows(1):
        assert set(openmp_threads()) == {1}
