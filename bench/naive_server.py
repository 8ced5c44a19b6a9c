"""The baseline the benchmarks compare with: the plain Flask app most teams write first.

One scikit-learn ``predict_proba`` per request on a pandas DataFrame built from the JSON body, under
gunicorn. Used only by ``bench/``, never by the product. It answers the same body shape as
ScoreBridge (``{"rows": [[...], ...]}``) so both servers take identical requests.

    MODEL_FILE=model.skops gunicorn 'bench.naive_server:create_app()'
"""
from __future__ import annotations

import os

import pandas as pd
import skops.io as sio
from flask import Flask, jsonify, request


def create_app() -> Flask:
    path = os.environ["MODEL_FILE"]
    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    columns = list(model.feature_names_in_)
    app = Flask(__name__)

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
