"""The example model: a churn classifier trained on data the project generates itself.

Six mixed inputs (numeric and categorical) through a scikit-learn Pipeline with a ColumnTransformer,
a OneHotEncoder and a HistGradientBoostingClassifier: the shape of a typical business model, and the
one the benchmarks measure.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

NAME = "churn"
TARGET = "churned"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORICAL = ["contract", "payment_method", "internet_service"]
FEATURES = ["tenure_months", "monthly_charges", "contract", "payment_method", "support_calls",
            "internet_service"]
DESCRIPTION = ("Probability that a subscription customer cancels within the next quarter, from "
               "tenure, charges, contract, payment method, support calls and internet service.")


def make_churn_data(n_rows: int = 5000, seed: int = 7) -> pd.DataFrame:
    """Customers with a churn label that depends on every input in a plausible way."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n_rows, p=[0.55, 0.25, 0.2])
    payment = rng.choice(["electronic-check", "mailed-check", "bank-transfer", "credit-card"], n_rows)
    internet = rng.choice(["dsl", "fiber", "none"], n_rows, p=[0.4, 0.45, 0.15])
    tenure = rng.integers(0, 73, n_rows)
    base = np.select([internet == "fiber", internet == "dsl"], [75.0, 50.0], 22.0)
    charges = np.round(base + rng.normal(0, 12, n_rows).clip(-20, 45), 2)
    calls = rng.poisson(1.5, n_rows)
    logit = (-1.2 + 1.9 * (contract == "month-to-month") - 0.8 * (contract == "two-year")
             - 0.045 * tenure + 0.02 * (charges - 60) + 0.38 * calls
             + 0.6 * (payment == "electronic-check") + 0.35 * (internet == "fiber"))
    churned = rng.random(n_rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame({
        "tenure_months": tenure.astype("int64"),
        "monthly_charges": charges.astype("float64"),
        "contract": contract.astype(object),
        "payment_method": payment.astype(object),
        "support_calls": calls.astype("int64"),
        "internet_service": internet.astype(object),
    })
    # a few customers without a recorded charge: the model must cope with missing values
    frame.loc[rng.random(n_rows) < 0.01, "monthly_charges"] = np.nan
    frame[TARGET] = np.where(churned, "yes", "no").astype(object)
    return frame


def build_pipeline() -> Pipeline:
    pre = ColumnTransformer([
        ("num", "passthrough", NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ])
    model = HistGradientBoostingClassifier(max_iter=120, learning_rate=0.1, random_state=0)
    return Pipeline([("preprocess", pre), ("model", model)])


def train_demo(workdir: Path, n_rows: int = 5000) -> dict[str, Path]:
    """Train the churn model and write artifact, sample and holdout files into ``workdir``."""
    import skops.io as sio

    workdir.mkdir(parents=True, exist_ok=True)
    data = make_churn_data(n_rows)
    split = int(len(data) * 0.8)
    train, holdout = data.iloc[:split], data.iloc[split:]
    pipeline = build_pipeline().fit(train[FEATURES], train[TARGET])
    paths = {
        "artifact": workdir / "churn.skops",
        "sample": workdir / "churn_sample.csv",
        "holdout": workdir / "churn_holdout.csv",
    }
    sio.dump(pipeline, paths["artifact"])
    train[FEATURES].head(1000).to_csv(paths["sample"], index=False)
    holdout.to_csv(paths["holdout"], index=False)
    return paths
