"""The registry as tables for feeds (OData): models, versions, events and traffic, each a SELECT
whose columns carry the feed's property names.

These are the OData codec's view of the registry's tables, so they live with the codec
(:mod:`server.codecs.odata`) above the registry: the registry stores, it does not know OData.
"""
from __future__ import annotations

import re

from sqlalchemy import Float, Integer, String, and_, case, cast, func, literal, select
from sqlalchemy.orm import aliased

from ..registry.schema import (
    AliasRow,
    DriftRow,
    EventRow,
    JobRow,
    ModelRow,
    PredictionRow,
    ScoredRow,
    TrafficRow,
    VersionRow,
)
from ..types import Signature
from .odata import EntitySet, Prop

# the Edm types by their initials (I for Int32), so the entity sets below read as tables
S, I, B, D, F = "Edm.String", "Edm.Int32", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Double"  # noqa: E741


def _models():
    prod_alias = aliased(AliasRow)
    prod = aliased(VersionRow)
    latest = (select(VersionRow.model_id, func.max(VersionRow.version).label("latest"))
              .group_by(VersionRow.model_id).subquery())
    return (select(ModelRow.name.label("Name"), ModelRow.description.label("Description"),
                   prod.version.label("ProductionVersion"), latest.c.latest.label("LatestVersion"),
                   func.coalesce(ModelRow.policy["policy"].as_string(), "auto").label("Policy"),
                   ModelRow.created_at.label("CreatedAt"), ModelRow.created_by.label("CreatedBy"))
            .select_from(ModelRow)
            .outerjoin(prod_alias, and_(prod_alias.model_id == ModelRow.id,
                                        prod_alias.alias == "production"))
            .outerjoin(prod, prod.id == prod_alias.version_id)
            .outerjoin(latest, latest.c.model_id == ModelRow.id))


def _versions():
    prod_alias = aliased(AliasRow)
    return (select(ModelRow.name.label("Model"), VersionRow.version.label("Version"),
                   VersionRow.sha256.label("Sha256"), VersionRow.format.label("Format"),
                   VersionRow.description.label("Description"),
                   VersionRow.created_at.label("CreatedAt"),
                   VersionRow.created_by.label("CreatedBy"),
                   VersionRow.pipeline.label("Pipeline"),
                   VersionRow.gate_status.label("GateStatus"),
                   VersionRow.rolled_back.label("RolledBack"),
                   case((prod_alias.version_id.is_not(None), literal(True)),
                        else_=literal(False)).label("IsProduction"))
            .select_from(VersionRow).join(ModelRow, ModelRow.id == VersionRow.model_id)
            .outerjoin(prod_alias, and_(prod_alias.version_id == VersionRow.id,
                                        prod_alias.alias == "production")))


def _events():
    return select(EventRow.id.label("Id"), EventRow.model_name.label("Model"),
                  EventRow.version.label("Version"), EventRow.kind.label("Kind"),
                  EventRow.actor.label("Actor"), EventRow.created_at.label("CreatedAt"),
                  cast(EventRow.detail, String).label("Detail"))


def _traffic():
    requests = func.sum(TrafficRow.requests)
    return (select(TrafficRow.model_name.label("Model"), TrafficRow.version.label("Version"),
                   TrafficRow.minute.label("Minute"), cast(requests, Integer).label("Requests"),
                   cast(func.sum(TrafficRow.errors), Integer).label("Errors"),
                   cast(func.sum(TrafficRow.rows), Integer).label("Rows"),
                   cast(func.sum(TrafficRow.latency_sum) * 1000.0 / func.nullif(requests, 0),
                        Float).label("MeanLatencyMs"))
            .group_by(TrafficRow.model_name, TrafficRow.version, TrafficRow.minute))


def _drift():
    return select(DriftRow.id.label("Id"), DriftRow.model_name.label("Model"),
                  DriftRow.version.label("Version"), DriftRow.computed_at.label("ComputedAt"),
                  DriftRow.feature.label("Feature"), DriftRow.status.label("Status"),
                  DriftRow.rows.label("Rows"), DriftRow.psi.label("PSI"),
                  DriftRow.distance.label("Distance"), DriftRow.null_rate.label("NullRate"),
                  DriftRow.out_of_range_rate.label("OutOfRangeRate"),
                  DriftRow.unknown_rate.label("UnknownRate"))


def _jobs():
    return select(JobRow.id.label("Id"), JobRow.model_name.label("Model"),
                  JobRow.version.label("Version"), JobRow.status.label("Status"),
                  cast(JobRow.rows_done, Integer).label("Rows"),
                  cast(JobRow.rows_failed, Integer).label("RowsFailed"),
                  JobRow.output_format.label("OutputFormat"),
                  JobRow.created_at.label("CreatedAt"), JobRow.finished_at.label("FinishedAt"),
                  JobRow.created_by.label("CreatedBy"))


ENTITY_SETS = [
    EntitySet("Models", "Model", ("Name",), (
        Prop("Name", S, False), Prop("Description", S), Prop("ProductionVersion", I),
        Prop("LatestVersion", I), Prop("Policy", S), Prop("CreatedAt", D), Prop("CreatedBy", S),
    ), _models, ("Name",)),
    EntitySet("ModelVersions", "ModelVersion", ("Model", "Version"), (
        Prop("Model", S, False), Prop("Version", I, False), Prop("Sha256", S), Prop("Format", S),
        Prop("Description", S), Prop("CreatedAt", D), Prop("CreatedBy", S), Prop("Pipeline", S),
        Prop("GateStatus", S), Prop("RolledBack", B), Prop("IsProduction", B),
    ), _versions, ("Model", "Version")),
    EntitySet("Events", "Event", ("Id",), (
        Prop("Id", I, False), Prop("Model", S), Prop("Version", I), Prop("Kind", S),
        Prop("Actor", S), Prop("CreatedAt", D), Prop("Detail", S),
    ), _events, ("Id",)),
    EntitySet("Traffic", "TrafficMinute", ("Model", "Version", "Minute"), (
        Prop("Model", S, False), Prop("Version", I, False), Prop("Minute", D, False),
        Prop("Requests", I), Prop("Errors", I), Prop("Rows", I), Prop("MeanLatencyMs", F),
    ), _traffic, ("Model", "Version", "Minute")),
    EntitySet("Drift", "DriftMeasure", ("Id",), (
        Prop("Id", I, False), Prop("Model", S), Prop("Version", I), Prop("ComputedAt", D),
        Prop("Feature", S), Prop("Status", S), Prop("Rows", I), Prop("PSI", F),
        Prop("Distance", F), Prop("NullRate", F), Prop("OutOfRangeRate", F),
        Prop("UnknownRate", F),
    ), _drift, ("Id",)),
    EntitySet("Jobs", "Job", ("Id",), (
        Prop("Id", S, False), Prop("Model", S), Prop("Version", I), Prop("Status", S),
        Prop("Rows", I), Prop("RowsFailed", I), Prop("OutputFormat", S), Prop("CreatedAt", D),
        Prop("FinishedAt", D), Prop("CreatedBy", S),
    ), _jobs, ("CreatedAt", "Id")),
]


_EDM = {"number": "Edm.Double", "integer": "Edm.Int64", "boolean": "Edm.Boolean", "string": S}


def _json_field(column, kind: str):
    accessor = {"number": "as_float", "integer": "as_integer", "boolean": "as_boolean"}.get(
        kind, "as_string")
    return getattr(column, accessor)()


def prediction_set(name: str, signature: Signature) -> EntitySet:
    """The logged predictions of one model, with a typed property per input (from its
    signature) and a typed prediction."""
    safe = name.replace("-", "_")
    inputs = [(c.name, c.type) for c in signature.inputs]
    out_type = signature.output.type

    def query():
        return select(
            PredictionRow.id.label("Id"), PredictionRow.created_at.label("CreatedAt"),
            PredictionRow.version.label("Version"), PredictionRow.client.label("Client"),
            PredictionRow.latency_ms.label("LatencyMs"),
            *[_json_field(PredictionRow.inputs[col], kind).label(col) for col, kind in inputs],
            _json_field(PredictionRow.prediction["value"], out_type).label("Prediction"),
            PredictionRow.probability.label("Probability"),
        ).where(PredictionRow.model_name == name)

    props = (Prop("Id", I, False), Prop("CreatedAt", D), Prop("Version", I), Prop("Client", S),
             Prop("LatencyMs", F),
             *[Prop(col, _EDM.get(kind, S)) for col, kind in inputs],
             Prop("Prediction", _EDM.get(out_type, S)), Prop("Probability", F))
    return EntitySet(f"Predictions_{safe}", f"Prediction_{safe}", ("Id",), props, query,
                     ("Id",))


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def scored_set(name: str, signature: Signature, every_job: bool = False) -> EntitySet:
    """The rows of the model's latest published batch job or pipeline run (the table a Power BI
    report refreshes), typed from the signature; with ``every_job``, the rows of every published
    job, keyed by job and row."""
    safe = _identifier(name)
    inputs = [(c.name, c.type) for c in signature.inputs]
    classes = [str(c) for c in signature.output.classes or ()] \
        if signature.output.probabilities else []
    out_type = signature.output.type

    def query():
        published = select(JobRow.id).where(JobRow.model_name == name,
                                            JobRow.status == "succeeded",
                                            JobRow.options["publish"].as_boolean().is_(True))
        wanted = (ScoredRow.job_id.in_(published) if every_job else
                  ScoredRow.job_id == published.order_by(JobRow.finished_at.desc())
                  .limit(1).scalar_subquery())
        return select(
            cast(ScoredRow.row_no, Integer).label("Row"), ScoredRow.job_id.label("Job"),
            *[_json_field(ScoredRow.data[col], kind).label(_identifier(col))
              for col, kind in inputs],
            _json_field(ScoredRow.data["prediction"], out_type).label("prediction"),
            *[ScoredRow.data[f"probability_{c}"].as_float().label(_identifier(f"probability_{c}"))
              for c in classes],
            ScoredRow.data["error"].as_string().label("error"),
        ).where(wanted)

    props = (Prop("Row", I, False), Prop("Job", S, not every_job),
             *[Prop(_identifier(col), _EDM.get(kind, S)) for col, kind in inputs],
             Prop("prediction", _EDM.get(out_type, S)),
             *[Prop(_identifier(f"probability_{c}"), F) for c in classes], Prop("error", S))
    if every_job:
        return EntitySet(f"JobRows_{safe}", f"JobRow_{safe}", ("Job", "Row"), props, query,
                         ("Job", "Row"))
    return EntitySet(f"Scored_{safe}", f"Scored_{safe}", ("Row",), props, query, ("Row",))
