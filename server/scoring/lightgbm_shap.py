"""Exact TreeSHAP for scikit-learn's tree models, computed by LightGBM.

shap's TreeExplainer walks every tree in Python-driven C, single-threaded: about a second for
1,000 rows of the demo model. LightGBM's ``predict(pred_contrib=True)`` runs the same
path-dependent TreeSHAP (node data counts as cover, as shap takes scikit-learn's sample
counts) in multi-threaded C++ on float64. So the fitted trees are written out as a LightGBM
model text, node for node, and LightGBM is asked for the contributions:

- histogram gradient boosting: ``x <= num_threshold`` goes left, NaN goes where
  ``missing_go_to_left`` says, exactly LightGBM's numerical decision with missing type NaN;
  the leaf values carry the shrinkage already, the baseline is added to the base value;
- gradient boosting: learning rate × leaf value, the init estimator's raw prediction as base;
- random forests, extra trees, decision trees: class fractions (or the regression value) over
  the number of trees, one LightGBM tree per class, interleaved by class as LightGBM keeps them.
  scikit-learn compares float32 inputs with float64 thresholds, so the rows are cast to float32
  before they are compared.

LightGBM reads a value within 1e-35 of zero as zero, which would send a tiny positive value the
wrong way at a threshold of 0. So the booster does not see the values themselves: each
feature's distinct thresholds are numbered in order, a threshold becomes its number j and a value
the count of thresholds below it, so that ``x <= t_j`` exactly when ``count <= j``, NaN kept.

``translate`` returns None where this does not apply exactly (lightgbm not installed, native
categorical splits, weighted counts that are not whole numbers, multi-output trees): the caller
keeps shap's path there.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np

BOOSTED = frozenset({"GradientBoostingClassifier", "GradientBoostingRegressor"})
AVERAGED = frozenset({"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                      "ExtraTreesRegressor", "DecisionTreeClassifier", "DecisionTreeRegressor"})
HISTOGRAM = frozenset({"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"})
DEFAULT_LEFT, MISSING_NAN = 2, 2 << 2        # LightGBM's decision_type bits


@dataclass(frozen=True)
class Nodes:
    """One fitted tree as flat node arrays, root at 0; ``left`` / ``right`` are -1 at leaves."""

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray       # the leaf's contribution to the raw output (internal nodes unused)
    count: np.ndarray       # samples reaching the node: the cover


@dataclass
class TreeContributions:
    """A model's trees as a LightGBM booster: contributions and base per class."""

    booster: Any
    n_features: int
    n_class: int            # 1 for a regressor or a binary margin
    offset: np.ndarray      # per class: the constant LightGBM's trees do not hold
    float32: bool           # scikit-learn's own trees read their inputs as float32
    cuts: list[np.ndarray]  # per feature: its distinct thresholds, sorted

    def ranks(self, z: Any) -> np.ndarray:
        """Each value as the number of its feature's thresholds below it (NaN kept)."""
        z = np.asarray(z, dtype=np.float32 if self.float32 else np.float64)
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros(z.shape, dtype=np.float64)
        for f, cut in enumerate(self.cuts):
            if len(cut):
                out[:, f] = np.searchsorted(cut, z[:, f], side="left")
        out[np.isnan(z)] = np.nan
        return out

    def __call__(self, z: Any) -> tuple[np.ndarray, np.ndarray]:
        """(phi, base): rows × features (× classes when more than one), base per class."""
        z = self.ranks(z)
        out = np.asarray(self.booster.predict(z, pred_contrib=True), dtype=np.float64)
        width = self.n_features + 1
        out = out.reshape(len(z), self.n_class, width)
        phi = out[:, :, :-1].transpose(0, 2, 1)
        base = out[0, :, -1] + self.offset if len(z) else self.offset.copy()
        return (phi[:, :, 0] if self.n_class == 1 else phi), base


def translate(final: Any, family: str) -> TreeContributions | None:
    """The LightGBM form of a fitted scikit-learn tree model, or None where it is not exact."""
    try:
        import lightgbm
    except ImportError:
        return None
    parts = tree_parts(final, family)
    if parts is None:
        return None
    trees, n_class, offset, float32 = parts
    n_features = int(final.n_features_in_)
    trees, cuts = _numbered(trees, n_features)
    booster = lightgbm.Booster(model_str=model_text(trees, n_class, n_features))
    return TreeContributions(booster, n_features, n_class, offset, float32, cuts)


def _numbered(trees: list[Nodes], n_features: int) -> tuple[list[Nodes], list[np.ndarray]]:
    """The trees with each threshold replaced by its number among its feature's thresholds."""
    cuts = []
    for f in range(n_features):
        found = [t.threshold[(t.left >= 0) & (t.feature == f)] for t in trees]
        cuts.append(np.unique(np.concatenate(found)).astype(np.float64) if found
                    else np.empty(0))
    numbered = []
    for t in trees:
        split = t.left >= 0
        rank = np.zeros(len(t.left), dtype=np.float64)
        for f in np.unique(t.feature[split]):
            at = split & (t.feature == f)
            rank[at] = np.searchsorted(cuts[int(f)], t.threshold[at], side="left")
        numbered.append(replace(t, threshold=rank))
    return numbered, cuts


def tree_parts(final: Any, family: str, whole_counts: bool = True
               ) -> tuple[list[Nodes], int, np.ndarray, bool] | None:
    """(trees, outputs, offset per output, float32 inputs) of a scikit-learn tree model, or
    None where they cannot be read (``whole_counts``: refuse weighted covers, which LightGBM
    cannot hold)."""
    if family in HISTOGRAM:
        return _histogram(final)
    if family in BOOSTED:
        return _boosted(final, whole_counts)
    if family in AVERAGED:
        return _averaged(final, whole_counts)
    return None


def _histogram(final: Any) -> tuple[list[Nodes], int, np.ndarray, bool] | None:
    if getattr(final, "is_categorical_", None) is not None and np.any(final.is_categorical_):
        return None
    trees = []
    for iteration in final._predictors:
        for predictor in iteration:          # one per class: LightGBM's interleaving
            n = predictor.nodes
            if np.any(n["is_categorical"]):
                return None
            leaf = n["is_leaf"].astype(bool)
            trees.append(Nodes(n["feature_idx"], n["num_threshold"], n["missing_go_to_left"],
                               np.where(leaf, -1, n["left"].astype(np.int64)),
                               np.where(leaf, -1, n["right"].astype(np.int64)),
                               n["value"], n["count"]))
    offset = np.asarray(final._baseline_prediction, dtype=np.float64).reshape(-1)
    return trees, len(final._predictors[0]), offset, False


def _sklearn_tree(tree: Any, scale: float, column: int, whole_counts: bool) -> Nodes | None:
    t = tree.tree_
    if t.n_outputs != 1:
        return None
    count = np.asarray(t.weighted_n_node_samples, dtype=np.float64)
    if whole_counts and not np.all(count == np.round(count)):
        return None                          # LightGBM's counts are whole numbers
    missing = getattr(t, "missing_go_to_left", None)
    missing = np.zeros(t.node_count, dtype=bool) if missing is None else missing
    value = np.asarray(t.value, dtype=np.float64)[:, 0, column] * scale
    return Nodes(t.feature, t.threshold, missing, t.children_left, t.children_right, value,
                 count)


def _boosted(final: Any, whole_counts: bool) -> tuple[list[Nodes], int, np.ndarray, bool] | None:
    stages = final.estimators_                                   # iterations × classes
    trees = [_sklearn_tree(t, final.learning_rate, 0, whole_counts) for row in stages for t in row]
    if any(t is None for t in trees):
        return None
    zero = np.zeros((1, int(final.n_features_in_)), dtype=np.float32)
    offset = np.asarray(final._raw_predict_init(zero), dtype=np.float64).reshape(-1)
    return [t for t in trees if t is not None], stages.shape[1], offset, True


def _averaged(final: Any, whole_counts: bool) -> tuple[list[Nodes], int, np.ndarray, bool] | None:
    members = list(getattr(final, "estimators_", [final]))
    classes = len(final.classes_) if hasattr(final, "classes_") else 1
    if hasattr(final, "n_outputs_") and final.n_outputs_ != 1:
        return None
    trees = [_sklearn_tree(m, 1.0 / len(members), k, whole_counts) for m in members
             for k in range(classes)]
    if any(t is None for t in trees):
        return None
    return [t for t in trees if t is not None], classes, np.zeros(classes), True


def model_text(trees: list[Nodes], n_class: int, n_features: int) -> str:
    """A LightGBM model text (the format ``Booster.model_to_string`` writes) of ``trees``, in
    LightGBM's order: iteration-major, one tree per class within an iteration."""
    objective = "regression" if n_class == 1 else f"multiclass num_class:{n_class}"
    head = ["tree", "version=v4", f"num_class={n_class}", f"num_tree_per_iteration={n_class}",
            "label_index=0", f"max_feature_idx={n_features - 1}", f"objective={objective}",
            "feature_names=" + " ".join(f"f{i}" for i in range(n_features)),
            "feature_infos=" + " ".join(["none"] * n_features), ""]
    body = [_tree_text(i, t) for i, t in enumerate(trees)]
    return "\n".join(head) + "\n" + "\n".join(body) + "\nend of trees\n"


def _preorder(nodes: Nodes) -> Iterator[int]:
    stack = [0]
    while stack:
        i = stack.pop()
        yield i
        if nodes.left[i] >= 0:
            stack.extend((int(nodes.right[i]), int(nodes.left[i])))


def _tree_text(index: int, nodes: Nodes) -> str:
    order = list(_preorder(nodes))
    internal = [i for i in order if nodes.left[i] >= 0]
    leaves = [i for i in order if nodes.left[i] < 0]
    at_internal = {node: k for k, node in enumerate(internal)}
    at_leaf = {node: k for k, node in enumerate(leaves)}

    def child(node: int) -> int:
        return at_internal[node] if node in at_internal else ~at_leaf[node]

    def floats(values: Any) -> str:
        return " ".join(repr(float(v)) for v in values)

    def ints(values: Any) -> str:
        return " ".join(str(int(v)) for v in values)

    lines = [f"Tree={index}", f"num_leaves={len(leaves)}", "num_cat=0"]
    if internal:
        decision = [MISSING_NAN | (DEFAULT_LEFT if nodes.missing_left[i] else 0)
                    for i in internal]
        lines += [f"split_feature={ints(nodes.feature[internal])}",
                  f"split_gain={' '.join(['0'] * len(internal))}",
                  f"threshold={floats(nodes.threshold[internal])}",
                  f"decision_type={ints(decision)}",
                  f"left_child={ints(child(int(nodes.left[i])) for i in internal)}",
                  f"right_child={ints(child(int(nodes.right[i])) for i in internal)}"]
    lines += [f"leaf_value={floats(nodes.value[leaves])}",
              f"leaf_weight={floats(nodes.count[leaves])}",
              f"leaf_count={ints(nodes.count[leaves])}"]
    if internal:
        lines += [f"internal_value={' '.join(['0'] * len(internal))}",
                  f"internal_weight={floats(nodes.count[internal])}",
                  f"internal_count={ints(nodes.count[internal])}"]
    lines += ["is_linear=0", "shrinkage=1", ""]
    return "\n".join(lines) + "\n"
