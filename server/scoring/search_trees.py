"""A neighbours model's search tree, one object per thread.

scikit-learn's KD and ball trees count their distance calls and visited nodes in fields of the
tree object itself, at every step of a query. Two threads querying one tree write the same cache
lines all the time, and each then runs at half speed: a 10,000-row query of the benchmark zoo's
k-NN took 145 ms alone and, with a second thread querying the same tree, 290 ms of CPU each, so
two threads together did no more than one. Separate processes do not slow each other down. A
threaded worker serving a k-NN thus gained nothing from a second request running beside the
first (docs/performance.md).

So each thread queries a tree object of its own, inside a shallow copy of the model: the tree's
own pickling state rebuilt into a new object, which takes the same arrays and copies none of
them, so the answers are the same and memory does not grow with the threads.
"""
from __future__ import annotations

import copy
import threading
from typing import Any

TREES = frozenset({"KDTree", "BallTree"})


def searches_a_tree(model: Any) -> bool:
    """Whether ``model`` (or a pipeline's final step) queries a KD or ball tree."""
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return type(getattr(model, "_tree", None)).__name__ in TREES


def _with_own_tree(model: Any) -> Any:
    """A shallow copy of ``model`` whose final step has a tree object of its own."""
    if hasattr(model, "steps"):
        name, final = model.steps[-1]
        out = copy.copy(model)
        out.steps = [*model.steps[:-1], (name, _with_own_tree(final))]
        return out
    tree = model._tree
    kind: Any = type(tree)
    own = kind.__new__(kind)
    own.__setstate__(tree.__getstate__())  # the same arrays, counters of its own
    out = copy.copy(model)
    out._tree = own
    return out


class PerThread:
    """This thread's copy of a model that queries a search tree, else the model itself."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._trees: dict[int, bool] = {}  # id(model) -> whether it queries a tree

    def of(self, model: Any) -> Any:
        searches = self._trees.get(id(model))
        if searches is None:
            searches = self._trees[id(model)] = searches_a_tree(model)
        if not searches:
            return model
        mine: dict[int, tuple[Any, Any]] = self._local.__dict__.setdefault("copies", {})
        held = mine.get(id(model))
        if held is None or held[0] is not model:  # (the model, this thread's copy)
            held = mine[id(model)] = (model, _with_own_tree(model))
        return held[1]
