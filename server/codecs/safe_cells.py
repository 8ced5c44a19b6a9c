"""Neutralising spreadsheet formula injection in every CSV and XLSX cell we write.

A text value from user data that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage return would
be run as a formula by Excel; it is prefixed with an apostrophe (OWASP's advice). Numbers are
untouched, and so is text that is a plain number ("-5", "+1.5e3"): a spreadsheet reads it as that
number, not as a formula, and prefixing it would corrupt the data.
"""
from __future__ import annotations

import re
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TRIGGER_PATTERN = r"^[=+\-@\t\r]"
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
