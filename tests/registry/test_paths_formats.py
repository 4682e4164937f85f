"""Artifact paths cannot escape a version's tree; formats are sniffed from bytes and nothing is unpickled."""

from __future__ import annotations

import collections
import io
import json
import pickle
import random
import zipfile

import joblib
import numpy as np
import pytest

from registry.artifacts import formats
from registry.artifacts.formats import SNIFF_BYTES, content_type_for, detect_format
from registry.artifacts.paths import MAX_PATH_LENGTH, MAX_SEGMENT_LENGTH, validate_artifact_path
from registry.errors import InvalidInput

# ------------------------------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("model.pkl", "model.pkl"),
        ("dir/sub/file.onnx", "dir/sub/file.onnx"),
        ("a b/c%.txt", "a b/c%.txt"),
        ("MLmodel", "MLmodel"),
        ("..hidden/x", "..hidden/x"),
        ("a.../b", "a.../b"),
        ("data%20set/x.csv", "data set/x.csv"),
        ("modèle/poids.bin", "modèle/poids.bin"),
        ("/".join(["d"] * 500), "/".join(["d"] * 500)),
        ("x" * MAX_SEGMENT_LENGTH, "x" * MAX_SEGMENT_LENGTH),
    ],
)
def test_accepted_paths_are_returned_decoded(raw, stored):
    assert validate_artifact_path(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "/abs",
        "/etc/passwd",
        "~/x",
        "..",
        "../x",
        "a/..",
        "a/../b",
        "a/./b",
        "./a",
        "a//b",
        "a/",
        "%2e%2e/x",
        "%2E%2E/x",
        "a/%2e%2e/%2e%2e/x",
        "%252e%252e/x",
        "%25252e%25252e/x",
        "..%2fx",
        "a%2f..%2f..%2fb",
        "%2fetc/passwd",
        "a\\b",
        "..\\x",
        "a%5cb",
        "C:/x",
        "c:x",
        "a\x00b",
        "a%00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x1fb",
        "a\x7fb",
        "a%0ab",
        "x" * (MAX_SEGMENT_LENGTH + 1),
        "/".join(["d"] * 600),
        ("y" * 200 + "/") * 5 + "z" * 30,
        None,
        b"model.pkl",
    ],
)
def test_rejected_paths(raw):
    with pytest.raises(InvalidInput):
        validate_artifact_path(raw)


def test_path_length_limit_is_exact():
    segment = "s" * 200
    ok = "/".join([segment] * 5) + "/" + "t" * (MAX_PATH_LENGTH - 5 * 201)
    assert len(ok) == MAX_PATH_LENGTH
    assert validate_artifact_path(ok) == ok
    with pytest.raises(InvalidInput, match="longer"):
        validate_artifact_path(ok + "t")


@pytest.mark.parametrize("raw", ["%ff", "model%c3.pkl", "%e2%82"])
def test_percent_encoded_invalid_utf8_is_invalid_input(raw):
    # Must be the domain error (a 400), not a UnicodeDecodeError escaping as a 500.
    with pytest.raises(InvalidInput):
        validate_artifact_path(raw)


def test_deeply_encoded_path_is_refused():
    raw = "x"
    for _ in range(12):
        raw = raw.replace("%", "%25") if "%" in raw else "%78"
    with pytest.raises(InvalidInput, match="encoded"):
        validate_artifact_path(raw)


# ----------------------------------------------------------------------------------------------- formats


class _Tripwire:
    """Unpickling this calls _trip, so a test can prove nothing ever loaded it."""

    def __reduce__(self):
        return (_trip, ())


TRIPPED: list[bool] = []


def _trip():
    TRIPPED.append(True)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("obj", [{"weights": [1.0, 2.0]}, [1, 2, 3], _Tripwire()], ids=["dict", "list", "object"])
def test_pickle_protocols_2_to_5_detected_without_loading(protocol, obj):
    data = pickle.dumps(obj, protocol=protocol)
    assert detect_format(data) == "pickle"
    assert TRIPPED == []


@pytest.mark.parametrize("protocol", [0, 1])
def test_old_protocol_pickles_of_objects_detected(protocol):
    data = pickle.dumps(collections.OrderedDict(a=1), protocol=protocol)
    assert data.startswith(b"ccollections\nOrderedDict\n")
    assert detect_format(data) == "pickle"


def test_detect_format_never_calls_pickle_loaders(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("detect_format must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(joblib, "load", refuse)
    assert detect_format(pickle.dumps(_Tripwire(), protocol=5)) == "pickle"
    assert TRIPPED == []


def test_joblib_uncompressed_numpy_array():
    buf = io.BytesIO()
    joblib.dump(np.arange(100, dtype=np.float64), buf)
    assert detect_format(buf.getvalue()) == "joblib"


def test_joblib_compressed_is_compressed():
    buf = io.BytesIO()
    joblib.dump(np.arange(100, dtype=np.float64), buf, compress=3)
    assert detect_format(buf.getvalue()) == "compressed"


@pytest.mark.parametrize(
    "data",
    [
        # ir_version=7, producer_name="skl2onnx", producer_version="1.9.1", graph (field 7) ...
        b"\x08\x07\x12\x08skl2onnx\x1a\x051.9.1:\x10\n\x0e\n\x01X\x12\x01Y\x1a\x03Abs",
        # ir_version=8, opset_import (field 8) naming ai.onnx.ml first.
        b"\x08\x08B\x0e\n\nai.onnx.ml\x10\x03",
    ],
)
def test_onnx_header_detected(data):
    assert detect_format(data) == "onnx"


def test_zip_detected():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("saved_model.pb", b"\x00" * 16)
    assert detect_format(buf.getvalue()) == "zip"


def test_mlmodel_yaml_detected():
    text = (
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
    )
    assert detect_format(text.encode()) == "mlmodel"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (json.dumps({"inputs": [{"name": "age", "type": "long"}]}).encode(), "json"),
        (b"  [1, 2, 3]\n", "json"),
        (b"{not json", "text"),
        (b"plain README text\nwith lines\n", "text"),
        ("Modèle de résiliation — notes\n".encode(), "text"),
        (b"", "text"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "compressed"),
        (b"\x00\x01\x02\x03binary", "binary"),
    ],
)
def test_json_text_binary(data, expected):
    assert detect_format(data) == expected


@pytest.mark.parametrize(
    "text",
    [
        # MLflow writes conda.yaml next to MLmodel; its first line starts with 'c' and it has many lines.
        "channels:\n- conda-forge\ndependencies:\n- python=3.11\n- pip\n",
        "cloudpickle==3.0.0\nnumpy==2.4.6\nscikit-learn==1.9.1\n",
        "col_a,col_b\n1,2\n3,4\n",
    ],
)
def test_text_starting_with_c_is_not_mistaken_for_a_pickle(text):
    assert detect_format(text.encode()) in ("text", "csv")


def test_random_binary_is_binary():
    data = b"\x00\xff" + random.Random(1234).randbytes(4096)
    assert detect_format(data) == "binary"


@pytest.mark.parametrize("prefix", ["", "a", "ab"])
@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_utf8_text_cut_mid_character_at_sniff_boundary_is_still_text(prefix, char):
    data = (prefix + char * SNIFF_BYTES).encode()
    head = data[:SNIFF_BYTES]
    assert detect_format(head) == "text"


def test_content_types_never_render_risky_formats_inline():
    assert content_type_for("pickle") == "application/octet-stream"
    assert content_type_for("onnx") == "application/octet-stream"
    assert content_type_for("json") == "application/json"
    assert content_type_for("text").startswith("text/plain")
    assert formats.content_type_for("binary") == "application/octet-stream"
