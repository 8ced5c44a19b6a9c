"""The registry as tables for feeds (OData): models, versions, events, traffic (also by user),
and per deployed model its predictions and scored rows, each a SELECT with one column per property.

A model brings names of its own (its name, its columns, its classes): they are made CSDL
identifiers once per model (:func:`model_feed`), the same in each of its sets.

These are the OData codec's view of the registry's tables, so they live with the codec
(:mod:`server.codecs.odata`) above the registry: the registry stores, it does not know OData.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    false,
    func,
    literal,
    null,
    select,
    values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeEngine

from ..registry.schema import (
    AliasRow,
    DriftRow,
    EventRow,
    JobRow,
    ModelRow,
    OutcomeJoinRow,
    PredictionRow,
    ScoredRow,
    TrafficRow,
    TrafficUserRow,
    VersionRow,
)
from ..types import Signature
from .odata import EntitySet, Prop, free_identifier, identifiers, to_identifier

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


def _traffic_by_user():
    u = TrafficUserRow
    return select(u.model_name.label("Model"), u.hour.label("Hour"), u.caller.label("User"),
                  u.caller_name.label("Name"), cast(u.requests, Integer).label("Requests"),
                  cast(u.errors, Integer).label("Errors"), cast(u.rows, Integer).label("Rows"))


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


def _outcomes():
    o = OutcomeJoinRow
    return (select(o.id.label("Id"), o.model_name.label("Model"), o.version.label("Version"),
                   o.prediction_id.label("PredictionId"), o.business_key.label("BusinessKey"),
                   o.created_at.label("ScoredAt"), o.observed_at.label("ObservedAt"),
                   _Stored(o.prediction, "value", "string").label("Prediction"),
                   _Stored(o.actual, "value", "string").label("Actual"))
            .where(o.actual.is_not(None)))


ENTITY_SETS = [
    EntitySet("Models", "Model", ("Name",), (
        Prop("Name", S, False), Prop("Description", S), Prop("ProductionVersion", I),
        Prop("LatestVersion", I), Prop("Policy", S), Prop("CreatedAt", D), Prop("CreatedBy", S),
    ), _models, ("Name",), model_prop="Name"),
    EntitySet("ModelVersions", "ModelVersion", ("Model", "Version"), (
        Prop("Model", S, False), Prop("Version", I, False), Prop("Sha256", S), Prop("Format", S),
        Prop("Description", S), Prop("CreatedAt", D), Prop("CreatedBy", S), Prop("Pipeline", S),
        Prop("GateStatus", S), Prop("RolledBack", B), Prop("IsProduction", B),
    ), _versions, ("Model", "Version"), model_prop="Model"),
    EntitySet("Events", "Event", ("Id",), (
        Prop("Id", I, False), Prop("Model", S), Prop("Version", I), Prop("Kind", S),
        Prop("Actor", S), Prop("CreatedAt", D), Prop("Detail", S),
    ), _events, ("Id",), model_prop="Model"),
    EntitySet("Traffic", "TrafficMinute", ("Model", "Version", "Minute"), (
        Prop("Model", S, False), Prop("Version", I, False), Prop("Minute", D, False),
        Prop("Requests", I), Prop("Errors", I), Prop("Rows", I), Prop("MeanLatencyMs", F),
    ), _traffic, ("Model", "Version", "Minute"), model_prop="Model"),
    EntitySet("Drift", "DriftMeasure", ("Id",), (
        Prop("Id", I, False), Prop("Model", S), Prop("Version", I), Prop("ComputedAt", D),
        Prop("Feature", S), Prop("Status", S), Prop("Rows", I), Prop("PSI", F),
        Prop("Distance", F), Prop("NullRate", F), Prop("OutOfRangeRate", F),
        Prop("UnknownRate", F),
    ), _drift, ("Id",), model_prop="Model"),
    EntitySet("Jobs", "Job", ("Id",), (
        Prop("Id", S, False), Prop("Model", S), Prop("Version", I), Prop("Status", S),
        Prop("Rows", I), Prop("RowsFailed", I), Prop("OutputFormat", S), Prop("CreatedAt", D),
        Prop("FinishedAt", D), Prop("CreatedBy", S),
    ), _jobs, ("CreatedAt", "Id"), model_prop="Model"),
    EntitySet("Outcomes", "Outcome", ("Id",), (
        Prop("Id", I, False), Prop("Model", S), Prop("Version", I), Prop("PredictionId", S),
        Prop("BusinessKey", S), Prop("ScoredAt", D), Prop("ObservedAt", D),
        Prop("Prediction", S), Prop("Actual", S),
    ), _outcomes, ("Id",), "Tracked predictions joined to their recorded outcomes",
        model_prop="Model"),
    EntitySet("TrafficByUser", "TrafficUserHour", ("Model", "Hour", "User"), (
        Prop("Model", S, False), Prop("Hour", D, False), Prop("User", S, False),
        Prop("Name", S), Prop("Requests", I), Prop("Errors", I), Prop("Rows", I),
    ), _traffic_by_user, ("Model", "Hour", "User"),
        "Scoring requests, errors and rows per model, hour and caller (a key or a person): "
        "counts only, never what was scored", model_prop="Model"),
]


# -- a computed set: live quality per model, version and window -------------------------------

QUALITY_METRICS = (("Accuracy", "accuracy"), ("F1Macro", "f1_macro"), ("RocAuc", "roc_auc"),
                   ("LogLoss", "log_loss"), ("CalibrationError", "calibration_error"),
                   ("R2", "r2"), ("MAE", "mae"), ("RMSE", "rmse"))
QUALITY_PROPS: tuple[tuple[Prop, TypeEngine[Any]], ...] = (
    (Prop("Model", S, False), String()), (Prop("Version", I, False), Integer()),
    (Prop("WindowStart", D, False), DateTime(timezone=True)),
    (Prop("WindowEnd", D), DateTime(timezone=True)),
    (Prop("Matched", I), Integer()),
    *[(Prop(name, F), Float()) for name, _ in QUALITY_METRICS],
    *[(Prop(f"Holdout{name}", F), Float()) for name, _ in QUALITY_METRICS])


class _Typed(ColumnElement[Any]):
    """``element`` read as ``type``: a CAST where the database types a VALUES column from its
    literals (PostgreSQL makes text of a quoted time), the value itself on SQLite (where a CAST
    to a time would make a number of it)."""

    inherit_cache = True
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: Any, type_: TypeEngine[Any]) -> None:
        self.element, self.type = element, type_

    @property
    def _from_objects(self) -> list[Any]:
        return self.element._from_objects


@compiles(_Typed)
def _typed(element: _Typed, compiler: Any, **kw: Any) -> str:
    return compiler.process(cast(element.element, element.type), **kw)


@compiles(_Typed, "sqlite")
def _typed_sqlite(element: _Typed, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.element, **kw)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _quality_row(window: dict[str, Any]) -> tuple[Any, ...]:
    metrics, holdout = window.get("metrics") or {}, window.get("holdout") or {}
    return (window["model"], int(window["version"]), window["start"], window["end"],
            int(window["matched"]), *[_number(metrics.get(key)) for _, key in QUALITY_METRICS],
            *[_number(holdout.get(key)) for _, key in QUALITY_METRICS])


def outcome_quality_set(windows: Callable[[], Iterable[dict[str, Any]]]) -> EntitySet:
    """Live quality from recorded outcomes, one entity per model, version and window of
    prediction time: matched outcomes, the window's metrics and the version's holdout metrics.
    The rows are computed (``windows``, called only when the set is read) and served as literal
    VALUES, so ``$filter``, ``$orderby``, ``$top`` and paging work on them as SQL, like every set."""
    props = tuple(p for p, _ in QUALITY_PROPS)

    def query():
        rows = [_quality_row(w) for w in windows()]
        if not rows:
            return select(*[_Typed(null(), t).label(f"c{i}")
                            for i, (_, t) in enumerate(QUALITY_PROPS)]).where(false())
        table = values(*[column(f"c{i}", t) for i, (_, t) in enumerate(QUALITY_PROPS)],
                       name="quality", literal_binds=True).data(rows).cte("outcome_quality")
        return select(*[_Typed(table.c[f"c{i}"], t).label(f"c{i}")
                        for i, (_, t) in enumerate(QUALITY_PROPS)])

    key = ("Model", "Version", "WindowStart")
    return EntitySet("OutcomeQuality", "OutcomeQualityWindow", key, props, query, key,
                     "Live quality from recorded outcomes per model, version and day of "
                     "prediction time, with the version's holdout metrics", model_prop="Model")


_EDM = {"number": "Edm.Double", "integer": "Edm.Int64", "boolean": "Edm.Boolean", "string": S}
_SQL_TYPES: dict[str, TypeEngine[Any]] = {"number": Float(), "integer": Integer(),
                                           "boolean": Boolean()}
_ACCESSORS = {"number": "as_float", "integer": "as_integer", "boolean": "as_boolean"}

# the properties the feeds add around a model's columns; a column never takes one of these names
PREDICTION_PROPS = ("Id", "CreatedAt", "Version", "Client", "LatencyMs", "Prediction", "Probability")
SCORED_PROPS = ("Row", "Job", "prediction", "error")


class _Stored(ColumnElement[Any]):
    """The value stored under ``field`` in a JSON column, typed as the column's ``kind``."""

    inherit_cache = True
    _traverse_internals = [("document", InternalTraversal.dp_clauseelement),
                           ("field", InternalTraversal.dp_string),
                           ("kind", InternalTraversal.dp_string)]

    def __init__(self, document: Any, field: str, kind: str) -> None:
        self.document, self.field, self.kind = document, field, kind
        self.type = _SQL_TYPES.get(kind, String())


@compiles(_Stored)
def _stored(element: _Stored, compiler: Any, **kw: Any) -> str:
    accessor = getattr(element.document[element.field], _ACCESSORS.get(element.kind, "as_string"))
    return compiler.process(accessor(), **kw)


@compiles(_Stored, "sqlite")
def _stored_sqlite(element: _Stored, compiler: Any, **kw: Any) -> str:
    # SQLite (3.40) matches a JSON path against the key as stored, escapes and all, and the
    # documents are stored ASCII-escaped: a path finds neither ``Größe`` nor ``Size "XL"``.
    # json_each gives the keys decoded.
    if all(" " <= c <= "~" and c not in '"\\' for c in element.field):
        return _stored(element, compiler, **kw)
    pairs = func.json_each(element.document).table_valued("key", "value")
    value = select(pairs.c.value).where(pairs.c.key == element.field).scalar_subquery()
    return compiler.process(cast(value, element.type), **kw)


@dataclass(frozen=True)
class FeedColumn:
    """A property named from a model: one of its input columns or a class's probability."""

    source: str   # the model's name for it, and its key in the stored rows
    name: str     # its property name (a CSDL identifier)
    label: str    # the name to show it under: ``source``, unless that clashes (see ``_labels``)
    kind: str     # a signature column type


@dataclass(frozen=True)
class ModelFeed:
    """What one deployed model's entity sets are named and hold."""

    model: str
    ident: str    # the model's name as part of entity set names
    output_type: str
    inputs: tuple[FeedColumn, ...]
    probabilities: tuple[FeedColumn, ...]   # one per class, ``probability_<class>``

    @property
    def columns(self) -> tuple[FeedColumn, ...]:
        return self.inputs + self.probabilities


def _labels(columns: list[tuple[str, str]], reserved: tuple[str, ...]) -> list[str]:
    """The name to show each (source, property) under: the source itself when it is printable
    text and equals, ignoring case, no other property nor an earlier label; else the property
    name. So renaming every property to its label (Power Query's ``Table.RenameColumns``) never
    makes two columns that differ only by case."""
    names = {name.lower() for _, name in columns} | {r.lower() for r in reserved}
    taken = {r.lower() for r in reserved}
    labels = []
    for source, name in columns:
        fits = source.strip() != "" and source.isprintable() and (
            source.lower() == name.lower() or source.lower() not in names)
        label = source if fits and source.lower() not in taken else name
        taken.add(label.lower())
        labels.append(label)
    return labels


def model_feed(model: str, ident: str, signature: Signature) -> ModelFeed:
    """The model's columns named once for all its feeds (the predictions, scored and job rows),
    so a column has the same property name in each."""
    classes = [str(c) for c in signature.output.classes or ()] \
        if signature.output.probabilities else []
    sources = [(c.name, c.type) for c in signature.inputs] \
        + [(f"probability_{c}", "number") for c in classes]
    reserved = PREDICTION_PROPS + SCORED_PROPS
    names = identifiers([s for s, _ in sources], reserved)
    labels = _labels([(s, n) for (s, _), n in zip(sources, names)], reserved)
    columns = [FeedColumn(s, n, label, kind)
               for (s, kind), n, label in zip(sources, names, labels)]
    n_inputs = len(signature.inputs)
    return ModelFeed(model, ident, signature.output.type, tuple(columns[:n_inputs]),
                     tuple(columns[n_inputs:]))


def model_feeds(models: Sequence[tuple[str, Signature | None]]) -> list[ModelFeed]:
    """The feeds of ``models`` (name and production signature, None for an undeployed model), given
    in the order they were created: entity set names take the model's name as an identifier
    (``-`` becomes ``_``), and of two models that would share one (``churn-v2``, ``churn_v2``)
    the later created gets ``_2``, so a model's sets keep their names whatever is registered
    after it."""
    taken: set[str] = set()
    idents = [free_identifier(to_identifier(name), taken) for name, _ in models]
    return [model_feed(name, ident, signature)
            for (name, signature), ident in zip(models, idents) if signature is not None]


def _entity(name: str, type_name: str, key: tuple[str, ...],
            columns: list[tuple[Prop, Any]], where: Any, description: str,
            model: str) -> EntitySet:
    """An entity set of ``model``'s rows as (property, SQL expression) pairs; the SQL labels are
    positional."""
    props = tuple(p for p, _ in columns)

    def query():
        return select(*[expr.label(f"c{i}") for i, (_, expr) in enumerate(columns)]).where(where())

    return EntitySet(name, type_name, key, props, query, key, description, model=model)


def _props(columns: tuple[FeedColumn, ...], document: Any) -> list[tuple[Prop, Any]]:
    return [(Prop(c.name, _EDM.get(c.kind, S), source=c.source), _Stored(document, c.source, c.kind))
            for c in columns]


def prediction_set(feed: ModelFeed) -> EntitySet:
    """The logged predictions of one model, with a typed property per input (from its
    signature) and a typed prediction."""
    columns = [
        (Prop("Id", I, False), PredictionRow.id), (Prop("CreatedAt", D), PredictionRow.created_at),
        (Prop("Version", I), PredictionRow.version), (Prop("Client", S), PredictionRow.client),
        (Prop("LatencyMs", F), PredictionRow.latency_ms),
        *_props(feed.inputs, PredictionRow.inputs),
        (Prop("Prediction", _EDM.get(feed.output_type, S)),
         _Stored(PredictionRow.prediction, "value", feed.output_type)),
        (Prop("Probability", F), PredictionRow.probability)]
    return _entity(f"Predictions_{feed.ident}", f"Prediction_{feed.ident}", ("Id",), columns,
                   lambda: PredictionRow.model_name == feed.model,
                   f"The sampled prediction log of the model {feed.model}", feed.model)


def scored_set(feed: ModelFeed, every_job: bool = False) -> EntitySet:
    """The rows of the model's latest published batch job or pipeline run (the table a Power BI
    report refreshes), typed from the signature; with ``every_job``, the rows of every published
    job, keyed by job and row."""
    def wanted():
        published = select(JobRow.id).where(JobRow.model_name == feed.model,
                                            JobRow.status == "succeeded",
                                            JobRow.options["publish"].as_boolean().is_(True))
        if every_job:
            return ScoredRow.job_id.in_(published)
        return ScoredRow.job_id == published.order_by(JobRow.finished_at.desc()).limit(1) \
            .scalar_subquery()

    columns = [
        (Prop("Row", I, False), cast(ScoredRow.row_no, Integer)),
        (Prop("Job", S, not every_job), ScoredRow.job_id),
        *_props(feed.inputs, ScoredRow.data),
        (Prop("prediction", _EDM.get(feed.output_type, S)),
         _Stored(ScoredRow.data, "prediction", feed.output_type)),
        *_props(feed.probabilities, ScoredRow.data),
        (Prop("error", S), _Stored(ScoredRow.data, "error", "string"))]
    if every_job:
        return _entity(f"JobRows_{feed.ident}", f"JobRow_{feed.ident}", ("Job", "Row"), columns,
                       wanted, f"The rows of every published job of the model {feed.model}",
                       feed.model)
    return _entity(f"Scored_{feed.ident}", f"Scored_{feed.ident}", ("Row",), columns, wanted,
                   f"The rows of the latest published job of the model {feed.model}", feed.model)


def columns_set(feeds: list[ModelFeed]) -> EntitySet:
    """Every property named from a model's column, with the column's own name (``Source``) and
    the name to show it under (``Label``): what a Power BI query renames the columns with, since
    Power BI shows no metadata annotation (see powerbi/templates/odata-scored.m)."""
    rows = [(f.model, c.name, c.label, c.source) for f in feeds for c in f.columns]
    props = (Prop("Model", S, False), Prop("Property", S, False), Prop("Label", S),
             Prop("Source", S))

    def query():
        if not rows:
            return select(*[literal("").label(p.name) for p in props]).where(false())
        table = values(*[column(p.name, String) for p in props], name="columns").data(rows)
        return select(table.cte("feed_columns"))

    return EntitySet("Columns", "Column", ("Model", "Property"), props, query,
                     ("Model", "Property"), model_prop="Model")


def model_sets(models: Sequence[tuple[str, Signature | None]]) -> list[EntitySet]:
    """The sets made from deployed models (in creation order, see :func:`model_feeds`): the
    ``Columns`` dictionary, then per model its predictions, latest scored rows and job rows."""
    feeds = model_feeds(models)
    return [columns_set(feeds)] + [s for f in feeds
                                   for s in (prediction_set(f), scored_set(f),
                                             scored_set(f, every_job=True))]
