"""Field types that several routes declare: versions, names, page sizes, uploads.

Each carries both its check and its JSON Schema, so the OpenAPI document says exactly what the
server accepts. Integers are written with the ASCII digits only (``²`` and ``٣`` are digits to
``str.isdigit`` but not numbers to a database) and stay within the database's integer range.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import FileStorage

from ..registry.service import ALIAS_RE, NAME_RE, validate_name
from .declare import Parameters

CELL: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                                  {"type": "null"}]}
"""The schema of one cell of a row: what a spreadsheet or a JSON row may hold."""
INT32_MAX = 2**31 - 1   # PostgreSQL's INTEGER, the widest integer column a parameter reaches
_DIGITS = re.compile(r"[0-9]{1,40}")


def _whole_number(kind: str) -> Any:
    def check(value: Any, info: ValidationInfo) -> Any:
        """A JSON integer; in a query, path, header or form (text by nature) ASCII digits."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = bool(info.context and info.context.get("text"))
        if text and isinstance(value, str) and _DIGITS.fullmatch(value):
            return int(value)
        raise PydanticCustomError("integer", f"must be {kind}"
                                  + (" written with the digits 0-9" if text else ""))
    return check


def whole(minimum: int, maximum: int, description: str | None = None) -> Any:
    """An integer type from ``minimum`` to ``maximum``."""
    kind = "a positive integer" if minimum == 1 else "a whole number"
    return Annotated[int, BeforeValidator(_whole_number(kind)), _bounds(minimum, maximum),
                     Field(ge=minimum, le=maximum, description=description)]


def _bounds(minimum: int, maximum: int) -> WithJsonSchema:
    """The range as JSON Schema writes it: behind a BeforeValidator, pydantic would write the
    constraints as ``ge``/``le``, keywords no client or fuzzer reads."""
    return WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": maximum})


# whole(1, ...) written out, so that mypy sees the type aliases they are
_POSITIVE = BeforeValidator(_whole_number("a positive integer"))
VersionNumber = Annotated[int, _POSITIVE, _bounds(1, INT32_MAX), Field(ge=1, le=INT32_MAX)]
Limit = Annotated[int, _POSITIVE, _bounds(1, 1000),
                  Field(ge=1, le=1000, description="how many items at most")]


def _name(what: str) -> Any:
    def check(value: str) -> str:
        return validate_name(value, what)
    return check


ModelName = Annotated[str, AfterValidator(_name("model name")),
                      WithJsonSchema({"type": "string", "pattern": NAME_RE.pattern})]
AliasName = Annotated[str, AfterValidator(_name("alias")),
                      WithJsonSchema({"type": "string", "pattern": ALIAS_RE.pattern})]
Reason = Annotated[str, Field(max_length=500, description="why, for the audit trail")]


def _upload(value: Any) -> FileStorage:
    if not isinstance(value, FileStorage) or not value.filename:
        raise PydanticCustomError("upload", "must be a file part of the multipart upload, with "
                                            "a file name")
    return value


Upload = Annotated[FileStorage, PlainValidator(_upload),
                   WithJsonSchema({"type": "string", "format": "binary"})]
"""A file part of a multipart form."""


def _flag(value: Any, info: ValidationInfo) -> Any:
    """Form fields carry booleans as text: 1/true/yes/on and 0/false/no/off."""
    if isinstance(value, str) and info.context and info.context.get("text"):
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    return value


Flag = Annotated[bool, BeforeValidator(_flag), Field(strict=True)]
"""A boolean: true/false in JSON, also 1/0, yes/no, on/off in a form or query."""


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise PydanticCustomError("number", "must be a number")


Number = Annotated[float, BeforeValidator(_number)]


MAX_REASONS = 100
ReasonCount = Annotated[int, BeforeValidator(_whole_number("a positive integer")),
                        _bounds(1, MAX_REASONS), Field(ge=1, le=MAX_REASONS)]
Explain = Annotated[Union[ReasonCount, Literal["all"]], Field(
    description="explain each row: the number of strongest reasons to give (1-100), or 'all' "
                "for every input's contribution")]
"""The ``explain`` scoring option, in a JSON body or a query string."""


class ModelPath(Parameters):
    name: ModelName


class VersionPath(Parameters):
    name: ModelName
    version: VersionNumber
