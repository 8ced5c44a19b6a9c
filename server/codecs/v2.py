"""The Open Inference Protocol (KServe V2, Triton, MLServer) REST types, as one module.

Inputs are either one tensor per signature column (name = column, shape ``[N]`` or ``[N, 1]``) or
one tensor ``[N, n_features]`` in signature order; outputs are ``predict`` ``[N]`` and, for
classifiers, ``predict_proba`` ``[N, n_classes]``. Datatypes follow the signature (text is BYTES).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import MalformedRequest
from ..types import Column, RawTable, Signature
from .table import table_from_columns

DATATYPES = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"}
_BY_TYPE = {"number": "FP64", "integer": "INT64", "string": "BYTES", "boolean": "BOOL"}


def datatype(kind: str) -> str:
    return _BY_TYPE.get(kind, "BYTES")


def input_metadata(signature: Signature) -> list[dict[str, Any]]:
    return [{"name": c.name, "datatype": _column_type(c), "shape": [-1]}
            for c in signature.inputs]


def _column_type(col: Column) -> str:
    if col.categories and col.type == "string":
        return "BYTES"
    return datatype(col.type)


def output_metadata(signature: Signature) -> list[dict[str, Any]]:
    out = [{"name": "predict", "datatype": datatype(signature.output.type), "shape": [-1]}]
    if signature.output.probabilities:
        out.append({"name": "predict_proba", "datatype": "FP64",
                    "shape": [-1, len(signature.output.classes or ())]})
    return out


_NUMPY = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
          "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2",
          "FP32": "<f4", "FP64": "<f8"}


def split_binary(body: bytes, header_length: int | None) -> tuple[bytes, bytes]:
    """The binary tensor extension (tritonclient's default): a JSON header of
    ``Inference-Header-Content-Length`` bytes, then the tensors' raw bytes."""
    if header_length is None:
        return body, b""
    if header_length > len(body):
        raise MalformedRequest("Inference-Header-Content-Length does not fit the body")
    return body[:header_length], body[header_length:]


def _binary_values(raw: bytes, dtype: str, name: str) -> list[Any]:
    import numpy as np

    if dtype == "BYTES":
        values, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise MalformedRequest(f"input {name!r}: truncated BYTES element")
            size = int.from_bytes(raw[pos:pos + 4], "little")
            chunk = raw[pos + 4:pos + 4 + size]
            if len(chunk) != size:
                raise MalformedRequest(f"input {name!r}: truncated BYTES element")
            try:
                values.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                raise MalformedRequest(f"input {name!r}: BYTES are not UTF-8 text") from None
            pos += 4 + size
        return values
    width = np.dtype(_NUMPY[dtype]).itemsize
    if len(raw) % width:
        raise MalformedRequest(f"input {name!r}: {len(raw)} bytes is not a whole number of "
                               f"{dtype} values")
    return np.frombuffer(raw, dtype=_NUMPY[dtype]).tolist()


def attach_binary(body: Any, blob: bytes) -> Any:
    """Put the binary tensors' values into their inputs' ``data``, in order."""
    if not blob or not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        return body
    pos = 0
    for raw in body["inputs"]:
        params = raw.get("parameters") if isinstance(raw, dict) else None
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            continue
        if not isinstance(size, int) or size < 0 or pos + size > len(blob):
            raise MalformedRequest("binary_data_size does not fit the body")
        dtype = raw.get("datatype")
        if dtype not in DATATYPES:
            raise MalformedRequest(f"unknown datatype {str(dtype)[:20]!r}")
        raw["data"] = _binary_values(blob[pos:pos + size], dtype, str(raw.get("name")))
        pos += size
    return body


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row)] if isinstance(data[0][0], list) \
            else [v for row in data for v in row]
    if not isinstance(data, list):
        raise MalformedRequest("tensor 'data' must be an array")
    return data


def _tensor(raw: Any, i: int) -> tuple[str, list[int], list[Any]]:
    if not isinstance(raw, dict):
        raise MalformedRequest(f"inputs[{i}] must be an object with name, shape, datatype, data")
    name, shape, dtype, data = (raw.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise MalformedRequest(f"inputs[{i}] needs a 'name'")
    if not isinstance(shape, list) or not shape or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise MalformedRequest(f"input {name!r}: 'shape' must be a list of non-negative integers")
    if dtype not in DATATYPES:
        raise MalformedRequest(f"input {name!r}: unknown datatype {str(dtype)[:20]!r}; one of "
                               + ", ".join(sorted(DATATYPES)))
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise MalformedRequest(f"input {name!r}: shape {shape} needs {math.prod(shape)} values, "
                               f"got {len(flat)}")
    return name, shape, flat


def decode_infer(body: Any, signature: Signature) -> tuple[RawTable, set[str], str | None]:
    """The table, the outputs asked for, and the request id."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or \
            not body["inputs"]:
        raise MalformedRequest("send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}")
    tensors = [_tensor(raw, i) for i, raw in enumerate(body["inputs"])]
    names = signature.names
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][1][1] == len(names) \
            and tensors[0][0] not in names:
        _, (n, width), flat = tensors[0]
        rows = [flat[r * width:(r + 1) * width] for r in range(n)]
        table = RawTable.positional(rows)
    else:
        columns: dict[str, Sequence[Any]] = {}
        for name, shape, flat in tensors:
            if len(shape) == 2 and shape[1] != 1 or len(shape) > 2:
                raise MalformedRequest(f"input {name!r}: a column tensor has shape [N] or [N, 1], "
                                       f"got {shape}; one tensor of all columns has shape "
                                       f"[N, {len(names)}]")
            columns[name] = flat
        table = table_from_columns(columns)
    wanted = {"predict", "predict_proba"}
    outputs = body.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise MalformedRequest("'outputs' must be a list of {\"name\": ...}")
        wanted = {o.get("name") for o in outputs}
        unknown = wanted - {"predict", "predict_proba"} - EXPLANATION_OUTPUTS
        if unknown:
            raise MalformedRequest(f"unknown output(s) {', '.join(map(str, unknown))[:80]}; "
                                   "outputs: predict, predict_proba, contributions, "
                                   "explanation_base")
    request_id = body.get("id")
    return table, wanted, request_id if isinstance(request_id, str) else None


EXPLANATION_OUTPUTS = frozenset({"contributions", "explanation_base"})


def encode_infer(result: Any, signature: Signature, wanted: set[str],
                 request_id: str | None) -> dict[str, Any]:
    n = len(result.predictions)
    outputs = []
    if "predict" in wanted:
        outputs.append({"name": "predict", "datatype": datatype(signature.output.type),
                        "shape": [n], "data": result.predictions})
    if "predict_proba" in wanted and result.probabilities is not None:
        width = len(result.classes or ())
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [n, width],
                        "data": [p for row in result.probabilities for p in row]})
    if result.explanation is not None:
        outputs += _explanation_outputs(result, wanted)
    out: dict[str, Any] = {"model_name": result.model, "model_version": str(result.version),
                           "outputs": outputs}
    if request_id:
        out["id"] = request_id
    return out


def _explanation_outputs(result: Any, wanted: set[str]) -> list[dict[str, Any]]:
    """Asked for by name only: ``contributions`` [N, n_inputs] (signature order) and
    ``explanation_base`` [N]; base + a row's contributions is the model's raw output."""
    explanation = result.explanation
    n, width = result.n_rows, len(explanation.columns)
    contributions = np.full((n, width), np.nan)
    base = np.full(n, np.nan)
    contributions[result.positions] = explanation.contributions
    base[result.positions] = explanation.base
    out = []
    if "contributions" in wanted:
        out.append({"name": "contributions", "datatype": "FP64", "shape": [n, width],
                    "data": _nulls(contributions.reshape(-1).tolist()),
                    "parameters": {"columns": explanation.columns,
                                   "output": explanation.output}})
    if "explanation_base" in wanted:
        out.append({"name": "explanation_base", "datatype": "FP64", "shape": [n],
                    "data": _nulls(base.tolist())})
    return out


def _nulls(values: list[float]) -> list[float | None]:
    return [None if v != v else v for v in values]
