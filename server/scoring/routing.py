"""Which version answers a model's requests: this worker's copy of the deployment state.

Deployment state (which version an alias points at, open canaries and shadows) lives in the
database; each worker keeps a copy that it refreshes when the registry's change marker moves, at
most every ``deploy_refresh_seconds``, so a promotion reaches every worker and host quickly while
the scoring path does one cheap query per refresh interval, not per request.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from .. import metrics
from ..errors import NotFound, ScoreBridgeError
from ..registry.deployments import Deployments
from ..registry.service import PRODUCTION, Registry, VersionInfo
from .cache import ModelCache
from .outcome_log import Tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where a model's unpinned requests go: production, plus an optional canary or shadow."""

    production: VersionInfo | None
    canary: tuple[VersionInfo, float] | None = None
    shadow: tuple[VersionInfo, float, float] | None = None  # version, share, tolerance
    log_rate: float = 0.0                                  # prediction log sampling
    tracking: Tracking | None = None                       # outcome tracking (every row)

    def versions(self) -> list[VersionInfo]:
        out = [self.production] if self.production else []
        return out + [part[0] for part in (self.canary, self.shadow) if part is not None]


class DeploymentView:
    """This worker's copy of the deployment state: routes per model and pinned versions.

    It is rebuilt when the registry's change marker moves. The new state's models are loaded
    *before* it replaces the old one, so no request waits for, or sees, a half-loaded model; the
    versions it replaces stay in the cache for an instant rollback.
    """

    def __init__(self, registry: Registry, cache: ModelCache, refresh_seconds: float,
                 log_rate: float = 0.0) -> None:
        self.registry = registry
        self.log_rate = log_rate
        self.deployments = Deployments(registry)
        self.cache = cache
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = 0.0
        self._marker = -1
        self._routes: dict[str, Route] = {}
        self._deployed: dict[str, list[int]] = {}
        self._pinned: dict[tuple[str, str | None, int | None], VersionInfo] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0

    def _build_route(self, name: str) -> Route:
        try:
            production: VersionInfo | None = self.registry.get_version(name)
        except NotFound:
            self.registry.get_model(name)  # unknown model: NotFound names the model
            production = None
        canary = shadow = None
        monitoring = self.registry.get_model(name).monitoring
        log_rate = float(monitoring.get("sample_rate", self.log_rate)) \
            if monitoring.get("log", True) else 0.0
        for r in self.deployments.open_rollouts(name):
            if r.kind == "canary":
                canary = (self.registry.get_version(name, r.version), float(r.config["share"]))
            elif r.kind == "shadow":
                shadow = (self.registry.get_version(name, r.version), float(r.config["share"]),
                          float(r.config.get("tolerance", 1e-6)))
        return Route(production, canary, shadow, log_rate, Tracking.from_monitoring(monitoring))

    def refresh(self, force: bool = False) -> bool:
        """Rebuild the known routes if the registry changed; True when something changed."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return False
        try:
            marker = self.registry.change_marker()
        except SQLAlchemyError as exc:
            # the database is away: keep serving what is deployed, look again next interval
            self._checked = now
            if self._routes:
                log.warning("registry unreachable, serving the last known deployment: %s",
                            type(exc).__name__)
                return False
            raise
        self._checked = now
        if marker == self._marker:
            return False
        with self._lock:
            names = list(self._routes)
        routes = {}
        for name in names:
            try:
                routes[name] = self._build_route(name)
            except NotFound:
                continue
        for route in routes.values():  # load before the switch
            for info in route.versions():
                try:
                    self.cache.get(info)
                except ScoreBridgeError:
                    pass  # reported when a request needs it
        with self._lock:
            self._routes = routes
            self._pinned.clear()
            self._marker = marker
        for name, route in routes.items():
            if route.production is not None:
                metrics.mark_deployed(name, route.production.version,
                                      self._deployed.get(name, []) + [route.production.version])
                self._deployed[name] = [route.production.version]
        return True

    def route(self, name: str) -> Route:
        self.refresh()
        with self._lock:
            route = self._routes.get(name)
        if route is None:
            route = self._build_route(name)
            with self._lock:
                self._routes[name] = route
            if route.production is not None:
                metrics.mark_deployed(name, route.production.version,
                                      [route.production.version])
                self._deployed[name] = [route.production.version]
        return route

    def resolve(self, name: str, version: int | None = None,
                alias: str | None = None) -> VersionInfo:
        self.refresh()
        key = (name, None if version is not None else (alias or PRODUCTION), version)
        with self._lock:
            info = self._pinned.get(key)
        if info is None:
            info = self.registry.get_version(name, version=version, alias=alias)
            with self._lock:
                self._pinned[key] = info
        return info
