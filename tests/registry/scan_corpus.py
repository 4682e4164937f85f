"""Benign and malicious artifact corpora for the scanner test and bench/scan_corpus.py (built as bytes, never loaded).

Malicious pickles are written with pickle.dumps of objects whose __reduce__ names a real callable (dumping records
only the callable's module and name) or opcode by opcode; nothing here ever unpickles them.
"""

from __future__ import annotations

import builtins
import gzip
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import types
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.registry.pickle_corpus import MALICIOUS, Reduce, benign_models, joblib_bytes, zip_of

PROTOCOLS = range(0, pickle.HIGHEST_PROTOCOL + 1)


@dataclass(frozen=True)
class Sample:
    """One corpus file: its name, the kind (benign) or payload style (malicious), and its bytes."""

    name: str
    kind: str
    data: bytes
    malicious: bool


# ------------------------------------------------------------------------------------------------- benign


def _xgboost_style(protocol: int) -> bytes:
    """An XGBClassifier as xgboost pickles it (parameters, classes, the booster as its raw model bytes), built from
    stand-in classes registered under xgboost's module names only while dumping."""
    top, core, sk = (types.ModuleType(n) for n in ("xgboost", "xgboost.core", "xgboost.sklearn"))
    top.core, top.sklearn = core, sk

    class Booster:
        def __init__(self) -> None:
            self.handle = bytearray(b"{L\x00\x00\x00\x00\x00\x00\x00\x01" * 40)  # UBJSON model bytes

        def __getstate__(self) -> dict:
            return {"handle": self.handle}

    class XGBClassifier:
        def __init__(self) -> None:
            self.n_estimators, self.max_depth, self.learning_rate, self.objective = 10, 3, 0.1, "binary:logistic"
            self.classes_, self.n_classes_ = np.array([0, 1]), 2
            self._Booster = Booster()

    Booster.__module__, Booster.__qualname__, core.Booster = "xgboost.core", "Booster", Booster
    XGBClassifier.__module__, XGBClassifier.__qualname__ = "xgboost.sklearn", "XGBClassifier"
    sk.XGBClassifier = XGBClassifier
    saved = {name: sys.modules.get(name) for name in ("xgboost", "xgboost.core", "xgboost.sklearn")}
    sys.modules["xgboost"], sys.modules["xgboost.core"], sys.modules["xgboost.sklearn"] = top, core, sk
    try:
        return pickle.dumps(XGBClassifier(), protocol=protocol)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _torch_state_dict_pickle(payload: bytes = b"") -> bytes:
    """A PyTorch state dict's data.pkl ({'weight': tensor}) written opcode by opcode, as torch.save lays it out:
    _rebuild_tensor_v2(persistent storage reference, offset, size, stride, requires_grad, hooks)."""
    return (
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02"
        b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05"
        b"X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08QK\x00K\x02K\x02\x86q\tK\x02K\x01\x86q\n"
        b"\x89ccollections\nOrderedDict\nq\x0b)Rq\x0ctq\rRq\x0es" + payload + b"."
    )


def _torch_zip(data_pkl: bytes) -> bytes:
    return zip_of({"archive/data.pkl": data_pkl, "archive/data/0": np.arange(4, dtype=np.float32).tobytes(),
                   "archive/version": b"3\n", "archive/byteorder": b"little"})


def _images() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    out = {}
    for name, fmt in (("photo.png", "PNG"), ("photo.jpg", "JPEG"), ("anim.gif", "GIF"), ("scan.bmp", "BMP"),
                      ("scan.tiff", "TIFF"), ("photo.webp", "WEBP")):
        buf = io.BytesIO()
        pixels.save(buf, format=fmt)
        out[name] = buf.getvalue()
    return out


def _parquet(rows: int, seed: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    table = pa.table({"age": rng.integers(18, 90, rows), "income": rng.random(rows), "label": rng.integers(0, 2, rows)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors layout: an 8-byte header length, a JSON header, then the raw tensor bytes."""
    header, offset, body = {"__metadata__": {"format": "pt"}}, 0, b""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.float16): "F16"}
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtypes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset, body = offset + len(raw), body + raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + body


def _onnx_models() -> dict[str, bytes]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    converted = to_onnx(model, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3})
    weight = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "matmul",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])], [weight])
    bare = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(bare)
    return {"logreg.onnx": converted.SerializeToString(), "matmul.onnx": bare.SerializeToString()}


def onnx_with_external_data(location: str = "../../etc/passwd") -> bytes:
    """An ONNX model whose initializer's bytes live in an external file at `location` (it is never loaded)."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["X", "W"], ["Y"])], "leak",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=array.dtype.hasobject)
    return buf.getvalue()


def benign_corpus() -> list[Sample]:
    """At least 50 harmless files of at least 10 kinds, each as its real library writes it."""
    out: list[Sample] = []

    def add(name: str, kind: str, data: bytes) -> None:
        out.append(Sample(name, kind, data, False))

    models = benign_models()
    for name in ("logreg", "forest", "hgb", "pipeline"):
        for proto in PROTOCOLS:
            add(f"sklearn-{name}-p{proto}.pkl", "scikit-learn pickle", pickle.dumps(models[name], protocol=proto))
    for proto in PROTOCOLS:
        add(f"xgboost-style-p{proto}.pkl", "XGBoost-style pickle", _xgboost_style(proto))
    rng = np.random.default_rng(1)
    arrays = {"weights": rng.random((20, 4)), "ids": np.arange(10, dtype=np.int32),
              "mixed": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "rng": np.random.default_rng(3)}
    for proto in PROTOCOLS:
        add(f"numpy-p{proto}.pkl", "numpy pickle", pickle.dumps(arrays, protocol=proto))
    add("knn.joblib", "joblib", joblib_bytes(models["knn"]))
    add("arrays.joblib", "joblib", joblib_bytes({"coef": rng.random(1000), "labels": np.arange(7)}))
    for compress in (3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
        label = compress if isinstance(compress, int) else compress[0]
        add(f"forest-{label}.joblib", "joblib, compressed", joblib_bytes(models["forest"], compress=compress))
    add("state_dict.pt", "PyTorch zip (data.pkl)", _torch_zip(_torch_state_dict_pickle()))
    add("mlflow-model.zip", "zip of an MLflow model", zip_of({
        "model/MLmodel": b"flavors:\n  sklearn:\n    pickled_model: model.pkl\n",
        "model/model.pkl": pickle.dumps(models["ridge"]), "model/requirements.txt": b"scikit-learn==1.9.1\n",
        "model/conda.yaml": b"channels:\n- conda-forge\ndependencies:\n- python=3.11\n"}))
    for name, data in _images().items():
        add(name, "image", data)
    for name, data in {
        "README.md": b"# Churn model\n\nTrained on the 2026 churn table. See the model card.\n",
        "requirements.txt": b"cloudpickle==3.0.0\nnumpy==2.4.6\nscikit-learn==1.9.1\n",
        "conda.yaml": b"channels:\n- conda-forge\ndependencies:\n- python=3.11\n- pip\n",
        "MLmodel": b"flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n",
        "notes.txt": b"col_a is the age in years; pickle protocol 5 was used. (c) 2026\n",
    }.items():
        add(name, "text", data)
    add("train.csv", "CSV", b"age,income,label\n34,51000.5,1\n51,72000.0,0\n29,38000.25,1\n")
    add("eval.tsv", "CSV", b"id\tscore\n1\t0.93\n2\t0.12\n3\t0.55\n")
    add("metrics.json", "JSON", json.dumps({"auc": 0.91, "f1": [0.8, 0.82]}).encode())
    add("signature.json", "JSON", b'[{"name": "age", "type": "long"}]')
    add("train.parquet", "parquet", _parquet(200, 0))
    add("holdout.parquet", "parquet", _parquet(50, 1))
    add("model.safetensors", "safetensors", _safetensors({"w": np.ones((4, 4), np.float32),
                                                          "steps": np.arange(3, dtype=np.int64)}))
    add("adapter.safetensors", "safetensors", _safetensors({"lora_a": np.zeros((8, 2), np.float16)}))
    for name, data in _onnx_models().items():
        add(name, "ONNX", data)
    add("sample.npy", "numpy .npy", _npy(rng.random((10, 3))))
    return out


# ---------------------------------------------------------------------------------------------- malicious


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _by_opcodes() -> dict[str, bytes]:
    """Payloads that pickle.dumps would not write: every opcode path a load can call through."""
    return {
        # getattr(__import__('os'), 'system')('echo pwned')
        "getattr chain": (b"\x80\x02" + _global("builtins", "getattr") + b"(" + _global("builtins", "__import__")
                          + b"(X\x02\x00\x00\x00ostRX\x06\x00\x00\x00systemtR(X\x0a\x00\x00\x00echo pwnedtR."),
        # getattr(getattr(builtins, 'globals')...) nested through operator.attrgetter
        "operator.attrgetter chain": (b"\x80\x02" + _global("operator", "attrgetter")
                                      + b"(X\x06\x00\x00\x00systemtR" + _global("builtins", "__import__")
                                      + b"(X\x02\x00\x00\x00ostR\x85R(X\x04\x00\x00\x00truetR."),
        # STACK_GLOBAL whose module name is computed at load time ("o" + "s"): unresolvable statically.
        "STACK_GLOBAL computed name": (b"\x80\x04" + _unicode("builtins") + _unicode("str") + b"\x93"
                                       + _unicode("o") + b"\x85R" + _unicode("system") + b"\x93"
                                       + _unicode("echo pwned") + b"\x85R."),
        "STACK_GLOBAL direct": (b"\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00" + _unicode("posix")
                                + _unicode("system") + b"\x93" + _unicode("echo pwned") + b"\x85R."),
        "INST opcode (protocol 0)": b"(S'echo pwned'\nios\nsystem\n.",
        "OBJ opcode (protocol 1)": b"(" + _global("os", "system") + b"X\x0a\x00\x00\x00echo pwnedo.",
        "NEWOBJ opcode": b"\x80\x02" + _global("subprocess", "Popen") + b"]X\x04\x00\x00\x00truea\x85\x81.",
        "NEWOBJ_EX opcode": (b"\x80\x04" + _unicode("subprocess") + _unicode("Popen") + b"\x93"
                             + b"]" + _unicode("true") + b"a\x85}\x92."),
        # The callable is memoised early, shadowed in the memo, then fetched back for REDUCE.
        "memo trick": (b"\x80\x02" + _global("os", "system") + b"q\x00" + b"0" + b"X\x01\x00\x00\x00aq\x01"
                       + b"0h\x00(X\x0a\x00\x00\x00echo pwnedtR."),
        "memo overwrite": (b"\x80\x04" + _unicode("collections") + _unicode("OrderedDict") + b"\x93\x94"
                           + b"0" + _unicode("os") + _unicode("system") + b"\x93r\x00\x00\x00\x00"
                           + b"0h\x00" + _unicode("echo pwned") + b"\x85R."),
        "benign then malicious (stacked)": pickle.dumps({"w": [1.0]}) + MALICIOUS["os.system"][0],
        "numpy.testing runstring": (b"\x80\x02" + _global("numpy.testing._private.utils", "runstring")
                                    + b"(X\x15\x00\x00\x00import os; os.getpid()}tR."),
        "timeit.timeit": b"\x80\x02" + _global("timeit", "timeit") + b"(X\x0b\x00\x00\x00print('hi')tR.",
        "pip main": (b"\x80\x02" + _global("pip", "main") + b"(]X\x07\x00\x00\x00installaX\x04\x00\x00\x00evil"
                     b"a\x85tR."),
        "torch.load nested": b"\x80\x02" + _global("torch", "load") + b"(X\x06\x00\x00\x00/tmp/xtR.",
    }


def malicious_corpus() -> list[Sample]:
    """At least 25 payload styles across protocols 0-5, plain and embedded (joblib, zip, gzip, .npy, nested)."""
    out: list[Sample] = []

    def add(name: str, style: str, data: bytes) -> None:
        out.append(Sample(name, style, data, True))

    for proto in PROTOCOLS:
        add(f"os-system-p{proto}.pkl", "os.system", pickle.dumps(Reduce(os.system, "echo pwned"), protocol=proto))
    by_reduce = {
        "subprocess.Popen": Reduce(subprocess.Popen, ["true"]),
        "subprocess.check_output": Reduce(subprocess.check_output, ["id"]),
        "subprocess.run": Reduce(subprocess.run, ["true"]),
        "builtins.eval": Reduce(builtins.eval, "__import__('os').system('true')"),
        "builtins.exec": Reduce(builtins.exec, "import os; os.system('true')"),
        "builtins.__import__": Reduce(builtins.__import__, "os"),
        "builtins.open (write)": Reduce(builtins.open, "/tmp/owned", "w"),
        "shutil.rmtree": Reduce(shutil.rmtree, "/tmp/nothing-here"),
        "socket.create_connection": Reduce(socket.create_connection, ("127.0.0.1", 9)),
        "os.execv": Reduce(os.execv, "/bin/true", ["true"]),
        "nested pickle (pickle.loads)": Reduce(pickle.loads, MALICIOUS["os.system"][0]),
    }
    for i, (style, obj) in enumerate(by_reduce.items()):
        add(f"{style.split(' ')[0]}-p{i % 6}.pkl", style, pickle.dumps(obj, protocol=i % 6))
    for style, (data, _culprit) in MALICIOUS.items():
        if style not in ("os.system", "builtins.eval", "subprocess.Popen"):
            add(f"{style.replace(' ', '_').replace('+', '_')}.pkl", style, data)
    for style, data in _by_opcodes().items():
        add(f"{style.split(' ')[0]}-{len(out)}.pkl", style, data)
    evil = Reduce(os.system, "echo pwned")
    from tests.registry.pickle_corpus import joblib_with_malicious_object

    add("evil-object-array.joblib", "joblib-embedded (object array)", joblib_with_malicious_object())
    add("evil.joblib.z", "joblib-embedded, compressed", joblib_bytes(evil, compress=3))
    add("evil.joblib.gz", "joblib-embedded, gzip", joblib_bytes(evil, compress=("gzip", 3)))
    add("evil.pkl.gz", "gzip-compressed pickle", gzip.compress(pickle.dumps(evil)))
    add("evil_state_dict.pt", "zip-embedded (PyTorch data.pkl)", _torch_zip(MALICIOUS["os.system"][0]))
    add("torch-reduce.pt", "zip-embedded, payload inside a state dict",
        _torch_zip(_torch_state_dict_pickle()[:-2] + b"X\x01\x00\x00\x00x" + _global("os", "system")
                   + b"(X\x04\x00\x00\x00truetRs."))
    add("nested.zip", "pickle in a zip in a zip", zip_of({"outer/inner.zip": zip_of(
        {"archive/data.pkl": MALICIOUS["os.system"][0]})}))
    add("renamed.txt", "protocol 0 pickle that sniffs as text", MALICIOUS["proto0 INST"][0])
    objects = np.empty(2, dtype=object)
    objects[0], objects[1] = 1, evil
    add("evil.npy", "object .npy with a payload", _npy(objects))
    add("leak.onnx", "ONNX external data ../../etc/passwd", onnx_with_external_data())
    return out


def write_corpus(samples: list[Sample], folder: Path) -> list[Path]:
    """Write each sample to `folder` under a unique name; return the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, sample in enumerate(samples):
        path = folder / f"{i:03d}-{sample.name}"
        path.write_bytes(sample.data)
        paths.append(path)
    return paths


def describe(samples: list[Sample]) -> Counter:
    """How many files of each kind or payload style."""
    return Counter(s.kind for s in samples)
