"""Prometheus metrics, correct under gunicorn's many workers.

``scorebridge serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers
start, so every worker writes its counters there and ``/metrics`` adds them up (prometheus_client's
multiprocess mode); in a single process (tests, the CLI) the default registry is used.

The client kind of a request (excel, xlwings, sheets, powerbi, odata, mlflow, v2, tableau, cli,
http, batch) and the caller (a key or a person) travel in context variables set once per request by
the HTTP layer, so the scoring core can label rows and count traffic by user without knowing about
HTTP.

The instruments live here, at the bottom beside ``errors`` and ``config`` and importing nothing of
ours, because every layer counts: the scoring core (rows, model loads, deployed version), jobs,
the deployment pipeline and the HTTP layer. Had they stayed in ``telemetry`` (which reads the
scoring core's output for drift and monitoring), counting a scored row would point an import
upwards. Defining a Prometheus metric is declaration, not logic, so keeping them all in one place
also keeps the names of ``/metrics`` in one file.
"""
from __future__ import annotations

import contextvars
import functools
import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("scorebridge_client", default="http")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("scorebridge_request", default="")
# who is calling, for traffic by user: (a stable id, ``key:<id>`` or ``user:<subject>``, and a
# display name); ("", "") outside a request, where nothing is counted per user
NOBODY = ("", "")
CALLER: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("scorebridge_caller",
                                                                         default=NOBODY)
CLIENT_KINDS = {"excel", "xlwings", "sheets", "powerbi", "odata", "mlflow", "v2", "tableau", "cli",
                "http", "batch"}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter("scorebridge_requests_total", "HTTP requests answered",
                   ["model", "version", "route", "client", "status"])
DURATION = Histogram("scorebridge_request_duration_seconds", "Time to answer a request",
                     ["route", "client"], buckets=LATENCY_BUCKETS)
ROWS = Counter("scorebridge_rows_scored_total", "Rows scored", ["model", "version", "client"])
ERRORS = Counter("scorebridge_errors_total", "Errors answered, by kind", ["kind"])
MODEL_LOAD = Histogram("scorebridge_model_load_seconds", "Time to load a model version",
                       ["model"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
MODEL_INFO = Gauge("scorebridge_model_info", "1 for the version serving production",
                   ["model", "version"], multiprocess_mode="max")
RELEASES = Counter("scorebridge_pipeline_versions_total", "Versions through the deployment "
                   "pipeline, by outcome", ["model", "outcome"])
JOBS = Counter("scorebridge_jobs_total", "Batch jobs, by state reached", ["model", "state"])
ROLLOUTS = Counter("scorebridge_rollouts_total", "Rollouts decided", ["model", "kind", "outcome"])


def client_kind(header: str | None, route: str) -> str:
    """The client kind from our clients' own header, else from the route it called."""
    if header and header.lower() in CLIENT_KINDS:
        return header.lower()
    return _route_kind(route)


@functools.lru_cache(maxsize=512)  # routes are the app's rules (and "unmatched"): a few dozen
def _route_kind(route: str) -> str:
    for prefix, kind in (("/odata", "odata"), ("/excel", "excel"), ("/invocations", "mlflow"),
                         ("/v2", "v2"), ("/evaluate", "tableau"), ("/query", "tableau"),
                         ("/info", "tableau")):
        if route.startswith(prefix):
            return kind
    return "http"


_CHILDREN: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set: prometheus_client checks and
    converts the labels on every call, several times per request."""
    key = (metric, *labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


def error_kind(status: int, slug: str) -> str:
    if status in (401, 403):
        return "auth"
    if slug == "model-error":
        return "model_error"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server" if status == 500 else "unavailable"
    return "bad_input"


def render() -> tuple[bytes, str]:
    """The exposition text, summed over every worker when running under gunicorn."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_deployed(model: str, version: int, versions: list[int]) -> None:
    for v in versions:
        MODEL_INFO.labels(model, str(v)).set(1 if v == version else 0)


def worker_exited(pid: Any) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)
