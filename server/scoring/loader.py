"""Safe loading of model artifacts.

skops is the default format. What may be instantiated is decided by the server's own allowlist, never
by anything inside the artifact: skops' built-in safe types, the reviewed data in ``allowlist/``
(scikit-learn's classes, not its functions, which a crafted model could call, plus the named functions
and numpy/scipy types reviewed one by one), and the names an admin lists in
``SCOREBRIDGE_TRUSTED_TYPES``.
Pickle and joblib run code when loaded, so they are loaded only for versions an admin marked trusted.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Literal

from ..errors import UnsafeArtifact
from .allowlist import allowlist

ArtifactFormat = Literal["skops", "pickle"]
SKOPS_SUFFIXES = {".skops"}
PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib"}


def detect_format(filename: str) -> ArtifactFormat:
    """The artifact format from its file name; anything else is refused before it is read."""
    suffix = Path(filename).suffix.lower()
    if suffix in SKOPS_SUFFIXES:
        return "skops"
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    raise UnsafeArtifact(
        f"unsupported artifact type {suffix or '(no extension)'!r}: save the model with skops "
        "(skops.io.dump(model, 'model.skops')), or register a .pkl/.joblib with --trust-pickle")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def untrusted_types(types: list[str], extra_trusted: tuple[str, ...] = ()) -> list[str]:
    """The subset of ``types`` that the server's allowlist does not cover."""
    allowed, listed = set(extra_trusted), allowlist()
    return [t for t in types if t not in allowed and listed.reason(t) is None]


def refusal_message(refused: list[str], shown: int = 5) -> str:
    """Which types were refused, why each is not on the list, and what an admin can do."""
    listed = allowlist()
    reasons = "; ".join(f"{_cut(name)} ({listed.refusal(name)})" for name in refused[:shown])
    more = f"; and {len(refused) - shown} more" if len(refused) > shown else ""
    return (f"the artifact holds {len(refused)} type{'s' if len(refused) > 1 else ''} outside the "
            f"server's allowlist: {reasons}{more}. To load it, an admin adds the reviewed names "
            "to SCOREBRIDGE_TRUSTED_TYPES, or registers a pickle of the model with --trust-pickle")


def _cut(name: str, limit: int = 120) -> str:
    """A type name from the artifact, cut short: the artifact, not the server, chose it."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def load_artifact(path: Path, fmt: ArtifactFormat, *, trust_pickle: bool = False,
                  extra_trusted: tuple[str, ...] = (), expected_sha256: str | None = None) -> Any:
    """Load an estimator, refusing anything the allowlist or the trust flag does not cover."""
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise UnsafeArtifact(
                f"artifact checksum mismatch: expected sha256 {expected_sha256[:12]}…, found "
                f"{actual[:12]}…; the stored file was changed after registration and is not loaded")
    if fmt == "skops":
        return _load_skops(path, extra_trusted)
    if not trust_pickle:
        raise UnsafeArtifact(
            "pickle/joblib artifacts can run arbitrary code when loaded and are refused; save the "
            "model with skops, or have an admin register it with --trust-pickle (admin key required)")
    return _load_pickle(path)


def _load_skops(path: Path, extra_trusted: tuple[str, ...]) -> Any:
    import skops.io as sio

    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt zip or schema: refuse, do not guess
        raise UnsafeArtifact(f"not a readable skops file ({type(exc).__name__})") from None
    refused = untrusted_types(found, extra_trusted)
    if refused:
        raise UnsafeArtifact(refusal_message(refused),
                             refused_types=[_cut(name) for name in refused[:20]])
    try:
        return sio.load(path, trusted=found)
    except Exception as exc:
        raise UnsafeArtifact(f"the skops file could not be loaded ({type(exc).__name__})") from None


def _load_pickle(path: Path) -> Any:
    try:
        import joblib

        return joblib.load(path)
    except Exception:
        try:
            with open(path, "rb") as fh:
                return pickle.load(fh)  # noqa: S301 - only for artifacts an admin marked trusted
        except Exception as exc:
            raise UnsafeArtifact(f"the pickle could not be loaded ({type(exc).__name__})") from None
