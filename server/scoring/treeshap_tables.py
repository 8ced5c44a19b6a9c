"""Path-dependent TreeSHAP from per-leaf tables: shap's values, at a fraction of its cost per row.

shap's TreeExplainer re-runs the path algorithm for every row, O(trees × leaves × depth²): about
a second for 1,000 rows of the demo model. But a leaf's part of a row's Shapley values depends on
the row only through which of the leaf's path features the row *agrees* with (goes the path's way
at every node testing that feature). That is the idea of Fast TreeSHAP v2 (Yang, 2021): work the
rest out once per leaf and table it by agreement pattern, so a row costs O(trees × leaves ×
features on a path).

For a leaf with value ``v`` whose path tests the features ``F`` (``d`` of them), with ``z_j`` the
product of the cover fractions along the path at the nodes testing ``j`` and ``A`` the features
the row agrees with, the leaf's game is ``g(S) = v × prod_{j in S} [j in A] × prod_{j in F - S}
z_j`` and its Shapley value for ``i`` in ``F`` is

    phi_i = v (1 - z_i) R(A - {i}) Z(A)         when i is in A,
    phi_i = -v z_i R(A) Z(A + {i})              otherwise,

where ``Z(C) = prod_{j in F - C} z_j`` and ``R(B) = sum_k k! (d - 1 - k)! / d! × e_k(B)``, with
``e_k(B)`` the coefficient of ``t^k`` in ``prod_{j in B} (t + z_j)``. Both are tabled for every
subset of ``F`` (2^d entries each) when the explainer is built; features outside ``F`` get nothing
from the leaf. The base value is ``sum over leaves of v × Z(empty set)``, the cover-weighted
mean of the trees.

The per-row loop is a small C function, compiled once per process with the machine's C compiler
(the one the native trees use) and called through ctypes, which releases the GIL. The trees come
from :mod:`.lightgbm_shap`'s reading of scikit-learn's models (histogram and classic gradient
boosting, forests, extra trees, decision trees; the same comparisons: ``x <= threshold`` goes
left, float32 inputs for scikit-learn's own trees, NaN where the node sends it). Where a path
tests more than ``MAX_PATH_FEATURES`` features or the tables would pass ``MAX_ENTRIES``, or there
is no compiler, :func:`tables` returns None and the caller keeps shap.
"""
from __future__ import annotations

import ctypes
import math
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import lightgbm_shap
from .toolchain import toolchain

MAX_PATH_FEATURES = 20
MAX_ENTRIES = 1 << 22        # R and Z entries over all leaves: 64 MB of float64 at most

_KERNEL = r"""
#include <stdint.h>

/* Column-major rows (x_t: features × rows; phi_t: outputs × features × rows), leaf by leaf:
 * a leaf's path and tables stay in cache while the rows stream by, and each inner loop runs
 * over rows without branches, so the compiler vectorises it. */
void treeshap(int64_t n_rows, int64_t n_features, int64_t n_out, const double *x_t,
              int64_t n_leaves, const int64_t *leaf_start, const int32_t *leaf_out,
              const int64_t *leaf_table, const int32_t *feature, const double *lo,
              const double *hi, const uint8_t *nan_agrees, const double *agree,
              const double *disagree, const double *r_table, const double *z_table,
              uint32_t *pattern, double *phi_t) {
    for (int64_t l = 0; l < n_leaves; l++) {
        const int64_t s = leaf_start[l], e = leaf_start[l + 1];
        const double *rl = r_table + leaf_table[l], *zl = z_table + leaf_table[l];
        for (int64_t r = 0; r < n_rows; r++) pattern[r] = 0;
        for (int64_t k = s; k < e; k++) {   /* which path features each row agrees with */
            const double *xc = x_t + (int64_t)feature[k] * n_rows;
            const double low = lo[k], high = hi[k];
            const uint32_t nan_ok = nan_agrees[k], shift = (uint32_t)(k - s);
            for (int64_t r = 0; r < n_rows; r++) {
                const double v = xc[r];   /* NaN compares false */
                const uint32_t ok = (uint32_t)((v > low) & (v <= high)) |
                                    ((uint32_t)(v != v) & nan_ok);
                pattern[r] |= ok << shift;
            }
        }
        for (int64_t k = s; k < e; k++) {
            /* agreeing: c1 R(A - i) Z(A); not: c0 R(A) Z(A + i); one formula for both */
            const uint32_t bit = (uint32_t)1 << (k - s);
            const double c1 = agree[k], c0 = disagree[k];
            double *pc = phi_t + ((int64_t)leaf_out[l] * n_features + feature[k]) * n_rows;
            for (int64_t r = 0; r < n_rows; r++) {
                const uint32_t a = pattern[r];
                const double c = (a & bit) ? c1 : c0;
                pc[r] += c * rl[a & ~bit] * zl[a | bit];
            }
        }
    }
}
"""
_loaded: Any = None
_load_lock = threading.Lock()


def _kernel() -> Any:
    """The compiled per-row loop (once per process), or None without a C compiler."""
    global _loaded
    with _load_lock:
        if _loaded is None:
            _loaded = _compile() or False
        return _loaded or None


def _compile() -> Any:
    compiler = toolchain()
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory(prefix="scorebridge-treeshap-") as tmp:
        source, library = os.path.join(tmp, "treeshap.c"), os.path.join(tmp, "treeshap.so")
        with open(source, "w") as f:
            f.write(_KERNEL)
        # no -ffast-math: isnan and the comparisons must stay IEEE's
        done = subprocess.run([compiler, "-O3", "-march=native", "-shared", "-fPIC", "-o", library, source],
                              capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            return None
        lib = ctypes.CDLL(library)   # mapped: the file can go once loaded
    fn = lib.treeshap
    fn.restype = None
    fn.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] + [ctypes.c_int64] + \
        [ctypes.c_void_p] * 13
    return fn


@dataclass(frozen=True)
class LeafTables:
    """Every leaf's path and tables, flat, as the kernel reads them."""

    n_features: int
    n_out: int
    float32: bool
    offset: np.ndarray         # per output: the constant the trees do not hold
    base: np.ndarray           # per output: offset + cover-weighted mean of the trees
    leaf_start: np.ndarray     # int64, leaves + 1: each leaf's range in the per-feature arrays
    leaf_out: np.ndarray       # int32: the output (class) the leaf's tree adds to
    leaf_table: np.ndarray     # int64: where the leaf's R and Z tables start
    feature: np.ndarray        # int32, per (leaf, path feature)
    lo: np.ndarray             # the row agrees when lo < x <= hi ...
    hi: np.ndarray
    nan_agrees: np.ndarray     # uint8: ... or, for NaN, when every node sends NaN the path's way
    agree: np.ndarray          # v (1 - z_i)
    disagree: np.ndarray       # -v z_i
    r_table: np.ndarray
    z_table: np.ndarray

    def __call__(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        """(phi, base): rows × features (× outputs when more than one), base per output."""
        kernel = _kernel()
        x = np.asarray(z, dtype=np.float32 if self.float32 else np.float64)
        x_t = np.ascontiguousarray(np.asarray(x, dtype=np.float64).T)
        rows = x_t.shape[1]
        phi_t = np.zeros((self.n_out, self.n_features, rows), dtype=np.float64)
        if rows:
            pattern = np.empty(rows, dtype=np.uint32)
            kernel(rows, self.n_features, self.n_out, x_t.ctypes.data, len(self.leaf_out),
                   *(a.ctypes.data for a in (
                       self.leaf_start, self.leaf_out, self.leaf_table, self.feature, self.lo,
                       self.hi, self.nan_agrees, self.agree, self.disagree, self.r_table,
                       self.z_table, pattern)), phi_t.ctypes.data)
        phi = phi_t.transpose(2, 1, 0)
        return (phi[:, :, 0] if self.n_out == 1 else phi), self.base.copy()


def tables(final: Any, family: str) -> LeafTables | None:
    """The tables for a fitted scikit-learn tree model, or None where they do not apply."""
    parts = lightgbm_shap.tree_parts(final, family, whole_counts=False)
    if parts is None or _kernel() is None:
        return None
    trees, n_out, offset, float32 = parts
    leaves: list[tuple[int, float, dict[int, list[float]]]] = []
    for index, tree in enumerate(trees):
        for value, path in _leaf_paths(tree):
            if len(path) > MAX_PATH_FEATURES:
                return None
            leaves.append((index % n_out, value, path))
    if sum(1 << len(p) for _, _, p in leaves) > MAX_ENTRIES:
        return None
    return _flatten(leaves, int(final.n_features_in_), n_out, offset, float32)


def _leaf_paths(tree: lightgbm_shap.Nodes) -> list[tuple[float, dict[int, list[Any]]]]:
    """Each leaf's value and, per feature its path tests: [lo, hi, NaN agrees, z]."""
    out: list[tuple[float, dict[int, list[float]]]] = []
    stack: list[tuple[int, dict[int, list[float]]]] = [(0, {})]
    while stack:
        node, path = stack.pop()
        left, right = int(tree.left[node]), int(tree.right[node])
        if left < 0:
            out.append((float(tree.value[node]), path))
            continue
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        cover = float(tree.count[node])
        nan_left = bool(tree.missing_left[node])
        for child, goes_left in ((left, True), (right, False)):
            lo, hi, nan_ok, z = path.get(f, [-math.inf, math.inf, 1.0, 1.0])
            agrees = nan_ok and nan_left == goes_left   # NaN goes this way here too
            fraction = z * float(tree.count[child]) / cover
            entry = [lo, min(hi, t), agrees, fraction] if goes_left else \
                [max(lo, t), hi, agrees, fraction]
            stack.append((child, {**path, f: entry}))
    return out


def _flatten(leaves: list[tuple[int, float, dict[int, list[float]]]], n_features: int,
             n_out: int, offset: np.ndarray, float32: bool) -> LeafTables:
    sizes = [len(p) for _, _, p in leaves]
    leaf_start = np.zeros(len(leaves) + 1, dtype=np.int64)
    leaf_start[1:] = np.cumsum(sizes)
    table_start = np.zeros(len(leaves) + 1, dtype=np.int64)
    table_start[1:] = np.cumsum([1 << d for d in sizes])
    r_table = np.empty(int(table_start[-1]), dtype=np.float64)
    z_table = np.empty(int(table_start[-1]), dtype=np.float64)
    pairs = int(leaf_start[-1])
    feature = np.empty(pairs, dtype=np.int32)
    lo, hi = np.empty(pairs), np.empty(pairs)
    nan_agrees = np.empty(pairs, dtype=np.uint8)
    agree, disagree = np.empty(pairs), np.empty(pairs)
    base = np.asarray(offset, dtype=np.float64).reshape(-1).copy()
    for i, (out, value, path) in enumerate(leaves):
        s, t = int(leaf_start[i]), int(table_start[i])
        items = sorted(path.items())
        zs = np.array([e[3] for _, e in items], dtype=np.float64)
        r, zc = _leaf_tables(zs)
        r_table[t:t + len(r)] = r
        z_table[t:t + len(r)] = zc
        for k, (f, (low, high, nan_ok, z)) in enumerate(items):
            feature[s + k], lo[s + k], hi[s + k] = f, low, high
            nan_agrees[s + k] = int(nan_ok)
            agree[s + k], disagree[s + k] = value * (1.0 - z), -value * z
        base[out] += value * zc[0]
    return LeafTables(n_features, n_out, float32, np.asarray(offset, dtype=np.float64),
                      base, leaf_start, np.array([o for o, _, _ in leaves], dtype=np.int32),
                      table_start[:-1].copy(), feature, lo, hi, nan_agrees, agree, disagree,
                      r_table, z_table)


def _leaf_tables(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R(B) and Z(B) for every subset B of a leaf's path features (bit j: feature j)."""
    d = len(z)
    poly = np.zeros((1 << d, d + 1))     # coefficients of prod_{j in B} (t + z_j), by power
    poly[0, 0] = 1.0
    inside = np.ones(1 << d)             # prod_{j in B} z_j
    for j in range(d):
        low, high = slice(0, 1 << j), slice(1 << j, 1 << (j + 1))
        poly[high] = poly[low] * z[j]
        poly[high, 1:] += poly[low, :-1]
        inside[high] = inside[low] * z[j]
    weights = np.array([math.factorial(k) * math.factorial(d - 1 - k) / math.factorial(d)
                        for k in range(d)] + [0.0]) if d else np.zeros(1)
    full = (1 << d) - 1
    masks = np.arange(1 << d)
    return poly @ weights, inside[full ^ masks]
