"""The two ways the CLI reaches a registry: directly (``SCOREBRIDGE_HOME``) or over HTTP (``--url``).

Both expose the same methods and return the API's public JSON forms, so every command prints the same
thing whichever way it ran.
"""
from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Protocol

import pandas as pd
import requests

from .codecs.file_reader import frame_to_table
from .types import ScoreOptions
from .config import Settings
from .errors import ScoreBridgeError


class Backend(Protocol):
    def list_models(self) -> list[dict[str, Any]]: ...
    def get_model(self, name: str) -> dict[str, Any]: ...
    def register(self, name: str, artifact: Path, **kw: Any) -> dict[str, Any]: ...
    def set_alias(self, name: str, alias: str, version: int, reason: str) -> dict[str, Any]: ...
    def rollback(self, name: str, reason: str) -> dict[str, Any]: ...
    def events(self, name: str | None, limit: int) -> list[dict[str, Any]]: ...
    def score_frame(self, name: str, frame: pd.DataFrame, version: int | None,
                    alias: str | None) -> dict[str, Any]: ...
    def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def report(self, name: str, fmt: str) -> bytes: ...
    def score_workbook(self, name: str, data: bytes, version: int | None) -> tuple[bytes, int]: ...
    def create_key(self, scopes: list[str], name: str) -> dict[str, Any]: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...


class LocalBackend:
    def __init__(self, settings: Settings, actor: str = "cli") -> None:
        self.settings = settings
        self.actor = actor

    @cached_property
    def registry(self):  # type: ignore[no-untyped-def]
        from .registry.factory import build_registry

        return build_registry(self.settings)

    @cached_property
    def scorer(self):  # type: ignore[no-untyped-def]
        from .scoring.scorer import Scorer

        return Scorer(self.registry, self.settings)

    @cached_property
    def keys(self):  # type: ignore[no-untyped-def]
        from .auth.keys import KeyStore

        return KeyStore(self.registry)

    def list_models(self) -> list[dict[str, Any]]:
        return [m.summary() for m in self.registry.list_models()]

    def get_model(self, name: str) -> dict[str, Any]:
        return self.registry.get_model(name).public()

    def register(self, name: str, artifact: Path, **kw: Any) -> dict[str, Any]:
        from .codecs.file_reader import read_frame
        from .deploy.registration import RegistrationRequest, register

        sample = read_frame(kw["sample"]) if kw.get("sample") else None
        holdout = read_frame(kw["holdout"]) if kw.get("holdout") else None
        req = RegistrationRequest(
            name=name, artifact=artifact, filename=artifact.name, actor=self.actor,
            sample=sample, holdout=holdout, target=kw.get("target"),
            metrics=kw.get("metrics") or {}, tags=kw.get("tags") or {},
            description=kw.get("description") or "", trust_pickle=kw.get("trust_pickle", False),
            may_trust_pickle=True)  # local access to the registry is admin access
        info = register(self.registry, self.settings, req)
        self.process_pipeline()
        return self.registry.get_version(name, info.version).public()

    def process_pipeline(self) -> None:
        """Run the deployment pipeline here for what is pending (a running server would too;
        claims make sure each version is processed once)."""
        from .deploy.release import Releases as Pipeline

        Pipeline(self.registry, self.scorer.cache, f"cli:{os.getpid()}").process_pending()

    def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        from .deploy.policy import Policy

        policy = Policy.from_dict(self.registry.get_model(name).policy).merged(changes)
        return self.registry.set_policy(name, policy.to_dict(), actor=self.actor)

    def set_alias(self, name: str, alias: str, version: int, reason: str) -> dict[str, Any]:
        return self.registry.set_alias(name, alias, version, actor=self.actor,
                                       reason=reason).public()

    def rollback(self, name: str, reason: str) -> dict[str, Any]:
        return self.registry.rollback(name, actor=self.actor, reason=reason).public()

    def events(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        return [e.public() for e in self.registry.events(name, limit=limit)]

    def score_frame(self, name: str, frame: pd.DataFrame, version: int | None,
                    alias: str | None, malformed: Mapping[int, str] | None = None,
                    ) -> dict[str, Any]:
        from .codecs.scores import result_to_json

        result = self.scorer.score(name, frame_to_table(frame, malformed), version=version,
                                   alias=alias, options=ScoreOptions(errors="row"))
        return result_to_json(result)

    def report(self, name: str, fmt: str) -> bytes:
        from .reports.model_report import report_data, report_xlsx
        from .reports.render import render

        base = self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        data = report_data(self.registry, name, base, self.settings.excel_namespace)
        return report_xlsx(data) if fmt == "xlsx" else render("report.html", r=data).encode()

    def score_workbook(self, name: str, data: bytes, version: int | None) -> tuple[bytes, int]:
        from .codecs.workbook import score_workbook

        model = self.scorer.model_for(name, version)
        out, result = score_workbook(data, model.signature, name, lambda table: self.scorer.score(
            name, table, version=model.version, options=ScoreOptions(errors="row")))
        return out, result.version

    def create_key(self, scopes: list[str], name: str) -> dict[str, Any]:
        plain, info = self.keys.create(scopes, name)
        return {**info.public(), "key": plain}

    def list_keys(self) -> list[dict[str, Any]]:
        return [k.public() for k in self.keys.list()]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.keys.revoke(key_id).public()


class RemoteError(ScoreBridgeError):
    """A problem document returned by a remote server, re-raised on the client side."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail") or body.get("title") or f"HTTP {status}")
        self.status = status
        self.title = body.get("title", "Error")
        self.errors = []


class RemoteBackend:
    def __init__(self, url: str, key: str | None, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["X-ScoreBridge-Client"] = "cli"
        if key:
            self.session.headers["X-API-Key"] = key
        self.timeout = timeout

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        """One API request; problems (unreachable server, 4xx/5xx) become a RemoteError that
        carries the server's problem detail."""
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise RemoteError(503, {"detail": f"cannot reach {self.url} ({type(exc).__name__})"})
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"detail": resp.text[:200]}
            raise RemoteError(resp.status_code, body if isinstance(body, dict) else {})
        return resp

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """An API call answering JSON."""
        return self.request(method, path, **kw).json()

    def download(self, path: str) -> bytes:
        return self.request("GET", path).content

    def list_models(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/models")["models"]

    def get_model(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/models/{name}")

    def register(self, name: str, artifact: Path, **kw: Any) -> dict[str, Any]:
        meta = {k: kw[k] for k in ("description", "tags", "metrics", "target", "trust_pickle")
                if kw.get(k)}
        files: dict[str, Any] = {"file": (artifact.name, open(artifact, "rb"))}
        for field in ("sample", "holdout"):
            if kw.get(field):
                path = Path(kw[field])
                files[field] = (path.name, open(path, "rb"))
        try:
            return self.call("POST", f"/api/v1/models/{name}/versions", files=files,
                              data={"metadata": json.dumps(meta)})
        finally:
            for _, fh in files.values():
                fh.close()

    def set_alias(self, name: str, alias: str, version: int, reason: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/models/{name}/aliases/{alias}",
                          json={"version": version, "reason": reason})

    def rollback(self, name: str, reason: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/models/{name}/rollback", json={"reason": reason})

    def events(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if name:
            params["model"] = name
        return self.call("GET", "/api/v1/events", params=params)["events"]

    def score_frame(self, name: str, frame: pd.DataFrame, version: int | None,
                    alias: str | None, malformed: Mapping[int, str] | None = None,
                    ) -> dict[str, Any]:
        # malformed lines travel as empty rows; the caller puts their reason in the output
        table = frame_to_table(frame)
        body = {"columns": {n: list(c) for n, c in zip(table.names or [], table.columns)},
                "options": {"errors": "row"}}
        params = {k: v for k, v in (("version", version), ("alias", alias)) if v}
        return self.call("POST", f"/api/v1/models/{name}/predict", json=body, params=params)

    def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/api/v1/models/{name}/policy", json=changes)

    def report(self, name: str, fmt: str) -> bytes:
        return self.download(f"/models/{name}/report" + (".xlsx" if fmt == "xlsx" else ""))

    def score_workbook(self, name: str, data: bytes, version: int | None) -> tuple[bytes, int]:
        resp = self.request("POST", f"/api/v1/models/{name}/score-workbook",
                            files={"file": ("workbook.xlsx", data)},
                            params={"version": version} if version else {})
        return resp.content, int(resp.headers.get("X-Model-Version", 0))

    def create_key(self, scopes: list[str], name: str) -> dict[str, Any]:
        return self.call("POST", "/api/v1/keys", json={"scopes": scopes, "name": name})

    def list_keys(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/keys")["keys"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/api/v1/keys/{key_id}")
