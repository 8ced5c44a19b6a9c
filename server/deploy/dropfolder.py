"""The watched drop folder (``SCOREBRIDGE_WATCH_DIR``): copy a model in, and it is registered.

Layout: ``NAME.skops`` (or ``NAME.onnx``, or an MLflow model zipped as ``NAME.zip``; pickles are
never taken from the folder, as they need an admin's trust) plus optional sidecars ``NAME.json``
(metadata: description, tags, metrics, target), ``NAME.sample.csv`` and ``NAME.holdout.csv``.
A file is taken once its size has not changed for a moment (so half-copied files wait). Files are
claimed by renaming them into ``processing/``, so each is registered by exactly one worker;
afterwards they move to ``done/`` or, with a ``.error.txt`` saying why, to ``failed/``. A crash
mid-way leaves them in ``processing/``, from where they are taken up again, unless a version with
the same checksum was already recorded.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

from ..codecs.file_reader import read_frame
from ..config import Settings
from ..errors import ScoreBridgeError
from ..registry.service import Registry, validate_name
from ..scoring.loader import sha256_file
from .registration import RegistrationRequest, register

log = logging.getLogger(__name__)
SETTLE_SECONDS = 1.0
SIDECARS = (".json", ".sample.csv", ".holdout.csv")
ARTIFACTS = (".skops", ".onnx", ".zip")  # the formats that register without an admin's trust


class DropFolder:
    def __init__(self, root: Path, registry: Registry, settings: Settings) -> None:
        self.root = root
        self.registry = registry
        self.settings = settings
        self._sizes: dict[Path, tuple[int, float]] = {}
        for sub in ("processing", "done", "failed"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def _settled(self, path: Path) -> bool:
        size = path.stat().st_size
        seen = self._sizes.get(path)
        now = time.monotonic()
        if seen is None or seen[0] != size:
            self._sizes[path] = (size, now)
            return False
        return now - seen[1] >= SETTLE_SECONDS

    def scan(self) -> list[str]:
        """Register what has settled; returns 'name: outcome' lines."""
        outcomes = []
        for claimed in _artifacts(self.root / "processing", "*/*"):
            outcomes.append(self._register(claimed))
        for artifact in _artifacts(self.root, "*"):
            name = artifact.stem
            try:
                if not self._settled(artifact):
                    continue
            except FileNotFoundError:
                continue
            batch = self.root / "processing" / f"{int(time.time())}-{uuid.uuid4().hex[:8]}"
            batch.mkdir()
            try:
                os.rename(artifact, batch / artifact.name)  # the claim: one worker wins
            except FileNotFoundError:
                batch.rmdir()
                continue
            self._sizes.pop(artifact, None)
            for suffix in SIDECARS:
                side = self.root / f"{name}{suffix}"
                if side.exists():
                    os.rename(side, batch / side.name)
            outcomes.append(self._register(batch / artifact.name))
        return outcomes

    def _register(self, artifact: Path) -> str:
        batch, name = artifact.parent, artifact.stem
        try:
            validate_name(name)
            meta = self._metadata(batch / f"{name}.json")
            sha = sha256_file(artifact)
            if self._already_recorded(name, sha, batch.name):
                outcome = "already registered"
            else:
                sample = batch / f"{name}.sample.csv"
                holdout = batch / f"{name}.holdout.csv"
                info = register(self.registry, self.settings, RegistrationRequest(
                    name=name, artifact=artifact, filename=artifact.name,
                    actor="drop folder", sample=read_frame(sample) if sample.exists() else None,
                    holdout=read_frame(holdout) if holdout.exists() else None,
                    target=meta.get("target"), metrics=meta.get("metrics", {}),
                    tags={**{str(k): str(v) for k, v in meta.get("tags", {}).items()},
                          "dropped": batch.name},
                    description=str(meta.get("description", ""))))
                outcome = f"registered version {info.version}"
            os.rename(batch, self.root / "done" / batch.name)
        except (ScoreBridgeError, ValueError, OSError) as exc:
            detail = exc.detail if isinstance(exc, ScoreBridgeError) else str(exc)
            (batch / f"{name}.error.txt").write_text(detail + "\n")
            os.rename(batch, self.root / "failed" / batch.name)
            self.registry.record_event(None, "drop_failed", actor="drop folder",
                                       file=artifact.name, reason=detail[:300])
            outcome = f"failed: {detail}"
        log.info("drop folder: %s: %s", name, outcome)
        return f"{name}: {outcome}"

    def _already_recorded(self, name: str, sha: str, batch: str) -> bool:
        try:
            model = self.registry.get_model(name)
        except ScoreBridgeError:
            return False
        return any(v.sha256 == sha and v.tags.get("dropped") == batch for v in model.versions)

    @staticmethod
    def _metadata(path: Path) -> dict[str, Any]:
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path.name} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path.name} must hold a JSON object")
        return meta


def _artifacts(folder: Path, pattern: str) -> list[Path]:
    """The model files under ``folder`` matching ``pattern``, in name order."""
    return sorted(p for suffix in ARTIFACTS for p in folder.glob(pattern + suffix) if p.is_file())
