"""Shared fixtures: a registry per test on SQLite and (where reachable) PostgreSQL, trained models,
API keys of every scope, and a client that sends them."""
from __future__ import annotations

import gc
import io
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from flask import Flask
from flask.testing import FlaskClient
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.test import EnvironBuilder, encode_multipart

from server.app import create_app
from server.config import Settings

PG_URL = os.environ.get("SCOREBRIDGE_TEST_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
    except OSError:
        return False
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES = _postgres_reachable()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty registry database: SQLite in the test's home, or a fresh PostgreSQL schema.

    Every registry the test opens on it is closed when the test ends, whether the test disposed
    of it or not: PostgreSQL connections left to the garbage collector hold server slots and
    warn at some later, unrelated test."""
    if request.param == "sqlite":
        yield ""
        return
    if not POSTGRES:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import sqlalchemy as sa

    from server.registry import factory

    engines: list[sa.Engine] = []
    make_engine = factory.make_engine

    def tracked(*args: Any, **kwargs: Any) -> sa.Engine:
        engines.append(make_engine(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(factory, "make_engine", tracked)
    schema = f"sb_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    for engine in engines:
        engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # no background thread: tests drive the deployment worker with run_once()
    # native trees (a C compile per registration, ~1-2 s) have their own tests
    return Settings(home=tmp_path / "home", database_url=database_url, background=False,
                    native_trees=False,
                    rate_limiting=False,  # limits have their own tests
                    prediction_log_rows_per_second=0)  # counted exactly; the budget has a test


@pytest.fixture
def app(settings: Settings) -> Any:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["scorebridge"].registry.engine.dispose()


@pytest.fixture
def services(app: Any) -> Any:
    return app.extensions["scorebridge"]


@pytest.fixture
def keys(services: Any) -> dict[str, str]:
    """A plain key per scope."""
    return {scope: services.keys.create(scope, f"test {scope}")[0]
            for scope in ("score", "read", "deploy", "admin")}


class ClosingClient(FlaskClient):
    """Flask's test client, leaving no file open (the suite treats ResourceWarnings as errors):
    multipart bodies are encoded in memory (werkzeug's encoder spools a body over 500 KB to a
    temporary file it never closes), and responses are buffered, which closes a file a view
    streamed (``send_file``) once it is read, as a WSGI server does."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        data = kwargs.get("data")
        if kwargs.get("content_type") == "multipart/form-data" and isinstance(data, dict):
            builder = EnvironBuilder(data=data)
            try:
                boundary, body = encode_multipart(CombinedMultiDict([builder.form, builder.files]))
            finally:
                builder.close()
            kwargs.update(data=body, content_type=f"multipart/form-data; boundary={boundary}")
        return super().open(*args, **kwargs)


Flask.test_client_class = ClosingClient  # every app the tests build


@pytest.fixture(autouse=True)
def _collected() -> Iterator[None]:
    """Garbage collected as every test ends: a file or socket a test leaves open is then a
    ResourceWarning (an error, setup.cfg) in that test, not in whichever test the collector
    happens to run in next. What was alive when the first test started (the libraries) is
    frozen (``gc.freeze``), so a collection scans what tests made: ~0.1 s a test, not ~0.3 s."""
    if not gc.get_freeze_count():
        gc.freeze()
    yield
    gc.collect()


class KeyClient:
    """Flask's test client, sending a key of the chosen scope."""

    def __init__(self, client: Any, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def __getattr__(self, method: str) -> Any:
        def call(path: str, *, scope: str | None = "admin", **kw: Any) -> Any:
            headers = dict(kw.pop("headers", {}) or {})
            if scope is not None:
                headers.setdefault("X-API-Key", self.keys[scope])
            return getattr(self.client, method)(path, headers=headers, **kw)
        return call


@pytest.fixture
def client(app: Any, keys: dict[str, str]) -> KeyClient:
    return KeyClient(app.test_client(), keys)


# -- trained models (once per session) -----------------------------------------------------------

@pytest.fixture(scope="session")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from server.demo import train_demo

    return train_demo(tmp_path_factory.mktemp("demo"), n_rows=3000)


@pytest.fixture(scope="session")
def demo_model(demo_files: dict[str, Path]) -> Any:
    return sio.load(demo_files["artifact"],
                    trusted=sio.get_untrusted_types(file=demo_files["artifact"]))


@pytest.fixture(scope="session")
def wine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A RandomForest on scikit-learn's wine data, saved with skops, plus its data."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=25, random_state=0).fit(X, y)
    folder = tmp_path_factory.mktemp("wine")
    path = folder / "wine.skops"
    sio.dump(model, path)
    sample = folder / "wine_sample.csv"
    X.to_csv(sample, index=False)
    holdout = folder / "wine_holdout.csv"
    X.assign(target=y).sample(60, random_state=1).to_csv(holdout, index=False)
    return {"model": model, "X": X, "y": y, "path": path, "sample": sample, "holdout": holdout}


def register_file(client: KeyClient, name: str, artifact: Path, sample: Path | None = None,
                  metadata: str | None = None, scope: str = "deploy", **files: Path) -> Any:
    # in-memory copies: the test client never closes the files it is given
    data: dict[str, Any] = {"file": (io.BytesIO(artifact.read_bytes()), artifact.name)}
    if sample is not None:
        data["sample"] = (io.BytesIO(sample.read_bytes()), sample.name)
    for field, path in files.items():
        data[field] = (io.BytesIO(path.read_bytes()), path.name)
    if metadata is not None:
        data["metadata"] = metadata
    return client.post(f"/api/v1/models/{name}/versions", data=data, scope=scope,
                       content_type="multipart/form-data")


@pytest.fixture
def demo_registered(client: KeyClient, demo_files: dict[str, Path]) -> Any:
    resp = register_file(client, "churn", demo_files["artifact"], demo_files["sample"])
    assert resp.status_code == 201, resp.json
    return resp.json


def churn_rows(n: int = 20, seed: int = 11) -> pd.DataFrame:
    from server.demo import FEATURES, make_churn_data

    return make_churn_data(n, seed=seed)[FEATURES]


# a compiled version (onnxruntime) promises scikit-learn's labels exactly and its probabilities
# within this; scikit-learn versions reproduce both exactly
PROBABILITY_TOLERANCE = 1e-6


def assert_probabilities(got: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(expected, dtype=float),
                               rtol=0, atol=PROBABILITY_TOLERANCE)


def assert_problem(resp: Any, status: int, *fragments: str) -> dict[str, Any]:
    """The response is a problem document with ``status`` whose detail mentions ``fragments``."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/problem+json"
    body = resp.json
    assert body["status"] == status and body["title"] and body["type"]
    text = (body["detail"] + " " + " ".join(e.get("message", "") + " " + str(e.get("column", ""))
                                            for e in body.get("errors", []))).lower()
    for fragment in fragments:
        assert fragment.lower() in text, (fragment, body)
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def jsonable(frame: pd.DataFrame) -> list[list[Any]]:
    return [[None if (isinstance(v, float) and np.isnan(v)) else
             (v.item() if hasattr(v, "item") else v) for v in row]
            for row in frame.itertuples(index=False)]


def jobs_in_process_and_on_dask(client: KeyClient, services: Any, frame: pd.DataFrame | bytes
                                ) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """``frame`` (or CSV bytes) as a CSV scored by a "churn" job in process and by one on Dask:
    both results as read back, and the two job ids."""
    import io

    data = frame if isinstance(frame, bytes) else frame.to_csv(index=False).encode()
    ids = []
    for dask in ("false", "true"):
        resp = client.post("/api/v1/jobs", scope="score", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(data), "in.csv"), "model": "churn",
                                 "dask": dask})
        ids.append(resp.json["id"])
    outcomes = services.runner.run_pending()
    assert outcomes == ["succeeded", "succeeded"], [
        client.get(f"/api/v1/jobs/{i}", scope="score").json.get("error") for i in ids]
    local, dasked = (pd.read_csv(io.BytesIO(client.get(f"/api/v1/jobs/{i}/result",
                                                      scope="score").data),
                                 keep_default_na=False) for i in ids)
    return local, dasked, ids


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OpenID provider on loopback (tests/oidc.py), stopped when the module's tests end."""
    from tests.oidc import start_provider

    idp = start_provider(tmp_path_factory.mktemp("oidc"))
    yield idp
    idp.stop()
