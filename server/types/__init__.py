"""The types every layer shares: signature, raw table, score options and result, field errors.

This package imports nothing else of ScoreBridge (an import-linter contract and
``tests/test_architecture.py`` keep it so): the codecs and the scoring core, which may not import
each other, meet here; so do the registry, telemetry and the HTTP layer.
"""
from __future__ import annotations

from .explanation import Explanation
from .field_error import FieldError
from .options import ErrorMode, Explain, ScoreOptions
from .outcome import Outcome
from .result import ScoreResult
from .signature import Column, ColumnType, Output, Signature, example_frame, to_python
from .table import MISSING, RawTable

__all__ = ["MISSING", "Column", "ColumnType", "ErrorMode", "Explain", "Explanation",
           "FieldError", "Outcome", "Output", "RawTable",
           "ScoreOptions", "ScoreResult", "Signature", "example_frame", "to_python"]
