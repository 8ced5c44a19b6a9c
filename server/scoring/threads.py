"""OpenMP on one thread for small scikit-learn calls, every core for large ones.

A one-row ``predict_proba`` of a histogram gradient boosting model opens one OpenMP parallel region
per tree; with a pool of threads per core and a server already running a thread per request, those
regions cost more than the trees (measured: docs/performance.md, "The scikit-learn fallback").
Small calls are therefore limited to one OpenMP thread; calls of ``WIDE_ROWS`` rows and more keep
what the process allows (``OMP_NUM_THREADS``), as the compiled runtimes do.

Only OpenMP is limited: its thread count is per calling thread, so one request's limit never
reaches another's large call. BLAS's (OpenBLAS) is process-wide, and it already runs small
products on one thread.
"""
from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

WIDE_ROWS = 2_000  # from this many rows a call may use every core (compiled/onnx.py's rule too)

_lock = threading.Lock()
_controller: Any = None


def forget() -> None:
    """Look the thread pools up again at the next small call: a model just loaded may have
    brought its own OpenMP (LightGBM, XGBoost and native trees each link one)."""
    global _controller
    _controller = None


def _openmp() -> Any:
    """threadpoolctl's controller for the loaded OpenMP runtimes, built once (it inspects every
    loaded library: ~25 ms; limiting with it then costs ~12 µs a call)."""
    global _controller
    if _controller is None:
        with _lock:
            if _controller is None:
                from threadpoolctl import ThreadpoolController

                _controller = ThreadpoolController().select(user_api="openmp")
    return _controller


def for_rows(n_rows: int) -> AbstractContextManager[Any]:
    """The thread limit for a model call on ``n_rows`` rows."""
    if n_rows >= WIDE_ROWS:
        return nullcontext()
    controller = _openmp()
    return controller.limit(limits=1) if controller.lib_controllers else nullcontext()
