"""Malicious and benign pickles built by the tests (never loaded); payloads name real callables by reference."""

from __future__ import annotations

import codecs
import importlib
import io
import marshal
import os
import pickle
import runpy
import subprocess
import zipfile

import joblib
import numpy as np


class Reduce:
    """Pickles as a call of `func(*args)`; pickling only records the function's module and name."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _function_from_marshal() -> bytes:
    """types.FunctionType(marshal.loads(code), {}) written opcode by opcode (functions cannot be pickled)."""
    code = marshal.dumps(compile("print('pwned')", "<payload>", "exec"))
    return (b"\x80\x03ctypes\nFunctionType\n(cmarshal\nloads\n(B" + len(code).to_bytes(4, "little") + code
            + b"tR}tR.")


MALICIOUS: dict[str, tuple[bytes, str]] = {
    "os.system": (pickle.dumps(Reduce(os.system, "echo pwned")), "posix.system"),
    "builtins.eval": (pickle.dumps(Reduce(eval, "1+1")), "builtins.eval"),
    "subprocess.Popen": (pickle.dumps(Reduce(subprocess.Popen, ["true"])), "subprocess.Popen"),
    "importlib.import_module": (pickle.dumps(Reduce(importlib.import_module, "os")),
                                "importlib.import_module"),
    "marshal+FunctionType": (_function_from_marshal(), "marshal.loads"),
    "codecs.open": (pickle.dumps(Reduce(codecs.open, "/etc/passwd")), "codecs.open"),
    "runpy.run_path": (pickle.dumps(Reduce(runpy.run_path, "/tmp/x.py")), "runpy.run_path"),
    # Protocol 0, hand-written: GLOBAL then REDUCE.
    "proto0 GLOBAL": (b"cos\nsystem\n(S'echo pwned'\ntR.", "os.system"),
    # Protocol 0 INST: starts with MARK, so format sniffing calls it text; the scanner still parses it.
    "proto0 INST": (b"(S'echo pwned'\nios\nsystem\n.", "os.system"),
    # Protocol 4 STACK_GLOBAL with module and name fetched from the memo, not inline.
    "STACK_GLOBAL via memo": (
        b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x0aecho pwned\x85R.", "os.system"),
}


def benign_models() -> dict[str, object]:
    """Fitted scikit-learn models of several kinds."""
    from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    x = rng.random((120, 4))
    y = (x[:, 0] > 0.5).astype(int)
    models = {
        "logreg": LogisticRegression(), "forest": RandomForestClassifier(n_estimators=4, random_state=0),
        "gbm": GradientBoostingClassifier(n_estimators=4), "hgb": HistGradientBoostingClassifier(max_iter=4),
        "pipeline": make_pipeline(StandardScaler(), SVC()), "knn": KNeighborsClassifier(),
        "tree": DecisionTreeRegressor(max_depth=3), "ridge": Ridge(),
    }
    for model in models.values():
        model.fit(x, y)
    return models


def joblib_bytes(obj: object, **kwargs) -> bytes:
    """Serialise with joblib into bytes."""
    buf = io.BytesIO()
    joblib.dump(obj, buf, **kwargs)
    return buf.getvalue()


def joblib_with_malicious_object() -> bytes:
    """A joblib file of numpy arrays, one an object array holding a malicious object."""
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = 1, Reduce(os.system, "echo pwned")
    return joblib_bytes({"weights": np.arange(100.0), "ids": np.arange(5), "extra": evil})


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip archive (PyTorch-style or a zipped MLflow dir) holding the given members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()
