"""The steps before the model in float64, exactly as scikit-learn computes them, without its
per-call cost.

A float32 graph of a scaler can move a row across a tree's split; scikit-learn's own
``ColumnTransformer.transform`` on a one-row DataFrame costs about a millisecond. A plan is read
once from the fitted pipeline: each column block of a ColumnTransformer (or the first step) is a
chain of float64 numpy operations. The common transformers (scalers, numeric imputers, one-hot and
ordinal encoders) are the same numpy operations scikit-learn's ``transform`` runs, in the same
order, so the output is bit for bit scikit-learn's; every other scikit-learn transformer (power,
quantile, spline, polynomial, target encoding, ...) is its own fitted ``transform`` called on the
float64 array scikit-learn would have handed it. What a plan cannot be sure of (user code, an
unfamiliar library) is refused with the step named; input a call cannot represent (missing or
non-text values in a text column, infinities, unknown categories a step would raise on) makes the
plan answer None, and scikit-learn then answers that call.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..types import Signature

# numpy element-wise functions a FunctionTransformer may apply: the same libm call on a DataFrame
# (pandas hands ufuncs its blocks) as on the array, so provably the same numbers
ELEMENTWISE = frozenset({
    "log", "log1p", "log2", "log10", "exp", "expm1", "sqrt", "cbrt", "absolute", "square",
    "sign", "floor", "ceil", "rint", "trunc", "arcsinh", "tanh", "negative", "clip",
})
SMALL = 64  # up to this many rows a dictionary finds categories faster than an Index

Step = Callable[[np.ndarray], "np.ndarray | None"]


class NotCompiled(Exception):
    """A step the plan cannot reproduce exactly; the message names it and says why."""


class Plan:
    """The fitted pipeline's steps before the model, as float64 numpy work."""

    def __init__(self, blocks: list[tuple[list[str], bool, list[Step]]], after: list[Step],
                 signature: Signature, width: int, delegates: bool) -> None:
        self._blocks = blocks  # (input columns, 1-D input, chain) in output order
        self._after = after  # the pipeline's later steps, on the whole matrix
        self._text = {c.name for c in signature.inputs if c.type == "string"}
        self._names = [c.name for c in signature.inputs]
        self.width = width  # the model's number of features
        self.delegates = delegates  # some step is scikit-learn's own (which warns about names)

    def __call__(self, inputs: Any) -> np.ndarray | None:
        """The model's feature matrix (float64), or None when scikit-learn must answer."""
        columns: dict[str, np.ndarray] = {}
        for name in self._names:
            if name in self._text:
                values = np.asarray(inputs[name], dtype=object)
                try:
                    if not all(type(v) is str for v in set(values.tolist())):
                        return None
                except TypeError:
                    return None
            else:
                values = np.asarray(inputs[name], dtype=np.float64)
                if np.isinf(values).any():  # scikit-learn's transformers refuse them
                    return None
            columns[name] = values
        if self.delegates:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self._run(columns)
        return self._run(columns)

    def matrix_or_none(self, inputs: Any) -> np.ndarray | None:
        """The matrix, or None where scikit-learn must answer: the rows hold what the plan
        cannot represent, or a step refuses them (scikit-learn then raises for them itself)."""
        try:
            return self(inputs)
        except Exception:
            return None

    def _run(self, columns: dict[str, np.ndarray]) -> np.ndarray | None:
        parts = []
        for names, flat, chain in self._blocks:
            if flat:
                block: np.ndarray | None = columns[names[0]]
            elif len(names) == 1:
                block = columns[names[0]].reshape(-1, 1)
            else:
                block = np.column_stack([columns[n] for n in names])
            block = _chain(chain, block)
            if block is None:
                return None
            parts.append(block)
        matrix = _chain(self._after, parts[0] if len(parts) == 1 else np.hstack(parts))
        return None if matrix is None else np.ascontiguousarray(matrix, dtype=np.float64)


def _chain(chain: list[Step], block: np.ndarray | None) -> np.ndarray | None:
    for step in chain:
        if block is None:
            return None
        block = step(block)
    if block is None:
        return None
    if hasattr(block, "toarray"):  # a sparse block: the same numbers
        block = block.toarray()
    block = np.asarray(block)
    return block.reshape(-1, 1) if block.ndim == 1 else block


def plan(estimator: Any, signature: Signature) -> Plan:
    """The plan for ``estimator``'s steps before its model (for a bare model: its inputs as
    one matrix); NotCompiled names the step that stops it."""
    steps = estimator.steps[:-1] if hasattr(estimator, "steps") else []
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    names = [c.name for c in signature.inputs]
    if any(c.type == "boolean" for c in signature.inputs):
        raise NotCompiled("boolean inputs are not compiled")
    delegates: list[bool] = []
    first_name, first = steps[0] if steps else ("model", final)
    if hasattr(first, "transformers_"):
        blocks = _column_blocks(first, first_name, names, delegates)
        rest = steps[1:]
    else:
        if any(c.type == "string" for c in signature.inputs):
            raise NotCompiled(f"step {first_name!r} ({type(first).__name__}) takes text inputs "
                              "without a ColumnTransformer")
        blocks = [(_fitted_order(first, names), False, [])]
        rest = steps
    if getattr(first, "sparse_output_", False) and rest:
        raise NotCompiled(f"step {first_name!r} (ColumnTransformer) gives the next step a "
                          "sparse matrix")
    after = [s for name, step in rest for s in _chain_of(step, name, delegates)]
    width = int(getattr(final, "n_features_in_", 0))
    return Plan(blocks, after, signature, width, any(delegates))


def _fitted_order(step: Any, names: list[str]) -> list[str]:
    fitted = getattr(step, "feature_names_in_", None)
    return [str(n) for n in fitted] if fitted is not None else names


def _column_blocks(ct: Any, ct_name: str, names: list[str],
                   delegates: list[bool]) -> list[tuple[list[str], bool, list[Step]]]:
    """A fitted ColumnTransformer's blocks in the order it stacks their outputs."""
    order = _fitted_order(ct, names)
    blocks = []
    for name, transformer, columns in ct.transformers_:
        out = ct.output_indices_.get(name)
        if transformer == "drop" or out is None or out.stop == out.start:
            continue
        inputs = [order[i] for i in ct._transformer_to_input_indices[name]]
        flat = isinstance(columns, (str, int, np.integer))  # a scalar selector hands over 1-D
        chain = _chain_of(transformer, f"{ct_name} > {name}", delegates)
        blocks.append((out.start, (inputs, flat, chain)))
    return [block for _, block in sorted(blocks, key=lambda b: b[0])]


def _chain_of(step: Any, where: str, delegates: list[bool]) -> list[Step]:
    if step is None or (isinstance(step, str) and step == "passthrough"):
        return []
    if hasattr(step, "steps"):
        return [s for name, sub in step.steps for s in _chain_of(sub, f"{where} > {name}",
                                                                 delegates)]
    return [_leaf(step, where, delegates)]


def _leaf(step: Any, where: str, delegates: list[bool]) -> Step:
    cls = type(step).__name__
    if cls == "FunctionTransformer":
        return _function(step, where)
    if hasattr(step, "transformers_"):
        raise NotCompiled(f"step {where!r}: a ColumnTransformer inside a pipeline step")
    if not type(step).__module__.startswith("sklearn.") or not hasattr(step, "transform"):
        raise NotCompiled(f"step {where!r} ({type(step).__module__}.{cls}) is not a "
                          "scikit-learn transformer, so its float64 output cannot be checked "
                          "step by step")
    own = OWN.get(cls)
    made = own(step) if own is not None else None
    if made is not None:
        return made
    delegates.append(True)
    transform = step.transform
    return lambda X: transform(X)


def _function(step: Any, where: str) -> Step:
    """FunctionTransformer: the identity, or a numpy element-wise function with scalar
    arguments; anything else is user code, which may do other things to a DataFrame."""
    func: Any = step.func
    kw = dict(step.kw_args or {})
    if func is None:
        return lambda X: X
    name = getattr(func, "__name__", "")
    if name not in ELEMENTWISE or getattr(np, name) is not func or \
            not all(np.isscalar(v) for v in kw.values()):
        raise NotCompiled(f"step {where!r} (FunctionTransformer with func="
                          f"{name or type(func).__name__}): only numpy element-wise functions "
                          "with scalar arguments are proven to compute the same on a DataFrame")
    return lambda X: func(np.asarray(X, dtype=np.float64), **kw)


def _float(X: np.ndarray) -> np.ndarray:
    """A writable float64 copy, as scikit-learn's validation makes."""
    return np.array(X, dtype=np.float64)


def _numeric_only(transform: Callable[[np.ndarray], "np.ndarray | None"],
                  fallback: Callable[[np.ndarray], Any]) -> Step:
    """``transform`` on float64 input; scikit-learn's own (``fallback``) on anything else (a
    float32 block keeps float32 arithmetic there)."""
    def step(X: np.ndarray) -> np.ndarray | None:
        if X.dtype.kind in "fiub" and X.dtype != np.float32:
            return transform(_float(X))
        return fallback(X)
    return step


def _standard(s: Any) -> Step | None:
    """StandardScaler.transform, dense: ``X -= mean_; X /= scale_``."""
    mean = s.mean_ if s.with_mean else None
    scale = s.scale_ if s.with_std else None

    def transform(X: np.ndarray) -> np.ndarray:
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X
    return _numeric_only(transform, s.transform)


def _min_max(s: Any) -> Step | None:
    """MinMaxScaler.transform: ``X *= scale_; X += min_``, then the optional clip."""
    low, high = (np.float64(v) for v in s.feature_range)

    def transform(X: np.ndarray) -> np.ndarray:
        X *= s.scale_
        X += s.min_
        if s.clip:
            np.clip(X, low, high, out=X)
        return X
    return _numeric_only(transform, s.transform)


def _max_abs(s: Any) -> Step | None:
    """MaxAbsScaler.transform, dense: ``X /= scale_``, then the optional clip."""
    def transform(X: np.ndarray) -> np.ndarray:
        X /= s.scale_
        if getattr(s, "clip", False):
            np.clip(X, np.float64(-1.0), np.float64(1.0), out=X)
        return X
    return _numeric_only(transform, s.transform)


def _robust(s: Any) -> Step | None:
    """RobustScaler.transform, dense: ``X -= center_; X /= scale_``."""
    def transform(X: np.ndarray) -> np.ndarray:
        if s.with_centering:
            X -= s.center_
        if s.with_scaling:
            X /= s.scale_
        return X
    return _numeric_only(transform, s.transform)


def _imputer(s: Any) -> Step | None:
    """SimpleImputer on numbers with NaN as the missing value: each NaN becomes its column's
    statistic. Indicators, dropped empty columns and numbers with another missing marker go
    to scikit-learn's own; text is ``_text_imputer``'s."""
    stats = np.asarray(s.statistics_)
    if stats.dtype.kind == "O":
        return _text_imputer(s, stats)
    if s.add_indicator or stats.dtype.kind != "f" or np.isnan(stats).any() or \
            not (isinstance(s.missing_values, float) and np.isnan(s.missing_values)):
        return None

    def transform(X: np.ndarray) -> np.ndarray:
        missing = np.isnan(X)
        return np.where(missing, stats, X) if missing.any() else X
    return _numeric_only(transform, s.transform)


def _text_imputer(s: Any, stats: np.ndarray) -> Step | None:
    """SimpleImputer fitted on text, given text only (the plan hands a text column over only
    when every value is a string): no value is missing under NaN or None, so the output is the
    input; under a text marker each marked value becomes its column's statistic. Anything else
    (indicators, a statistic that is not text, non-text values) goes to scikit-learn."""
    marker = s.missing_values
    if s.add_indicator or not all(type(v) is str for v in stats.tolist()):
        return None
    if not (marker is None or type(marker) is str or
            (isinstance(marker, float) and np.isnan(marker))):
        return None

    def step(X: np.ndarray) -> np.ndarray | None:
        if X.dtype.kind != "O" or not all(type(v) is str for v in X.ravel().tolist()):
            return s.transform(X)
        if type(marker) is not str:
            return X
        out = X.copy()
        marked = out == marker
        if marked.any():
            rows, cols = np.nonzero(marked)
            out[rows, cols] = stats[cols]
        return out
    return step


def _lookups(categories: list[np.ndarray]) -> list[tuple[dict[Any, int], pd.Index]] | None:
    """Per column: category -> position, as a dictionary (few rows) and an Index (many); None
    when a category is missing (NaN, None), whose matching rules scikit-learn keeps."""
    out = []
    for cats in categories:
        values = cats.tolist()
        if any(v is None or (isinstance(v, float) and v != v) for v in values):
            return None
        # object dtype: matched by Python equality, as the dictionary does (pandas would make
        # text an Arrow string Index, three times slower to build and search)
        out.append(({v: i for i, v in enumerate(values)}, pd.Index(values, dtype=object)))
    return out


def _positions(X: np.ndarray, lookups: list[tuple[dict[Any, int], pd.Index]]) -> np.ndarray:
    """Each value's category position per column (-1: unknown)."""
    codes = np.empty(X.shape, dtype=np.int64)
    for j, (table, index) in enumerate(lookups):
        column = X[:, j]
        if len(column) <= SMALL:
            codes[:, j] = [table.get(v, -1) for v in column.tolist()]
        else:
            codes[:, j] = index.get_indexer(pd.Index(column, dtype=object))
    return codes


def _one_hot(s: Any) -> Step | None:
    """OneHotEncoder without infrequent categories: a 1 in each value's category column (none
    for an ignored unknown or the dropped category); an unknown under 'error' goes to
    scikit-learn, which raises."""
    if getattr(s, "_infrequent_enabled", False):
        return None
    lookups = _lookups(s.categories_)
    if lookups is None:
        return None
    drops = s.drop_idx_ if s.drop_idx_ is not None else [None] * len(s.categories_)
    starts, keep = [], []
    width = 0
    for cats, drop in zip(s.categories_, drops):
        kept = np.arange(len(cats))
        if drop is not None:
            kept = np.delete(kept, int(drop))
        column = np.full(len(cats) + 1, -1, dtype=np.int64)  # category position -> output
        column[kept] = np.arange(len(kept)) + width
        starts.append(width)
        keep.append(column)
        width += len(kept)
    raise_unknown = s.handle_unknown == "error"
    dtype = s.dtype

    def step(X: np.ndarray) -> np.ndarray | None:
        codes = _positions(X, lookups)
        if raise_unknown and (codes < 0).any():
            return None
        out = np.zeros((len(X), width), dtype=dtype)
        for j, column in enumerate(keep):
            target = column[codes[:, j]]  # -1 for unknown (the extra slot) and dropped
            rows = np.flatnonzero(target >= 0)
            out[rows, target[rows]] = 1
        return out
    return step


def _ordinal(s: Any) -> Step | None:
    """OrdinalEncoder without infrequent categories: each value's category position, the
    unknown value for an unknown under 'use_encoded_value' (under 'error': scikit-learn)."""
    if getattr(s, "_infrequent_enabled", False):
        return None
    lookups = _lookups(s.categories_)
    if lookups is None:
        return None
    encoded = s.handle_unknown == "use_encoded_value"
    unknown = s.unknown_value
    dtype = s.dtype

    def step(X: np.ndarray) -> np.ndarray | None:
        codes = _positions(X, lookups)
        missing = codes < 0
        if missing.any() and not encoded:
            return None
        out = codes.astype(dtype)
        if missing.any():
            out[missing] = unknown
        return out
    return step


def _quantile(s: Any) -> Step | None:
    """QuantileTransformer.transform, dense: its own ``_transform`` on the float64 copy its
    validation would make (the validation is most of a small call's cost)."""
    def transform(X: np.ndarray) -> np.ndarray:
        return s._transform(X, inverse=False)
    return _numeric_only(transform, s.transform) if hasattr(s, "_transform") else None


def _power(s: Any) -> Step | None:
    """PowerTransformer.transform: scipy's Box-Cox or Yeo-Johnson per column with the fitted
    lambdas, then its fitted StandardScaler; Box-Cox on a non-positive value goes to
    scikit-learn, which raises."""
    from scipy import special, stats

    function = {"box-cox": special.boxcox, "yeo-johnson": stats.yeojohnson}.get(s.method)
    scaler = _standard(s._scaler) if s.standardize else None
    if function is None or (s.standardize and not hasattr(s, "_scaler")):
        return None

    def transform(X: np.ndarray) -> np.ndarray | None:
        if s.method == "box-cox" and not np.all(np.isnan(X) | (X > 0)):
            return None
        for i, lmbda in enumerate(s.lambdas_):
            with np.errstate(invalid="ignore"):
                X[:, i] = function(X[:, i], lmbda)
        return scaler(X) if scaler is not None else X
    return _numeric_only(transform, s.transform)


def _polynomial(s: Any) -> Step | None:
    """PolynomialFeatures.transform, dense: the bias column, the inputs, then each degree's
    products built from the previous degree's columns with the same ``np.multiply`` calls in
    the same order (so the same roundings); NaN goes to scikit-learn, which raises."""
    if not hasattr(s, "_n_out_full"):
        return None
    full, wanted = s._n_out_full, s.n_output_features_
    low, high, bias, interaction = s._min_degree, s._max_degree, s.include_bias, \
        s.interaction_only

    def transform(X: np.ndarray) -> np.ndarray | None:
        if np.isnan(X).any():
            return None
        n, width = X.shape
        XP = np.empty((n, full), dtype=X.dtype, order=s.order)
        current = 1 if bias else 0
        if bias:
            XP[:, 0] = 1
        if high == 0:
            return XP
        XP[:, current:current + width] = X
        index = [*range(current, current + width), current + width]
        current += width
        for _ in range(2, high + 1):
            following, end = [], index[-1]
            for j in range(width):
                start = index[j]
                following.append(current)
                if interaction:
                    start += index[j + 1] - index[j]
                stop = current + end - start
                if stop <= current:
                    break
                np.multiply(XP[:, start:end], X[:, j:j + 1], out=XP[:, current:stop],
                            casting="no")
                current = stop
            following.append(current)
            index = following
        if low > 1:
            if bias:
                out = np.empty((n, wanted), dtype=XP.dtype, order=s.order)
                out[:, 0] = 1
                out[:, 1:] = XP[:, full - wanted + 1:]
                return out
            return np.array(XP[:, full - wanted:], copy=True)
        return XP
    return _numeric_only(transform, s.transform)


def _spline(s: Any) -> Step | None:
    """SplineTransformer.transform, dense, extrapolating as a constant or (degree 2 and up)
    linearly: each column's fitted B-spline evaluated by scipy on the in-range values, the
    boundary values and slopes computed once instead of per call; NaN under
    ``handle_missing='error'`` goes to scikit-learn, which raises. Other extrapolations and
    sparse output go to scikit-learn's own."""
    degree, how = s.degree, s.extrapolation
    if s.sparse_output or how not in ("constant", "linear") or (how == "linear" and degree < 2):
        return None
    zeros_for_missing = getattr(s, "handle_missing", "error") == "zeros"
    splines = s.bsplines_
    n_splines = splines[0].c.shape[1]
    bounds = []
    for spl in splines:
        low, high = spl.t[degree], spl.t[-degree - 1]
        slopes = (spl(low, nu=1), spl(high, nu=1)) if how == "linear" else (None, None)
        bounds.append((low, high, spl(low), spl(high), *slopes))
    keep = None if s.include_bias else \
        [j for j in range(len(splines) * n_splines) if (j + 1) % n_splines != 0]
    width = s.n_features_out_ + len(splines) * (1 - s.include_bias)

    def transform(X: np.ndarray) -> np.ndarray | None:
        if not zeros_for_missing and np.isnan(X).any():
            return None
        out = np.zeros((len(X), width), dtype=X.dtype, order=s.order)
        for i, (spl, (low, high, f_low, f_high, d_low, d_high)) in \
                enumerate(zip(splines, bounds)):
            x = X[:, i]
            first = i * n_splines
            inside = (low <= x) & (x <= high)
            out[inside, first:first + n_splines] = spl(x[inside])
            below, above = x < low, x > high
            if how == "constant":
                if below.any():
                    out[below, first:first + degree] = f_low[:degree]
                if above.any():
                    out[above, first + n_splines - degree:first + n_splines] = f_high[-degree:]
                continue
            for j in range(degree):
                if below.any():
                    out[below, first + j] = f_low[j] + (x[below] - low) * d_low[j]
                if above.any():
                    k = n_splines - 1 - j
                    out[above, first + k] = f_high[k] + (x[above] - high) * d_high[k]
        return out if keep is None else out[:, keep]
    return _numeric_only(transform, s.transform)


# scikit-learn transformers whose transform is re-done here with the same numpy operations
OWN: dict[str, Callable[[Any], Step | None]] = {
    "StandardScaler": _standard, "MinMaxScaler": _min_max, "MaxAbsScaler": _max_abs,
    "RobustScaler": _robust, "SimpleImputer": _imputer, "OneHotEncoder": _one_hot,
    "OrdinalEncoder": _ordinal, "QuantileTransformer": _quantile, "PowerTransformer": _power,
    "PolynomialFeatures": _polynomial, "SplineTransformer": _spline,
}


def checked_plan(estimator: Any, signature: Signature, sample: pd.DataFrame) -> Plan:
    """The float64 plan of the steps before the model, when it gives scikit-learn's own matrix
    bit for bit on the reference rows; NotCompiled says which step stopped it or where the
    two differ."""
    planned = plan(estimator, signature)
    text = [c.name for c in signature.inputs if c.type == "string"]
    rows = sample.dropna(subset=text) if text else sample
    try:
        got = planned(rows)
    except Exception as exc:
        raise NotCompiled(f"the float64 preprocessing plan fails ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from exc
    if got is None or len(rows) == 0:
        raise NotCompiled("the reference sample cannot be fed to the float64 preprocessing "
                          "plan, so it could not be verified")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = estimator[:-1].transform(rows) if _has_steps(estimator) else \
            rows[list(getattr(estimator, "feature_names_in_", rows.columns))].to_numpy(
                dtype=np.float64)
    expected = np.asarray(expected.toarray() if hasattr(expected, "toarray") else expected,
                          dtype=np.float64)
    if got.shape != expected.shape or got.shape[1] != planned.width:
        raise NotCompiled(f"the float64 preprocessing plan makes {got.shape[1]} features where "
                          f"scikit-learn makes {expected.shape[1]}")
    differs = np.flatnonzero(~((got == expected) | (np.isnan(got) & np.isnan(expected))).all(0))
    if len(differs):
        raise NotCompiled(f"the float64 preprocessing plan differs from scikit-learn's output "
                          f"in feature {int(differs[0])} on the reference sample")
    return planned


def _has_steps(estimator: Any) -> bool:
    return hasattr(estimator, "steps") and len(estimator.steps) > 1
