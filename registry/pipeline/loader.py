"""The only place a pickle is loaded: the sealed sandbox child (sandbox.py) through an allowlisting unpickler.

The parent (a Celery worker, never the web process) calls `load_in_sandbox` or `run_sandboxed`; the child sets its
own limits, confines itself (Landlock + seccomp, see sandbox.py), receives the file through a pipe, loads it
through `RestrictedUnpickler` (whose find_class admits only the scanner's allowlist), and prints one JSON line.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

from registry.pipeline.sandbox import SandboxResult, run_sandboxed
from registry.pipeline.scan.analysis import global_is_safe

__all__ = ["RestrictedUnpickler", "SandboxResult", "describe", "load_in_sandbox", "restricted_load", "run_sandboxed"]


class Refused(pickle.UnpicklingError):
    """The pickle asked for a global outside the allowlist."""


_EXTRA_GLOBALS: frozenset[str] = frozenset()


def _find_class(module: str, name: str, default: Any) -> Any:
    if not global_is_safe(module, name) and f"{module}.{name}" not in _EXTRA_GLOBALS:
        raise Refused(f"global {module}.{name} is not on the allowlist")
    return default(module, name)


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that imports only allowlisted globals."""

    def find_class(self, module: str, name: str) -> Any:
        return _find_class(module, name, super().find_class)


def restricted_load(path: str, fmt: str, *, extra_globals: Sequence[str] = ()) -> Any:
    """Load a pickle or joblib file through the allowlist (call only inside the sandbox child).

    `extra_globals` ("module.name") widens the allowlist for this child only: the confinement tests use it to run
    code that the allowlist would have stopped, to show the kernel stops it too.
    """
    global _EXTRA_GLOBALS
    _EXTRA_GLOBALS = frozenset(extra_globals)
    if fmt == "joblib":
        from joblib import numpy_pickle

        class RestrictedNumpyUnpickler(numpy_pickle.NumpyUnpickler):
            def find_class(self, module: str, name: str) -> Any:
                return _find_class(module, name, super().find_class)

        original = numpy_pickle.NumpyUnpickler
        numpy_pickle.NumpyUnpickler = RestrictedNumpyUnpickler  # joblib.load builds its unpickler by this name
        try:
            return numpy_pickle.load(path)
        finally:
            numpy_pickle.NumpyUnpickler = original
    with open(path, "rb") as fh:
        return RestrictedUnpickler(fh).load()


def describe(obj: Any) -> dict[str, Any]:
    """Summarise a loaded object for the job result (no repr of user data)."""
    out: dict[str, Any] = {"class": f"{type(obj).__module__}.{type(obj).__qualname__}",
                           "predict": callable(getattr(obj, "predict", None))}
    n_features = getattr(obj, "n_features_in_", None)
    if isinstance(n_features, int):
        out["n_features_in"] = n_features
    classes = getattr(obj, "classes_", None)
    if classes is not None:
        out["n_classes"] = len(classes)
    return out


def load_in_sandbox(path: str, fmt: str, *, cpu_seconds: int = 60, memory_bytes: int = 4 * 1024**3,
                    timeout: float = 120, file_bytes: int | None = None,
                    extra_globals: Sequence[str] = ()) -> SandboxResult:
    """Load a scanned-clean pickle/joblib file in the sealed child and describe what it holds."""
    return run_sandboxed("load", inputs={"model": path}, args=[fmt], cpu_seconds=cpu_seconds,
                         memory_bytes=memory_bytes, file_bytes=file_bytes, timeout=timeout,
                         extra_globals=extra_globals)


def run_command(command: str, args: list[str], *, extra_globals: Sequence[str], convert: Any) -> dict[str, Any]:
    """Run one sandbox command on the files in the working folder (call only inside the sandbox child)."""
    if command == "limits":
        import resource

        return {"cpu": resource.getrlimit(resource.RLIMIT_CPU)[0], "as": resource.getrlimit(resource.RLIMIT_AS)[0],
                "fsize": resource.getrlimit(resource.RLIMIT_FSIZE)[0], "cwd_entries": sorted(os.listdir(".")),
                "environ": sorted(k for k in os.environ if not k.endswith("_NUM_THREADS"))}
    if command == "load":
        return describe(restricted_load("model", args[0], extra_globals=extra_globals))
    if command == "convert":
        return convert.convert_in_child("model", args[0], "model.onnx", "sample.npy" if os.path.exists("sample.npy")
                                        else "", args[1] if len(args) > 1 else "0")
    raise ValueError(f"unknown command {command!r}")
