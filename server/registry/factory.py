"""Opening the registry for a set of settings. Kept apart from the application factory so that
commands which only touch the registry (keys, policies, promotions) do not import the scoring
stack: ``scorebridge keys create`` took ~3 s, nearly all of it importing scikit-learn."""
from __future__ import annotations

from ..config import Settings
from .database import make_engine
from .service import Registry
from .store import ArtifactStore


def build_registry(settings: Settings) -> Registry:
    """The registry for these settings (schema migrated to the newest revision)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    # the worker's request threads, and the deployment worker, job runner and flushes beside them
    return Registry(make_engine(settings.resolved_database_url, settings.threads + 4),
                    ArtifactStore(settings.artifacts_dir), webhook_urls=settings.webhook_urls)
