"""The static pickle scanner on a corpus built here: malicious payloads are quarantined, benign models pass."""

from __future__ import annotations

import io
import pickle
import time

import pytest

from registry.artifacts.formats import detect_format
from registry.pipeline.scan.analysis import global_is_safe, scan_file
from tests.registry.pickle_corpus import (
    MALICIOUS,
    Reduce,
    benign_models,
    joblib_bytes,
    joblib_with_malicious_object,
    zip_of,
)


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    """Any unpickling during a scan fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the scanner unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def scan(data: bytes, fmt: str | None = None, **kw):
    fmt = fmt or detect_format(data[:65536])
    return scan_file(io.BytesIO(data), fmt=fmt, max_bytes=kw.get("max_bytes", 10**9), timeout=kw.get("timeout", 30))


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_payloads_are_unsafe_and_named(name):
    data, culprit = MALICIOUS[name]
    report = scan(data)
    assert report.verdict == "unsafe", report
    assert report.quarantined
    assert culprit in report.offending


def test_a_benign_payload_stacked_after_a_malicious_one_does_not_hide_it():
    data = MALICIOUS["os.system"][0] + pickle.dumps({"weights": [1.0, 2.0]})
    report = scan(data)
    assert report.verdict == "unsafe" and "posix.system" in report.offending
    data = pickle.dumps({"weights": [1.0]}) + MALICIOUS["builtins.eval"][0]
    assert "builtins.eval" in scan(data).offending


def test_a_pickle_renamed_txt_is_still_scanned_by_content():
    data = MALICIOUS["proto0 INST"][0]
    assert detect_format(data) == "text"  # the sniffer says text; the scanner parses it anyway
    report = scan(data, fmt="text")
    assert report.verdict == "unsafe" and report.offending == ["os.system"]


def test_joblib_arrays_with_a_malicious_object_inside():
    data = joblib_with_malicious_object()
    assert detect_format(data[:65536]) == "joblib"
    report = scan(data)
    assert report.verdict == "unsafe"
    assert "posix.system" in report.offending
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in report.globals


@pytest.mark.parametrize("name", ["logreg", "forest", "gbm", "hgb", "pipeline", "knn", "tree", "ridge"])
def test_benign_scikit_learn_models_pass_as_pickle_and_joblib(name):
    model = benign_models()[name]
    for proto in (2, 4, 5):
        report = scan(pickle.dumps(model, protocol=proto))
        assert report.verdict == "safe", (proto, report.offending, report.detail)
        assert not report.quarantined
    report = scan(joblib_bytes(model))
    assert report.verdict == "safe", (report.offending, report.detail)
    assert any(g.startswith("sklearn.") for g in report.globals)


def test_compressed_joblib_is_scanned_inside_and_oversize_and_timeout_are_quarantined_never_clean():
    model = benign_models()["logreg"]
    for compress in (3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
        compressed = joblib_bytes(model, compress=compress)
        assert detect_format(compressed[:65536]) == "compressed"
        report = scan(compressed)
        assert report.verdict == "safe", (compress, report)
        evil = joblib_bytes(Reduce(__import__("os").system, "echo pwned"), compress=compress)
        report = scan(evil)
        assert report.verdict == "unsafe" and "posix.system" in report.offending, (compress, report)
    assert scan(b"\x1f\x8b\x08\x00garbage").verdict == "error"
    big = pickle.dumps(model)
    report = scan(big, max_bytes=100)
    assert report.verdict == "error" and "limit" in report.detail
    report = scan(big, timeout=0)
    assert report.verdict == "error" and "timed out" in report.detail


def test_scan_errors_quarantine():
    truncated = pickle.dumps(benign_models()["logreg"])[:-40]
    report = scan(truncated, fmt="pickle")
    assert report.verdict == "error" and report.quarantined
    # STACK_GLOBAL whose module is computed at load time cannot be resolved statically: quarantined.
    computed = b"\x80\x04\x8c\x08builtins\x8c\x03str\x93\x8c\x02os\x85R\x8c\x06system\x93."
    report = scan(computed, fmt="pickle")
    assert report.verdict == "error" and report.quarantined


def test_zip_members_are_scanned():
    archive = zip_of({"archive/data.pkl": MALICIOUS["os.system"][0], "archive/version": b"3\n"})
    report = scan(archive)
    assert report.verdict == "unsafe" and report.members == ["archive/data.pkl"]
    clean = zip_of({"model/model.pkl": pickle.dumps(benign_models()["ridge"]), "model/MLmodel": b"flavors: {}\n"})
    assert scan(clean).verdict == "safe"
    assert scan(zip_of({"README.md": b"# hi\n"})).verdict == "not_pickle"


def test_ordinary_files_are_not_pickles():
    for data in (b'{"a": 1}', b"Introduction to the model\n", b"flavors:\n  python_function: {}\n", b"\x00\x01"):
        report = scan(data)
        assert report.verdict == "not_pickle" and not report.quarantined


def test_allowlist_is_exact_about_functions():
    assert global_is_safe("sklearn.linear_model._logistic", "LogisticRegression")
    assert global_is_safe("numpy", "dtype")
    assert not global_is_safe("numpy", "load")
    assert not global_is_safe("sklearn.linear_model._logistic", "load")
    assert not global_is_safe("builtins", "getattr")
    assert not global_is_safe("sklearn.externals", "Popen")


def test_a_50_mb_model_scans_in_under_two_seconds():
    import numpy as np

    payload = {"model": benign_models()["forest"], "coef": np.random.default_rng(0).random(6_400_000)}
    data = pickle.dumps(payload, protocol=5)
    assert len(data) > 50_000_000
    started = time.perf_counter()
    report = scan(data)
    assert time.perf_counter() - started < 2.0
    assert report.verdict == "safe"
    assert Reduce  # the corpus helper is importable for other tests


def test_mlflow_text_files_that_start_like_opcodes_are_not_quarantined():
    for data in (b"channels:\n- conda-forge\ndependencies:\n- python=3.11\n",
                 b"python: 3.11.7\nbuild_dependencies:\n- pip\n",
                 b"mlflow==3.1\ncloudpickle==3.0\nscikit-learn==1.9\n"):
        report = scan(data)
        assert report.verdict == "not_pickle" and not report.quarantined, (data, report)


def test_a_text_pickle_that_breaks_after_importing_a_real_module_is_quarantined():
    report = scan(b"cos\nsystem\n(S'echo pwned'\ntR\xff", fmt="text")
    assert report.verdict == "error" and report.quarantined and "os.system" in report.offending


def test_a_crafted_length_prefix_does_not_allocate_it():
    # BINBYTES8 claiming 2**60 bytes: the scanner stops at its budget instead of allocating.
    data = b"\x80\x04\x8e" + (2**60).to_bytes(8, "little") + b"x" * 100
    report = scan(data, max_bytes=1000)
    assert report.verdict == "error" and report.quarantined
