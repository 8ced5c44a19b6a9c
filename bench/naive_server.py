"""The baseline the benchmarks compare with: the plain Flask app most teams write first.

One scikit-learn ``predict_proba`` per request (``predict`` for a regression) on a pandas
DataFrame built from the JSON body, under gunicorn. Used only by ``bench/``, never by the product.
It answers the same body shape as ScoreBridge (``{"rows": [[...], ...]}``) so both servers take
identical requests.

    MODEL_FILE=model.skops gunicorn 'bench.naive_server:create_app()'
"""
from __future__ import annotations

import hashlib
import os

import pandas as pd
import skops.io as sio
from flask import Flask, abort, g, jsonify, request


def create_app() -> Flask:
    path = os.environ["MODEL_FILE"]
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    columns = list(model.feature_names_in_)
    app = Flask(__name__)

    if not hasattr(model, "predict_proba"):
        @app.post("/predict")
        def regress():  # type: ignore[no-untyped-def]
            frame = pd.DataFrame(request.get_json()["rows"], columns=columns)
            return jsonify(predictions=model.predict(frame).tolist())

        return app

    @app.post("/predict")
    def predict():  # type: ignore[no-untyped-def]
        frame = pd.DataFrame(request.get_json()["rows"], columns=columns)
        proba = model.predict_proba(frame)
        labels = model.classes_[proba.argmax(axis=1)]
        return jsonify(predictions=labels.tolist(), probabilities=proba.tolist())

    return app


def create_constant_app() -> Flask:
    """The ceiling of the stack itself: Flask under gunicorn reading the same JSON body and
    answering a fixed prediction, with no model, authentication, limits or telemetry. No server
    built on Flask + gunicorn answers faster on the same machine."""
    app = Flask(__name__)

    @app.post("/predict")
    def predict():  # type: ignore[no-untyped-def]
        rows = request.get_json()["rows"]
        return jsonify(predictions=["no"] * len(rows), probabilities=[[0.5, 0.5]] * len(rows))

    return app


FLOOR_KEY = "floor-key"


def create_floor_app() -> Flask:
    """The least any server with ScoreBridge's required request handling can cost: the constant
    answer above, behind an API key (hashed with SHA-256 and looked up, as ScoreBridge does
    before its key cache) and Flask-Limiter (the library issue 9 asks for) with ScoreBridge's
    own counter storage and rate-limit headers. No model, CORS, request ids, metrics or access
    log. Send the key as ``X-API-Key: floor-key``."""
    from flask_limiter import Limiter

    from server.api import limits  # noqa: F401  (registers the scorebridge-memory:// storage)

    app = create_constant_app()
    known = {hashlib.sha256(FLOOR_KEY.encode()).hexdigest(): "floor"}

    @app.before_request
    def authenticate():  # type: ignore[no-untyped-def]
        digest = hashlib.sha256(request.headers.get("X-API-Key", "").encode()).hexdigest()
        if digest not in known:
            abort(401)
        g.key = known[digest]

    Limiter(lambda: g.key, app=app, default_limits=["100000000/minute"], headers_enabled=True,
            storage_uri="scorebridge-memory://", strategy="fixed-window")
    return app
