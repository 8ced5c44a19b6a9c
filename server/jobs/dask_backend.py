"""Batch jobs on a Dask cluster: the input's partitions are scored on the workers with the same
version and the same scoring functions as the in-process path, so the results are identical; the
outputs come back in order and are written by the job runner, chunk by chunk.

Workers load the model from the artifact store (a shared file system when they run on other hosts),
checking its sha256, and keep it for the partitions that follow."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..codecs.file_formats import file_format
from ..codecs.file_reader import Chunk
from ..codecs.scored_output import scored_table
from ..scoring.compiled.stored import stored_runner
from ..scoring.loader import load_artifact
from ..scoring.predict import score_with
from ..scoring.runtime import LoadedModel
from ..types import ScoreOptions, Signature

PARTITION_BYTES = "16MB"


@lru_cache(maxsize=4)
def _model(path: str, fmt: str, trusted_pickle: bool, extra_trusted: tuple[str, ...],
           sha256: str, signature_json: str, name: str, version: int,
           compiled_path: str | None, runtime: str) -> LoadedModel:
    import json

    estimator = load_artifact(Path(path), fmt, trust_pickle=trusted_pickle,  # type: ignore[arg-type]
                              extra_trusted=extra_trusted, expected_sha256=sha256)
    signature = Signature.from_dict(json.loads(signature_json))
    compiled = stored_runner(Path(compiled_path), runtime, signature, estimator, name,
                             version) if compiled_path else None
    return LoadedModel(name, version, estimator, signature, sha256, compiled=compiled)


def score_partition(frame: pd.DataFrame, spec: dict[str, Any]) -> Any:
    """One partition, scored exactly as the in-process job scores a chunk."""
    model = _model(spec["path"], spec["format"], spec["trusted_pickle"], spec["extra_trusted"],
                   spec["sha256"], spec["signature"], spec["name"], spec["version"],
                   spec.get("compiled_path"), spec["runtime"])
    options = ScoreOptions(errors="raise" if spec["strict"] else "row")
    chunk = Chunk(frame_=frame.reset_index(drop=True))
    return scored_table(chunk.arrow(), score_with(model, chunk.raw(), options))


def client_for(scheduler: str) -> Any:
    """A client of the configured scheduler, or of a small local cluster."""
    from distributed import Client, LocalCluster

    if scheduler and scheduler != "local":
        return Client(scheduler, timeout="10s")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                           dashboard_address=None)
    return Client(cluster)


def scored_partitions(client: Any, source: Path, spec: dict[str, Any]) -> Iterator[Any]:
    """The scored partitions, in input order, computed in parallel on the cluster."""
    import dask.dataframe as dd

    fmt = file_format(source.name)
    if fmt == "csv":
        ddf = dd.read_csv(str(source), dtype=object, keep_default_na=False,
                          blocksize=PARTITION_BYTES)
    elif fmt == "parquet":
        ddf = dd.read_parquet(str(source))
    else:
        ddf = dd.from_pandas(pd.read_excel(source, dtype=object), chunksize=10_000)
    parts = ddf.to_delayed()
    futures = client.compute([__import__("dask").delayed(score_partition)(p, spec)
                              for p in parts])
    for future in futures:
        yield future.result()
