"""Voting and stacking ensembles with native trees: each tree member compiled on its own, combined as
scikit-learn combines them.

A soft VotingClassifier (or a VotingRegressor, a StackingClassifier, a StackingRegressor) of a
forest, boosted trees and a linear model stays with scikit-learn as a whole: treelite imports no
ensemble of ensembles, and skl2onnx converts no soft voting with ``flatten_transform`` nor a
stack's output as it is. Its members one by one are what native trees compile; the ensemble only
combines what they answer. Voting averages them (``np.average`` of their probabilities, or
values, with the ensemble's weights); stacking puts them side by side (a binary classifier's
probabilities without their first column, as scikit-learn drops it; the inputs too with
``passthrough``) and calls its own final estimator on that. So each member that is a tree
ensemble native trees take becomes a library of its own; every other member (a logistic
regression, naive Bayes) and a stack's final estimator are called as themselves, scikit-learn's
own code on the same float64 matrices the pipeline would hand them; the steps before the
ensemble run as the float64 plan. The result is verified on the reference rows as every compiled
form is.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...types import Signature
from .. import threads
from ..preprocess_plan import plan
from ..runtime import final_estimator
from ..toolchain import toolchain
from . import native

VOTING = frozenset({"VotingClassifier", "VotingRegressor"})
STACKING = frozenset({"StackingClassifier", "StackingRegressor"})


def is_ensemble(final: Any) -> bool:
    return type(final).__name__ in VOTING | STACKING


def _stacking(final: Any) -> bool:
    return type(final).__name__ in STACKING


def _methods(final: Any) -> list[str]:
    """What the ensemble asks of each fitted member: a stack's own choice per member, else
    probabilities (a soft vote) or values (a regressor)."""
    if _stacking(final):
        return [m for m in final.stack_method_ if m is not None]
    return ["predict_proba" if hasattr(final, "classes_") else "predict"] * len(final.estimators_)


def native_member(member: Any, method: str) -> bool:
    """Whether native trees answer this member as the ensemble asks it: a scikit-learn tree
    ensemble without native categorical splits, for its probabilities (a classifier) or its
    values (a regressor). Boosting libraries' members answer through their own predictors."""
    wanted = "predict_proba" if hasattr(member, "classes_") else "predict"
    return type(member).__name__ in native.FAMILIES and method == wanted and not (
        getattr(member, "is_categorical_", None) is not None and np.any(member.is_categorical_))


def _members(final: Any) -> list[tuple[Any, str, bool]]:
    """(fitted member, the method asked of it, whether native trees answer it)."""
    return [(m, method, native_member(m, method))
            for m, method in zip(final.estimators_, _methods(final))]


def unsuitable(estimator: Any, max_nodes: int = native.NODE_BUDGET) -> str | None:
    """Why the version's ensemble cannot have native trees, or None when it can be tried."""
    final = final_estimator(estimator)
    if getattr(final, "voting", "soft") != "soft":
        return "a hard VotingClassifier's members vote labels: not compiled"
    if isinstance(getattr(final, "_label_encoder", None), list):
        return "a multilabel stack is not compiled"
    members = _members(final)
    trees = [m for m, _, compiled in members if compiled]
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
    """(the members compiled as native trees, the rest scikit-learn answers: other members and
    a stack's final estimator), by name."""
    final = final_estimator(estimator)
    names = [name for name, step in final.estimators if step != "drop"]
    members = _members(final)
    others = [n for n, (_, _, compiled) in zip(names, members) if not compiled]
    if _stacking(final):
        others.append(f"the final {type(final.final_estimator_).__name__}")
    return [n for n, (_, _, compiled) in zip(names, members) if compiled], others


def build(estimator: Any) -> bytes:
    """The bundle: one compiled library per tree member, and a manifest saying which member
    is which and how each compares its inputs (the others are read from the fitted ensemble
    when the bundle is loaded, as the plan is)."""
    final = final_estimator(estimator)
    members, files = [], {}
    for i, (member, _, compiled) in enumerate(_members(final)):
        if compiled:
            files[f"member_{i}.so"] = native.compile_library(member)
            members.append({"library": f"member_{i}.so",
                            "float32_inputs": native.narrow_inputs(member)})
        else:
            members.append({"estimator": i})
    return native.bundle({**native.library_manifest(final), "members": members}, files)


def is_bundle(data: bytes) -> bool:
    """Whether a native bundle is an ensemble's."""
    return "members" in native.read_manifest(data)


@dataclass(frozen=True)
class _Member:
    method: str  # what the ensemble asks of it
    trees: native.Trees | None = None  # its native trees, or None: the estimator answers
    narrow: bool = False  # the trees compare float32 inputs
    estimator: Any = None

    def answer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.trees is None:
            return np.asarray(getattr(self.estimator, self.method)(feed[""]), dtype=np.float64)
        out = self.trees(feed["float32" if self.narrow else "float64"])
        return native.as_probabilities(out) if self.method == "predict_proba" else out[:, 0]


class EnsembleRunner:
    """One verified ensemble bundle and how to feed it: the same interface as
    ``NativeRunner``."""

    runtime = "native"

    def __init__(self, bundle: bytes, signature: Signature, classes: np.ndarray | None,
                 estimator: Any) -> None:
        manifest, files = native.read_bundle(bundle)
        self._final = final_estimator(estimator)
        methods = _methods(self._final)
        self._members = [
            _Member(method, native.load_trees(files[m["library"]]), bool(m["float32_inputs"]))
            if "library" in m else _Member(method, estimator=self._final.estimators_[m["estimator"]])
            for m, method in zip(manifest["members"], methods)]
        self._stack = _stacking(self._final)
        self._plan = plan(estimator, signature)
        self.signature = signature
        self.classes = classes
        self._text = [c.name for c in signature.inputs if c.type == "string"]

    def prepare(self, inputs: Any) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        """(the plan's matrix, and its float32 rounding when a member compares that, the rows
        scikit-learn must answer), or None when it must answer the whole call: each tree
        member's rules (:func:`native.tree_matrix`) hold for its own matrix."""
        matrix = self._plan.matrix_or_none(inputs)
        if matrix is None:
            return None
        feed, edges = {"": matrix}, []
        for member in self._members:
            if member.trees is None:
                continue
            compared = native.tree_matrix(matrix, member.narrow, False)
            if compared is None:
                return None
            feed["float32" if member.narrow else "float64"] = compared[0]
            edges.append(compared[1])
        return feed, np.unique(np.concatenate(edges)).astype(np.int64)

    def run(self, feed: dict[str, np.ndarray],
            labels: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(labels, probabilities) or (values, None), as ``NativeRunner.run``: each member's
        answer, then the ensemble's own combination, as scikit-learn computes it."""
        matrix = feed[""]
        with warnings.catch_warnings(), threads.for_rows(len(matrix)):
            warnings.simplefilter("ignore")  # fitted on named columns, fed the matrix
            answers = [member.answer(feed) for member in self._members]
            if self._stack:
                return self._stacked(answers, matrix, labels)
        if self.classes is None:
            return np.average(np.asarray(answers).T, axis=1,
                              weights=self._final._weights_not_none), None
        probabilities = np.average(np.asarray(answers), axis=0,
                                   weights=self._final._weights_not_none)
        if not labels:
            return None, probabilities
        return self.classes.take(probabilities.argmax(axis=1)), probabilities

    def _stacked(self, answers: list[np.ndarray], matrix: np.ndarray,
                 labels: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The stack's final estimator on the members' answers side by side (scikit-learn's
        ``_concatenate_predictions``), with the inputs after them under ``passthrough``."""
        binary = self.classes is not None and len(self.classes) == 2
        parts = [a.reshape(-1, 1) if a.ndim == 1 else
                 a[:, 1:] if binary and method == "predict_proba" else a
                 for a, method in zip(answers, (m.method for m in self._members))]
        if self._final.passthrough:
            parts.append(matrix)
        stacked = np.hstack(parts)
        last = self._final.final_estimator_
        if self.classes is None:
            return np.asarray(last.predict(stacked), dtype=np.float64).reshape(-1), None
        probabilities = np.asarray(last.predict_proba(stacked), dtype=np.float64) \
            if hasattr(last, "predict_proba") else None
        if not labels:
            return None, probabilities
        # the stack's predict(): its final estimator's, its codes back to the classes
        return self.classes.take(np.asarray(last.predict(stacked))), probabilities
