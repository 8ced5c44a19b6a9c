"""The types a skops artifact may hold without an admin's trust, kept as reviewed data.

One TOML file per library (``scikit-learn.toml``, ``numpy.toml``, ...). Each lists exact names under
``[types]``, every name with a one-line reason, and may list module prefixes under
``[class_prefixes]`` whose *classes* (never functions) are trusted as a whole, again with a reason,
and ``[excluded]`` patterns (shell-style, ``fnmatch``) that a class prefix never covers. A file
for an optional library (XGBoost, LightGBM, CatBoost) names it under ``[library]`` (``module``, and
the ``extra`` that installs it): its entries count only where that module is importable, and
elsewhere say which extra to install. Nothing
here is ever taken from the artifact itself, and no module an artifact names is imported unless it
lies under a trusted class prefix (an import runs the module's code).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache, lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

TABLES = ("types", "class_prefixes", "excluded")
# the libraries whose names the allowlist reviews; a name from anywhere else is never trusted
REVIEWED_ROOTS = ("sklearn", "numpy", "scipy", "xgboost", "lightgbm", "catboost")


@dataclass(frozen=True)
class Allowlist:
    types: dict[str, str]           # exact qualified name -> why it is safe
    class_prefixes: dict[str, str]  # module prefix whose classes are safe -> why
    excluded: dict[str, str]        # pattern no class prefix covers -> why not
    sources: dict[str, str]         # qualified name, prefix or pattern -> the file that lists it
    # names listed for an optional library this server lacks -> the extra that installs it
    needs_extra: dict[str, str] = field(default_factory=dict)

    def reason(self, name: str) -> str | None:
        """Why ``name`` may be loaded, or None when the allowlist does not cover it."""
        if name in self.types:
            return self.types[name]
        if self.exclusion(name) is not None:
            return None
        for prefix, why in self.class_prefixes.items():
            if name.startswith(prefix) and _is_own_class(name, prefix):
                return why
        return None

    def exclusion(self, name: str) -> str | None:
        """Why a class prefix does not cover ``name``, when an ``[excluded]`` pattern says so."""
        return next((why for pattern, why in self.excluded.items()
                     if fnmatchcase(name, pattern)), None)

    def refusal(self, name: str) -> str:
        """Why ``name`` is not trusted, in a few words, judged from the name and from modules
        already imported (a refused name is never imported to find out)."""
        module, _, attr = name.rpartition(".")
        if module == "__main__" or module.startswith("__main__."):
            what = "function" if attr.startswith("<") or _kind(name) == "function" else "class"
            return (f"a {what} defined in __main__ (a script's own code, not importable on the "
                    "server): define it in a module, or use a scikit-learn equivalent")
        if "<lambda>" in name or "<locals>" in name:
            return "a lambda or nested function: code that travels with the model"
        excluded = self.exclusion(name)
        if excluded is not None:
            return f"excluded from the trusted scikit-learn classes: {excluded}"
        kind = _kind(name)
        if kind == "function":
            return "a function outside the reviewed list: calling it could run any code"
        if name.split(".")[0] not in REVIEWED_ROOTS:
            return ("not a scikit-learn, numpy, scipy or boosting-library type: nothing outside "
                    "them is trusted")
        if kind == "missing":
            return "not importable on this server (another version of the library?)"
        return "a class outside the reviewed list"


@cache
def allowlist() -> Allowlist:
    """The server's allowlist: the TOML files shipped in this package."""
    return load(resources.files(__package__))


def load(folder: Traversable) -> Allowlist:
    """The allowlist the TOML files in ``folder`` describe; a malformed file is an error, never
    a silently shorter list."""
    tables: dict[str, dict[str, str]] = {table: {} for table in TABLES}
    sources: dict[str, str] = {}
    needs: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        unknown = set(data) - set(TABLES) - {"library"}
        if unknown:
            raise ValueError(f"{entry.name}: unknown table(s) {', '.join(sorted(unknown))}")
        extra = _missing_library(entry.name, data.get("library"))
        for table in TABLES:
            for name, why in data.get(table, {}).items():
                if not isinstance(why, str) or not why.strip() or "\n" in why:
                    raise ValueError(f"{entry.name}: {name} needs a one-line reason")
                if name in sources:
                    raise ValueError(f"{entry.name}: {name} is also listed in {sources[name]}")
                sources[name] = entry.name
                if extra is not None:
                    needs[name] = extra
                else:
                    tables[table][name] = why
    return Allowlist(tables["types"], tables["class_prefixes"], tables["excluded"], sources,
                     needs)


def _missing_library(filename: str, library: dict[str, str] | None) -> str | None:
    """The extra to install when the file's ``[library]`` is not importable here, else None."""
    if library is None:
        return None
    if not library.get("module") or not library.get("extra"):
        raise ValueError(f"{filename}: [library] needs both module and extra")
    return None if importlib.util.find_spec(library["module"]) is not None else library["extra"]


def resolve(name: str) -> Any:
    """The object ``name`` names (module path, then attributes), importing its module."""
    module_name, _, attr = name.rpartition(".")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@lru_cache(maxsize=4096)
def _is_own_class(name: str, prefix: str) -> bool:
    """True when ``name`` is a class defined under ``prefix`` and named there: not a function,
    and not a class from elsewhere that a module under the prefix happens to import."""
    try:
        obj = resolve(name)
    except Exception:  # not importable, or an import that fails: not trusted
        return False
    return isinstance(obj, type) and obj.__module__.startswith(prefix) \
        and f"{obj.__module__}.{obj.__qualname__}" == name


def _kind(name: str) -> str:
    """"class", "function", "other" or "missing", looked up only in modules already imported."""
    module_name, _, attr = name.rpartition(".")
    module = sys.modules.get(module_name)
    if module is None:
        return "missing"
    obj = getattr(module, attr, None)
    if obj is None:
        return "missing"
    if isinstance(obj, type):
        return "class"
    return "function" if callable(obj) else "other"
