"""Voting ensembles with native trees: each tree member compiled on its own, averaged as scikit-learn
averages them.

A soft VotingClassifier (or a VotingRegressor) of a forest, boosted trees and a linear model stays
with scikit-learn as a whole: treelite imports no VotingClassifier and skl2onnx converts none with
``flatten_transform``. Its members one by one are what native trees compile, and the ensemble only
averages what they answer (``np.average`` of their probabilities, or values, with the ensemble's
weights). So each member that is a tree ensemble native trees take becomes a library of its own;
every other member (a logistic regression, naive Bayes) is called as itself, scikit-learn's own
code on the same float64 matrix the pipeline would hand it; the steps before the ensemble run as
the float64 plan. The result is verified on the reference rows as every compiled form is.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...types import Signature
from .. import threads
from ..preprocess_plan import plan
from ..runtime import final_estimator
from ..toolchain import toolchain
from . import native

ENSEMBLES = frozenset({"VotingClassifier", "VotingRegressor"})


def is_ensemble(final: Any) -> bool:
    return type(final).__name__ in ENSEMBLES


def native_member(member: Any) -> bool:
    """Whether native trees take this member: a scikit-learn tree ensemble without native
    categorical splits (boosting libraries' members answer through their own predictors)."""
    return type(member).__name__ in native.FAMILIES and not (
        getattr(member, "is_categorical_", None) is not None and np.any(member.is_categorical_))


def unsuitable(estimator: Any, max_nodes: int = native.NODE_BUDGET) -> str | None:
    """Why the version's voting ensemble cannot have native trees, or None when it can be
    tried."""
    final = final_estimator(estimator)
    if getattr(final, "voting", "soft") != "soft":
        return "a hard VotingClassifier's members vote labels: not compiled"
    members = list(final.estimators_)
    trees = [m for m in members if native_member(m)]
    if not trees:
        return f"no member of the {type(final).__name__} is a tree ensemble treelite compiles"
    nodes = sum(native.node_count(m) for m in trees)
    if nodes > max_nodes:
        return f"{nodes:,} tree nodes in the members exceed the {max_nodes:,} compiled at " \
               "registration"
    if toolchain() is None:
        return "no C compiler (gcc or clang) on this machine"
    return None


def member_names(estimator: Any) -> tuple[list[str], list[str]]:
    """(the members compiled as native trees, the members scikit-learn answers), by name."""
    final = final_estimator(estimator)
    names = [name for name, step in final.estimators if step != "drop"]
    pairs = list(zip(names, final.estimators_))
    return ([n for n, m in pairs if native_member(m)],
            [n for n, m in pairs if not native_member(m)])


def build(estimator: Any) -> bytes:
    """The bundle: one compiled library per tree member, and a manifest saying which member
    is which and how each compares its inputs (the others are read from the fitted ensemble
    when the bundle is loaded, as the plan is)."""
    final = final_estimator(estimator)
    members, files = [], {}
    for i, member in enumerate(final.estimators_):
        if native_member(member):
            files[f"member_{i}.so"] = native.compile_library(member)
            members.append({"library": f"member_{i}.so",
                            "float32_inputs": native.narrow_inputs(member)})
        else:
            members.append({"estimator": i})
    return native.bundle({**native.library_manifest(final), "voting": members}, files)


def is_bundle(data: bytes) -> bool:
    """Whether a native bundle is a voting ensemble's."""
    return "voting" in native.read_bundle(data)[0]


class VotingRunner:
    """One verified voting bundle and how to feed it: the same interface as ``NativeRunner``."""

    runtime = "native"

    def __init__(self, bundle: bytes, signature: Signature, classes: np.ndarray | None,
                 estimator: Any) -> None:
        manifest, files = native.read_bundle(bundle)
        final = final_estimator(estimator)
        # (compiled trees, compare in float32) or (None, the member scikit-learn answers)
        self._members: list[tuple[native.Trees | None, Any]] = [
            (native.load_trees(files[m["library"]]), bool(m["float32_inputs"]))
            if "library" in m else (None, final.estimators_[m["estimator"]])
            for m in manifest["voting"]]
        self._weights = final._weights_not_none
        self._plan = plan(estimator, signature)
        self.signature = signature
        self.classes = classes
        self._text = [c.name for c in signature.inputs if c.type == "string"]

    def prepare(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """(the plan's matrix, and its float32 rounding when a member compares that, the rows
        scikit-learn must answer), or None when it must answer the whole call: each tree
        member's rules (:func:`native.tree_matrix`) hold for its own matrix."""
        try:
            matrix = self._plan(inputs)
        except Exception:  # a step refuses these rows: scikit-learn answers (and raises)
            return None
        if matrix is None:
            return None
        feed, edges = {"": matrix}, []
        for trees, narrow in self._members:
            if trees is None:
                continue
            compared = native.tree_matrix(matrix, narrow, False)
            if compared is None:
                return None
            feed["float32" if narrow else "float64"] = compared[0]
            edges.append(compared[1])
        return feed, np.unique(np.concatenate(edges)).astype(np.int64)

    def run(self, feed: dict[str, np.ndarray],
            labels: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(labels, probabilities) or (values, None), as ``NativeRunner.run``: each member's
        answer, then ``np.average`` with the ensemble's weights, as scikit-learn computes it."""
        matrix = feed[""]
        answers = []
        for trees, member in self._members:
            if trees is not None:
                out = trees(feed["float32" if member else "float64"])
                answers.append(out[:, 0] if self.classes is None else
                               native.as_probabilities(out))
                continue
            with warnings.catch_warnings(), threads.for_rows(len(matrix)):
                warnings.simplefilter("ignore")  # fitted on named columns, fed the matrix
                answers.append(np.asarray(member.predict(matrix) if self.classes is None
                                          else member.predict_proba(matrix), dtype=np.float64))
        if self.classes is None:
            return np.average(np.asarray(answers).T, axis=1, weights=self._weights), None
        probabilities = np.average(np.asarray(answers), axis=0, weights=self._weights)
        if not labels:
            return None, probabilities
        return self.classes.take(probabilities.argmax(axis=1)), probabilities
