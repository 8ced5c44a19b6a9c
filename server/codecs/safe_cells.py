"""Neutralising spreadsheet formula injection in every CSV and XLSX cell we write.

A text value from user data that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage return would
be run as a formula by Excel; it is prefixed with an apostrophe (OWASP's advice). Numbers are
untouched, so "-5" stays a number when it is one.
"""
from __future__ import annotations

from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(TRIGGERS):
        return "'" + value
    return value
