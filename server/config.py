"""Settings, read once from ``SCOREBRIDGE_*`` environment variables.

Every setting has a documented default (see ``docs/configuration.md``) so that a fresh checkout runs
with nothing configured. Tests build a :class:`Settings` directly instead of touching the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

PREFIX = "SCOREBRIDGE_"


def _flag(value: str) -> bool:
    return value.strip().lower() not in {"0", "off", "false", "no", ""}


# where Office on the web runs (Excel's own pages at *.officeapps.live.com, Microsoft 365 at
# *.office.com, *.microsoft365.com and *.cloud.microsoft, SharePoint-hosted workbooks): these pages
# load the add-in's functions.json and functions.js cross-origin and frame its task pane
OFFICE_WEB_ORIGINS = ("https://*.officeapps.live.com", "https://*.office.com", "https://*.office365.com",
                      "https://*.sharepoint.com", "https://*.microsoft365.com", "https://*.cloud.microsoft")

# asymmetric signatures only: an issuer's public key can never double as an HMAC secret
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

DEFAULT_RATE_LIMITS = {"score": "60000/minute", "read": "6000/minute", "deploy": "600/minute",
                       "admin": "600/minute"}


def _pairs(value: str) -> dict[str, str]:
    """``score=100/second,read=10/second`` as a dict."""
    out = {}
    for part in _csv(value):
        key, _, limit = part.partition("=")
        out[key.strip()] = limit.strip()
    return out


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Everything the server, the CLI and the workers need to know about their environment."""

    home: Path = Path("./var")
    database_url: str = ""
    auth: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = 16
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    public_url: str = ""
    max_request_bytes: int = 16 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    max_rows: int = 100_000
    model_cache_size: int = 8
    deploy_refresh_seconds: float = 1.0
    trusted_types: tuple[str, ...] = ()
    log_level: str = "INFO"
    background: bool = True
    tick_seconds: float = 0.5
    watch_dir: Path | None = None
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = ""
    claim_timeout_seconds: float = 300.0
    default_model: str = ""
    excel_namespace: str = "ML"
    excel_addin_dir: Path | None = None
    excel_origins: tuple[str, ...] = OFFICE_WEB_ORIGINS
    excel_addin_id: str = ""
    excel_allow_local_http: bool = False
    odata_page_size: int = 1000
    prediction_log_rate: float = 0.2
    prediction_log_days: float = 30.0
    prediction_log_max_rows: int = 1_000_000
    prediction_log_rows_per_second: float = 50.0
    traffic_minute_days: float = 7.0
    traffic_days: float = 400.0
    drift_days: float = 180.0
    webhook_delivery_days: float = 30.0
    outcome_days: float = 400.0  # join rows kept for outcome tracking
    rate_limiting: bool = True
    rate_limits: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    rate_limit_anonymous: str = "600/minute"
    auth_failure_limit: str = "60/minute"
    rate_limit_storage: str = ""
    job_roots: tuple[str, ...] = ()
    job_retention_hours: float = 72.0
    dask_scheduler: str = ""
    compile: bool = True
    native_trees: bool = True
    native_trees_max_nodes: int = 150_000
    cors_origins: tuple[str, ...] = ()
    preload: bool = False
    micro_batching: bool = True
    batch_wait_ms: float = 2.0
    batch_max_rows: int = 256
    batch_request_rows: int = 16
    # sign-in with the organisation's OpenID provider (docs/sign-in.md)
    oidc_issuer: str = ""
    oidc_audience: tuple[str, ...] = ()
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scope_map: str = ""
    oidc_models_claim: str = ""
    oidc_name_claim: str = "name"
    oidc_algorithms: tuple[str, ...] = OIDC_ALGORITHMS
    oidc_leeway_seconds: float = 60.0
    oidc_jwks_lifetime_seconds: float = 900.0
    oidc_jwks_cooldown_seconds: float = 30.0
    oidc_authorization_uri: str = ""
    oidc_login_scopes: str = "openid profile email"
    oidc_session_hours: float = 8.0
    # what clients ask the issuer for to call this API (Power Query's Aad scope): ".default"
    # asks Entra ID for every scope the API exposes that the client was pre-authorised for
    oidc_resource_scopes: tuple[str, ...] = (".default",)
    # how long keys and people checked before a database outage keep working during it (<= 300)
    auth_stale_seconds: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read settings from ``environ`` (default: ``os.environ``); keyword overrides win."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(PREFIX + name, default)

        settings = cls(
            home=Path(get("HOME", "./var")),
            database_url=get("DATABASE_URL", ""),
            auth=_flag(get("AUTH", "on")),
            host=get("HOST", "127.0.0.1"),
            port=int(get("PORT", "8000")),
            workers=int(get("WORKERS", "2")),
            threads=int(get("THREADS", "16")),
            tls_certfile=Path(get("TLS_CERTFILE", "")) if get("TLS_CERTFILE", "") else None,
            tls_keyfile=Path(get("TLS_KEYFILE", "")) if get("TLS_KEYFILE", "") else None,
            public_url=get("PUBLIC_URL", "").rstrip("/"),
            max_request_bytes=int(get("MAX_REQUEST_BYTES", str(16 * 1024 * 1024))),
            max_upload_bytes=int(get("MAX_UPLOAD_BYTES", str(512 * 1024 * 1024))),
            max_rows=int(get("MAX_ROWS", "100000")),
            model_cache_size=int(get("MODEL_CACHE_SIZE", "8")),
            deploy_refresh_seconds=float(get("DEPLOY_REFRESH_SECONDS", "1.0")),
            trusted_types=_csv(get("TRUSTED_TYPES", "")),
            log_level=get("LOG_LEVEL", "INFO").upper(),
            background=_flag(get("BACKGROUND", "on")),
            tick_seconds=float(get("TICK_SECONDS", "0.5")),
            watch_dir=Path(get("WATCH_DIR", "")) if get("WATCH_DIR", "") else None,
            webhook_urls=_csv(get("WEBHOOK_URLS", "")),
            webhook_secret=get("WEBHOOK_SECRET", ""),
            claim_timeout_seconds=float(get("CLAIM_TIMEOUT_SECONDS", "300")),
            default_model=get("DEFAULT_MODEL", ""),
            excel_namespace=get("EXCEL_NAMESPACE", "ML"),
            excel_addin_dir=Path(get("EXCEL_ADDIN_DIR", "")) if get("EXCEL_ADDIN_DIR", "") else None,
            excel_origins=tuple(o.rstrip("/") for o in _csv(get("EXCEL_ORIGINS",
                                                                 ",".join(OFFICE_WEB_ORIGINS)))),
            excel_addin_id=get("EXCEL_ADDIN_ID", "").strip(),
            excel_allow_local_http=_flag(get("EXCEL_ALLOW_LOCAL_HTTP", "off")),
            odata_page_size=int(get("ODATA_PAGE_SIZE", "1000")),
            prediction_log_rate=float(get("PREDICTION_LOG_RATE", "0.2")),
            prediction_log_days=float(get("PREDICTION_LOG_DAYS", "30")),
            prediction_log_max_rows=int(get("PREDICTION_LOG_MAX_ROWS", "1000000")),
            prediction_log_rows_per_second=float(get("PREDICTION_LOG_ROWS_PER_SECOND", "50")),
            traffic_minute_days=float(get("TRAFFIC_MINUTE_DAYS", "7")),
            traffic_days=float(get("TRAFFIC_DAYS", "400")),
            drift_days=float(get("DRIFT_DAYS", "180")),
            webhook_delivery_days=float(get("WEBHOOK_DELIVERY_DAYS", "30")),
            outcome_days=float(get("OUTCOME_DAYS", "400")),
            rate_limiting=_flag(get("RATE_LIMITING", "on")),
            rate_limits={**DEFAULT_RATE_LIMITS, **_pairs(get("RATE_LIMITS", ""))},
            rate_limit_anonymous=get("RATE_LIMIT_ANONYMOUS", "600/minute"),
            auth_failure_limit=get("AUTH_FAILURE_LIMIT", "60/minute"),
            rate_limit_storage=get("RATE_LIMIT_STORAGE", ""),
            job_roots=_csv(get("JOB_ROOTS", "")),
            job_retention_hours=float(get("JOB_RETENTION_HOURS", "72")),
            dask_scheduler=get("DASK_SCHEDULER", ""),
            compile=_flag(get("COMPILE", "on")),
            native_trees=_flag(get("NATIVE_TREES", "on")),
            native_trees_max_nodes=int(get("NATIVE_TREES_MAX_NODES", "150000")),
            cors_origins=tuple(o.rstrip("/") for o in _csv(get("CORS_ORIGINS", ""))),
            preload=_flag(get("PRELOAD", "off")),
            micro_batching=_flag(get("MICRO_BATCHING", "on")),
            batch_wait_ms=float(get("BATCH_WAIT_MS", "2")),
            batch_max_rows=int(get("BATCH_MAX_ROWS", "256")),
            batch_request_rows=int(get("BATCH_REQUEST_ROWS", "16")),
            oidc_issuer=get("OIDC_ISSUER", "").strip(),
            oidc_audience=_csv(get("OIDC_AUDIENCE", "")),
            oidc_client_id=get("OIDC_CLIENT_ID", "").strip(),
            oidc_client_secret=get("OIDC_CLIENT_SECRET", ""),
            oidc_scope_map=get("OIDC_SCOPE_MAP", ""),
            oidc_models_claim=get("OIDC_MODELS_CLAIM", "").strip(),
            oidc_name_claim=get("OIDC_NAME_CLAIM", "name").strip(),
            oidc_algorithms=_csv(get("OIDC_ALGORITHMS", ",".join(OIDC_ALGORITHMS))),
            oidc_leeway_seconds=float(get("OIDC_LEEWAY_SECONDS", "60")),
            oidc_jwks_lifetime_seconds=float(get("OIDC_JWKS_LIFETIME_SECONDS", "900")),
            oidc_jwks_cooldown_seconds=float(get("OIDC_JWKS_COOLDOWN_SECONDS", "30")),
            oidc_authorization_uri=get("OIDC_AUTHORIZATION_URI", "").strip(),
            oidc_login_scopes=get("OIDC_LOGIN_SCOPES", "openid profile email").strip(),
            oidc_session_hours=float(get("OIDC_SESSION_HOURS", "8")),
            oidc_resource_scopes=_csv(get("OIDC_RESOURCE_SCOPES", ".default").replace(" ", ",")),
            auth_stale_seconds=min(300.0, float(get("AUTH_STALE_SECONDS", "300"))),
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def resolved_database_url(self) -> str:
        """The registry database; SQLite inside ``home`` unless a URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'registry.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"
