"""The report's holdout charts for every kind of model (binary, multiclass, regression; with
and without categorical inputs): each analysis drawn with one mark per number, in the HTML and
as rows of the XLSX sheets; and the explainer's slot (mean absolute contribution) drawn when an
analysis carries it."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from server.evaluation.analysis import analyse
from server.reports.performance import Analysed, performance, sheets
from server.scoring.runtime import LoadedModel
from server.scoring.signature import infer_signature
from tests.evaluation.test_analysis import KINDS, _case, analysed


def _model(est, X) -> LoadedModel:  # type: ignore[no-untyped-def]
    return LoadedModel("m", 1, est, infer_signature(est, X), "sha")


def _id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)  # as chart ids are made safe for HTML


def _marks(svg: str) -> int:
    return len(re.findall(r'class="(?:point|bar|cell)"', svg))


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_draws_every_analysis(kind: str) -> None:
    _, X, _, a, rows = analysed(kind)
    perf = performance(Analysed("v1", 1, {}, a), None)
    charts = {c.id: _marks(c.svg) for c in perf.charts}
    assert charts["importance"] == len(X.columns)
    for curve in a["dependence"]["curves"]:
        assert charts[_id(f"dependence-{curve['column']}")] == \
            len(curve["grid"]) * len(curve["average"])
    for seg in a["segments"]:
        assert charts[_id(f"segments-{seg['column']}")] == len(seg["levels"])
    names = {s[0] for s in sheets(perf)}
    if kind.startswith("regression"):
        assert charts["residuals"] == rows and charts["residual-histogram-v1"] == 20
        assert {"Residuals", "Residual histogram"} <= names
    else:
        assert charts["roc"] == sum(len(c["fpr"]) for c in a["roc"])
        assert charts["precision-recall"] == sum(len(c["recall"]) for c in a["precision_recall"])
        assert charts["calibration"] == sum(len(c["mean_predicted"]) for c in a["calibration"])
        assert charts["confusion-v1"] == len(a["classes"]) ** 2
        assert {"ROC", "Precision-recall", "Calibration", "Confusion matrix"} <= names
    assert ("Segments" in names) and (bool(a["segments"]) == kind.endswith("categorical"))


def test_the_contribution_slot_is_drawn_when_given() -> None:
    """A linear regression's exact contributions (coefficient times the distance from the
    mean) stand in for the explainer the slot is for."""
    est, X, y = _case("regression-numeric")
    ridge = est[-1]
    scaled = est[:-1].transform(X)

    def mean_abs(model: LoadedModel, frame: pd.DataFrame) -> dict[str, float]:
        z = est[:-1].transform(frame)
        return {c: float(np.abs(ridge.coef_[j] * (z[:, j] - scaled[:, j].mean())).mean())
                for j, c in enumerate(frame.columns)}

    a = analyse(_model(est, X), X.assign(target=y.to_numpy()), "target", sample_rows=120,
                contributions=mean_abs)
    assert [e["column"] for e in a["contribution_importance"]][0] in X.columns
    perf = performance(Analysed("v1", 1, {}, a), None)
    chart = next(c for c in perf.charts if c.id == "contributions")
    assert _marks(chart.svg) == len(X.columns)
    rows = next(r for name, _, r in sheets(perf) if name == "Contributions")
    assert sorted(r[2] for r in rows) == sorted(e["mean_abs"] for e in a["contribution_importance"])
    # without an explainer the slot is left out (computed for the first report) and the
    # report is complete without it
    plain = analyse(_model(est, X), X.assign(target=y.to_numpy()), "target", sample_rows=120)
    assert "contribution_importance" not in plain
    assert "contributions" not in {c.id for c in performance(Analysed("v1", 1, {}, plain),
                                                              None).charts}
