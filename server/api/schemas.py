"""JSON Schemas of request and response bodies, as OpenAPI components."""
from __future__ import annotations

from typing import Any

_ANY_VALUE: dict[str, Any] = {"nullable": True,
                              "oneOf": [{"type": "string"}, {"type": "number"},
                                        {"type": "boolean"}]}
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
    "ScoreOptions": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "probabilities": {"type": "boolean", "default": True,
                              "description": "include class probabilities (classifiers)"},
            "errors": {"type": "string", "enum": ["raise", "row"], "default": "raise",
                       "description": "'row' scores the valid rows and reports the others"},
        },
    },
    "PredictRequest": {
        "type": "object",
        "description": "Exactly one of rows, records, columns, dataframe_split, dataframe_records, "
                       "instances, inputs.",
        "properties": {
            "rows": {"type": "array", "items": {"type": "array", "items": _ANY_VALUE},
                     "description": "values in signature order"},
            "records": {"type": "array", "items": {"type": "object"}},
            "columns": {"type": "object",
                        "additionalProperties": {"type": "array", "items": _ANY_VALUE}},
            "dataframe_split": {"type": "object",
                                "properties": {"columns": {"type": "array",
                                                           "items": {"type": "string"}},
                                               "data": {"type": "array",
                                                        "items": {"type": "array"}}}},
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array"},
            "inputs": {"oneOf": [{"type": "array"}, {"type": "object"}]},
            "options": {"$ref": "#/components/schemas/ScoreOptions"},
        },
        "example": {"rows": [[12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]]},
    },
    "PredictResponse": {
        "type": "object", "required": ["model", "version", "predictions"],
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "predictions": {"type": "array", "items": _ANY_VALUE},
            "probabilities": {"type": "array", "items": {"type": "array", "nullable": True,
                                                         "items": {"type": "number"}}},
            "classes": {"type": "array", "items": _ANY_VALUE},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "request_id": {"type": "string"},
        },
    },
    "Column": {
        "type": "object", "required": ["name", "type"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["number", "integer", "string", "boolean"]},
            "categories": {"type": "array", "items": _ANY_VALUE},
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
                "type": {"type": "string"}, "classes": {"type": "array", "items": _ANY_VALUE},
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
            "gate_status": {"type": "string", "nullable": True, "enum": ["passed", "failed", None]},
            "gates": {"type": "array", "items": {"type": "object", "properties": {
                "gate": {"type": "string"}, "passed": {"type": "boolean"},
                "detail": {"type": "string"}, "data": {"type": "object"}}}},
            "has_holdout": {"type": "boolean"},
            "runtime": {"type": "object", "description": "which engine scores this version "
                        "(treelite's native trees or onnxruntime when its compiled form was "
                        "verified, else scikit-learn) and why", "properties": {
                            "engine": {"type": "string", "enum": ["treelite", "onnxruntime",
                                                                "scikit-learn"]},
                            "note": {"type": "string"}}},
        },
    },
    "ModelSummary": {
        "type": "object", "required": ["name", "aliases"],
        "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "production_version": {"type": "integer", "nullable": True},
            "latest_version": {"type": "integer", "nullable": True},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "versions": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "output": {"type": "object", "nullable": True},
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
            "production_version": {"type": "integer", "nullable": True},
            "latest_version": {"type": "integer", "nullable": True},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "signature": {"allOf": [{"$ref": "#/components/schemas/Signature"}],
                          "nullable": True},
            "versions": {"type": "array", "items": {"$ref": "#/components/schemas/Version"}},
        },
    },
    "VersionList": {
        "type": "object", "required": ["versions"],
        "properties": {"versions": {"type": "array",
                                    "items": {"$ref": "#/components/schemas/Version"}}},
    },
    "AliasRequest": {
        "type": "object", "required": ["version"], "additionalProperties": False,
        "properties": {"version": {"type": "integer", "minimum": 1},
                       "reason": {"type": "string", "maxLength": 500}},
    },
    "RollbackRequest": {
        "type": "object", "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 500}},
    },
    "Event": {
        "type": "object", "required": ["id", "kind"],
        "properties": {"id": {"type": "integer"}, "model": {"type": "string"},
                       "version": {"type": "integer", "nullable": True},
                       "kind": {"type": "string"}, "actor": {"type": "string"},
                       "detail": {"type": "object"},
                       "created_at": {"type": "string", "format": "date-time"}},
    },
    "EventList": {
        "type": "object", "required": ["events"],
        "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
    },
    "RegisterForm": {
        "type": "object", "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": ".skops (or .pkl/.joblib with trust_pickle and an admin key)"},
            "sample": {"type": "string", "format": "binary", "description": "CSV of inputs"},
            "holdout": {"type": "string", "format": "binary",
                        "description": "CSV of inputs plus the target column"},
            "metadata": {"type": "string",
                         "description": "JSON: description, tags, metrics, target, trust_pickle"},
        },
    },
    "KeyCreate": {
        "type": "object", "required": ["scopes"], "additionalProperties": False,
        "properties": {"scopes": {"type": "array", "minItems": 1,
                                  "items": {"type": "string",
                                            "enum": ["score", "read", "deploy", "admin"]}},
                       "name": {"type": "string", "maxLength": 128}},
    },
    "Key": {
        "type": "object", "required": ["id", "scopes"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                       "scopes": {"type": "array", "items": {"type": "string"}},
                       "key": {"type": "string", "description": "shown once, at creation"},
                       "created_at": {"type": "string"},
                       "revoked_at": {"type": "string", "nullable": True},
                       "last_used_at": {"type": "string", "nullable": True}},
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
                "metric": {"type": "string", "nullable": True},
                "tolerance": {"type": "number", "minimum": 0},
                "max_latency_ms": {"type": "number", "minimum": 0},
                "latency_factor": {"type": "number", "minimum": 1}}},
            "canary": {"type": "object", "additionalProperties": False, "properties": {
                "share": {"type": "number", "minimum": 0, "maximum": 1},
                "min_requests": {"type": "integer", "minimum": 1},
                "max_seconds": {"type": "number", "minimum": 0},
                "max_error_rate_increase": {"type": "number", "minimum": 0, "maximum": 1},
                "max_latency_ratio": {"type": "number", "minimum": 1}}},
            "shadow": {"type": "object", "additionalProperties": False, "properties": {
                "share": {"type": "number", "minimum": 0, "maximum": 1},
                "tolerance": {"type": "number", "minimum": 0},
                "min_requests": {"type": "integer", "minimum": 1},
                "promote_at_agreement": {"type": "number", "minimum": 0, "maximum": 1,
                                         "nullable": True}}},
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
            "production": {"type": "integer", "nullable": True},
            "pending_versions": {"type": "array", "items": {"type": "integer"}},
            "open_rollouts": {"type": "array", "items": {"type": "object"}},
            "recent_rollouts": {"type": "array", "items": {"type": "object"}},
        },
    },
    "RangeBatch": {
        "type": "object", "required": ["calls"],
        "properties": {
            "probabilities": {"type": "boolean", "default": True},
            "calls": {"type": "array", "maxItems": 10000, "items": {
                "type": "object", "required": ["values"],
                "properties": {
                    "model": {"type": "string", "nullable": True},
                    "version": {"type": "integer", "minimum": 1, "nullable": True},
                    "values": {"type": "array", "items": {"type": "array", "items": _ANY_VALUE}},
                    "header": {"type": "array", "items": _ANY_VALUE,
                               "description": "the first row of a larger range sent in parts"},
                }}},
        },
        "example": {"calls": [{"model": "churn", "values": [
            [12, 70.5, "month-to-month", "electronic-check", 3, "fiber"]]}]},
    },
    "RangeBatchResult": {
        "type": "object", "required": ["results"],
        "properties": {"results": {"type": "array", "items": {"type": "object", "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"},
            "header": {"type": "boolean"},
            "predictions": {"type": "array", "items": _ANY_VALUE},
            "probabilities": {"type": "array", "items": {"type": "array", "nullable": True,
                                                         "items": {"type": "number"}}},
            "classes": {"type": "array", "items": _ANY_VALUE},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
            "error": {"type": "string"}, "status": {"type": "integer"}}}}},
    },
    "MlflowPredictions": {
        "type": "object", "required": ["predictions"],
        "properties": {"predictions": {"type": "array", "items": _ANY_VALUE}},
    },
    "MonitoringSettings": {
        "type": "object", "additionalProperties": False,
        "properties": {"log": {"type": "boolean"},
                       "sample_rate": {"type": "number", "minimum": 0, "maximum": 1}},
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
    "JobUpload": {
        "type": "object", "required": ["file", "model"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       "model": {"type": "string"}, "version": {"type": "string"},
                       "alias": {"type": "string"},
                       "output_format": {"type": "string", "enum": ["csv", "xlsx", "parquet"]},
                       "strict": {"type": "string"}, "publish": {"type": "string"},
                       "dask": {"type": "string"}},
    },
    "JobPath": {
        "type": "object", "required": ["model", "path"], "additionalProperties": False,
        "properties": {"model": {"type": "string"}, "path": {"type": "string"},
                       "version": {"type": "integer", "minimum": 1}, "alias": {"type": "string"},
                       "output_format": {"type": "string", "enum": ["csv", "xlsx", "parquet"]},
                       "strict": {"type": "boolean"}, "publish": {"type": "boolean"},
                       "dask": {"type": "boolean"}},
    },
    "Job": {
        "type": "object", "required": ["id", "status", "rows_done"],
        "properties": {
            "id": {"type": "string"}, "model": {"type": "string"}, "version": {"type": "integer"},
            "status": {"type": "string",
                       "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "rows_done": {"type": "integer"}, "rows_total": {"type": "integer", "nullable": True},
            "rows_failed": {"type": "integer"},
            "rate_rows_per_second": {"type": "number", "nullable": True},
            "eta_seconds": {"type": "number", "nullable": True},
            "output_format": {"type": "string"}, "error": {"type": "string", "nullable": True},
            "result": {"type": "string", "nullable": True}},
    },
    "JobList": {
        "type": "object", "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}},
    },
    "PipelineCreate": {
        "type": "object", "required": ["name", "model", "schedule", "source", "sink"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"}, "model": {"type": "string"},
            "alias": {"type": "string", "default": "production"},
            "schedule": {"type": "string", "description": "cron, e.g. '0 6 * * *'"},
            "source": {"type": "object", "description":
                       '{"kind": "file", "glob": "/data/in/*.csv"} or '
                       '{"kind": "sql", "url": "postgresql+psycopg://...", "query": "SELECT ..."}'},
            "sink": {"type": "object", "description":
                     '{"kind": "table"} (published for OData) or '
                     '{"kind": "file", "path": "/data/out/scored.csv", "format": "csv"}'}},
        "example": {"name": "nightly-churn", "model": "churn", "schedule": "0 6 * * *",
                    "source": {"kind": "file", "glob": "/data/in/customers-*.csv"},
                    "sink": {"kind": "table"}},
    },
    "Pipeline": {
        "type": "object", "required": ["name", "model", "schedule"],
        "properties": {"name": {"type": "string"}, "model": {"type": "string"},
                       "alias": {"type": "string"}, "schedule": {"type": "string"},
                       "source": {"type": "object"}, "sink": {"type": "object"},
                       "enabled": {"type": "boolean"}, "next_run_at": {"type": "string"},
                       "last_run_at": {"type": "string", "nullable": True},
                       "last_job_id": {"type": "string", "nullable": True},
                       "last_error": {"type": "string", "nullable": True}},
    },
    "PipelineList": {
        "type": "object", "required": ["pipelines"],
        "properties": {"pipelines": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Pipeline"}}},
    },
    "Health": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string"}, "version": {"type": "string"},
                       "models": {"type": "object"}},
    },
}
