"""The two ways the CLI reaches a registry: directly (``SCOREBRIDGE_HOME``) or over HTTP (``--url``).

Both expose the same methods and return the API's public JSON forms, so every command prints the same
thing whichever way it ran.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol
from urllib.parse import quote

import pandas as pd
import requests

from .auth.tokens import looks_like_jwt
from .codecs.file_reader import frame_to_table
from .config import Settings
from .errors import ScoreBridgeError
from .types import ScoreOptions

if TYPE_CHECKING:
    from .services import Services

POLL_SECONDS = 0.5


class Backend(Protocol):
    def list_models(self) -> list[dict[str, Any]]: ...
    def get_model(self, name: str) -> dict[str, Any]: ...
    def register(self, name: str, artifact: Path, **kw: Any) -> dict[str, Any]: ...
    def set_alias(self, name: str, alias: str, version: int, reason: str) -> dict[str, Any]: ...
    def rollback(self, name: str, reason: str) -> dict[str, Any]: ...
    def decide_approval(self, name: str, version: int, approve: bool,
                        reason: str) -> dict[str, Any]: ...
    def events(self, name: str | None, limit: int) -> list[dict[str, Any]]: ...
    def score_frame(self, name: str, frame: pd.DataFrame, version: int | None,
                    alias: str | None, malformed: Mapping[int, str] | None = None,
                    ) -> dict[str, Any]: ...
    def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def report(self, name: str, fmt: str, version: int | None = None) -> bytes: ...
    def score_workbook(self, name: str, data: bytes, version: int | None) -> tuple[bytes, int]: ...
    def create_key(self, scopes: list[str], name: str) -> dict[str, Any]: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    def disable_person(self, subject: str, reason: str) -> dict[str, Any]: ...
    def enable_person(self, subject: str) -> None: ...
    def disabled_people(self) -> list[dict[str, Any]]: ...
    def submit_job(self, name: str, source: Path, output_format: str, strict: bool,
                   publish: bool) -> dict[str, Any]: ...
    def get_job(self, job_id: str) -> dict[str, Any]: ...
    def follow_job(self, job_id: str) -> Iterator[dict[str, Any]]: ...
    def list_jobs(self) -> list[dict[str, Any]]: ...
    def cancel_job(self, job_id: str) -> dict[str, Any]: ...
    def save_job_result(self, job_id: str, target: Path) -> None: ...
    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]: ...
    def list_schedules(self) -> list[dict[str, Any]]: ...
    def run_schedule(self, name: str) -> dict[str, Any]: ...
    def delete_schedule(self, name: str) -> None: ...
    def record_outcomes(self, name: str, csv_chunk: bytes) -> dict[str, Any]: ...
    def outcome_quality(self, name: str, params: dict[str, Any]) -> dict[str, Any]: ...
    def traffic_by_user(self, name: str, since: datetime | None) -> dict[str, Any]: ...
    def set_monitoring(self, name: str, changes: dict[str, Any]) -> dict[str, Any]: ...
    def outcome_sources(self, name: str) -> dict[str, Any]: ...
    def run_outcome_sources(self, name: str, source: str | None) -> dict[str, Any]: ...


def poll_job(get: Callable[[], dict[str, Any]], job: dict[str, Any],
             every: float = POLL_SECONDS) -> Iterator[dict[str, Any]]:
    """A job's states, from ``job`` until it has ended (queued or running ones are asked again)."""
    yield job
    while job["status"] in ("queued", "running"):
        time.sleep(every)
        job = get()
        yield job


class LocalBackend:
    """The services of ``SCOREBRIDGE_HOME``, in this process (local access is admin access)."""

    def __init__(self, settings: Settings, actor: str = "cli") -> None:
        self.settings = settings
        self.actor = actor
        self.worker = f"cli:{os.getpid()}"

    @cached_property
    def services(self) -> Services:
        from .services import build_services

        return build_services(self.settings)

    def list_models(self) -> list[dict[str, Any]]:
        return [m.summary() for m in self.services.registry.list_models()]

    def get_model(self, name: str) -> dict[str, Any]:
        return self.services.registry.get_model(name).public()

    def register(self, name: str, artifact: Path, **kw: Any) -> dict[str, Any]:
        """Register, then release it here (gates and policy; no server needed)."""
        from .codecs.file_reader import read_frame
        from .deploy.registration import RegistrationRequest, outcome_settings

        sample = read_frame(kw["sample"]) if kw.get("sample") else None
        holdout = read_frame(kw["holdout"]) if kw.get("holdout") else None
        req = RegistrationRequest(
            name=name, artifact=artifact, filename=artifact.name, actor=self.actor,
            sample=sample, holdout=holdout, target=kw.get("target"),
            metrics=kw.get("metrics") or {}, tags=kw.get("tags") or {},
            description=kw.get("description") or "", trust_pickle=kw.get("trust_pickle", False),
            may_trust_pickle=True,  # local access to the registry is admin access
            outcomes=outcome_settings(kw.get("track_outcomes", False), kw.get("outcome_key")))
        info = self.services.register(req)
        self.services.deploy_pending(self.worker)
        return self.services.registry.get_version(name, info.version).public()

    def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.services.set_policy(name, changes, actor=self.actor)

    def set_alias(self, name: str, alias: str, version: int, reason: str) -> dict[str, Any]:
        return self.services.set_alias(name, alias, version, actor=self.actor,
                                       reason=reason).public()

    def decide_approval(self, name: str, version: int, approve: bool,
                        reason: str) -> dict[str, Any]:
        return self.services.decide_approval(name, version, approve=approve, actor=self.actor,
                                             reason=reason)

    def rollback(self, name: str, reason: str) -> dict[str, Any]:
        return self.services.rollback(name, actor=self.actor, reason=reason).public()

    def events(self, name: str | None, limit: int) -> list[dict[str, Any]]:
        return [e.public() for e in self.services.registry.events(name, limit=limit)]

    def score_frame(self, name: str, frame: pd.DataFrame, version: int | None,
                    alias: str | None, malformed: Mapping[int, str] | None = None,
                    ) -> dict[str, Any]:
        from .codecs.scores import result_to_json

        result = self.services.scorer.score(name, frame_to_table(frame, malformed),
                                            version=version, alias=alias,
                                            options=ScoreOptions(errors="row"))
        return result_to_json(result)

    def report(self, name: str, fmt: str, version: int | None = None) -> bytes:
        from .reports.model_report import report_data, report_xlsx
        from .reports.render import render

        base = self.settings.public_url or f"http://{self.settings.host}:{self.settings.port}"
        data = report_data(self.services.registry, name, base, self.settings.excel_namespace,
                           version=version, load=self.services.scorer.cache.get)
        return report_xlsx(data) if fmt == "xlsx" else render("report.html", r=data).encode()

    def score_workbook(self, name: str, data: bytes, version: int | None) -> tuple[bytes, int]:
        from .codecs.workbook import score_workbook

        scorer = self.services.scorer
        model = scorer.model_for(name, version)
        out, result = score_workbook(data, model.signature, name, lambda table: scorer.score(
            name, table, version=model.version, options=ScoreOptions(errors="row")))
        return out, result.version

    def create_key(self, scopes: list[str], name: str) -> dict[str, Any]:
        plain, info = self.services.create_key(scopes, name, actor=self.actor)
        return {**info.public(), "key": plain}

    def list_keys(self) -> list[dict[str, Any]]:
        return [k.public() for k in self.services.keys.list()]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.services.revoke_key(key_id, actor=self.actor).public()

    def disable_person(self, subject: str, reason: str) -> dict[str, Any]:
        return self.services.disable_person(subject, reason=reason, actor=self.actor).public()

    def enable_person(self, subject: str) -> None:
        self.services.enable_person(subject, actor=self.actor)

    def disabled_people(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.services.disabled_people()]

    def submit_job(self, name: str, source: Path, output_format: str, strict: bool,
                   publish: bool) -> dict[str, Any]:
        """Queue the job in the local registry (the input is copied into its job folder)."""
        return self.services.submit_job(name, source, actor=self.actor,
                                        output_format=output_format, strict=strict,
                                        publish=publish).public()

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.services.jobs.get(job_id).public()

    def follow_job(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Score the job in this process while following it, unless a server's job runner
        (on the same registry) claimed it first; then just follow it."""
        thread = self.services.run_job_here(job_id, self.worker)
        yield from poll_job(lambda: self.get_job(job_id), self.get_job(job_id))
        if thread is not None:
            thread.join()

    def list_jobs(self) -> list[dict[str, Any]]:
        return [j.public() for j in self.services.jobs.list()]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self.services.cancel_job(job_id).public()

    def save_job_result(self, job_id: str, target: Path) -> None:
        self.services.save_job_result(job_id, target)

    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.services.create_schedule(
            spec["name"], spec["model"], spec["schedule"], spec["source"], spec["sink"],
            actor=self.actor, alias=spec["alias"], may_query_sql=True).public()

    def list_schedules(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.services.schedules.list()]

    def run_schedule(self, name: str) -> dict[str, Any]:
        return self.services.run_schedule(name).public()

    def delete_schedule(self, name: str) -> None:
        self.services.delete_schedule(name)


    def record_outcomes(self, name: str, csv_chunk: bytes) -> dict[str, Any]:
        from .codecs.outcomes import outcomes_from_csv

        key = (self.services.registry.get_model(name).monitoring.get("outcomes") or {}).get("key")
        return self.services.record_outcomes(name, outcomes_from_csv(csv_chunk, key))

    def outcome_quality(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.services.outcome_quality(name, **params)

    def traffic_by_user(self, name: str, since: datetime | None) -> dict[str, Any]:
        return self.services.traffic_by_user(name, since)

    def set_monitoring(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.services.set_monitoring(name, changes, actor=self.actor,
                                            may_query_sql=True)  # local access is admin access

    def outcome_sources(self, name: str) -> dict[str, Any]:
        return self.services.list_outcome_sources(name)

    def run_outcome_sources(self, name: str, source: str | None) -> dict[str, Any]:
        return self.services.run_outcome_sources(name, source)


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
            # a sign-in token (JWT form) goes as a bearer token; a key as X-API-Key
            self.session.headers.update({"Authorization": f"Bearer {key}"} if looks_like_jwt(key)
                                        else {"X-API-Key": key})
        self.timeout = timeout

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        """One API request; problems (unreachable server, 4xx/5xx) become a RemoteError that
        carries the server's problem detail."""
        try:
            resp = self.session.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise RemoteError(503, {"detail": f"cannot reach {self.url} ({type(exc).__name__})"}) \
                from None
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
        meta = {k: kw[k] for k in ("description", "tags", "metrics", "target", "trust_pickle",
                                   "track_outcomes", "outcome_key") if kw.get(k)}
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

    def decide_approval(self, name: str, version: int, approve: bool,
                        reason: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/models/{name}/versions/{version}/approval",
                         json={"decision": "approve" if approve else "refuse", "reason": reason})

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

    def report(self, name: str, fmt: str, version: int | None = None) -> bytes:
        return self.download(f"/models/{name}/report" + (".xlsx" if fmt == "xlsx" else "")
                             + (f"?version={int(version)}" if version is not None else ""))

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

    def disable_person(self, subject: str, reason: str) -> dict[str, Any]:
        return self.call("PUT", f"/api/v1/people/disabled/{quote(subject, safe='')}",
                         json={"reason": reason})

    def enable_person(self, subject: str) -> None:
        self.call("DELETE", f"/api/v1/people/disabled/{quote(subject, safe='')}")

    def disabled_people(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/people/disabled")["people"]

    def submit_job(self, name: str, source: Path, output_format: str, strict: bool,
                   publish: bool) -> dict[str, Any]:
        with open(source, "rb") as fh:
            return self.call("POST", "/api/v1/jobs", files={"file": (source.name, fh)},
                             data={"model": name, "output_format": output_format,
                                   "strict": str(strict).lower(),
                                   "publish": str(publish).lower()})

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/jobs/{job_id}")

    def follow_job(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The server's job runner scores it; this follows its progress."""
        return poll_job(lambda: self.get_job(job_id), self.get_job(job_id))

    def list_jobs(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/jobs")["jobs"]

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/api/v1/jobs/{job_id}")

    def save_job_result(self, job_id: str, target: Path) -> None:
        target.write_bytes(self.download(f"/api/v1/jobs/{job_id}/result"))

    def create_schedule(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/api/v1/pipelines", json=spec)

    def list_schedules(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/pipelines")["pipelines"]

    def run_schedule(self, name: str) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/pipelines/{name}/run")

    def delete_schedule(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/pipelines/{name}")

    def record_outcomes(self, name: str, csv_chunk: bytes) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/models/{name}/outcomes", data=csv_chunk,
                         headers={"Content-Type": "text/csv"})

    def outcome_quality(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        query = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                 for k, v in params.items() if v is not None}
        return self.call("GET", f"/api/v1/models/{name}/outcomes/quality", params=query)

    def traffic_by_user(self, name: str, since: datetime | None) -> dict[str, Any]:
        query = {"since": since.isoformat()} if since else {}
        return self.call("GET", f"/api/v1/models/{quote(name, safe='')}/traffic/users",
                         params=query)

    def set_monitoring(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/api/v1/models/{name}/monitoring", json=changes)

    def outcome_sources(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/api/v1/models/{name}/outcomes/sources")

    def run_outcome_sources(self, name: str, source: str | None) -> dict[str, Any]:
        return self.call("POST", f"/api/v1/models/{name}/outcomes/sources/run",
                         params={"source": source} if source else None)
