"""MLflow models: a zipped MLflow model folder (the ``MLmodel`` file and what it names).

A team moving from ``mlflow models serve`` registers what it already has. Only the ``sklearn``
flavour (skops, or a pickle with admin trust) and the ``onnx`` flavour are read; nothing MLflow
would import (``python_function`` loader modules, ``code`` folders, ``skops_trusted_types``) is
used. Members are read from the zip in memory: no path in it or in ``MLmodel`` is ever opened on
disk, a member that could escape its folder (``..``, absolute, a symlink) refuses the whole zip,
and the uncompressed size is bounded before anything is decompressed (zip bombs).
"""
from __future__ import annotations

import io
import json
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..errors import ModelRejected, UnsafeArtifact
from ..types.signature import ColumnType

MLMODEL = "MLmodel"
MAX_UNCOMPRESSED = 1 << 30  # all members together, as their headers declare (reads stop there)
MAX_MEMBERS = 10_000
MAX_RATIO = 200  # members above RATIO_FLOOR compressing better than this are refused as bombs
RATIO_FLOOR = 1 << 20
_MLFLOW_TYPES: dict[str, ColumnType] = {
    "double": "number", "float": "number", "long": "integer", "integer": "integer",
    "boolean": "boolean", "string": "string"}
_SKLEARN_FORMATS = {"skops": "skops", "pickle": "pickle", "cloudpickle": "pickle"}


@dataclass(frozen=True)
class MlflowModel:
    """What an MLflow model folder holds, as the loader and registration need it."""

    flavour: Literal["sklearn", "onnx"]
    format: Literal["skops", "pickle", "onnx"]
    member: str  # the model file's path in the zip
    serialization: str  # as MLmodel names it (skops, pickle, cloudpickle, onnx)
    data: bytes = field(repr=False)
    declared: dict[str, ColumnType]  # input types from MLmodel's signature, by column
    example: pd.DataFrame | None  # the saved input example (when asked for)


def read_mlflow(path: Path, with_example: bool = False) -> MlflowModel:
    """The model in the MLflow zip at ``path``, refusing any unsafe member first; its input
    example too ``with_example`` (registration needs it, loading does not)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArtifact(f"not a readable zip of an MLflow model ({type(exc).__name__})") \
            from None
    with archive:
        members = _checked_members(archive)
        root = _root(members)
        text = _read(archive, members, posixpath.join(root, MLMODEL) if root else MLMODEL)
        meta = _yaml(text)
        flavour, spec = _flavour(meta)
        if flavour == "sklearn":
            serialization = str(spec.get("serialization_format") or "cloudpickle")
            if serialization not in _SKLEARN_FORMATS:
                raise UnsafeArtifact(f"the MLflow sklearn flavour's serialization_format "
                                     f"{serialization!r} is not one that can be read")
            fmt = _SKLEARN_FORMATS[serialization]
            member = _inside(root, spec.get("pickled_model"), "flavors.sklearn.pickled_model")
        else:
            serialization, fmt = "onnx", "onnx"
            member = _inside(root, spec.get("data"), "flavors.onnx.data")
        if member not in members:
            raise UnsafeArtifact(f"the MLflow model file {member!r} named in MLmodel is not in "
                                 "the zip")
        data = _read(archive, members, member)
        example = _example(archive, members, root, meta) if with_example else None
    return MlflowModel(flavour, fmt, member, serialization, data,  # type: ignore[arg-type]
                       _declared(meta), example)


def _checked_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UnsafeArtifact(f"the zip holds {len(infos)} members (at most {MAX_MEMBERS})")
    total = 0
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or ":" in parts[0] or ".." in parts:
            raise UnsafeArtifact(f"the zip member {name!r} points outside the model folder")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArtifact(f"the zip member {name!r} is a symbolic link; links are refused")
        total += info.file_size
        if total > MAX_UNCOMPRESSED:
            raise UnsafeArtifact(f"the zip expands to more than {MAX_UNCOMPRESSED >> 20} MiB "
                                 f"(at member {name!r}); refused as a possible zip bomb")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeArtifact(f"the zip member {name!r} expands {info.file_size >> 20} MiB "
                                 f"from {info.compress_size} bytes; refused as a possible zip bomb")
        if not info.is_dir():
            members[name] = info
    return members


def _root(members: dict[str, zipfile.ZipInfo]) -> str:
    """The model folder inside the zip: its top (``MLmodel`` at the root) or one folder."""
    if MLMODEL in members:
        return ""
    found = sorted({n.rsplit("/", 1)[0] for n in members
                    if n.count("/") == 1 and n.endswith("/" + MLMODEL)})
    if len(found) != 1:
        raise UnsafeArtifact("the zip holds no MLflow model: an MLmodel file is expected at its "
                             "top or in its one folder" if not found else
                             "the zip holds several MLflow models: " + ", ".join(found))
    return found[0]


def _inside(root: str, relative: Any, where: str) -> str:
    """``relative`` (a path from MLmodel) as a member name, refused unless inside the folder."""
    if not isinstance(relative, str) or not relative.strip():
        raise UnsafeArtifact(f"the MLmodel file has no path in {where}")
    if relative.startswith(("/", "\\")) or "\\" in relative or ":" in relative.split("/")[0] \
            or os.path.isabs(relative):
        raise UnsafeArtifact(f"the MLmodel path {where} = {relative!r} is absolute; paths must "
                             "stay inside the model folder")
    joined = posixpath.normpath(posixpath.join(root or ".", relative))
    if joined == ".." or joined.startswith("../") or (root and not joined.startswith(root + "/")):
        raise UnsafeArtifact(f"the MLmodel path {where} = {relative!r} points outside the model "
                             "folder")
    return joined


def _read(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str) -> bytes:
    info = members.get(name)
    if info is None:
        raise UnsafeArtifact(f"the zip has no {name!r}" + (
            "; an MLflow model folder holds an MLmodel file" if name.endswith(MLMODEL) else ""))
    try:
        with archive.open(info) as fh:  # reads stop at the size the header declared
            return fh.read()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise UnsafeArtifact(f"the zip member {name!r} cannot be read ({type(exc).__name__})") \
            from None


def _yaml(text: bytes) -> dict[str, Any]:
    import yaml

    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UnsafeArtifact(f"the MLmodel file is not valid YAML ({type(exc).__name__})") \
            from None
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise UnsafeArtifact("the MLmodel file has no flavors section")
    return meta


def _flavour(meta: dict[str, Any]) -> tuple[Literal["sklearn", "onnx"], dict[str, Any]]:
    flavours = meta["flavors"]
    for name in ("sklearn", "onnx"):
        spec = flavours.get(name)
        if spec is not None:
            if not isinstance(spec, dict):
                raise UnsafeArtifact(f"the MLmodel flavour {name!r} is not a mapping")
            return name, spec
    others = ", ".join(sorted(map(str, flavours))) or "none"
    raise UnsafeArtifact(
        f"the MLflow model's flavours ({others}) cannot be loaded safely: only the sklearn flavour "
        "(saved with serialization_format='skops', or a pickle registered with --trust-pickle) "
        "and the onnx flavour are; a python_function model runs its own code")


def _declared(meta: dict[str, Any]) -> dict[str, ColumnType]:
    """Input column types from MLmodel's signature (a column-based one; a tensor signature
    names no columns)."""
    signature = meta.get("signature")
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    if not inputs:
        return {}
    try:
        specs = json.loads(inputs) if isinstance(inputs, str) else inputs
    except json.JSONDecodeError:
        raise ModelRejected("the MLmodel signature's inputs are not valid JSON") from None
    declared: dict[str, ColumnType] = {}
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict) or "name" not in spec or spec.get("type") == "tensor":
            return {}
        kind = str(spec.get("type"))
        if kind not in _MLFLOW_TYPES:
            raise ModelRejected(f"the MLmodel signature declares input {spec['name']!r} as "
                                f"{kind!r}, which has no column type here (use "
                                f"{', '.join(sorted(_MLFLOW_TYPES))})")
        declared[str(spec["name"])] = _MLFLOW_TYPES[kind]
    return declared


def _example(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], root: str,
             meta: dict[str, Any]) -> pd.DataFrame | None:
    """The saved input example as a frame (split or records JSON), or None without one."""
    info = meta.get("saved_input_example_info")
    if not isinstance(info, dict) or info.get("type", "dataframe") != "dataframe":
        return None
    member = _inside(root, info.get("artifact_path"), "saved_input_example_info.artifact_path")
    try:
        body = json.loads(_read(archive, members, member))
        if isinstance(body, dict):
            body = body.get("dataframe_split", body.get("dataframe_records", body))
        if isinstance(body, dict) and "columns" in body and "data" in body:
            frame = pd.DataFrame(body["data"], columns=body["columns"])
        elif isinstance(body, list) and all(isinstance(r, dict) for r in body):
            frame = pd.DataFrame.from_records(body)
        else:
            raise ValueError("neither split nor records")
    except (ValueError, TypeError) as exc:
        raise ModelRejected(f"the MLflow input example {member!r} is not a table in split or "
                            f"records form ({exc})") from None
    return frame if len(frame) else None


def zip_folder(folder: Path) -> bytes:
    """A model folder as a zip, the same bytes for the same files (sorted names, fixed times and
    modes), so registering a folder twice gives one checksum. Links are refused, not followed."""
    if not (folder / MLMODEL).is_file():
        raise UnsafeArtifact(f"{folder} is not an MLflow model folder (it has no MLmodel file)")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_symlink():
                raise UnsafeArtifact(f"the model folder holds a symbolic link, {relative!r}; "
                                     "copy the file it points to instead")
            if path.is_file():
                info = zipfile.ZipInfo(relative, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
