"""Domain errors shared by the registry, the scoring core, the codecs and the CLI.

They carry an HTTP status and an RFC 9457 problem type so the HTTP layer can render them as
``application/problem+json`` in one place, while the core stays free of Flask. Messages never contain
a caller's payload beyond a short, truncated value needed to say what was wrong.
"""
from __future__ import annotations

from typing import Any

from .types.field_error import FieldError

PROBLEM_BASE = "urn:scorebridge:problem:"


def short(value: Any, limit: int = 40) -> str:
    """A value as text, cut to ``limit`` characters, for error messages that must not echo payloads."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ScoreBridgeError(Exception):
    """Base of every error that should reach a client as a problem document."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class InvalidInput(ScoreBridgeError):
    status, slug, title = 422, "invalid-input", "Invalid input"


class MalformedRequest(ScoreBridgeError):
    status, slug, title = 400, "malformed-request", "Malformed request"


class PayloadTooLarge(ScoreBridgeError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ScoreBridgeError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class NotFound(ScoreBridgeError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ScoreBridgeError):
    status, slug, title = 409, "conflict", "Conflict"


class Unauthorized(ScoreBridgeError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ScoreBridgeError):
    status, slug, title = 403, "forbidden", "Forbidden"


class UnsafeArtifact(ScoreBridgeError):
    """An artifact that will not be loaded: untrusted types, untrusted pickle, or a checksum mismatch."""

    status, slug, title = 422, "unsafe-artifact", "Artifact refused"


class ModelRejected(ScoreBridgeError):
    """A model that loaded but failed its registration checks (smoke test, signature)."""

    status, slug, title = 422, "model-rejected", "Model rejected"


class ModelFailure(ScoreBridgeError):
    """The model raised on input that passed validation."""

    status, slug, title = 422, "model-error", "The model could not score the input"


class Unavailable(ScoreBridgeError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class InsufficientStorage(ScoreBridgeError):
    status, slug, title = 507, "insufficient-storage", "Insufficient storage"


class ExplanationUnavailable(ScoreBridgeError):
    """The model scores, but its predictions cannot be explained exactly (a family without an
    exact method, or features that mix several inputs)."""

    status, slug, title = 422, "explanations-unavailable", \
        "Explanations are not available for this model"
