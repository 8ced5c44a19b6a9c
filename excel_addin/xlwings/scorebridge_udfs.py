"""ScoreBridge for Windows desktop Excel with xlwings: ``=PREDICT(A2:F2)`` exactly as written.

Import this module as a UDF module in the xlwings add-in (see README.md next to it). The functions
call the ScoreBridge server's batch endpoint, the same one the Office add-in uses, so a block such as
``=PREDICT(A2:F1000)`` is one request and spills one value per row.

PREDICT and PREDICT_PROBA are xlwings asynchronous functions (``async_mode="threading"``): Excel
stays usable while they wait, and formulas that wait at the same time (a filled-down column) are
sent together as one request. ``SCOREBRIDGE_XLWINGS_SYNC=1`` makes them ordinary synchronous UDFs.

Classic xlwings cannot return Excel error values (an exception becomes its traceback as text), so
a failure is returned as text that starts with the error it stands for: ``#VALUE! <message>`` or
``#N/A <message>``. The functions never raise: an asynchronous UDF that raises stays
``#N/A waiting...`` for good.

Settings: the environment variables ``SCOREBRIDGE_URL`` (default http://127.0.0.1:8000) and
``SCOREBRIDGE_API_KEY``, or :func:`configure`. On Linux and macOS the xlwings decorators do nothing,
so the functions can be called (and are tested) as plain Python.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import xlwings as xw

TIMEOUT_SECONDS = 30
BATCH_WINDOW_SECONDS = 0.05   # calls arriving this close together go as one request
BATCH_MAX_ROWS = 5000         # the Office add-in's part size, far below the server's limits
MAX_TEXT = 250                # xlwings UDFs cannot return longer strings (xlwings issue #456)
ASYNC = not os.environ.get("SCOREBRIDGE_XLWINGS_SYNC")   # read once, as xlwings imports the module
_EXCEL_EPOCH = _dt.datetime(1899, 12, 30)   # serial 0 of Excel's 1900 date system (as COM counts)
# COM hands error cells to Python as these integers (0x800A0000 + Excel's XlCVError code);
# xlwings' err_to_str turns only the first seven into text.
_COM_ERRORS = {-2146828288 + code: text for code, text in {
    2000: "#NULL!", 2007: "#DIV/0!", 2015: "#VALUE!", 2023: "#REF!", 2029: "#NAME?", 2036: "#NUM!",
    2042: "#N/A", 2043: "#GETTING_DATA", 2045: "#SPILL!", 2046: "#CONNECT!", 2047: "#BLOCKED!",
    2048: "#UNKNOWN!", 2049: "#FIELD!", 2050: "#CALC!"}.items()}
_COM_ERROR_RANGE = range(-2146828288 + 2000, -2146828288 + 2100)
_NOT_AVAILABLE_STATUS = {404, 429, 502, 503, 504}   # worth a retry, or not there: #N/A

_settings = {"url": os.environ.get("SCOREBRIDGE_URL", "http://127.0.0.1:8000"),
             "key": os.environ.get("SCOREBRIDGE_API_KEY", "")}


def configure(url: str | None = None, key: str | None = None) -> None:
    """Point the functions at a server (instead of the environment variables)."""
    if url:
        _settings["url"] = url
    if key is not None:
        _settings["key"] = key


class ScoreBridgeError(Exception):
    """A call that cannot give a result; shown as ``code message`` text in the cell."""

    def __init__(self, message: str, code: str = "#VALUE!", status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _error_text(code: str, message: str) -> str:
    text = f"{code} {message}"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


# -- cells ---------------------------------------------------------------------------------------

def excel_serial(value: _dt.date) -> float | int:
    """A date as the serial number Excel stores (and the Office add-in sends): days since
    1899-12-30, the time of day as the fraction. COM converts serials to dates from the same
    epoch, so this gives back exactly the cell's number."""
    if isinstance(value, _dt.datetime):
        delta = value.replace(tzinfo=None) - _EXCEL_EPOCH
        return delta.days + delta.seconds / 86400 + delta.microseconds / 86_400_000_000
    return (value - _EXCEL_EPOCH.date()).days


def _cell(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return excel_serial(value)
    if type(value) is int and value in _COM_ERROR_RANGE:   # an error cell xlwings left as a code
        return _COM_ERRORS.get(value, "#UNKNOWN!")
    return value


def _rows(values: Any) -> list[list[Any]]:
    if not isinstance(values, list):
        return [[_cell(values)]]
    if values and not isinstance(values[0], list):
        return [[_cell(v) for v in values]]
    return [[_cell(v) for v in row] for row in values]


# -- HTTP ----------------------------------------------------------------------------------------

def _headers() -> dict[str, str]:
    return {"X-API-Key": _settings["key"], "User-Agent": "ScoreBridge-xlwings",
            "X-ScoreBridge-Client": "xlwings"}


def _post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        _settings["url"].rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={**_headers(), "Content-Type": "application/json"})
    return _open(request)


def _get(path: str) -> dict[str, Any]:
    return _open(urllib.request.Request(_settings["url"].rstrip("/") + path, headers=_headers()))


def _open(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _http_error(exc) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise ScoreBridgeError(f"cannot reach ScoreBridge at {_settings['url']} "
                               f"({getattr(exc, 'reason', exc)})", "#N/A") from None
    except ValueError:
        raise ScoreBridgeError("ScoreBridge answered something that is not JSON") from None


def _http_error(exc: urllib.error.HTTPError) -> ScoreBridgeError:
    """The problem document's detail when there is one (a proxy's HTML page has none)."""
    try:
        detail = json.loads(exc.read()).get("detail") or exc.reason
    except (ValueError, AttributeError):
        detail = f"HTTP {exc.code} {exc.reason}"
    return ScoreBridgeError(str(detail), "#N/A" if exc.code in _NOT_AVAILABLE_STATUS else "#VALUE!",
                            exc.code)


def _send_batch(calls: list[dict[str, Any]]) -> list[dict[str, Any] | ScoreBridgeError]:
    """One POST for every call; each gets its own result or error. A server that refuses the
    whole request for one bad call (older servers answer 400/422) gets the calls one by one."""
    try:
        results = _post("/excel/v1/batch", {"calls": calls})["results"]
    except ScoreBridgeError as exc:
        if len(calls) > 1 and exc.status in (400, 422):
            return [_send_batch([call])[0] for call in calls]
        return [exc] * len(calls)
    out: list[dict[str, Any] | ScoreBridgeError] = []
    for i in range(len(calls)):
        result = results[i] if i < len(results) else None
        if not isinstance(result, dict):
            out.append(ScoreBridgeError("the server's answer has no result for this call", "#N/A"))
        elif "error" in result:
            out.append(ScoreBridgeError(str(result["error"]),
                                        "#N/A" if result.get("status") == 404 else "#VALUE!"))
        else:
            out.append(result)
    return out


class _Batch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.rows = 0
        self.results: list[dict[str, Any] | ScoreBridgeError] = []
        self.done = threading.Event()


class Coalescer:
    """Calls made at the same time from several threads (xlwings runs asynchronous UDFs on a
    thread pool) go as one request: the first call of a batch waits a short window, then sends
    everything that joined it."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], list[Any]],
                 window: float = BATCH_WINDOW_SECONDS, max_rows: int = BATCH_MAX_ROWS) -> None:
        self._send = send
        self._window = window
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._open: _Batch | None = None

    def submit(self, call: dict[str, Any]) -> dict[str, Any]:
        rows = len(call["values"])
        with self._lock:
            batch = self._open
            leader = batch is None or batch.rows + rows > self._max_rows
            if leader:
                batch = self._open = _Batch()
            assert batch is not None
            index = len(batch.calls)
            batch.calls.append(call)
            batch.rows += rows
        if leader:
            self._lead(batch)
        elif not batch.done.wait(TIMEOUT_SECONDS + self._window + 5):
            raise ScoreBridgeError("no answer from ScoreBridge in time", "#N/A")
        result = batch.results[index]
        if isinstance(result, ScoreBridgeError):
            raise result
        return result

    def _lead(self, batch: _Batch) -> None:
        time.sleep(self._window)
        with self._lock:
            if self._open is batch:
                self._open = None
        try:
            batch.results = self._send(batch.calls)
        except Exception as exc:  # every waiting call must get an answer, whatever happened
            batch.results = [ScoreBridgeError(f"unexpected error: {exc}")] * len(batch.calls)
        finally:
            batch.done.set()


_coalescer = Coalescer(lambda calls: _send_batch(calls))


# -- scoring -------------------------------------------------------------------------------------

def _version(version: Any) -> int | None:
    """Excel passes numbers as floats: 3.0 is version 3; anything else fails this call alone."""
    if version in (None, ""):
        return None
    if isinstance(version, bool) or not isinstance(version, (int, float)) \
            or version != int(version) or version < 1:
        raise ScoreBridgeError(f"version must be a whole number of at least 1, not {version!r}")
    return int(version)


def _score(features: Any, model: Any, version: Any) -> dict[str, Any]:
    if model not in (None, "") and not isinstance(model, str):
        raise ScoreBridgeError("model must be a model's name (text)")
    call = {"model": model or None, "values": _rows(features), "version": _version(version)}
    if ASYNC:
        return _coalescer.submit(call)
    result = _send_batch([call])[0]
    if isinstance(result, ScoreBridgeError):
        raise result
    return result


def _problems(result: dict[str, Any]) -> dict[int, str]:
    problems: dict[int, str] = {}
    for e in result.get("errors", []):
        text = f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
        row = e.get("row")
        if row is not None:
            problems[row] = "; ".join(filter(None, [problems.get(row), text]))
    return problems


def _shape(result: dict[str, Any], pick: Callable[[int], list[Any]], width: int = 1) -> Any:
    """One row out per data row in, always ``width`` wide: an empty row gives empty cells, a bad
    row its error text in every column. A single cell comes back as a value."""
    problems = _problems(result)
    blank = set(result.get("blank", []))
    rows = []
    for i, prediction in enumerate(result["predictions"]):
        if i in blank:
            rows.append([""] * width)
        elif i in problems or prediction is None:
            rows.append([_error_text("#VALUE!", problems.get(i, "not scored"))] * width)
        else:
            rows.append(pick(i))
    if not rows:
        return _error_text("#VALUE!", "no data rows in the range")
    if len(rows) == 1 and width == 1:
        return rows[0][0]
    return rows


def _as_cells(compute: Callable[[], Any]) -> Any:
    """The function's answer, or its failure as error text: these UDFs never raise."""
    try:
        return compute()
    except ScoreBridgeError as exc:
        return _error_text(exc.code, str(exc))
    except Exception as exc:  # an asynchronous UDF that raises never leaves "#N/A waiting..."
        return _error_text("#VALUE!", f"unexpected error: {exc}")


def _udf(f: Callable[..., Any]) -> Callable[..., Any]:
    """An xlwings UDF, asynchronous unless SCOREBRIDGE_XLWINGS_SYNC is set."""
    return xw.func(async_mode="threading")(f) if ASYNC else xw.func(f)


@_udf
@xw.arg("features", ndim=2, err_to_str=True)
def PREDICT(features: Any, model: str | None = None, version: int | None = None) -> Any:
    """Prediction per row of FEATURES (a first row of column names is matched by name)."""
    def compute() -> Any:
        result = _score(features, model, version)
        return _shape(result, lambda i: [result["predictions"][i]])
    return _as_cells(compute)


@_udf
@xw.arg("features", ndim=2, err_to_str=True)
def PREDICT_PROBA(features: Any, model: str | None = None, class_name: str | None = None) -> Any:
    """Probability of CLASS_NAME (default: the positive, last class); "all" for every class."""
    def compute() -> Any:
        result = _score(features, model, None)
        classes = [str(c) for c in result.get("classes") or []]
        if not classes:
            raise ScoreBridgeError("this model gives no probabilities (not a classifier)")
        probs = result["probabilities"]
        if class_name in ("all", "*"):
            return _shape(result, lambda i: list(probs[i]), width=len(classes))
        if class_name and str(class_name) not in classes:
            raise ScoreBridgeError(f"unknown class {class_name}; classes: {', '.join(classes)}")
        j = classes.index(str(class_name)) if class_name else len(classes) - 1
        return _shape(result, lambda i: [probs[i][j]])
    return _as_cells(compute)


@xw.func
def MODELS() -> Any:
    """The deployed models: name, production version, latest version, description."""
    def compute() -> list[list[Any]]:
        rows: list[list[Any]] = [["model", "production version", "latest version", "description"]]
        for m in _get("/api/v1/models")["models"]:
            rows.append([m["name"], "" if m["production_version"] is None else m["production_version"],
                         "" if m["latest_version"] is None else m["latest_version"],
                         m["description"] or ""])
        return rows
    return _as_cells(compute)
