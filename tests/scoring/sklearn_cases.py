"""The scikit-learn models the all-estimators sweep registers: every estimator ``all_estimators()``
lists, each built with sensible sub-estimators, plus the non-default settings that change what a
fitted model holds. Kept apart from the test so that a probe (which types does scikit-learn hold?)
and the test walk the same list.

Each case names the table it trains on; tables are small (the sweep must stay well under a minute).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn import (
    calibration,
    cluster,
    compose,
    ensemble,
    feature_selection,
    impute,
    kernel_approximation,
    linear_model,
    metrics,
    mixture,
    model_selection,
    multiclass,
    multioutput,
    naive_bayes,
    neighbors,
    pipeline,
    preprocessing,
    random_projection,
    semi_supervised,
    svm,
    tree,
)
from sklearn.datasets import make_classification, make_regression
from sklearn.experimental import (
    enable_halving_search_cv,  # noqa: F401 - registers Halving*
    enable_iterative_imputer,  # noqa: F401 - registers it
)
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
from sklearn.utils import all_estimators

N_TRAIN, N_TEST, N_FEATURES = 80, 20, 5
FEATURES = [f"f{i}" for i in range(N_FEATURES)]


def _frame(X: np.ndarray, names: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(X, columns=names or [f"f{i}" for i in range(X.shape[1])])


def _split(X: pd.DataFrame, y: Any) -> tuple[pd.DataFrame, Any, pd.DataFrame]:
    return X.iloc[:N_TRAIN].reset_index(drop=True), y[:N_TRAIN], \
        X.iloc[N_TRAIN:].reset_index(drop=True)


def _classification(n_classes: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y = make_classification(N_TRAIN + N_TEST, N_FEATURES, n_informative=3, n_redundant=1,
                               n_classes=n_classes, n_clusters_per_class=1, random_state=0)
    return _split(_frame(np.abs(X) + 0.1), y)  # positive: chi2, NMF, Box-Cox and NB need it


def _regression(n_targets: int = 1) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y = make_regression(N_TRAIN + N_TEST, N_FEATURES, n_informative=3, n_targets=n_targets,
                           noise=5.0, random_state=0)
    y = y - y.min() + 1.0  # positive: Poisson, Gamma and Tweedie need it
    return _split(_frame(np.abs(X) + 0.1), y / y.mean())


def _counts() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y, X_test = _classification(3)
    bins = lambda f: np.minimum((f * 2).round(), 4).astype(int)  # noqa: E731
    return bins(X), y, bins(X_test)  # small non-negative integers, all seen in training


def _one_feature() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y, X_test = _regression()
    return X[["f0"]], y, X_test[["f0"]]


def _mixed() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Numbers with gaps, a string column with a rare level and gaps, and free text."""
    X, y, X_test = _classification(2)
    rng = np.random.default_rng(1)
    both = pd.concat([X, X_test], ignore_index=True)
    both.loc[rng.random(len(both)) < 0.1, "f0"] = np.nan
    plan = np.array(["basic", "plus", "pro", "rare"], dtype=object)
    both["plan"] = plan[np.where(rng.random(len(both)) < 0.04, 3, rng.integers(0, 3, len(both)))]
    both.loc[rng.random(len(both)) < 0.1, "plan"] = np.nan
    words = np.array(["late", "payment", "support", "fast", "cheap", "slow", "network", "bill"])
    both["note"] = [" ".join(rng.choice(words, 4)) for _ in range(len(both))]
    return both.iloc[:N_TRAIN].reset_index(drop=True), y, \
        both.iloc[N_TRAIN:].reset_index(drop=True)


def _gaps() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y, X_test = _classification(3)
    X, X_test = X.copy(), X_test.copy()
    X.loc[::7, "f1"] = np.nan
    X_test.loc[::5, "f1"] = np.nan
    return X, y, X_test


def _semi() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y, X_test = _classification(3)
    y = y.copy()
    y[::3] = -1  # unlabelled rows, as SelfTraining expects
    return X, y, X_test


def _multilabel() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    X, y, X_test = _classification(3)
    return X, np.column_stack([y == 0, y == 1, X["f0"] > X["f0"].median()]).astype(int), X_test


TABLES: dict[str, Callable[[], tuple[pd.DataFrame, Any, pd.DataFrame]]] = {
    "classes": lambda: _classification(3), "binary": lambda: _classification(2),
    "regression": _regression, "targets": lambda: _regression(3), "counts": _counts, "gaps": _gaps,
    "one": _one_feature, "mixed": _mixed, "semi": _semi, "multilabel": _multilabel,
}


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], Any]
    table: str

    def fit(self) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
        """The fitted estimator, its training rows and the held-out rows."""
        X, y, X_test = TABLES[self.table]()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.make().fit(X, y), X, X_test


# -- the estimators all_estimators() lists ---------------------------------------------------------

def _lr() -> Any:
    return linear_model.LogisticRegression(max_iter=500)


def _small(est: Any) -> Any:
    """Fewer trees or rounds where the default is large: the sweep checks types, not accuracy."""
    params = est.get_params(deep=False)
    if isinstance(params.get("n_estimators"), int) and params["n_estimators"] > 10:
        est.set_params(n_estimators=10)
    if type(est).__name__.startswith("HistGradientBoosting"):
        est.set_params(max_iter=10)
    return est


def _defaults(cls: type) -> Callable[[], Any]:
    return lambda: _small(cls())


# estimators that need arguments, or a table of their own, to fit at all
CONSTRUCTED: dict[str, Callable[[], Any]] = {
    "CCA": lambda: __import__("sklearn.cross_decomposition").cross_decomposition.CCA(1),
    "PLSCanonical": lambda: __import__("sklearn.cross_decomposition").cross_decomposition
    .PLSCanonical(1),
    "PLSSVD": lambda: __import__("sklearn.cross_decomposition").cross_decomposition.PLSSVD(1),
    "GaussianRandomProjection": lambda: random_projection.GaussianRandomProjection(3,
                                                                                   random_state=0),
    "SparseRandomProjection": lambda: random_projection.SparseRandomProjection(3, random_state=0),
    # the default radius (1.0) leaves held-out rows with no neighbour on this table
    "RadiusNeighborsClassifier": lambda: neighbors.RadiusNeighborsClassifier(radius=3.0),
    "RadiusNeighborsRegressor": lambda: neighbors.RadiusNeighborsRegressor(radius=3.0),
    "SparseCoder": lambda: __import__("sklearn.decomposition").decomposition.SparseCoder(
        np.random.default_rng(0).random((3, N_FEATURES))),
}
TABLE_OF = {"CategoricalNB": "counts", "OneHotEncoder": "counts", "OrdinalEncoder": "counts",
            "IsotonicRegression": "one", "MissingIndicator": "gaps", "SimpleImputer": "gaps",
            "KNNImputer": "gaps", "IterativeImputer": "gaps"}

# what all_estimators() lists but the sweep cannot register, one line each of why; the
# meta-estimators are swept below with sub-estimators of their own, the text vectorisers inside a
# ColumnTransformer on a text column
NOT_SWEPT: dict[str, str] = {
    "Birch": "skops cannot save it (UnsupportedTypeException: Objects of type Birch)",
    "DictVectorizer": "takes a list of dicts, not a table of columns",
    "FeatureHasher": "takes dicts or token lists, not a table of columns",
    "PatchExtractor": "takes images (3-d arrays), not a table",
    "KernelCenterer": "takes a precomputed kernel matrix, not the input columns",
    "LabelBinarizer": "transforms targets (y), not inputs: it is not a Pipeline step",
    "LabelEncoder": "transforms targets (y), not inputs: it is not a Pipeline step",
    "MultiLabelBinarizer": "transforms targets (y), not inputs: it is not a Pipeline step",
    "PLSSVD": "fit_transform(X, y) returns (x_scores, y_scores): not a Pipeline step",
    "TSNE": "has no transform for new rows (fit_transform only)",
    "MDS": "has no transform for new rows (fit_transform only)",
    "ClassicalMDS": "has no transform for new rows (fit_transform only)",
    "SpectralEmbedding": "has no transform for new rows (fit_transform only)",
    "AgglomerativeClustering": "a clusterer without predict: it labels its training rows only",
    "DBSCAN": "a clusterer without predict: it labels its training rows only",
    "HDBSCAN": "a clusterer without predict: it labels its training rows only",
    "OPTICS": "a clusterer without predict: it labels its training rows only",
    "SpectralClustering": "a clusterer without predict: it labels its training rows only",
    "SpectralBiclustering": "a biclusterer: no predict, it describes its training matrix",
    "SpectralCoclustering": "a biclusterer: no predict, it describes its training matrix",
    "EmpiricalCovariance": "a covariance estimator: no predict (score/mahalanobis only)",
    "GraphicalLasso": "a covariance estimator: no predict (score/mahalanobis only)",
    "GraphicalLassoCV": "a covariance estimator: no predict (score/mahalanobis only)",
    "LedoitWolf": "a covariance estimator: no predict (score/mahalanobis only)",
    "MinCovDet": "a covariance estimator: no predict (score/mahalanobis only)",
    "OAS": "a covariance estimator: no predict (score/mahalanobis only)",
    "ShrunkCovariance": "a covariance estimator: no predict (score/mahalanobis only)",
    "KernelDensity": "a density estimator: no predict (score_samples only)",
    "NearestNeighbors": "an index: no predict (kneighbors only)",
    "MultiTaskElasticNet": "predicts several targets per row; a version's signature has one output",
    "MultiTaskElasticNetCV": "predicts several targets per row; a signature has one output",
    "MultiTaskLasso": "predicts several targets per row; a version's signature has one output",
    "MultiTaskLassoCV": "predicts several targets per row; a version's signature has one output",
    "MultiOutputClassifier": "predicts several targets per row; a signature has one output",
    "MultiOutputRegressor": "predicts several targets per row; a signature has one output",
    "ClassifierChain": "predicts several targets per row; a version's signature has one output",
    "RegressorChain": "predicts several targets per row; a version's signature has one output",
}
# several-target models still load from skops with no extra trust (their types are covered);
# the sweep checks that much for them
MULTI_TARGET = {"MultiTaskElasticNet", "MultiTaskElasticNetCV", "MultiTaskLasso",
                "MultiTaskLassoCV", "MultiOutputClassifier", "MultiOutputRegressor",
                "ClassifierChain", "RegressorChain"}
META = {"ClassifierChain", "FixedThresholdClassifier", "MultiOutputClassifier",
        "OneVsOneClassifier", "OneVsRestClassifier", "OutputCodeClassifier",
        "SelfTrainingClassifier", "StackingClassifier", "TunedThresholdClassifierCV",
        "VotingClassifier", "MultiOutputRegressor", "RegressorChain", "StackingRegressor",
        "VotingRegressor", "ColumnTransformer", "FeatureUnion", "RFE", "RFECV", "SelectFromModel",
        "SequentialFeatureSelector", "GridSearchCV", "RandomizedSearchCV", "Pipeline",
        "FrozenEstimator", "CountVectorizer", "TfidfVectorizer", "HashingVectorizer"}
OTHER_PREDICTORS = {"AffinityPropagation", "MeanShift", "GaussianMixture",
                    "BayesianGaussianMixture", "EllipticEnvelope", "IsolationForest",
                    "OneClassSVM", "SGDOneClassSVM", "LocalOutlierFactor"}


def _kind(name: str) -> str:
    for kind in ("classifier", "regressor", "transformer"):
        if name in {n for n, _ in all_estimators(type_filter=kind)}:
            return kind
    return "other"


def listed_cases() -> list[Case]:
    """One case per estimator all_estimators() lists and the sweep can fit on its own."""
    cases = []
    kinds = {kind: dict(all_estimators(type_filter=kind))
             for kind in ("classifier", "regressor", "transformer")}
    for name, cls in all_estimators():
        if name in META or name in NOT_SWEPT:
            continue
        make = CONSTRUCTED.get(name, _defaults(cls))
        if name in kinds["classifier"]:
            cases.append(Case(name, make, TABLE_OF.get(name, "classes")))
        elif name in kinds["regressor"]:
            cases.append(Case(name, make, TABLE_OF.get(name, "regression")))
        elif name in kinds["transformer"]:
            cases.append(Case(f"Pipeline({name})",
                              lambda make=make: pipeline.make_pipeline(make(), _lr()),
                              TABLE_OF.get(name, "classes")))
        elif name in OTHER_PREDICTORS:
            cases.append(Case(name, (lambda: neighbors.LocalOutlierFactor(novelty=True))
                              if name == "LocalOutlierFactor" else make, "classes"))
    return cases


# -- meta-estimators, with sensible sub-estimators ------------------------------------------------

def _tree() -> Any:
    return tree.DecisionTreeClassifier(max_depth=3, random_state=0)


def _mixed_columns(**encoder: Any) -> Any:
    numbers = pipeline.make_pipeline(impute.SimpleImputer(strategy="median"),
                                     preprocessing.StandardScaler())
    strings = pipeline.make_pipeline(
        impute.SimpleImputer(strategy="most_frequent"),
        preprocessing.OneHotEncoder(**(encoder or {"handle_unknown": "ignore"})))
    return compose.ColumnTransformer([("num", numbers, FEATURES), ("cat", strings, ["plan"])])


def _text(vectoriser: Any) -> Any:
    return pipeline.make_pipeline(
        compose.ColumnTransformer([("num", impute.SimpleImputer(), FEATURES),
                                   ("text", vectoriser, "note")]), _lr())


META_CASES: list[Case] = [
    Case("StackingClassifier", lambda: ensemble.StackingClassifier(
        [("lr", _lr()), ("tree", _tree())], cv=3), "classes"),
    Case("StackingClassifier(passthrough)", lambda: ensemble.StackingClassifier(
        [("nb", naive_bayes.GaussianNB()), ("svc", svm.LinearSVC())], _tree(), cv=3,
        passthrough=True), "classes"),
    Case("StackingRegressor", lambda: ensemble.StackingRegressor(
        [("ridge", linear_model.Ridge()), ("tree", tree.DecisionTreeRegressor(max_depth=3))],
        cv=3), "regression"),
    Case("VotingClassifier(soft)", lambda: ensemble.VotingClassifier(
        [("lr", _lr()), ("tree", _tree())], voting="soft"), "classes"),
    Case("VotingClassifier(hard)", lambda: ensemble.VotingClassifier(
        [("lr", _lr()), ("tree", _tree()), ("nb", naive_bayes.GaussianNB())]), "classes"),
    Case("VotingRegressor", lambda: ensemble.VotingRegressor(
        [("ridge", linear_model.Ridge()), ("knn", neighbors.KNeighborsRegressor())]), "regression"),
    Case("CalibratedClassifierCV(isotonic)", lambda: calibration.CalibratedClassifierCV(
        svm.LinearSVC(), method="isotonic", cv=3), "classes"),
    Case("CalibratedClassifierCV(sigmoid,ensemble=False)", lambda: calibration
         .CalibratedClassifierCV(_tree(), cv=3, ensemble=False), "binary"),
    Case("OneVsRestClassifier", lambda: multiclass.OneVsRestClassifier(_lr()), "classes"),
    Case("OneVsOneClassifier", lambda: multiclass.OneVsOneClassifier(svm.LinearSVC()), "classes"),
    Case("OutputCodeClassifier", lambda: multiclass.OutputCodeClassifier(
        _lr(), random_state=0), "classes"),
    Case("TransformedTargetRegressor(log)", lambda: compose.TransformedTargetRegressor(
        linear_model.Ridge(), func=np.log, inverse_func=np.exp), "regression"),
    Case("TransformedTargetRegressor(quantile)", lambda: compose.TransformedTargetRegressor(
        linear_model.Ridge(), transformer=preprocessing.QuantileTransformer(n_quantiles=20)),
        "regression"),
    Case("SelfTrainingClassifier", lambda: semi_supervised.SelfTrainingClassifier(_lr()), "semi"),
    Case("TunedThresholdClassifierCV", lambda: model_selection.TunedThresholdClassifierCV(
        _lr(), cv=3), "binary"),
    Case("TunedThresholdClassifierCV(f1)", lambda: model_selection.TunedThresholdClassifierCV(
        _lr(), scoring="f1", cv=3, thresholds=20), "binary"),
    Case("TunedThresholdClassifierCV(make_scorer)", lambda: model_selection
         .TunedThresholdClassifierCV(_lr(), scoring=metrics.make_scorer(metrics.fbeta_score,
                                                                        beta=2), cv=3,
                                     thresholds=20), "binary"),
    Case("FixedThresholdClassifier", lambda: model_selection.FixedThresholdClassifier(
        _lr(), threshold=0.3), "binary"),
    Case("FixedThresholdClassifier(decision_function)", lambda: model_selection
         .FixedThresholdClassifier(svm.LinearSVC(), threshold=0.2), "binary"),
    Case("Pipeline(RFE)", lambda: pipeline.make_pipeline(
        feature_selection.RFE(_lr(), n_features_to_select=3), _lr()), "classes"),
    Case("Pipeline(RFECV)", lambda: pipeline.make_pipeline(
        feature_selection.RFECV(_lr(), cv=3), _lr()), "classes"),
    Case("Pipeline(SelectFromModel)", lambda: pipeline.make_pipeline(
        feature_selection.SelectFromModel(ensemble.RandomForestClassifier(10, random_state=0)),
        _lr()), "classes"),
    Case("Pipeline(SequentialFeatureSelector)", lambda: pipeline.make_pipeline(
        feature_selection.SequentialFeatureSelector(_lr(), n_features_to_select=2, cv=2), _lr()),
        "classes"),
    Case("Pipeline(FeatureUnion)", lambda: pipeline.make_pipeline(
        pipeline.make_union(__import__("sklearn.decomposition").decomposition.PCA(2),
                            feature_selection.SelectKBest(k=2)), _lr()), "classes"),
    Case("GridSearchCV", lambda: model_selection.GridSearchCV(
        _lr(), {"C": [0.1, 1.0]}, cv=2), "classes"),
    Case("GridSearchCV(multimetric)", lambda: model_selection.GridSearchCV(
        _tree(), {"max_depth": [2, 3]}, cv=2, refit="balanced_accuracy",
        scoring=["balanced_accuracy", "f1_macro", "neg_log_loss"]), "classes"),
    Case("GridSearchCV(make_scorer)", lambda: model_selection.GridSearchCV(
        linear_model.Ridge(), {"alpha": [0.1, 1.0]}, cv=2,
        scoring=metrics.make_scorer(metrics.mean_absolute_error, greater_is_better=False)),
        "regression"),
    # param_distributions as lists: a scipy.stats distribution is refused (see scipy.toml)
    Case("RandomizedSearchCV", lambda: model_selection.RandomizedSearchCV(
        _lr(), {"C": [0.01, 0.1, 1.0, 10.0]}, n_iter=2, cv=2, random_state=0,
        scoring="roc_auc"), "binary"),
    Case("RandomizedSearchCV(r2)", lambda: model_selection.RandomizedSearchCV(
        tree.DecisionTreeRegressor(random_state=0), {"max_depth": [2, 3, 4]},
        n_iter=2, cv=2, random_state=0, scoring="r2"), "regression"),
    Case("HalvingGridSearchCV", lambda: model_selection.HalvingGridSearchCV(
        _tree(), {"max_depth": [2, 3, 4]}, cv=2, random_state=0), "classes"),
    Case("HalvingRandomSearchCV", lambda: model_selection.HalvingRandomSearchCV(
        _lr(), {"C": [0.1, 1.0, 5.0]}, cv=2, random_state=0), "classes"),
    Case("BaggingClassifier(LogisticRegression)", lambda: ensemble.BaggingClassifier(
        _lr(), n_estimators=3, random_state=0), "classes"),
    Case("AdaBoostRegressor(tree)", lambda: ensemble.AdaBoostRegressor(
        tree.DecisionTreeRegressor(max_depth=2), n_estimators=5, random_state=0), "regression"),
    Case("FrozenEstimator", lambda: FrozenEstimator(_tree().fit(*_classification(3)[:2])),
         "classes"),
    Case("ColumnTransformer(mixed)", lambda: pipeline.make_pipeline(_mixed_columns(), _lr()),
         "mixed"),
    Case("ColumnTransformer(infrequent_if_exist)", lambda: pipeline.make_pipeline(
        _mixed_columns(handle_unknown="infrequent_if_exist", min_frequency=5,
                       sparse_output=False), _lr()), "mixed"),
    Case("ColumnTransformer(OrdinalEncoder)", lambda: pipeline.make_pipeline(
        compose.ColumnTransformer(
            [("num", impute.SimpleImputer(add_indicator=True), FEATURES),
             ("cat", pipeline.make_pipeline(
                 impute.SimpleImputer(strategy="constant", fill_value="missing"),
                 preprocessing.OrdinalEncoder(handle_unknown="use_encoded_value",
                                              unknown_value=-1)), ["plan"])]),
        ensemble.HistGradientBoostingClassifier(max_iter=10)), "mixed"),
    Case("ColumnTransformer(TargetEncoder)", lambda: pipeline.make_pipeline(
        compose.ColumnTransformer([("num", impute.KNNImputer(), FEATURES),
                                   ("cat", preprocessing.TargetEncoder(cv=3), ["plan"])]),
        _lr()), "mixed"),
    Case("ColumnTransformer(selector,remainder)", lambda: pipeline.make_pipeline(
        compose.ColumnTransformer(
            [("cat", preprocessing.OneHotEncoder(handle_unknown="ignore", drop="if_binary"),
              compose.make_column_selector(dtype_include=object, pattern="plan")),
             ("num", impute.SimpleImputer(),
              compose.make_column_selector(dtype_include=np.number))],
            remainder="drop"), _lr()), "mixed"),
    Case("ColumnTransformer(slice,passthrough)", lambda: pipeline.make_pipeline(
        compose.ColumnTransformer([("scaled", preprocessing.StandardScaler(), slice(0, 3))],
                                  remainder="passthrough"), _lr()), "classes"),
    Case("ColumnTransformer(CountVectorizer)", lambda: _text(CountVectorizer()), "mixed"),
    Case("ColumnTransformer(TfidfVectorizer)", lambda: _text(TfidfVectorizer(ngram_range=(1, 2))),
         "mixed"),
    Case("ColumnTransformer(HashingVectorizer)", lambda: _text(HashingVectorizer(n_features=64)),
         "mixed"),
]

# -- settings other than the defaults that change what a fitted model holds ----------------------

SETTINGS_CASES: list[Case] = [
    Case("Pipeline(SimpleImputer(most_frequent))", lambda: pipeline.make_pipeline(
        impute.SimpleImputer(strategy="most_frequent"), _lr()), "classes"),
    Case("Pipeline(MissingIndicator(all))", lambda: pipeline.make_pipeline(
        pipeline.make_union(impute.SimpleImputer(), impute.MissingIndicator(features="all")),
        _lr()), "gaps"),
    Case("Pipeline(IterativeImputer(max_iter=3))", lambda: pipeline.make_pipeline(
        impute.IterativeImputer(max_iter=3, random_state=0), _lr()), "gaps"),
    *[Case(f"Pipeline(KBinsDiscretizer({enc},{strategy}))",
           lambda enc=enc, strategy=strategy: pipeline.make_pipeline(
               preprocessing.KBinsDiscretizer(3, encode=enc, strategy=strategy,
                                              **({"quantile_method": "averaged_inverted_cdf"}
                                                 if strategy == "quantile" else {})), _lr()),
           "classes")
      for enc, strategy in [("onehot", "quantile"), ("ordinal", "uniform"),
                            ("onehot-dense", "kmeans")]],
    Case("Pipeline(QuantileTransformer(normal))", lambda: pipeline.make_pipeline(
        preprocessing.QuantileTransformer(n_quantiles=30, output_distribution="normal"), _lr()),
        "classes"),
    Case("Pipeline(PowerTransformer(box-cox))", lambda: pipeline.make_pipeline(
        preprocessing.PowerTransformer(method="box-cox"), _lr()), "classes"),
    Case("Pipeline(SplineTransformer(periodic,quantile))", lambda: pipeline.make_pipeline(
        preprocessing.SplineTransformer(knots="quantile", extrapolation="periodic"), _lr()),
        "classes"),
    Case("Pipeline(PolynomialFeatures(interaction_only))", lambda: pipeline.make_pipeline(
        preprocessing.PolynomialFeatures(interaction_only=True), _lr()), "classes"),
    Case("Pipeline(FunctionTransformer(log1p))", lambda: pipeline.make_pipeline(
        preprocessing.FunctionTransformer(np.log1p, inverse_func=np.expm1), _lr()), "classes"),
    *[Case(f"Pipeline(SelectKBest({fn.__name__}))",
           lambda fn=fn: pipeline.make_pipeline(feature_selection.SelectKBest(fn, k=3), _lr()),
           "classes")
      for fn in (feature_selection.chi2, feature_selection.mutual_info_classif,
                 feature_selection.f_classif)],
    *[Case(f"Pipeline(SelectPercentile({fn.__name__}))",
           lambda fn=fn: pipeline.make_pipeline(
               feature_selection.SelectPercentile(fn, percentile=50), linear_model.Ridge()),
           "regression")
      for fn in (feature_selection.f_regression, feature_selection.r_regression,
                 feature_selection.mutual_info_regression)],
    Case("Pipeline(SelectFdr(chi2))", lambda: pipeline.make_pipeline(
        feature_selection.SelectFdr(feature_selection.chi2, alpha=0.5), _lr()), "classes"),
    Case("Pipeline(TargetEncoder(continuous))", lambda: pipeline.make_pipeline(
        preprocessing.KBinsDiscretizer(4, encode="ordinal",
                                       quantile_method="averaged_inverted_cdf"),
        preprocessing.TargetEncoder(target_type="continuous", cv=3), linear_model.Ridge()),
        "regression"),
    Case("Pipeline(Nystroem(poly))", lambda: pipeline.make_pipeline(
        kernel_approximation.Nystroem(kernel="poly", n_components=10, random_state=0), _lr()),
        "classes"),
    Case("Pipeline(FeatureAgglomeration(median))", lambda: pipeline.make_pipeline(
        cluster.FeatureAgglomeration(2, pooling_func=np.median), _lr()), "classes"),
    Case("Pipeline(BisectingKMeans(elkan))", lambda: pipeline.make_pipeline(
        cluster.BisectingKMeans(3, algorithm="elkan", random_state=0), _lr()), "classes"),
    Case("Pipeline(KMeans(elkan))", lambda: pipeline.make_pipeline(
        cluster.KMeans(3, algorithm="elkan", n_init=2, random_state=0), _lr()), "classes"),
    Case("LogisticRegressionCV(roc_auc)", lambda: linear_model.LogisticRegressionCV(
        Cs=3, cv=3, scoring="roc_auc"), "binary"),
    Case("LogisticRegressionCV(neg_log_loss)", lambda: linear_model.LogisticRegressionCV(
        Cs=3, cv=3, scoring="neg_log_loss"), "classes"),
    Case("LogisticRegressionCV(make_scorer)", lambda: linear_model.LogisticRegressionCV(
        Cs=3, cv=3, scoring=metrics.make_scorer(metrics.balanced_accuracy_score)), "classes"),
    Case("RidgeCV(neg_mean_absolute_error)", lambda: linear_model.RidgeCV(
        scoring="neg_mean_absolute_error"), "regression"),
    Case("RidgeCV(cv=3,r2)", lambda: linear_model.RidgeCV(cv=3, scoring="r2"), "regression"),
    Case("RidgeClassifierCV(accuracy)", lambda: linear_model.RidgeClassifierCV(
        scoring="accuracy"), "classes"),
    Case("KNeighborsClassifier(manhattan,distance)", lambda: neighbors.KNeighborsClassifier(
        weights="distance", metric="manhattan", algorithm="ball_tree"), "classes"),
    Case("KNeighborsRegressor(minkowski p=3,kd_tree)", lambda: neighbors.KNeighborsRegressor(
        p=3, algorithm="kd_tree"), "regression"),
    Case("KNeighborsClassifier(chebyshev,brute)", lambda: neighbors.KNeighborsClassifier(
        metric="chebyshev", algorithm="brute"), "classes"),
    Case("NearestCentroid(manhattan)", lambda: neighbors.NearestCentroid(metric="manhattan"),
         "classes"),
    Case("RadiusNeighborsClassifier(outlier_label)", lambda: neighbors.RadiusNeighborsClassifier(
        radius=1.5, outlier_label="most_frequent"), "classes"),
    Case("SVC(poly,probability)", lambda: svm.SVC(kernel="poly", probability=True,
                                                  random_state=0), "classes"),
    Case("SGDClassifier(log_loss)", lambda: linear_model.SGDClassifier(
        loss="log_loss", random_state=0), "classes"),
    Case("GaussianProcessClassifier(RBF+White)", lambda: GaussianProcessClassifier(
        ConstantKernel() * RBF() + WhiteKernel(), random_state=0), "binary"),
    Case("GaussianProcessRegressor(Matern)", lambda: GaussianProcessRegressor(
        Matern(nu=1.5), random_state=0), "regression"),
    Case("HistGradientBoostingClassifier(early_stopping)", lambda: ensemble
         .HistGradientBoostingClassifier(max_iter=15, early_stopping=True, n_iter_no_change=2,
                                         scoring="loss", validation_fraction=0.2,
                                         random_state=0), "classes"),
    Case("HistGradientBoostingRegressor(quantile)", lambda: ensemble
         .HistGradientBoostingRegressor(loss="quantile", quantile=0.8, max_iter=10), "regression"),
    Case("GradientBoostingClassifier(exponential)", lambda: ensemble.GradientBoostingClassifier(
        loss="exponential", n_estimators=10, random_state=0), "binary"),
    Case("GradientBoostingRegressor(huber,subsample)", lambda: ensemble
         .GradientBoostingRegressor(loss="huber", subsample=0.7, n_estimators=10,
                                    random_state=0), "regression"),
    Case("RandomForestClassifier(balanced,oob)", lambda: ensemble.RandomForestClassifier(
        10, class_weight="balanced", oob_score=True, random_state=0), "classes"),
    Case("MLPRegressor(early_stopping)", lambda: __import__("sklearn.neural_network")
         .neural_network.MLPRegressor(early_stopping=True, max_iter=50, random_state=0),
         "regression"),
    Case("TweedieRegressor(power=1.5)", lambda: linear_model.TweedieRegressor(power=1.5),
         "regression"),
    Case("QuantileRegressor(quantile=0.7)", lambda: linear_model.QuantileRegressor(quantile=0.7, alpha=0.01),
         "regression"),
    Case("GaussianMixture(full)", lambda: mixture.GaussianMixture(2, random_state=0), "classes"),
]


def all_cases() -> list[Case]:
    return listed_cases() + META_CASES + SETTINGS_CASES


def multioutput_cases() -> list[Case]:
    """Models whose predictions have several columns: loaded, not registered (see NOT_SWEPT)."""
    listed = dict(all_estimators(type_filter="regressor"))
    return [Case(name, _defaults(listed[name]), "targets") for name in sorted(MULTI_TARGET)
            if name.startswith("MultiTask")] + [
        Case("MultiOutputClassifier", lambda: multioutput.MultiOutputClassifier(_lr()),
             "multilabel"),
        Case("ClassifierChain", lambda: multioutput.ClassifierChain(_lr(), random_state=0),
             "multilabel"),
        Case("MultiOutputRegressor", lambda: multioutput.MultiOutputRegressor(
            linear_model.Ridge()), "targets"),
        Case("RegressorChain", lambda: multioutput.RegressorChain(linear_model.Ridge()),
             "targets"),
    ]
