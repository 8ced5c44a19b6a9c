"""Declared requests: a route's path, query, header, form and body inputs as typed models.

One declaration does two jobs. It checks the request before the view runs (a value that does not
fit is a 400 problem document naming the parameter and what was expected), and it produces the
route's OpenAPI parameters and request body, so a fuzzer reading ``/openapi.json`` exercises the
very code that validates. Views receive path values as keyword arguments and the other inputs as
``query=``, ``headers=`` and ``body=`` (a form model for multipart uploads, ``None`` for media
types the view reads itself, such as ``text/csv``).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError
from werkzeug.datastructures import MultiDict

from ..codecs.json_input import parse_json
from ..errors import FieldError, MalformedRequest, UnsupportedMediaType

REF = "#/components/schemas/{model}"
_LABELS = {"path": "path parameter", "query": "query parameter", "header": "header",
           "form": "form field", "body": "body field"}
_SHOULD = re.compile(r"^(?:Input|String|List|Value|Dictionary|Tuple|Set|Decimal|Float|Integer|"
                     r"Object)\s+should\b")
_BOUNDS = {"greater_than_equal": ("ge", "at least {}"), "less_than_equal": ("le", "at most {}"),
           "greater_than": ("gt", "greater than {}"), "less_than": ("lt", "less than {}"),
           "too_long": ("max_length", "at most {} items long"),
           "string_too_long": ("max_length", "at most {} characters long"),
           "too_short": ("min_length", "at least {} items long"),
           "string_too_short": ("min_length", "at least {} characters long")}
MAX_LISTED = 20


class Inputs(BaseModel):
    """Declared JSON bodies and multipart forms: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Parameters(BaseModel):
    """Declared query parameters and headers: others may ride along (``api_key``, cache
    busters, proxies' headers) and are ignored."""

    model_config = ConfigDict(extra="ignore")


class Envelope(BaseModel):
    """Bodies of other systems' protocols (V2 inference): their clients may add members this
    server does not use, so those are ignored."""

    model_config = ConfigDict(extra="ignore")


def _phrase(error: Any, known: list[str]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is an unknown field" + ("; known: " + ", ".join(known) if known else "")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind in _BOUNDS:
        key, text = _BOUNDS[kind]
        return "must be " + text.format(error.get("ctx", {}).get(key))
    message = str(error["msg"]).removeprefix("Value error, ")
    return _SHOULD.sub("must", message)


def fields_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def problem_of(exc: ValidationError, model: type[BaseModel], where: str,
               at: tuple[str | int, ...] = ()) -> MalformedRequest:
    """A validation failure as one problem: each wrong input named with what it should be;
    never the value itself. ``at`` is where the checked value sits in the request (a batch's
    ``("calls", 3)``), so the names are the request's own."""
    messages = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in (*at, *error["loc"]))
        subject = f"{_LABELS[where]} '{loc}'" if loc else \
            ("the body" if where == "body" else f"the {_LABELS[where]}s")
        # the fields a top-level unknown one could have meant (nested models name their own)
        known = fields_of(model) if len(error["loc"]) == 1 else []
        messages.append(f"{subject} {_phrase(error, known)}")
    detail = messages[0] + (f" (and {len(messages) - 1} more)" if len(messages) > 1 else "")
    return MalformedRequest(detail, errors=[FieldError(m) for m in messages[:MAX_LISTED]])


def validated(model: type[BaseModel], data: Any, where: str, at: tuple[str | int, ...] = ()) -> Any:
    """``data`` as ``model``, or a 400 problem naming each input that does not fit; ``at`` for
    a part checked on its own (one call of a batch, declared in the body with
    ``SkipValidation[model]``, so the document still shows its shape)."""
    try:
        return model.model_validate(data, context={"text": where != "body"})
    except ValidationError as exc:
        raise problem_of(exc, model, where, at) from None


@functools.lru_cache(maxsize=4096)
def _checked_path(model: type[BaseModel], items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Path values checked once per distinct value (model names repeat on every request); a
    value that fails is not cached, so it fails the same way every time."""
    return dict(validated(model, dict(items), "path"))


@functools.lru_cache(maxsize=256)
def _defaults(model: type[BaseModel]) -> Any:
    """The declaration with nothing given (a query string left empty): built once per model;
    views read their inputs and never change them."""
    return validated(model, {}, "query")


def _present(values: MultiDict[str, Any] | Any) -> dict[str, Any]:
    """First value of each key; an empty text value counts as absent, as in a form left blank."""
    return {k: v for k, v in values.items() if v != ""}


def is_json(mimetype: str) -> bool:
    return mimetype in ("application/json", "") or mimetype.endswith("+json")


@dataclass(frozen=True)
class Declared:
    """What one route accepts. ``raw`` lists media types the view reads itself, with their
    schema or the model the view checks them against."""

    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    raw: Mapping[str, dict[str, Any] | type[BaseModel]] = field(default_factory=dict)
    body_required: bool = True
    body_limit: Callable[[], int] | None = None   # bytes, where the app's default does not fit

    @property
    def takes_body(self) -> bool:
        return self.body is not None or self.form is not None or bool(self.raw)

    def media_types(self) -> list[str]:
        return ((["application/json"] if self.body else [])
                + (["multipart/form-data"] if self.form else []) + list(self.raw))

    def bind(self, view_args: Mapping[str, Any]) -> dict[str, Any]:
        """The view's keyword arguments, each input checked against its declaration. On the
        scoring path: no query string costs no validation, and a path seen before is not
        checked again (its check depends on the value alone)."""
        req = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
        kwargs: dict[str, Any] = dict(view_args)
        if self.path is not None:
            kwargs.update(_checked_path(self.path, tuple(view_args.items())))
        if self.query is not None:
            kwargs["query"] = validated(self.query, _present(req.args), "query") \
                if req.query_string else _defaults(self.query)
        if self.headers is not None:
            kwargs["headers"] = validated(self.headers, _present(req.headers), "header")
        if self.takes_body:
            kwargs["body"] = self._body(req)
        return kwargs

    def _body(self, req: Any) -> Any:
        if self.body_limit is not None:
            req.max_content_length = self.body_limit()
        mimetype = req.mimetype
        if self.form is not None and mimetype == "multipart/form-data":
            data = {**_present(req.form), **dict(req.files.items())}
            return validated(self.form, data, "form")
        if self.body is not None and is_json(mimetype):
            if not self.body_required and not req.content_length:
                return self.body()
            return validated(self.body, parse_json(req.get_data(cache=False)), "body")
        if mimetype in self.raw or (is_json(mimetype) and "application/json" in self.raw):
            return None
        raise UnsupportedMediaType(f"send {' or '.join(self.media_types())}, not {mimetype!r}")

    # -- the OpenAPI document ---------------------------------------------------------------

    def parameters(self, components: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for where, model in (("path", self.path), ("query", self.query),
                             ("header", self.headers)):
            if model is not None:
                out += _parameters(model, where, components)
        return out

    def request_body(self, components: dict[str, Any]) -> dict[str, Any] | None:
        if not self.takes_body:
            return None
        content: dict[str, Any] = {}
        for media_type, model in (("application/json", self.body),
                                  ("multipart/form-data", self.form)):
            if model is not None:
                content[media_type] = {"schema": component(model, components)}
        for media_type, schema in self.raw.items():
            content[media_type] = {"schema": schema if isinstance(schema, dict)
                                   else component(schema, components)}
        return {"required": self.body_required, "content": content}


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    branches = schema.get("anyOf", schema.get("oneOf"))
    if branches is not None:
        return any(_allows_null(b) for b in branches)
    return kind is None or kind == "null" or (isinstance(kind, list) and "null" in kind)


def _absent_not_null(schema: Any) -> Any:
    """An optional field whose value may not be null is absent by default, not ``null``: the
    schema drops a ``default`` its own type refuses."""
    if isinstance(schema, dict):
        if "default" in schema and schema["default"] is None and not _allows_null(schema):
            del schema["default"]
        for value in schema.values():
            _absent_not_null(value)
    elif isinstance(schema, list):
        for value in schema:
            _absent_not_null(value)
    return schema


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = _absent_not_null(model.model_json_schema(by_alias=True, ref_template=REF))
    components.update(schema.pop("$defs", {}))
    return schema


def component(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A reference to ``model``'s schema, added (with the models it refers to) to components."""
    schema = _schema(model, components)
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(model: type[BaseModel], where: str,
                components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema(model, components)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null({k: v for k, v in prop.items() if k != "title"})
        param: dict[str, Any] = {"name": name, "in": where,
                                 "required": where == "path" or name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        out.append(param)
    return out


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or has a value: the ``null`` branch of an optional field goes."""
    branches = prop.get("anyOf")
    if not branches:
        return prop
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    if rest.get("default", 0) is None:
        del rest["default"]
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
