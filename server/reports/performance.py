"""The report's "Performance on the holdout" part: each analysis of :mod:`server.evaluation`
drawn as a chart, and for a candidate the same drawn beside production's (overlaid curves, bars
side by side), so a person promoting by hand sees what changes. Also the rows of each XLSX sheet."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .charts import bar_chart, heatmap, xy_chart


@dataclass
class Analysed:
    """One version's analysis with the label its series carry ("v3", "v1 (production)")."""

    label: str
    version: int
    metrics: dict[str, Any]
    analysis: dict[str, Any] | None

    @property
    def ready(self) -> bool:
        return self.analysis is not None and "unavailable" not in self.analysis

    @property
    def data(self) -> dict[str, Any]:
        return self.analysis or {}


@dataclass
class Chart:
    """``id`` names the analysis and, where there is one per input, the input (made safe for an
    HTML id: letters, digits, ``-`` and ``_``)."""

    id: str
    title: str
    svg: str

    def __post_init__(self) -> None:
        self.id = re.sub(r"[^A-Za-z0-9_-]", "_", self.id)


@dataclass
class Performance:
    subject: Analysed
    baseline: Analysed | None
    charts: list[Chart] = field(default_factory=list)

    @property
    def shown(self) -> list[Analysed]:
        return [a for a in (self.subject, self.baseline) if a is not None and a.ready]


def performance(subject: Analysed, baseline: Analysed | None) -> Performance:
    perf = Performance(subject, baseline)
    shown = perf.shown
    if not shown or not subject.ready:
        return perf
    perf.charts += _importance(shown)
    perf.charts += _dependence(shown)
    kind = subject.data["kind"]
    if kind == "regression":
        perf.charts += _residuals(shown)
    else:
        perf.charts += _classifier(shown)
    perf.charts += _segments(shown)
    return perf


def _series_name(a: Analysed, curve: str, many: bool) -> str:
    return f"{a.label} {curve}" if many else a.label


def _importance(shown: list[Analysed]) -> list[Chart]:
    first = shown[0].data["importance"]["columns"]
    columns = [e["column"] for e in first]
    charts = [Chart("importance", f"Permutation importance (drop in "
                    f"{shown[0].data['metric']})",
                    bar_chart("Permutation importance", columns, {
                        a.label: [_by_column(a.data["importance"]["columns"], c, "mean")
                                  for c in columns] for a in shown}))]
    with_contrib = [a for a in shown if a.data.get("contribution_importance")]
    if with_contrib:
        charts.append(Chart("contributions", "Mean absolute contribution", bar_chart(
            "Mean absolute contribution", columns, {
                a.label: [_by_column(a.data["contribution_importance"], c, "mean_abs")
                          for c in columns] for a in with_contrib})))
    return charts


def _by_column(entries: list[dict[str, Any]], column: str, key: str) -> float | None:
    return next((e[key] for e in entries if e["column"] == column), None)


def _dependence(shown: list[Analysed]) -> list[Chart]:
    charts = []
    for curve in shown[0].data["dependence"]["curves"]:
        column = curve["column"]
        pairs: list[tuple[Analysed, dict[str, Any]]] = [
            (a, c) for a in shown for c in a.data["dependence"]["curves"]
            if c["column"] == column]
        many = len(curve["average"]) > 1
        title = f"Partial dependence: {column}"
        if curve["categorical"]:
            levels = [str(v) for v in curve["grid"]]
            series = {_series_name(a, name, many): [
                _at(c, name, level) for level in levels]
                for a, c in pairs for name in c["average"]}
            svg = bar_chart(title, levels, series)
        else:
            svg = xy_chart(title, {_series_name(a, name, many): (c["grid"], values)
                                   for a, c in pairs for name, values in c["average"].items()},
                           column, "average prediction")
        charts.append(Chart(f"dependence-{column}", title, svg))
    return charts


def _at(curve: dict[str, Any], name: str, level: str) -> float | None:
    levels = [str(v) for v in curve["grid"]]
    values = curve["average"].get(name)
    return values[levels.index(level)] if values is not None and level in levels else None


def _classifier(shown: list[Analysed]) -> list[Chart]:
    many = len(shown[0].data["roc"]) > 1
    roc = {_series_name(a, c["class"], many): (c["fpr"], c["tpr"])
           for a in shown for c in a.data["roc"]}
    pr = {_series_name(a, c["class"], many): (c["recall"], c["precision"])
          for a in shown for c in a.data["precision_recall"]}
    cal = {_series_name(a, c["class"], many): (c["mean_predicted"], c["fraction_positive"])
           for a in shown for c in a.data["calibration"]}
    unit = (0.0, 1.0)
    charts = []
    if roc:
        charts += [Chart("roc", "ROC curve", xy_chart("ROC curve", roc, "false positive rate",
                                                      "true positive rate", x_range=unit,
                                                      y_range=unit, diagonal=True)),
                   Chart("precision-recall", "Precision-recall curve", xy_chart(
                       "Precision-recall curve", pr, "recall", "precision", x_range=unit,
                       y_range=unit)),
                   Chart("calibration", "Reliability (calibration)", xy_chart(
                       "Reliability (calibration)", cal, "mean predicted probability",
                       "fraction positive", x_range=unit, y_range=unit, diagonal=True))]
    for a in shown:
        m = a.data["confusion"]
        charts.append(Chart(f"confusion-v{a.version}", f"Confusion matrix: {a.label}",
                            heatmap(f"Confusion matrix: {a.label}", m["labels"], m["matrix"])))
    return charts


def _residuals(shown: list[Analysed]) -> list[Chart]:
    charts = [Chart("residuals", "Residuals against predicted", xy_chart(
        "Residuals against predicted", {a.label: (a.data["residuals"]["predicted"],
                                                  a.data["residuals"]["residual"])
                                        for a in shown},
        "predicted", "actual - predicted", lines=False))]
    for a in shown:
        h = a.data["residuals"]["histogram"]
        labels = [f"{lo:.3g} to {hi:.3g}" for lo, hi in zip(h["edges"], h["edges"][1:])]
        charts.append(Chart(f"residual-histogram-v{a.version}", f"Residuals: {a.label}",
                            bar_chart(f"Residual histogram: {a.label}", labels,
                                      {"rows": h["counts"]})))
    return charts


def _segments(shown: list[Analysed]) -> list[Chart]:
    charts = []
    for seg in shown[0].data["segments"]:
        levels = [lv["level"] for lv in seg["levels"]]
        series = {}
        for a in shown:
            other = next((s for s in a.data["segments"]
                          if s["column"] == seg["column"]), None)
            values = {lv["level"]: lv["value"] for lv in other["levels"]} if other else {}
            series[a.label] = [values.get(level) for level in levels]
        title = f"{seg['metric']} by {seg['column']}"
        charts.append(Chart(f"segments-{seg['column']}", title, bar_chart(title, levels, series)))
    return charts


# -- the workbook's sheets: (name, header, rows), numbers left as numbers ------------------------

def sheets(perf: Performance) -> list[tuple[str, list[str], list[list[Any]]]]:
    shown = perf.shown
    if not shown:
        return []
    out: list[tuple[str, list[str], list[list[Any]]]] = []
    names = sorted({k for a in [perf.subject, perf.baseline] if a for k in a.metrics})
    compared = [a for a in (perf.subject, perf.baseline) if a is not None]
    out.append(("Holdout metrics", ["Metric"] + [a.label for a in compared],
                [[k] + [a.metrics.get(k) for a in compared] for k in names]
                + [["analysis sample rows"] + [a.data["sample_rows"] if a.ready else None
                                               for a in compared]]))
    out.append(("Importance", ["Version", "Input", "Mean drop", "Std", "Metric"],
                [[a.label, e["column"], e["mean"], e["std"], a.data["metric"]]
                 for a in shown for e in a.data["importance"]["columns"]]))
    contrib = [[a.label, e["column"], e["mean_abs"]] for a in shown
               for e in a.data.get("contribution_importance") or []]
    if contrib:
        out.append(("Contributions", ["Version", "Input", "Mean absolute contribution"], contrib))
    out.append(("Partial dependence", ["Version", "Input", "Value", "Curve", "Average"],
                [[a.label, c["column"], v, name, values[i]]
                 for a in shown for c in a.data["dependence"]["curves"]
                 for name, values in c["average"].items() for i, v in enumerate(c["grid"])]))
    if perf.subject.data["kind"] == "regression":
        out.append(("Residuals", ["Version", "Predicted", "Residual"],
                    [[a.label, p, r] for a in shown for p, r in zip(
                        a.data["residuals"]["predicted"], a.data["residuals"]["residual"])]))
        out.append(("Residual histogram", ["Version", "From", "To", "Rows"],
                    [[a.label, lo, hi, n] for a in shown
                     for lo, hi, n in zip(a.data["residuals"]["histogram"]["edges"],
                                          a.data["residuals"]["histogram"]["edges"][1:],
                                          a.data["residuals"]["histogram"]["counts"])]))
    else:
        for sheet, key, cols in (("ROC", "roc", ("fpr", "tpr")),
                                 ("Precision-recall", "precision_recall", ("recall", "precision")),
                                 ("Calibration", "calibration",
                                  ("mean_predicted", "fraction_positive"))):
            out.append((sheet, ["Version", "Class", *cols],
                        [[a.label, c["class"], x, y] for a in shown
                         for c in a.data[key] for x, y in zip(c[cols[0]], c[cols[1]])]))
        out.append(("Confusion matrix", ["Version", "Actual", "Predicted", "Rows"],
                    [[a.label, actual, predicted, n] for a in shown
                     for actual, row in zip(a.data["confusion"]["labels"],
                                            a.data["confusion"]["matrix"])
                     for predicted, n in zip(a.data["confusion"]["labels"], row)]))
    out.append(("Segments", ["Version", "Input", "Level", "Rows", "Metric", "Value"],
                [[a.label, s["column"], lv["level"], lv["count"], s["metric"], lv["value"]]
                 for a in shown for s in a.data["segments"] for lv in s["levels"]]))
    return out
