"""Content-addressed artifact store under ``SCOREBRIDGE_HOME/artifacts``.

An artifact is written to a temporary name, flushed to disk and renamed into place before the database
row that refers to it is committed, so a version never exists without its file. A crash between the two
leaves only an unreferenced file, which :meth:`ArtifactStore.collect_garbage` removes later.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def key_for(self, sha256: str) -> str:
        return f"sha256/{sha256[:2]}/{sha256}"

    def path(self, key: str) -> Path:
        """The file for ``key``; keys come from our own database, but are checked all the same."""
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError("artifact key outside the store")
        return path

    def put(self, source: Path, sha256: str) -> str:
        """Store ``source`` under its checksum (idempotent) and return the key."""
        key = self.key_for(sha256)
        dest = self.path(key)
        if dest.exists():
            return key
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(source, "rb") as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return key

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` under its checksum and return the key."""
        sha = hashlib.sha256(data).hexdigest()
        key = self.key_for(sha)
        if self.path(key).exists():
            return key
        self.root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as fh:
            fh.write(data)
        try:
            return self.put(Path(fh.name), sha)
        finally:
            Path(fh.name).unlink(missing_ok=True)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def collect_garbage(self, referenced: set[str], min_age_seconds: float = 3600) -> list[str]:
        """Remove files no version refers to (older than ``min_age_seconds``, so a registration
        in flight on another worker keeps its file)."""
        removed = []
        cutoff = time.time() - min_age_seconds
        for path in self.root.glob("sha256/*/*"):
            key = path.relative_to(self.root).as_posix()
            if key in referenced or path.stat().st_mtime > cutoff:
                continue
            path.unlink(missing_ok=True)
            removed.append(key)
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
