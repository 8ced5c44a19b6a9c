"""The skops allowlist: reviewed data, read by the loader, and a hostile-artifact corpus refused
with the type named and nothing executed."""
from __future__ import annotations

import importlib
import tomllib
from functools import partial
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, minmax_scale

from server.errors import UnsafeArtifact
from server.scoring import allowlist as allowlist_pkg
from server.scoring.allowlist import Allowlist, allowlist, load, resolve
from server.scoring.loader import load_artifact, refusal_message, untrusted_types
from tests.scoring.hostile import PAYLOADS, genuine, plant

FILES = sorted(e for e in resources.files(allowlist_pkg).iterdir() if e.name.endswith(".toml"))
# payloads that run while skops loads them, once their names are trusted (the rest are refused
# names a model would call later, or classes that cannot be found)
RUNS_ON_LOAD = {"os.system", "posix.system", "builtins.exec", "builtins.eval",
                "subprocess.Popen", "sklearn function", "scipy.stats distribution"}


def _double(X):
    return X * 2


# -- the files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", FILES, ids=lambda e: e.name)
def test_every_file_is_reviewed_data(entry):
    data = tomllib.loads(entry.read_text(encoding="utf-8"))
    assert set(data) <= {"types", "class_prefixes", "excluded", "library"} and data
    library = data.pop("library", None)
    if library is not None:  # an optional library: named with the extra that installs it
        assert set(library) == {"module", "extra"}, library
        assert importlib.import_module(library["module"]), library
    prefixes = allowlist().class_prefixes
    for table, entries in data.items():
        for name, why in entries.items():
            assert isinstance(why, str) and why.strip() and "\n" not in why, (table, name)
            assert len(why) <= 220, f"{name}: keep the reason to one line"
            if table == "class_prefixes":
                assert name.endswith(".") and importlib.import_module(name.rstrip("."))
            elif table == "excluded":  # narrows a class prefix; a pattern outside one is idle
                assert any(name.startswith(p) for p in prefixes), name
    for name in data.get("types", {}):
        obj = resolve(name)
        # the name skops writes for it (module and name), and a class or a function by name
        assert f"{obj.__module__}.{obj.__name__}" == name, name
        assert isinstance(obj, type) or callable(obj), name
        assert untrusted_types([name]) == [], name


def test_a_listed_function_is_trusted_by_its_entry_alone():
    """The class prefix never covers a function: without their entries, the listed functions
    (and the classes of other libraries) are refused."""
    listed = allowlist()
    prefixes_only = Allowlist({}, listed.class_prefixes, listed.excluded, {})
    functions = [n for n in listed.types if not isinstance(resolve(n), type)]
    assert "numpy.mean" in functions and len(functions) > 70
    assert [n for n in listed.types if prefixes_only.reason(n) is not None] == []


def test_the_loader_reads_the_files(tmp_path):
    for entry in FILES:
        (tmp_path / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    assert load(tmp_path).types == allowlist().types
    assert load(tmp_path).reason("tests.scoring.test_allowlist._double") is None
    (tmp_path / "local.toml").write_text(
        '[types]\n"tests.scoring.test_allowlist._double" = "reviewed: doubles an array"\n',
        encoding="utf-8")
    extended = load(tmp_path)
    assert extended.reason("tests.scoring.test_allowlist._double") == "reviewed: doubles an array"
    assert extended.sources["tests.scoring.test_allowlist._double"] == "local.toml"
    # removing a file removes its trust
    (tmp_path / "numpy.toml").unlink()
    assert load(tmp_path).reason("numpy.dtype") is None


def test_an_optional_library_this_server_lacks_names_its_extra(tmp_path, monkeypatch):
    """A file under [library] counts only where that library imports; elsewhere its types are
    refused with the extra to install, not as untrusted names."""
    from server.errors import ModelRejected
    from server.scoring import loader

    (tmp_path / "absent.toml").write_text(
        '[library]\nmodule = "scorebridge_absent_lib"\nextra = "absent"\n'
        '[types]\n"scorebridge_absent_lib.Model" = "reviewed: its state is plain data"\n',
        encoding="utf-8")
    listed = load(tmp_path)
    assert listed.reason("scorebridge_absent_lib.Model") is None
    assert listed.needs_extra == {"scorebridge_absent_lib.Model": "absent"}
    monkeypatch.setattr(loader, "allowlist", lambda: listed)
    with pytest.raises(ModelRejected, match=r"install scorebridge\[absent\]"):
        loader._require_libraries(["scorebridge_absent_lib.Model"])
    loader._require_libraries(["scorebridge_absent_lib.Model", "os.system"])  # untrusted first
    (tmp_path / "bad.toml").write_text('[library]\nmodule = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="module and extra"):
        load(tmp_path)


@pytest.mark.parametrize("text, problem", [
    ('[types]\n"numpy.mean" = ""\n', "one-line reason"),
    ('[types]\n"numpy.mean" = 3\n', "one-line reason"),
    ('[functions]\n"numpy.mean" = "why"\n', "unknown table"),
    ('[types]\n"numpy.dtype" = "again"\n', "also listed in numpy.toml"),
])
def test_a_malformed_file_is_an_error_not_a_shorter_list(tmp_path, text, problem):
    for entry in FILES:
        (tmp_path / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "zz-bad.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        load(tmp_path)


# -- what the list covers ---------------------------------------------------------------------------

def test_scikit_learn_classes_are_trusted_but_not_its_functions():
    assert untrusted_types(["sklearn.tree._tree.Tree",
                            "sklearn.metrics._dist_metrics.ManhattanDistance64",
                            "sklearn.gaussian_process.kernels.RBF"]) == []
    refused = ["sklearn.preprocessing._data.minmax_scale", "sklearn.datasets.dump_svmlight_file",
               # a class a scikit-learn module imports (pathlib.Path) is not scikit-learn's
               "sklearn.datasets._base.Path",
               # excluded: a listener opened on restore, test doubles, vendored code
               "sklearn.callback._scoring_monitor.ScoringMonitor",
               "sklearn.utils._mocking.CheckingClassifier", "sklearn.utils._testing.TempMemmap",
               "sklearn.utils.parallel.Parallel", "sklearn.tests.test_base.MyEstimator",
               # names that do not resolve
               "sklearn.nowhere.Thing", "sklearn..os.system", "sklearn."]
    assert untrusted_types(refused) == refused


def test_extra_trust_is_the_admins_list():
    assert untrusted_types(["mylib.Model"], extra_trusted=("mylib.Model",)) == []
    assert untrusted_types(["mylib.Model"]) == ["mylib.Model"]


@pytest.mark.parametrize("name, why", [
    ("os.system", "a function outside the reviewed list"),
    ("builtins.eval", "a function outside the reviewed list"),
    ("sklearn.preprocessing._data.minmax_scale", "a function outside the reviewed list"),
    ("__main__.Custom", "defined in __main__ (a script's own code, not importable"),
    ("__main__.<lambda>", "a function defined in __main__"),
    ("mymodule.<locals>.helper", "a lambda or nested function"),
    ("mylib.Model", "not a scikit-learn, numpy, scipy or boosting-library type"),
    ("sklearn.utils._testing.TempMemmap", "excluded from the trusted scikit-learn classes: test"),
    ("scipy.stats._continuous_distns.uniform_gen", "a class outside the reviewed list"),
])
def test_each_refusal_says_why(name, why):
    if name.startswith("scipy.stats"):
        import scipy.stats  # noqa: F401 - the reason comes from modules already imported
    assert why in allowlist().refusal(name)


def test_the_message_names_the_types_and_what_to_do():
    text = refusal_message(["os.system", "__main__.Custom"])
    assert text.startswith("the artifact holds 2 types outside the server's allowlist: ")
    assert "os.system (a function outside the reviewed list" in text
    assert "__main__.Custom (a class defined in __main__" in text
    assert "SCOREBRIDGE_TRUSTED_TYPES" in text and "--trust-pickle" in text
    many = refusal_message([f"mylib.T{i}" for i in range(8)])
    assert "mylib.T4" in many and "mylib.T5" not in many and "and 3 more" in many
    assert len(refusal_message(["x" * 5000])) < 600  # a name the artifact chose is cut short


def test_function_transformer_func_must_be_on_the_list(tmp_path):
    X = np.random.default_rng(0).random((20, 3))
    y = (X[:, 0] > 0.5).astype(int)
    listed = make_pipeline(FunctionTransformer(np.median, kw_args={"axis": 1, "keepdims": True}),
                           LogisticRegression()).fit(X, y)
    sio.dump(listed, tmp_path / "ok.skops")
    np.testing.assert_array_equal(load_artifact(tmp_path / "ok.skops", "skops").predict(X),
                                  listed.predict(X))
    for func, name in [(minmax_scale, "sklearn.preprocessing._data.minmax_scale"),
                       (partial(minmax_scale, feature_range=(0, 2)),
                        "sklearn.preprocessing._data.minmax_scale"),  # partial opens no door
                       (_double, "tests.scoring.test_allowlist._double")]:
        sio.dump(make_pipeline(FunctionTransformer(func), LogisticRegression()).fit(X, y),
                 tmp_path / "f.skops")
        with pytest.raises(UnsafeArtifact, match="function outside the reviewed list") as info:
            load_artifact(tmp_path / "f.skops", "skops")
        assert info.value.status == 422 and info.value.extra["refused_types"] == [name]
        assert load_artifact(tmp_path / "f.skops", "skops", extra_trusted=(name,)) is not None


def test_histogram_boosting_with_categorical_features_loads(tmp_path):
    """Its own preprocessing holds FunctionTransformer(partial(check_array, ...)): both names are
    reviewed, so the model a data scientist fits with categorical_features loads untrusted."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 200), rng.normal(0, 1, 200)])
    y = (X[:, 0] + X[:, 1] > 1.5).astype(int)
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(X, y)
    sio.dump(model, tmp_path / "hgb.skops")
    assert {"functools.partial", "sklearn.utils.validation.check_array"} <= set(
        sio.get_untrusted_types(file=tmp_path / "hgb.skops"))
    loaded = load_artifact(tmp_path / "hgb.skops", "skops")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_scipy_distributions_in_a_search_are_refused(tmp_path):
    """A search keeps its param_distributions; scipy.stats distributions exec() a template from
    their state when restored, so they are not on the list (save search.best_estimator_)."""
    X = np.random.default_rng(0).random((30, 3))
    y = (X[:, 0] > 0.5).astype(int)
    search = RandomizedSearchCV(LogisticRegression(), {"C": scipy.stats.loguniform(0.1, 10)},
                                n_iter=2, cv=2, random_state=0).fit(X, y)
    sio.dump(search, tmp_path / "search.skops")
    with pytest.raises(UnsafeArtifact, match=r"scipy\.stats\._continuous_distns\."):
        load_artifact(tmp_path / "search.skops", "skops")
    sio.dump(search.best_estimator_, tmp_path / "best.skops")
    assert load_artifact(tmp_path / "best.skops", "skops").predict(X).shape == (30,)


# -- hostile artifacts ------------------------------------------------------------------------------

def test_the_genuine_model_under_the_corpus_loads(tmp_path):
    assert load_artifact(genuine(tmp_path / "genuine.skops"), "skops") is not None


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_hostile_artifacts_are_refused_with_the_type_named(tmp_path, payload):
    path, marker, names = plant(tmp_path, payload)
    with pytest.raises(UnsafeArtifact) as info:
        load_artifact(path, "skops")
    assert info.value.status == 422
    assert info.value.extra["refused_types"] == names
    for name in names:
        assert name in info.value.detail
    assert not marker.exists()


@pytest.mark.parametrize("payload", sorted(RUNS_ON_LOAD))
def test_the_corpus_would_run_if_trusted(tmp_path, payload):
    """The control: trusting the names the server refuses does run the payload, so the refusal
    above is what keeps the marker away."""
    path, marker, names = plant(tmp_path, payload)
    try:
        model = load_artifact(path, "skops", extra_trusted=tuple(names))
    except UnsafeArtifact:  # the payload ran, then the half-built object failed
        model = None
    func = getattr(getattr(model, "steps", [[None, None]])[0][1], "func", None)
    if hasattr(func, "wait"):  # subprocess.Popen: the shell command runs beside us
        func.wait(timeout=10)
    assert marker.exists()


def test_a_file_that_is_not_skops_is_refused(tmp_path):
    path = Path(tmp_path / "junk.skops")
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnsafeArtifact, match="not a readable skops file"):
        load_artifact(path, "skops")
