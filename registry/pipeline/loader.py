"""The only place a pickle is loaded: a child process with CPU and memory limits and an allowlisting unpickler.

The parent (a Celery worker, never the web process) calls `load_in_sandbox`; the child runs this module as a
script with a clean environment, sets RLIMIT_CPU / RLIMIT_AS before it reads a byte, loads through
`RestrictedUnpickler` (whose find_class admits only the scanner's allowlist), and prints one JSON line.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from registry.pipeline.scan.analysis import global_is_safe


class Refused(pickle.UnpicklingError):
    """The pickle asked for a global outside the allowlist."""


def _find_class(module: str, name: str, default: Any) -> Any:
    if not global_is_safe(module, name):
        raise Refused(f"global {module}.{name} is not on the allowlist")
    return default(module, name)


class RestrictedUnpickler(pickle.Unpickler):
    """A pickle.Unpickler that imports only allowlisted globals."""

    def find_class(self, module: str, name: str) -> Any:
        return _find_class(module, name, super().find_class)


def restricted_load(path: str, fmt: str) -> Any:
    """Load a pickle or joblib file through the allowlist (call only inside the sandbox child)."""
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


@dataclass
class SandboxResult:
    """What the child reported, or why it did not."""

    ok: bool
    data: dict[str, Any]
    error: str = ""
    returncode: int = 0


def _limits(cpu_seconds: int, memory_bytes: int):
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


def run_sandboxed(args: list[str], *, cpu_seconds: int, memory_bytes: int, timeout: float,
                  output_dir: str | None = None) -> SandboxResult:
    """Run this module in a limited child with `args`; return its JSON report."""
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
           "HOME": output_dir or tempfile.gettempdir()}
    try:
        proc = subprocess.run([sys.executable, "-s", "-m", "registry.pipeline.loader", *args], env=env,
                              capture_output=True, timeout=timeout, preexec_fn=_limits(cpu_seconds, memory_bytes),
                              cwd=output_dir or tempfile.gettempdir(), check=False)
    except subprocess.TimeoutExpired:
        return SandboxResult(False, {}, f"timed out after {timeout:g} s", -9)
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if proc.returncode == 0 and report.get("ok"):
        return SandboxResult(True, report.get("data", {}), "", 0)
    if proc.returncode < 0:
        import signal

        error = f"killed by {signal.Signals(-proc.returncode).name} (resource limit)"
    else:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        error = report.get("error") or tail[0] or f"exit status {proc.returncode}"
    return SandboxResult(False, report.get("data", {}), error[:2000], proc.returncode)


def load_in_sandbox(path: str, fmt: str, *, cpu_seconds: int = 60, memory_bytes: int = 4 * 1024**3,
                    timeout: float = 120) -> SandboxResult:
    """Load a scanned-clean pickle/joblib file in a limited child and describe what it holds."""
    return run_sandboxed(["load", path, fmt], cpu_seconds=cpu_seconds, memory_bytes=memory_bytes, timeout=timeout)


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    try:
        if command == "limits":
            import resource

            data = {"cpu": resource.getrlimit(resource.RLIMIT_CPU)[0], "as": resource.getrlimit(resource.RLIMIT_AS)[0]}
        elif command == "load":
            data = describe(restricted_load(argv[1], argv[2]))
        elif command == "convert":
            from registry.pipeline.convert import convert_in_child

            data = convert_in_child(*argv[1:])
        else:
            raise SystemExit(f"unknown command {command!r}")
    except Exception as exc:  # reported to the parent as data; the child never raises past here
        print(json.dumps({"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:2000]}))
        return 1
    print(json.dumps({"ok": True, "data": data}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
