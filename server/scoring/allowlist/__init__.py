"""The types a skops artifact may hold without an admin's trust, kept as reviewed data.

One TOML file per library (``scikit-learn.toml``, ``numpy.toml``, ...). Each lists exact names under
``[types]``, every name with a one-line reason, and may list module prefixes under
``[class_prefixes]`` whose *classes* (never functions) are trusted as a whole, again with a reason.
A file for an optional library (XGBoost, LightGBM, CatBoost) names it under ``[library]``
(``module``, and the ``extra`` that installs it): its entries count only where that module is
importable, and elsewhere say which extra to install. Nothing here is ever taken from the artifact.
"""
from __future__ import annotations

import importlib
import importlib.util
import tomllib
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources


@dataclass(frozen=True)
class Allowlist:
    types: dict[str, str]           # exact qualified name -> why it is safe
    class_prefixes: dict[str, str]  # module prefix whose classes are safe -> why
    sources: dict[str, str]         # qualified name or prefix -> the file that lists it
    # names listed for an optional library this server lacks -> the extra that installs it
    needs_extra: dict[str, str] = field(default_factory=dict)

    def reason(self, name: str) -> str | None:
        """Why ``name`` may be loaded, or None when the allowlist does not cover it."""
        if name in self.types:
            return self.types[name]
        for prefix, why in self.class_prefixes.items():
            if name.startswith(prefix) and _is_class(name):
                return why
        return None


@cache
def allowlist() -> Allowlist:
    types: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    sources: dict[str, str] = {}
    needs: dict[str, str] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        extra = _missing_library(entry.name, data.get("library"))
        for table, into in (("types", types), ("class_prefixes", prefixes)):
            for name, why in data.get(table, {}).items():
                if not isinstance(why, str) or not why.strip():
                    raise ValueError(f"{entry.name}: {name} has no reason")
                if extra is not None:
                    needs[name] = extra
                    continue
                into[name] = why
                sources[name] = entry.name
    return Allowlist(types, prefixes, sources, needs)


def _missing_library(filename: str, library: dict[str, str] | None) -> str | None:
    """The extra to install when the file's ``[library]`` is not importable here, else None."""
    if library is None:
        return None
    if not library.get("module") or not library.get("extra"):
        raise ValueError(f"{filename}: [library] needs both module and extra")
    return None if importlib.util.find_spec(library["module"]) is not None else library["extra"]


@lru_cache(maxsize=4096)
def _is_class(name: str) -> bool:
    """True when ``name`` resolves to a class (a function under a trusted prefix is not trusted)."""
    module_name, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type)
