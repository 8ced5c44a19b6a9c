"""JSON Schemas of response bodies, as OpenAPI components.

Requests are declared as typed models beside their routes (see :mod:`.declare`): the declaration
checks the request and documents it. Responses are built by the services' ``public()`` forms; the
spec fuzzer checks every answer against these schemas."""
from __future__ import annotations

from typing import Any

from .fields import CELL

_FIELD_ERROR = {
    "type": "object", "required": ["message"],
    "properties": {"row": {"type": "integer"}, "column": {"type": "string"},
                   "message": {"type": "string"}},
}

COMPONENTS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "request_id": {"type": "string"},
        },
    },
    "FieldError": _FIELD_ERROR,
    "PredictResponse": {
        "type": "object", "required": ["model", "version", "predictions"],
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "predictions": {"type": "array", "items": CELL},
            "probabilities": {"type": "array", "items": {"type": ["array", "null"],
                                                         "items": {"type": "number"}}},
            "classes": {"type": "array", "items": CELL},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "explanations": {"type": "array", "items": {"anyOf": [
                {"$ref": "#/components/schemas/Explanation"}, {"type": "null"}]},
                "description": "with options.explain: one per row (null where not scored)"},
            "explained": {"type": "object", "properties": {
                "output": {"type": "string",
                           "enum": ["log-odds", "margin", "probability", "prediction"]},
                "method": {"type": "string"}, "additive": {"type": "string"}}},
            "prediction_ids": {"type": "array", "items": {"type": ["string", "null"]}},
            "request_id": {"type": "string"},
        },
    },
    "Explanation": {
        "type": "object", "required": ["base", "contributions", "reasons"],
        "description": "base + the sum of contributions equals the model's raw output "
                       "(explained.output) for this row",
        "properties": {
            "base": {"type": "number"},
            "contributions": {"type": "object", "additionalProperties": {"type": "number"}},
            "class": {"description": "the class whose output is explained", **CELL},
            "reasons": {"type": "array", "items": {
                "type": "object", "required": ["column", "value", "effect", "text"],
                "properties": {"column": {"type": "string"}, "value": CELL,
                               "effect": {"type": "number"}, "text": {"type": "string"}}}},
        },
    },
    "Column": {
        "type": "object", "required": ["name", "type"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["number", "integer", "string", "boolean"]},
            "categories": {"type": "array", "items": CELL},
            "minimum": {"type": "number"}, "maximum": {"type": "number"},
            "accepts_missing": {"type": "boolean"}, "accepts_unknown": {"type": "boolean"},
        },
    },
    "Signature": {
        "type": "object", "required": ["inputs", "output"],
        "properties": {
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Column"}},
            "output": {"type": "object", "properties": {
                "kind": {"type": "string", "enum": ["classification", "regression"]},
                "type": {"type": "string"}, "classes": {"type": "array", "items": CELL},
                "probabilities": {"type": "boolean"}}},
        },
    },
    "Version": {
        "type": "object", "required": ["model", "version", "sha256", "signature"],
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "sha256": {"type": "string"}, "format": {"type": "string"},
            "size_bytes": {"type": "integer"}, "trusted_pickle": {"type": "boolean"},
            "signature": {"$ref": "#/components/schemas/Signature"},
            "metrics": {"type": "object"}, "tags": {"type": "object"},
            "environment": {"type": "object"}, "description": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": "string"}, "rolled_back": {"type": "boolean"},
            "aliases": {"type": "array", "items": {"type": "string"}},
            "pipeline": {"type": "string", "enum": ["pending", "processing", "done"]},
            "gate_status": {"type": ["string", "null"], "enum": ["passed", "failed", None]},
            "gates": {"type": "array", "items": {"type": "object", "properties": {
                "gate": {"type": "string"}, "passed": {"type": "boolean"},
                "detail": {"type": "string"}, "data": {"type": "object"}}}},
            "has_holdout": {"type": "boolean"},
            "runtime": {"type": "object", "description": "which engine scores this version "
                        "(treelite's native trees or onnxruntime when its compiled form was "
                        "verified, else scikit-learn or the boosting library's own predictor) "
                        "and why", "properties": {
                            "engine": {"type": "string", "enum": [
                                "treelite", "onnxruntime", "scikit-learn", "XGBoost",
                                "LightGBM", "CatBoost"]},
                            "note": {"type": "string"}}},
        },
    },
    "ModelSummary": {
        "type": "object", "required": ["name", "aliases"],
        "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "production_version": {"type": ["integer", "null"]},
            "latest_version": {"type": ["integer", "null"]},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "versions": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "output": {"type": ["object", "null"]},
        },
    },
    "ModelList": {
        "type": "object", "required": ["models"],
        "properties": {"models": {"type": "array",
                                  "items": {"$ref": "#/components/schemas/ModelSummary"}}},
    },
    "ModelDetail": {
        "type": "object", "required": ["name", "versions"],
        "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "production_version": {"type": ["integer", "null"]},
            "latest_version": {"type": ["integer", "null"]},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "signature": {"anyOf": [{"$ref": "#/components/schemas/Signature"},
                                    {"type": "null"}]},
            "outcomes": {"type": "object", "required": ["enabled", "key"],
                         "description": "outcome tracking: on or off, and the business key "
                                        "column outcomes may name (null: prediction ids only)",
                         "properties": {"enabled": {"type": "boolean"},
                                        "key": {"type": ["string", "null"]}}},
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
        },
    },
    "VersionList": {
        "type": "object", "required": ["versions"],
        "properties": {"versions": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Version"}}},
    },
    "Event": {
        "type": "object", "required": ["id", "kind"],
        "properties": {"id": {"type": "integer"}, "model": {"type": "string"},
                       "version": {"type": ["integer", "null"]},
                       "kind": {"type": "string"}, "actor": {"type": "string"},
                       "detail": {"type": "object"},
                       "created_at": {"type": "string", "format": "date-time"}},
    },
    "EventList": {
        "type": "object", "required": ["events"],
        "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
    },
    "Approval": {
        "type": "object", "required": ["model", "version", "decision", "decided_by"],
        "properties": {"model": {"type": "string"}, "version": {"type": "integer"},
                       "decision": {"enum": ["approved", "approval_refused"]},
                       "decided_by": {"type": "string"}, "registered_by": {"type": "string"},
                       "reason": {"type": "string"}},
    },
    "AddinToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "refresh_token",
                     "refresh_expires_in", "who"],
        "properties": {"access_token": {"type": "string"}, "token_type": {"enum": ["Bearer"]},
                       "expires_in": {"type": "integer", "description": "seconds"},
                       "refresh_token": {"type": "string", "description": "used once"},
                       "refresh_expires_in": {"type": "integer",
                                              "description": "seconds until the sign-in ends"},
                       "who": {"type": "object", "required": ["actor"], "properties": {
                           "actor": {"type": "string"}, "name": {"type": ["string", "null"]},
                           "email": {"type": ["string", "null"]}}}},
    },
    "Whoami": {
        "type": "object", "required": ["kind", "id", "scopes", "grants", "actor"],
        "properties": {"kind": {"enum": ["key", "person", "anonymous"]},
                       "id": {"type": "string", "description": "the key's id or the subject"},
                       "name": {"type": "string"}, "email": {"type": ["string", "null"]},
                       "issuer": {"type": ["string", "null"]},
                       "scopes": {"type": "array", "items": {"type": "string"}},
                       "grants": {"type": "array", "items": {"type": "string"}},
                       "models": {"type": ["array", "null"], "items": {"type": "string"},
                                  "description": "null: every model"},
                       "expires_at": {"type": ["string", "null"]},
                       "actor": {"type": "string", "description": "how events name the caller"}},
    },
    "DisabledPerson": {
        "type": "object", "required": ["issuer", "subject", "disabled_at"],
        "properties": {"issuer": {"type": "string"}, "subject": {"type": "string"},
                       "reason": {"type": "string"}, "disabled_by": {"type": "string"},
                       "disabled_at": {"type": "string"}},
    },
    "DisabledPeople": {
        "type": "object", "required": ["people"],
        "properties": {"people": {"type": "array",
                                  "items": {"$ref": "#/components/schemas/DisabledPerson"}}},
    },
    "Key": {
        "type": "object", "required": ["id", "scopes"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "scopes": {"type": "array", "items": {"type": "string"}},
                       "key": {"type": "string", "description": "shown once, at creation"},
                       "created_at": {"type": "string"},
                       "revoked_at": {"type": ["string", "null"]},
                       "last_used_at": {"type": ["string", "null"]}},
    },
    "KeyList": {
        "type": "object", "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"$ref": "#/components/schemas/Key"}}},
    },
    "Policy": {
        "type": "object",
        "properties": {
            "policy": {"type": "string", "enum": ["manual", "auto", "canary", "shadow"]},
            "gates": {"type": "object", "additionalProperties": False, "properties": {
                "metric": {"type": ["string", "null"]},
                "tolerance": {"type": "number", "minimum": 0},
                "max_latency_ms": {"type": "number", "minimum": 0},
                "latency_factor": {"type": "number", "minimum": 1}}},
            "canary": {"type": "object", "additionalProperties": False, "properties": {
                "share": {"type": "number", "minimum": 0, "maximum": 1},
                "min_requests": {"type": "integer", "minimum": 1},
                "max_seconds": {"type": "number", "minimum": 0},
                "max_error_rate_increase": {"type": "number", "minimum": 0, "maximum": 1},
                "max_latency_ratio": {"type": "number", "minimum": 1},
                "outcomes": {"type": ["object", "null"], "additionalProperties": False,
                             "properties": {
                                 "metric": {"type": ["string", "null"]},
                                 "max_drop": {"type": "number", "minimum": 0},
                                 "min_outcomes": {"type": "integer", "minimum": 1}}}}},
            "shadow": {"type": "object", "additionalProperties": False, "properties": {
                "share": {"type": "number", "minimum": 0, "maximum": 1},
                "tolerance": {"type": "number", "minimum": 0},
                "min_requests": {"type": "integer", "minimum": 1},
                "promote_at_agreement": {"type": ["number", "null"], "minimum": 0,
                                         "maximum": 1}}},
            "approval": {"type": "object", "additionalProperties": False, "properties": {
                "required": {"type": "boolean"}}},
            "rollback": {"type": "object", "additionalProperties": False, "properties": {
                "watch_seconds": {"type": "number", "minimum": 0},
                "min_requests": {"type": "integer", "minimum": 1},
                "max_error_rate": {"type": "number", "minimum": 0, "maximum": 1}}},
        },
        "example": {"policy": "canary", "canary": {"share": 0.1, "min_requests": 200}},
    },
    "Deployment": {
        "type": "object", "required": ["model", "policy", "open_rollouts"],
        "properties": {
            "model": {"type": "string"}, "policy": {"$ref": "#/components/schemas/Policy"},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "production": {"type": ["integer", "null"]},
            "pending_versions": {"type": "array", "items": {"type": "integer"}},
            "open_rollouts": {"type": "array", "items": {"type": "object"}},
            "recent_rollouts": {"type": "array", "items": {"type": "object"}},
        },
    },
    "RangeBatchResult": {
        "type": "object", "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"type": "object", "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "header": {"type": "boolean"},
            "predictions": {"type": "array", "items": CELL},
            "probabilities": {"type": "array", "items": {"type": ["array", "null"],
                                                         "items": {"type": "number"}}},
            "classes": {"type": "array", "items": CELL},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "error": {"type": "string"}, "status": {"type": "integer"}}}}},
    },
    "MlflowPredictions": {
        "type": "object", "required": ["predictions"],
        "properties": {"predictions": {"type": "array", "items": CELL}},
    },
    "MonitoringSettings": {
        "type": "object", "additionalProperties": False,
        "properties": {"log": {"type": "boolean"},
                       "sample_rate": {"type": "number", "minimum": 0, "maximum": 1},
                       "outcomes": {"type": "object"}},
    },
    "Monitoring": {
        "type": "object", "required": ["model", "status", "rows", "features"],
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "status": {"type": "string",
                       "enum": ["ok", "watch", "drift", "insufficient data"]},
            "rows": {"type": "integer"}, "dataset_drift": {"type": "boolean"},
            "drifting_features": {"type": "array", "items": {"type": "string"}},
            "features": {"type": "object"}, "prediction": {"type": "object"},
            "window_hours": {"type": "number"}, "since": {"type": "string"},
            "thresholds": {"type": "object"}, "logging": {"type": "object"}},
    },
    "Job": {
        "type": "object", "required": ["id", "status", "rows_done"],
        "properties": {
            "id": {"type": "string"}, "model": {"type": "string"}, "version": {"type": "integer"},
            "status": {"type": "string",
                       "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "rows_done": {"type": "integer"}, "rows_total": {"type": ["integer", "null"]},
            "rows_failed": {"type": "integer"},
            "rate_rows_per_second": {"type": ["number", "null"]},
            "eta_seconds": {"type": ["number", "null"]},
            "output_format": {"type": "string"}, "error": {"type": ["string", "null"]},
            "result": {"type": ["string", "null"]}},
    },
    "JobList": {
        "type": "object", "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}},
    },
    "Pipeline": {
        "type": "object", "required": ["name", "model", "schedule"],
        "properties": {"name": {"type": "string"}, "model": {"type": "string"},
                       "alias": {"type": "string"}, "schedule": {"type": "string"},
                       "source": {"type": "object"}, "sink": {"type": "object"},
                       "enabled": {"type": "boolean"}, "next_run_at": {"type": "string"},
                       "last_run_at": {"type": ["string", "null"]},
                       "last_job_id": {"type": ["string", "null"]},
                       "last_error": {"type": ["string", "null"]}},
    },
    "PipelineList": {
        "type": "object", "required": ["pipelines"],
        "properties": {"pipelines": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Pipeline"}}},
    },
    "TrafficByUser": {
        "type": "object", "required": ["model", "since", "users"],
        "properties": {
            "model": {"type": "string"}, "since": {"type": ["string", "null"]},
            "users": {"type": "array", "items": {
                "type": "object",
                "required": ["user", "name", "requests", "errors", "rows", "first_hour",
                             "last_hour"],
                "properties": {"user": {"type": "string"}, "name": {"type": "string"},
                               "requests": {"type": "integer"}, "errors": {"type": "integer"},
                               "rows": {"type": "integer"}, "first_hour": {"type": "string"},
                               "last_hour": {"type": "string"}}}},
        },
    },
    "ProtectedResource": {
        "type": "object",
        "required": ["resource", "authorization_servers", "scopes_supported",
                     "bearer_methods_supported"],
        "properties": {"resource": {"type": "string"},
                       "authorization_servers": {"type": "array", "items": {"type": "string"}},
                       "scopes_supported": {"type": "array", "items": {"type": "string"}},
                       "bearer_methods_supported": {"type": "array",
                                                    "items": {"type": "string"}},
                       "resource_name": {"type": "string"}},
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                       "models": {"type": "object"}},
    },
    "OutcomeReport": {
        "type": "object", "required": ["model", "rows", "counts", "answers"],
        "properties": {
            "model": {"type": "string"}, "rows": {"type": "integer"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "late": {"type": "integer"},
            "answers": {"type": "array", "items": {
                "type": "object", "required": ["row", "status"],
                "properties": {"row": {"type": "integer"},
                               "status": {"type": "string", "enum": [
                                   "recorded", "replaced", "unchanged", "unknown", "invalid"]},
                               "prediction_id": {"type": "string"},
                               "message": {"type": "string"}, "late": {"type": "boolean"}}}},
            "alert": {"type": ["string", "null"]}},
    },
    "OutcomeQuality": {
        "type": "object", "required": ["model", "versions"],
        "properties": {
            "model": {"type": "string"}, "since": {"type": ["string", "null"]},
            "until": {"type": ["string", "null"]}, "last": {"type": ["integer", "null"]},
            "window_hours": {"type": "number"},
            "versions": {"type": "array", "items": {
                "type": "object", "required": ["version", "scored", "matched", "metrics"],
                "properties": {"version": {"type": "integer"}, "scored": {"type": "integer"},
                               "matched": {"type": "integer"}, "metrics": {"type": "object"},
                               "holdout": {"type": "object"},
                               "delay": {"type": ["object", "null"]},
                               "windows": {"type": "array"}, "calibration": {"type": "array"},
                               "segments": {"type": "object"}}}},
            "alert": {"type": ["object", "null"]}},
    },
    "OutcomeSources": {
        "type": "object", "required": ["model", "sources"],
        "properties": {"model": {"type": "string"},
                       "sources": {"type": "array",
                                   "items": {"$ref": "#/components/schemas/OutcomeSourceState"}}},
    },
    "OutcomeSourceState": {
        "type": "object", "required": ["name", "kind", "every_minutes", "enabled", "state"],
        "properties": {
            "name": {"type": "string"}, "kind": {"type": "string", "enum": ["sql", "files"]},
            "url": {"type": "string", "description": "the password masked as ***"},
            "query": {"type": "string"}, "glob": {"type": "string"},
            "every_minutes": {"type": "integer"}, "enabled": {"type": "boolean"},
            "state": {"type": "string",
                      "enum": ["never run", "running", "ok", "failed", "disabled"]},
            "last_run_at": {"type": ["string", "null"]},
            "finished_at": {"type": ["string", "null"]},
            "next_run_at": {"type": ["string", "null"]}, "rows": {"type": ["integer", "null"]},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "error": {"type": ["string", "null"]}, "since": {"type": ["string", "null"]},
            "files_read": {"type": "integer"}},
    },
    "OutcomeSourceRuns": {
        "type": "object", "required": ["model", "sources", "runs"],
        "properties": {
            "model": {"type": "string"},
            "sources": {"type": "array",
                        "items": {"$ref": "#/components/schemas/OutcomeSourceState"}},
            "runs": {"type": "array", "items": {
                "type": "object", "required": ["source", "kind", "status", "rows", "counts"],
                "properties": {
                    "model": {"type": "string"}, "source": {"type": "string"},
                    "kind": {"type": "string"},
                    "status": {"type": "string", "enum": ["ok", "failed", "skipped"]},
                    "reason": {"type": "string"}, "rows": {"type": "integer"},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "late": {"type": "integer"}, "files_read": {"type": "integer"},
                    "files": {"type": "array", "items": {"type": "string"}},
                    "file_errors": {"type": "array"}, "problems": {"type": "array"},
                    "since": {"type": ["string", "null"]},
                    "high_water": {"type": ["string", "null"]},
                    "alert": {"type": ["string", "null"]}}}}},
    },
}
