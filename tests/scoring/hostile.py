"""Hostile skops artifacts, hand-crafted the way an attacker would: a genuine skops file whose
schema.json is edited to name a callable that skops would call while loading, were it trusted.

Each payload, if it ran, creates the marker file it is given; ``plant`` returns the file and the
type names the server must refuse. A payload is built on skops' own node kinds:
``ConstructorFromReduceNode`` calls the named type with the stored arguments (so ``os.system`` with
``"touch MARKER"`` runs a shell), ``FunctionNode`` names a function a model calls when it predicts
(FunctionTransformer's ``func``), ``ObjectNode`` instantiates a named class and sets its state.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer


def _json(value: Any) -> dict[str, Any]:
    return {"__class__": type(value).__name__, "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


def _call(module: str, name: str, *args: Any) -> dict[str, Any]:
    """A node skops loads by calling ``module.name(*args)``."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                        "content": [_json(a) if not isinstance(a, list) else
                                    {"__class__": "list", "__module__": "builtins",
                                     "__loader__": "ListNode",
                                     "content": [_json(x) for x in a]} for a in args]}}


def _function(module: str, name: str) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def _object(module: str, name: str, **attrs: Any) -> dict[str, Any]:
    return {"__class__": name, "__module__": module, "__loader__": "ObjectNode",
            "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                        "content": {k: _json(v) for k, v in attrs.items()},
                        "key_types": {"__class__": "list", "__module__": "builtins",
                                      "__loader__": "ListNode",
                                      "content": [{"__class__": "str", "__module__": "builtins",
                                                   "__loader__": "TypeNode"}] * len(attrs)}}}


def genuine(path: Path) -> Path:
    """A real fitted model: a FunctionTransformer (whose func is the door) before a classifier."""
    X = np.random.default_rng(0).random((30, 3))
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    sio.dump(model.fit(X, (X[:, 0] > 0.5).astype(int)), path)
    return path


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    schema = json.loads(files["schema.json"])
    change(schema)
    files["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _steps(schema: dict[str, Any]) -> dict[str, Any]:
    """The FunctionTransformer's attributes inside the Pipeline's schema."""
    steps = schema["content"]["content"]["steps"]["content"]
    return steps[0]["content"][1]["content"]["content"]


def _set_func(node: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(schema: dict[str, Any]) -> None:
        _steps(schema)["func"] = node
    return change


# name -> (schema change for a marker path, the type names the server must name in its refusal)
PAYLOADS: dict[str, Callable[[Path], tuple[Callable[[dict[str, Any]], None], list[str]]]] = {
    "os.system": lambda m: (_set_func(_call("os", "system", f"touch {m}")), ["os.system"]),
    "posix.system": lambda m: (_set_func(_call("posix", "system", f"touch {m}")),
                               ["posix.system"]),
    "builtins.exec": lambda m: (_set_func(_call("builtins", "exec", f"open({str(m)!r}, 'w').close()")),
                                ["builtins.exec"]),
    "builtins.eval": lambda m: (_set_func(_call("builtins", "eval",
                                                f"open({str(m)!r}, 'w').close()")),
                                ["builtins.eval"]),
    "subprocess.Popen": lambda m: (_set_func(_call("subprocess", "Popen", ["touch", str(m)])),
                                   ["subprocess.Popen"]),
    # FunctionTransformer(func=os.system): nothing runs on load, the shell runs at predict
    "func=os.system": lambda m: (_set_func(_function("os", "system")), ["os.system"]),
    "lambda": lambda m: (_set_func(_function("__main__", "<lambda>")), ["__main__.<lambda>"]),
    "__main__ class": lambda m: (_set_func(_object("__main__", "Payload", command=f"touch {m}")),
                                 ["__main__.Payload"]),
    # a scikit-learn function nobody reviewed, and a class scikit-learn merely imports
    "sklearn function": lambda m: (_set_func(_call("sklearn.utils._testing", "assert_run_python_"
                                                   "script_without_output",
                                                   f"open({str(m)!r}, 'w').close()")),
                                   ["sklearn.utils._testing.assert_run_python_script_without_"
                                    "output"]),
    # a scikit-learn function with effects (check_memory opens a joblib cache folder)
    "sklearn.utils function": lambda m: (_set_func(_function("sklearn.utils.validation",
                                                             "check_memory")),
                                         ["sklearn.utils.validation.check_memory"]),
    "class re-exported by sklearn": lambda m: (_set_func(_call("sklearn.datasets._base", "Path",
                                                               str(m))),
                                               ["sklearn.datasets._base.Path"]),
    # scipy.stats distributions exec() a template kept in their state when restored
    "scipy.stats distribution": lambda m: (_set_func(_object(
        "scipy.stats._continuous_distns", "uniform_gen",
        _parse_arg_template=f"open({str(m)!r}, 'w').close()")),
        ["scipy.stats._continuous_distns.uniform_gen"]),
}


def plant(folder: Path, payload: str) -> tuple[Path, Path, list[str]]:
    """A hostile artifact in ``folder``, the marker its payload would create, the names to refuse."""
    marker = folder / f"MARKER-{abs(hash(payload))}"
    change, names = PAYLOADS[payload](marker)
    return _edit(genuine(folder / "hostile.skops"), change), marker, names

