"""Native tree code: a tree ensemble turned into C by treelite/tl2cgen and compiled at registration.

onnxruntime walks trees as data in float32, so a forest's split edges need guarding and the walk
itself is two thirds of a 10,000-row request. Compiled C compares in float64 with scikit-learn's
own thresholds (exact, no edge rows) and runs the demo model's 120 trees about twice as fast
(docs/performance.md). The preprocessing before the trees runs as a float64 ONNX graph when
it only passes numbers through or encodes categories, else as a float64 plan that computes what
scikit-learn computes (:mod:`..preprocess_plan`), so scaled, imputed or transformed inputs reach the
trees exactly as they would in scikit-learn. Used only when a C compiler is present, the ensemble
is small enough to compile in seconds, and the result reproduces scikit-learn on the reference
sample; otherwise the version falls back to the ONNX graph or scikit-learn, with the reason recorded.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import struct
import tempfile
import threading
import warnings
import zipfile
from typing import Any

import numpy as np

from ...config import Settings
from ...types import Signature
from .. import boosting
from ..preprocess_plan import plan
from ..runtime import final_estimator
from ..toolchain import toolchain
from .onnx import FLOAT32_MAX, WIDE_ROWS, ort_session, with_text

log = logging.getLogger(__name__)
# gcc's time grows with the nodes: ~1 s for the demo model's 7,320, ~37 s for a 100-tree
# forest's 128,968 (2 cores, -O1); beyond this a registration would wait minutes
NODE_BUDGET = Settings.native_trees_max_nodes  # SCOREBRIDGE_NATIVE_TREES_MAX_NODES's default
FAMILIES = frozenset({
    "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
    "GradientBoostingClassifier", "GradientBoostingRegressor",
    "RandomForestClassifier", "RandomForestRegressor",
    "ExtraTreesClassifier", "ExtraTreesRegressor",
})
_LOW_HALF = np.uint64(0xFFFF_FFFF)


def node_count(final: Any) -> int:
    """Nodes in every tree: what the C compiler's time grows with."""
    if hasattr(final, "_predictors"):
        return sum(len(tree.nodes) for trees in final._predictors for tree in trees)
    return sum(int(tree.tree_.node_count) for tree in np.ravel(final.estimators_))


def unsuitable(estimator: Any, signature: Signature,
               max_nodes: int = NODE_BUDGET) -> str | None:
    """Why the version cannot have native trees, or None when it can be tried."""
    final = final_estimator(estimator)
    library = boosting.library(final)
    if library is not None:
        why = boosting.categorical_splits(final)
        if why is not None:
            return why
    elif type(final).__name__ not in FAMILIES:
        return f"{type(final).__name__} is not a tree ensemble treelite compiles"
    elif getattr(final, "is_categorical_", None) is not None and np.any(final.is_categorical_):
        return "native categorical splits are not compiled"
    nodes = boosting.node_count(final) if library is not None else node_count(final)
    if nodes > max_nodes:
        return f"{nodes:,} tree nodes exceed the {max_nodes:,} compiled at registration"
    if toolchain() is None:
        return "no C compiler (gcc or clang) on this machine"
    return None


def build(estimator: Any, signature: Signature, preprocess: bytes | None,
          planned: bool = False) -> bytes:
    """The bundle: a zip of the float64 preprocessing graph (if any), the compiled library and a
    manifest saying how to feed it. ``planned``: the steps before the trees run as a float64
    plan (:mod:`..preprocess_plan`) read from the fitted pipeline when the bundle is loaded."""
    final = final_estimator(estimator)
    manifest = {**library_manifest(final),
                # the boosters' missing-value rules (default directions, LightGBM's
                # missing_type) stay the library's: rows with a missing number go to it
                "missing_to_model": boosting.library(final) is not None,
                "columns": [c.name for c in signature.inputs],
                "preprocess": "plan" if planned else "onnx" if preprocess is not None else None}
    files = {"trees.so": compile_library(final)}
    if preprocess is not None:
        files["preprocess.onnx"] = preprocess
    return bundle(manifest, files)


def library_manifest(final: Any) -> dict[str, Any]:
    """What a bundle records of the libraries it was compiled with and how its trees compare."""
    import tl2cgen
    import treelite

    return {"format": 1, "treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__,
            # scikit-learn's other tree models compare float32 inputs; HGB compares float64;
            # XGBoost float32, LightGBM float64
            "float32_inputs": narrow_inputs(final)}


def narrow_inputs(final: Any) -> bool:
    """Whether the trees compare float32 inputs (scikit-learn's forests and gradient boosting,
    XGBoost) rather than float64 ones (histogram gradient boosting, LightGBM)."""
    return boosting.library(final) != "lightgbm" and not hasattr(final, "_predictors")


def compile_library(final: Any) -> bytes:
    """The tree ensemble ``final`` as a compiled shared library (its bytes)."""
    import tl2cgen
    import treelite

    chatter = io.StringIO()  # the libraries print their progress: kept for the debug log
    with tempfile.TemporaryDirectory(prefix="scorebridge-native-") as tmp, \
            warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")
        model = boosting.import_trees(final) if boosting.library(final) is not None \
            else treelite.sklearn.import_model(final)
        library = os.path.join(tmp, "trees.so")
        compiler = toolchain()
        if compiler is None:
            raise RuntimeError("no C compiler (gcc or clang) on this machine")
        tl2cgen.export_lib(_for_tl2cgen(model), toolchain=compiler, libpath=library,
                           # quantize: inputs become bin numbers compared as integers (exact,
                           # ~7 % faster on the demo model), but not for XGBoost's float32
                           # thresholds: a value 5e-10 from one took the wrong branch
                           params={"parallel_comp": max(os.cpu_count() or 1, 2),
                                   "quantize": int(boosting.library(final) != "xgboost")},
                           nthread=os.cpu_count() or 1,
                           # -O1 (after tl2cgen's -O3): the demo's trees ran 14 ms instead of
                           # 17, and a 100-tree forest compiled in 37 s instead of 98
                           options=["-O1"])
        with open(library, "rb") as f:
            code = f.read()
    log.debug("native trees compiled: %s", chatter.getvalue().strip())
    return code


def bundle(manifest: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """A zip of ``manifest.json`` and ``files``: the form a native version is stored in."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def read_bundle(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(the manifest, the other files) of a bundle :func:`bundle` made."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("manifest.json")), {
            name: z.read(name) for name in z.namelist() if name != "manifest.json"}


def read_manifest(data: bytes) -> dict[str, Any]:
    """A bundle's manifest alone (its libraries left compressed)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("manifest.json"))


class _Checkpoint:
    """A Treelite checkpoint as tl2cgen takes a model: it only calls serialize_bytes()."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def serialize_bytes(self) -> bytes:
        return self._data


_VERSION = struct.Struct("=3i")  # a checkpoint opens with Treelite's major, minor, patch


def _reserialize(data: bytes) -> bytes | None:
    """The checkpoint read and written back by the Treelite bundled in tl2cgen's library (which
    writes its own version into the header), or None if that reader refuses it."""
    import ctypes

    from tl2cgen.libloader import _LIB

    handle = ctypes.c_void_p()
    if _LIB.TreeliteDeserializeModelFromBytes(ctypes.c_char_p(data), ctypes.c_size_t(len(data)),
                                              ctypes.byref(handle)) != 0:
        return None
    try:
        out, size = ctypes.c_char_p(), ctypes.c_size_t()
        if _LIB.TreeliteSerializeModelToBytes(handle, ctypes.byref(out), ctypes.byref(size)) != 0:
            return None
        return ctypes.string_at(out, size.value)
    finally:
        _LIB.TreeliteFreeModel(handle)


def _for_tl2cgen(model: Any) -> Any:
    """The model as tl2cgen's own Treelite reads it, without its version warning.

    tl2cgen takes the model as Treelite checkpoint bytes and reads them with the Treelite it
    bundles (4.1.2 in tl2cgen 1.0.0, the latest release), whose reader prints "originated from a
    newer Treelite version" straight to stderr for a checkpoint of a newer minor version. The pair
    cannot be aligned: Treelite 4.1's scikit-learn importer fails under numpy 2. So the checkpoint
    is relabelled with the bundled reader's version when that reader reads it back byte for byte
    (it then lost nothing), and handed over as it is, warning and all, when it does not."""
    data = model.serialize_bytes()
    major = _VERSION.unpack_from(data)[0]
    # labelled x.0.0, no newer than any reader of the same major: read without the warning
    echo = _reserialize(_VERSION.pack(major, 0, 0) + data[_VERSION.size:])
    if echo is None or echo[_VERSION.size:] != data[_VERSION.size:]:
        return model
    return _Checkpoint(echo)


def load_trees(code: bytes) -> "Trees":
    """A compiled library loaded twice: on one thread for small calls; for large batches (jobs,
    10,000-row requests) on as many as OpenMP allows (-1: every core, or fewer under
    OMP_NUM_THREADS, which tl2cgen refuses to exceed). The file lives only until it is mapped:
    nothing on disk can be swapped for it afterwards."""
    import tl2cgen

    folder = tempfile.mkdtemp(prefix="scorebridge-native-")
    path = os.path.join(folder, "trees.so")
    try:
        with open(path, "wb") as f:
            f.write(code)
        return Trees([(tl2cgen.Predictor(path, nthread=n), threading.Lock()) for n in (1, -1)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Trees:
    """One compiled ensemble's predictors. A predictor takes one call at a time (tl2cgen's
    rule): each has its lock."""

    def __init__(self, predictors: list[tuple[Any, threading.Lock]]) -> None:
        from tl2cgen import DMatrix

        self._dmatrix = DMatrix
        self._predictors = predictors

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """The trees' output for ``matrix`` (float64, C order): one column per output."""
        predictor, lock = self._predictors[len(matrix) >= WIDE_ROWS]
        rows = self._dmatrix(matrix)
        with lock:
            out = np.asarray(predictor.predict(rows), dtype=np.float64)
        return out.reshape(len(matrix), -1)


def as_probabilities(out: np.ndarray) -> np.ndarray:
    """A classifier's probabilities from its trees' output (one column: the positive class)."""
    return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out


def tree_matrix(matrix: np.ndarray, narrow: bool,
                missing_to_model: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(the matrix as the trees compare it, the rows scikit-learn must answer), or None when
    a value cannot be compared the way scikit-learn compares it. A float32 model's matrix is
    rounded to float32 as scikit-learn rounds it (an out-of-range value: None), and its rows
    with a missing number go to scikit-learn; a float64 model's rows whose value reads as
    missing to tl2cgen (``NativeRunner.prepare``) do, and with ``missing_to_model`` those with
    a missing number too."""
    if narrow:
        with np.errstate(invalid="ignore"):
            if (np.abs(matrix) > FLOAT32_MAX).any():
                return None
        matrix = matrix.astype(np.float32).astype(np.float64)
        edges = np.isnan(matrix).any(axis=1)
    else:
        edges = ((matrix.view(np.uint64) & _LOW_HALF) == _LOW_HALF).any(axis=1)
        if missing_to_model:
            edges |= np.isnan(matrix).any(axis=1)
    return matrix, np.flatnonzero(edges)


class NativeRunner:
    """One verified native bundle and how to feed it: the same interface as ``OnnxRunner``."""

    runtime = "native"

    def __init__(self, bundle: bytes, signature: Signature, classes: np.ndarray | None,
                 estimator: Any = None) -> None:
        manifest, files = read_bundle(bundle)
        preprocess = files.get("preprocess.onnx")
        self._trees = load_trees(files["trees.so"])
        self._preprocess = ort_session(preprocess, threads=1) if preprocess is not None else None
        self._narrow = bool(manifest["float32_inputs"])
        self._missing_to_model = bool(manifest.get("missing_to_model", False))
        self.signature = signature
        self.classes = classes
        self._columns = list(manifest["columns"])
        self._text = [c.name for c in signature.inputs if c.type == "string"]
        self._numbers = [c.name for c in signature.inputs if c.type != "string"]
        self._plan = plan(estimator, signature) if manifest.get("preprocess") == "plan" else None

    def prepare(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """(the inputs as the trees' preprocessing takes them, the rows scikit-learn must answer
        instead), or None when the rows hold what the graph cannot represent.

        float64 compares as scikit-learn does, so no row sits on a split edge. But tl2cgen
        passes each value in a union whose "missing" flag shares the low 32 bits of the double:
        a number whose low half is all ones (such as the one just below 21.0) would read as
        missing. Those rows (one double in four billion, found by the edge tests) go to
        scikit-learn. A float32 widened to float64 has zero low bits, so forests never hit it;
        their rows with a missing number go to scikit-learn instead. With a float64 plan, the
        same rules apply to the matrix it makes (what scikit-learn hands its trees)."""
        if self._plan is not None:
            return self._planned(inputs)
        feed: dict[str, np.ndarray] = {}
        aliased: list[np.ndarray] = []
        for name in self._numbers:
            values = np.asarray(inputs[name], dtype=np.float64)
            if self._narrow:  # as scikit-learn casts them before its trees
                with np.errstate(invalid="ignore"):
                    if (np.abs(values) > FLOAT32_MAX).any():
                        return None
                values = values.astype(np.float32).astype(np.float64)
                # missing numbers in forests: scikit-learn's own rules (tested for HGB only)
                aliased.append(np.flatnonzero(np.isnan(values)))
            else:
                low = values.view(np.uint64) & _LOW_HALF
                aliased.append(np.flatnonzero(low == _LOW_HALF))
                if self._missing_to_model:
                    aliased.append(np.flatnonzero(np.isnan(values)))
            feed[name] = values.reshape(-1, 1)
        return with_text(feed, inputs, self._text, aliased)

    def _planned(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        assert self._plan is not None
        matrix = self._plan.matrix_or_none(inputs)
        if matrix is None:
            return None
        compared = tree_matrix(matrix, self._narrow, self._missing_to_model)
        return None if compared is None else ({"": compared[0]}, compared[1])

    def run(self, feed: dict[str, np.ndarray],
            labels: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(labels, probabilities as float64) or (values, None), as ``OnnxRunner.run``."""
        if "" in feed:  # the plan's matrix
            matrix = feed[""]
        elif self._preprocess is not None:
            matrix = self._preprocess.run(None, feed)[0]
        else:
            matrix = np.hstack([feed[name] for name in self._columns])
        out = self._trees(np.ascontiguousarray(matrix, dtype=np.float64))
        if self.classes is None:
            return out[:, 0].copy(), None
        probabilities = as_probabilities(out)
        if not labels:
            return None, probabilities
        return self.classes.take(probabilities.argmax(axis=1)), probabilities
