"""Batch jobs on a Dask cluster: the input's partitions are scored on the workers with the same
version and the same scoring functions as the in-process path, so the results are identical; the
outputs come back in order and are written by the job runner, chunk by chunk.

CSV and XLSX inputs are read here, by the reader in-process jobs use (Arrow's, for CSV: a line
with the wrong number of fields becomes one row's error, not a failed partition), and their
chunks are scored on the cluster, a few at a time; Parquet is read by the workers, a row group at a
time. Workers load the model from the artifact store (a shared file system when they run on other
hosts), checking its sha256, and keep it for the partitions that follow."""
from __future__ import annotations

import threading
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..codecs.file_formats import file_format
from ..codecs.file_reader import Chunk, iter_chunks
from ..codecs.scored_output import scored_table
from ..errors import InvalidInput
from ..scoring.compiled.stored import stored_runner
from ..scoring.loader import load_artifact
from ..scoring.predict import score_with
from ..scoring.runtime import LoadedModel
from ..types import ScoreOptions, Signature

CHUNKS_PER_THREAD = 2  # chunks in flight per worker thread: enough to keep them busy


_LOADING = threading.Lock()


def _model(*args: Any) -> LoadedModel:
    """The version's model, loaded once per worker process: under a lock, since a worker's
    threads start on their first chunks together, and loading one skops file from two threads
    at once fails (SystemError inside the loader, seen here)."""
    with _LOADING:
        return _loaded(*args)


@lru_cache(maxsize=4)
def _loaded(path: str, fmt: str, trusted_pickle: bool, extra_trusted: tuple[str, ...],
           sha256: str, signature_json: str, name: str, version: int,
           compiled_path: str | None, runtime: str, sample_path: str | None = None,
           ) -> LoadedModel:
    import json

    estimator = load_artifact(Path(path), fmt, trust_pickle=trusted_pickle,  # type: ignore[arg-type]
                              extra_trusted=extra_trusted, expected_sha256=sha256)
    signature = Signature.from_dict(json.loads(signature_json))
    compiled = stored_runner(Path(compiled_path), runtime, signature, estimator, name,
                             version) if compiled_path else None
    return LoadedModel(name, version, estimator, signature, sha256, compiled=compiled,
                       reference=lambda: pd.read_parquet(sample_path) if sample_path else None)


def score_chunk(chunk: Chunk, spec: dict[str, Any]) -> Any:
    """One chunk, scored exactly as the in-process job scores it (malformed lines included)."""
    model = _model(spec["path"], spec["format"], spec["trusted_pickle"], spec["extra_trusted"],
                   spec["sha256"], spec["signature"], spec["name"], spec["version"],
                   spec.get("compiled_path"), spec["runtime"], spec.get("sample_path"))
    options = ScoreOptions(errors="raise" if spec["strict"] else "row",
                           explain=spec.get("explain"))
    if chunk.malformed and spec["strict"]:
        raise InvalidInput(chunk.malformed[min(chunk.malformed)])
    return scored_table(chunk.arrow(), score_with(model, chunk.raw(), options), chunk.malformed)


def score_partition(frame: pd.DataFrame, spec: dict[str, Any]) -> Any:
    """One Parquet partition (read on the worker)."""
    return score_chunk(Chunk(frame_=frame.reset_index(drop=True)), spec)


def client_for(scheduler: str) -> Any:
    """A client of the configured scheduler, or of a small local cluster."""
    from distributed import Client, LocalCluster

    if scheduler and scheduler != "local":
        return Client(scheduler, timeout="10s")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    return Client(cluster)


def scored_partitions(client: Any, source: Path, spec: dict[str, Any],
                      chunk_rows: int) -> Iterator[Any]:
    """The scored partitions, in input order, computed in parallel on the cluster."""
    import dask.dataframe as dd

    if file_format(source.name) != "parquet":
        yield from _scored_chunks(client, iter_chunks(source, chunk_rows), spec)
        return
    parts = dd.read_parquet(str(source)).to_delayed()
    futures = client.compute([__import__("dask").delayed(score_partition)(p, spec)
                              for p in parts])
    for future in futures:
        yield future.result()


def _scored_chunks(client: Any, chunks: Iterator[Chunk], spec: dict[str, Any]) -> Iterator[Any]:
    """Chunks read here, scored on the cluster: a bounded number in flight, so a file larger
    than memory streams through; results in input order."""
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    ahead = max(2, CHUNKS_PER_THREAD * threads)
    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(client.submit(score_chunk, chunk, spec, pure=False))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
