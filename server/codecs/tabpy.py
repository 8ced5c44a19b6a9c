"""Tableau's Analytics Extensions API (the TabPy protocol), without running code.

TabPy's ``/evaluate`` executes the Python it is sent. ScoreBridge accepts exactly one form of script,
``return tabpy.query('<model>', _arg1, ..., _argN)['response']``, recognised by a regular expression
(never executed); anything else is refused.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import MalformedRequest
from ..types import RawTable
from .table import table_from_columns

SCRIPT = re.compile(
    r"""^\s*return\s+tabpy\s*\.\s*query\s*\(\s*(?P<q>['"])(?P<model>[a-z][a-z0-9_-]{0,63})(?P=q)"""
    r"""(?P<args>(?:\s*,\s*_arg\d{1,4})*)\s*\)\s*\[\s*(?P<r>['"])response(?P=r)\s*\]\s*;?\s*$""")
FORM = "return tabpy.query('<model>', _arg1, ..., _argN)['response']"


def parse_script(script: Any) -> tuple[str, list[str]]:
    """The model name and the argument names, in order; any other script is refused."""
    if not isinstance(script, str) or len(script) > 2000:
        raise MalformedRequest(f"'script' must be a string of the form {FORM}")
    match = SCRIPT.match(script)
    if match is None:
        raise MalformedRequest(f"only scripts of the form {FORM} are accepted; scripts are never "
                               "executed")
    args = re.findall(r"_arg\d+", match.group("args"))
    if args != [f"_arg{i}" for i in range(1, len(args) + 1)]:
        raise MalformedRequest("arguments must be _arg1, _arg2, ... in order")
    return match.group("model"), args


def columns_table(data: Any, args: list[str] | None) -> RawTable:
    """Column-oriented arrays: ``_arg1.._argN`` by position, or named columns."""
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise MalformedRequest("'data' must be an object of column-oriented arrays")
    if args is not None:
        missing = [a for a in args if a not in data]
        if missing:
            raise MalformedRequest(f"'data' lacks {', '.join(missing)}")
        columns = [data[a] for a in args]
        lengths = {len(c) for c in columns}
        if len(lengths) > 1:
            raise MalformedRequest("the argument arrays have different lengths")
        return RawTable.positional([list(row) for row in zip(*columns)] if columns else [])
    positional = sorted((k for k in data if re.fullmatch(r"_arg\d+", k)),
                        key=lambda k: int(k[4:]))
    if positional and len(positional) == len(data):
        return columns_table(data, positional)
    return table_from_columns(data)
