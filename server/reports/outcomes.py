"""The outcomes part of the model report and dashboard: live quality from recorded actuals
against the holdout, as a table and a chart per metric (one point per day of predictions)."""
from __future__ import annotations

from typing import Any, Sequence

from ..registry.service import Registry
from ..telemetry.outcome_alerts import AlertRule, assess
from ..telemetry.outcomes import quality
from ..types import Signature
from .charts import line_chart


def outcome_section(registry: Registry, name: str, last: int = 20_000) -> dict[str, Any] | None:
    """None unless the model tracks outcomes; else per version its live and holdout metrics
    (over the newest ``last`` outcomes: the dashboard redraws this every few seconds), the
    alert verdict and a chart of the watched metric, live by day against the holdout."""
    model = registry.get_model(name)
    if not (model.monitoring.get("outcomes") or {}).get("enabled") or model.production is None:
        return None
    metric = AlertRule.of(model.monitoring).metric_for(
        Signature.from_dict(model.production.signature))
    data = quality(registry, name, segments=False, last=last)
    charts = []
    for v in data["versions"]:
        windows = v["windows"]
        labels = [w["start"][:10] for w in windows]
        baseline = v["holdout"].get(metric)
        series: dict[str, Sequence[float | None]] = {
            "live": [w["metrics"].get(metric) for w in windows]}
        if baseline is not None:
            series["holdout"] = [baseline] * len(windows)
        charts.append(line_chart(f"v{v['version']} {metric}: live by day against the holdout",
                                 labels, series))
    return {"metric": metric, "versions": data["versions"], "charts": charts,
            "alert": assess(registry, name)}
