"""ScoreBridge for Windows desktop Excel with xlwings: ``=PREDICT(A2:F2)`` exactly as written.

Import this module as a UDF module in the xlwings add-in (see README.md next to it). The functions
call the ScoreBridge server's batch endpoint, the same one the Office add-in uses, so a block such as
``=PREDICT(A2:F1000)`` is one request and spills one value per row.

Settings: the environment variables ``SCOREBRIDGE_URL`` (default http://127.0.0.1:8000) and
``SCOREBRIDGE_API_KEY``, or :func:`configure`. On Linux and macOS the xlwings decorators do nothing,
so the functions can be called (and are tested) as plain Python.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import urllib.error
import urllib.request
from typing import Any

import xlwings as xw

TIMEOUT_SECONDS = 30
_settings = {"url": os.environ.get("SCOREBRIDGE_URL", "http://127.0.0.1:8000"),
             "key": os.environ.get("SCOREBRIDGE_API_KEY", "")}


def configure(url: str | None = None, key: str | None = None) -> None:
    """Point the functions at a server (instead of the environment variables)."""
    if url:
        _settings["url"] = url
    if key is not None:
        _settings["key"] = key


def _cell(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value


def _rows(values: Any) -> list[list[Any]]:
    if not isinstance(values, list):
        return [[_cell(values)]]
    if values and not isinstance(values[0], list):
        return [[_cell(v) for v in values]]
    return [[_cell(v) for v in row] for row in values]


def _post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        _settings["url"].rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": _settings["key"],
                 "User-Agent": "ScoreBridge-xlwings", "X-ScoreBridge-Client": "xlwings"})
    return _open(request)


def _get(path: str) -> dict[str, Any]:
    request = urllib.request.Request(_settings["url"].rstrip("/") + path, headers={
        "X-API-Key": _settings["key"], "User-Agent": "ScoreBridge-xlwings",
        "X-ScoreBridge-Client": "xlwings"})
    return _open(request)


class ScoreBridgeError(Exception):
    """Shown in the cell as #VALUE! by xlwings, with this message."""


def _open(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail") or exc.reason
        except ValueError:
            detail = exc.reason
        raise ScoreBridgeError(str(detail)) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ScoreBridgeError(f"cannot reach ScoreBridge at {_settings['url']} "
                               f"({getattr(exc, 'reason', exc)})") from None


def _score(features: Any, model: str | None, version: int | None) -> dict[str, Any]:
    call = {"model": model or None, "values": _rows(features),
            "version": int(version) if version else None}
    result = _post("/excel/v1/batch", {"calls": [call]})["results"][0]
    if "error" in result:
        raise ScoreBridgeError(result["error"])
    return result


def _shape(result: dict[str, Any], pick: Any) -> Any:
    problems: dict[int, str] = {}
    for e in result.get("errors", []):
        text = f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
        problems[e["row"]] = "; ".join(filter(None, [problems.get(e["row"]), text]))
    blank = set(result.get("blank", []))
    rows = []
    for i in range(len(result["predictions"])):
        if i in blank:
            rows.append([""])
        elif i in problems or result["predictions"][i] is None:
            rows.append([f"#VALUE! {problems.get(i, 'not scored')}"])
        else:
            rows.append(pick(i))
    if len(rows) == 1 and len(rows[0]) == 1:
        if str(rows[0][0]).startswith("#VALUE! "):
            raise ScoreBridgeError(rows[0][0][8:])
        return rows[0][0]
    return rows


@xw.func
@xw.arg("features", ndim=2)
def PREDICT(features: Any, model: str | None = None, version: int | None = None) -> Any:
    """Prediction per row of FEATURES (a first row of column names is matched by name)."""
    result = _score(features, model, version)
    return _shape(result, lambda i: [result["predictions"][i]])


@xw.func
@xw.arg("features", ndim=2)
def PREDICT_PROBA(features: Any, model: str | None = None, class_name: str | None = None) -> Any:
    """Probability of CLASS_NAME (default: the positive, last class); "all" for every class."""
    result = _score(features, model, None)
    classes = [str(c) for c in result.get("classes") or []]
    if not classes:
        raise ScoreBridgeError("this model gives no probabilities (not a classifier)")
    probs = result["probabilities"]
    if class_name in ("all", "*"):
        return _shape(result, lambda i: list(probs[i]))
    if class_name and str(class_name) not in classes:
        raise ScoreBridgeError(f"unknown class {class_name}; classes: {', '.join(classes)}")
    j = classes.index(str(class_name)) if class_name else len(classes) - 1
    return _shape(result, lambda i: [probs[i][j]])


@xw.func
def MODELS() -> list[list[Any]]:
    """The deployed models: name, production version, latest version, description."""
    rows: list[list[Any]] = [["model", "production version", "latest version", "description"]]
    for m in _get("/api/v1/models")["models"]:
        rows.append([m["name"], m["production_version"], m["latest_version"],
                     m["description"] or ""])
    return rows
