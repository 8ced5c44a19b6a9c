"""A version's reference rows typed as the scoring path types a request's: what every check made
when a version is loaded (the explainer's, the planned fallback's) runs on."""
from __future__ import annotations

import pandas as pd

from ..types import RawTable, Signature, example_frame
from .coerce import coerce

CHECK_ROWS = 200


def typed_reference(signature: Signature, reference: pd.DataFrame | None,
                    rows: int | None = CHECK_ROWS) -> pd.DataFrame:
    """The first ``rows`` of the stored sample (all with None), or made-up example rows when
    the version has none, through the same coercion as a request."""
    frame = reference[signature.names].head(rows) \
        if reference is not None and len(reference) else example_frame(signature, 5)
    cells = frame.astype(object).where(frame.notna(), None).to_numpy().tolist()
    checked = coerce(RawTable.from_rows(cells, signature.names, len(signature.names)),
                     signature)
    return pd.DataFrame(dict(checked.columns), copy=False)
