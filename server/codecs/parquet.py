"""DataFrames as Parquet bytes and back (types kept): how a version's reference samples are stored."""
from __future__ import annotations

import io

import pandas as pd


def frame_to_parquet(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes (types kept), for samples stored with a version."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def frame_from_parquet(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))
