"""The sealed child process that loads untrusted pickles: started without preexec_fn, confined by the kernel.

The parent (a Celery worker, never the web process) starts `python -I` in a new session with an empty environment
and a fresh, empty temporary working folder, streams the input files through a pipe (the child never gets a path
to them), and reads one JSON line back. The child sets its own resource limits (CPU, address space, file size, no
core files), then, before it reads a byte of the input, confines itself in ways it cannot undo:

* Landlock (kernel LSM, via `landlockpy`): read-only access to the interpreter's libraries and the system's shared
  libraries, read-write access to its working folder, nothing else: not the project folder, not `var/` (the
  secret key, the signing key, the SQLite database, the artifact store); no TCP bind or connect; no abstract Unix
  sockets or signals outside its own domain.
* seccomp (via `pyseccomp`/libseccomp): socket(), exec, ptrace, keyrings, io_uring, bpf, namespace and mount
  calls fail with EACCES, so the database's Unix socket (which Landlock does not cover on this ABI) is out of
  reach too.

Where the kernel offers neither, the child falls back to a Python audit hook that refuses the same operations
(weaker: native code can bypass it) and says so: every report names the confinement that was active.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds the `registry` package
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CHUNK = 1024 * 1024
# Syscalls the child never needs; each fails with EACCES instead of running.
_DENIED_SYSCALLS = ("socket", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "keyctl",
                    "add_key", "request_key", "io_uring_setup", "bpf", "userfaultfd", "perf_event_open", "unshare",
                    "setns", "mount", "umount2", "pivot_root", "chroot", "open_by_handle_at", "name_to_handle_at",
                    "kexec_load", "init_module", "finit_module")


@dataclass
class SandboxResult:
    """What the child reported, or why it did not."""

    ok: bool
    data: dict[str, Any]
    error: str = ""
    returncode: int = 0
    confinement: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


class SandboxMisconfigured(RuntimeError):
    """A path the child may read lies over a secret (or inside one): the sandbox refuses to start."""


# ------------------------------------------------------------------------------------------------ parent side


def readable_paths() -> list[str]:
    """Return the folders and files the child may read: the interpreter's libraries and the system's."""
    paths = sysconfig.get_paths()
    candidates = [paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"],
                  os.path.join(sys.base_prefix, "lib"),
                  "/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache",
                  "/proc/cpuinfo", "/sys/devices/system/cpu", "/dev/urandom", "/dev/null"]
    out: list[str] = []
    for path in candidates:
        real = os.path.realpath(path)
        if os.path.exists(real) and real not in out:
            out.append(real)
    return out


def secret_paths() -> list[str]:
    """Return what the child must never read: var/, the artifact store, the secret key and the signing key."""
    from django.conf import settings

    var = Path(settings.VAR_DIR)
    paths = [var, var / "secret_key", var / "signing_key.pem", Path(settings.ARTIFACT_ROOT)]
    signing = getattr(settings, "STRATUM_SIGNING_KEY", "") or ""
    if signing and not signing.lstrip().startswith("-----BEGIN"):
        paths.append(Path(signing))
    return [os.path.realpath(p) for p in paths]


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_separation(readable: Iterable[str], secrets: Iterable[str], containers: Iterable[str] = (_ROOT,)) -> None:
    """Refuse to start when a readable path holds a secret path or lies inside one (Landlock cannot carve a hole
    out of a grant), or holds a whole container: the project folder may hold the virtualenv the child reads
    (`make setup` puts .venv there), never be granted whole (its settings and var/ would come with it)."""
    secrets = [os.path.realpath(s) for s in secrets]
    containers = [os.path.realpath(c) for c in containers]
    for path in readable:
        for secret in secrets:
            if _beneath(secret, path) or _beneath(path, secret):
                raise SandboxMisconfigured(f"the sandbox may read {path}, which overlaps {secret}; "
                                           "move the secrets or the interpreter apart")
        for container in containers:
            if _beneath(container, path):
                raise SandboxMisconfigured(f"the sandbox may read {path}, which holds the whole of {container}; "
                                           "install the interpreter elsewhere")


def _feed(write_fd: int, files: Sequence[str]) -> None:
    """Stream the input files into the child's stdin, one after another (it knows their sizes)."""
    try:
        with os.fdopen(write_fd, "wb", buffering=0) as pipe:
            for path in files:
                with open(path, "rb") as src:
                    for chunk in iter(lambda: src.read(_CHUNK), b""):
                        pipe.write(chunk)
    except (BrokenPipeError, ConnectionResetError):  # the child stopped reading (a limit, or an error): it reports
        pass


def _killed_reason(returncode: int, cpu_seconds: int) -> str:
    sig = -returncode
    if sig in (signal.SIGXCPU, signal.SIGKILL):  # the soft CPU limit sends SIGXCPU, the hard one SIGKILL
        return f"killed by {signal.Signals(sig).name}: the CPU time limit of {cpu_seconds} s was reached"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return f"killed by {name} (resource limit)"


def run_sandboxed(command: str, *, inputs: Mapping[str, str] | None = None, args: Sequence[str] = (),
                  outputs: Sequence[str] = (), output_dir: str | None = None, cpu_seconds: int,
                  memory_bytes: int, file_bytes: int | None = None, timeout: float,
                  extra_globals: Sequence[str] = (), confinement: str = "auto") -> SandboxResult:
    """Run `command` of registry.pipeline.loader in a sealed child; return its JSON report.

    `inputs` (name -> path on this side) are streamed through the child's stdin and appear in its empty working
    folder under their names; `outputs` are names the child writes there, moved into `output_dir` when it
    succeeds. `extra_globals` widens the unpickler's allowlist (only the confinement tests use it);
    `confinement` "audit-hook" forces the weaker fallback (tests of that fallback).
    """
    from django.conf import settings

    inputs = dict(inputs or {})
    for name in [*inputs, *outputs]:
        if not _NAME.match(name):
            raise ValueError(f"not a plain file name for the sandbox: {name!r}")
    if outputs and not output_dir:
        raise ValueError("outputs need an output_dir")
    if file_bytes is None:
        file_bytes = settings.STRATUM_LOAD_FILE_BYTES
    readable = readable_paths()
    check_separation(readable, secret_paths())
    config = {"command": command, "args": list(args), "files": [[n, os.path.getsize(p)] for n, p in inputs.items()],
              "cpu": int(cpu_seconds), "memory": int(memory_bytes), "fsize": int(file_bytes),
              "readable": readable, "extra_globals": list(extra_globals), "confinement": confinement}
    boot = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from registry.pipeline.sandbox import child_main; sys.exit(child_main(sys.argv[2]))")
    with tempfile.TemporaryDirectory(prefix="stratum-sandbox-") as cage:
        os.chmod(cage, 0o700)
        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-c", boot, _ROOT, json.dumps(config)], stdin=read_fd,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, cwd=cage,
                                    start_new_session=True, close_fds=True)
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        feeder = threading.Thread(target=_feed, args=(write_fd, list(inputs.values())), daemon=True)
        feeder.start()
        timed_out = False
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole session: nothing the child started survives
            except ProcessLookupError:
                pass
            stdout, stderr = proc.communicate()
        feeder.join(timeout=10)
        result = _result(proc.returncode, stdout, stderr, timed_out=timed_out, timeout=timeout,
                         cpu_seconds=cpu_seconds)
        if result.ok and outputs:
            for name in outputs:
                src = os.path.join(cage, name)
                if not os.path.isfile(src) or os.path.islink(src):
                    return SandboxResult(False, result.data, f"the sandbox wrote no {name}", 0, result.confinement)
                dest = os.path.join(output_dir, name)
                shutil.move(src, dest)
                result.outputs[name] = dest
    return result


def _result(returncode: int, stdout: bytes, stderr: bytes, *, timed_out: bool, timeout: float,
            cpu_seconds: int) -> SandboxResult:
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if not isinstance(report, dict):
        report = {}
    confinement = str(report.get("confinement", ""))
    data = report.get("data") if isinstance(report.get("data"), dict) else {}
    if timed_out:
        return SandboxResult(False, data, f"the wall-time limit of {timeout:g} s was reached; the child was killed",
                             -signal.SIGKILL, confinement)
    if returncode == 0 and report.get("ok"):
        return SandboxResult(True, data, "", 0, confinement)
    if returncode < 0:
        error = _killed_reason(returncode, cpu_seconds)
    else:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        error = str(report.get("error") or tail[0] or f"exit status {returncode}")
    return SandboxResult(False, data, error[:2000], returncode, confinement)


# ------------------------------------------------------------------------------------------------- child side


def _set_limits(config: Mapping[str, Any]) -> None:
    import resource

    cpu = int(config["cpu"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (int(config["memory"]),) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(config["fsize"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the file-size limit a write fails with EFBIG, reported


def _landlock(readable: Sequence[str], cage: str) -> str:
    import landlockpy
    from landlockpy import AccessFS, Ruleset, Scope

    abi = landlockpy.abi_version()
    if abi < 1:
        raise OSError(errno.ENOSYS, "Landlock is not available in this kernel")
    scoped = Scope.ABSTRACT_UNIX_SOCKET | Scope.SIGNAL
    with Ruleset(scoped=scoped) as ruleset:  # handles every filesystem and network right this kernel knows
        read = AccessFS.READ_FILE | AccessFS.READ_DIR
        for path in readable:
            ruleset.allow_path(path, read if os.path.isdir(path) else AccessFS.READ_FILE)
        if os.path.exists("/dev/null"):
            ruleset.allow_path("/dev/null", AccessFS.READ_FILE | AccessFS.WRITE_FILE)
        ruleset.allow_path(cage, ruleset.handled_fs & ~AccessFS.EXECUTE)
        ruleset.restrict()
        net = "no network" if ruleset.handled_net else "network not handled by this ABI"
    return f"landlock ABI {abi} (files: interpreter and system libraries read-only, working folder; {net})"


def _seccomp() -> str:
    import pyseccomp

    flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    denied = []
    for name in _DENIED_SYSCALLS:
        try:
            flt.add_rule(pyseccomp.ERRNO(errno.EACCES), name)
            denied.append(name)
        except (OSError, ValueError, RuntimeError):  # a syscall this architecture does not have
            continue
    flt.load()
    return f"seccomp ({len(denied)} syscalls refused, socket and exec among them)"


def _audit_hook(readable: Sequence[str], cage: str) -> str:
    """Refuse opens outside the allowed folders and every process, socket or native-library event."""
    readable = tuple(readable)
    refused_prefixes = ("subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.system",
                        "os.kill", "os.killpg", "socket.", "pty.", "shutil.", "os.chroot", "os.link",
                        "os.symlink", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown")

    def allowed(path: object, write: bool) -> bool:
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
        if _beneath(real, cage):
            return True
        return not write and any(_beneath(real, folder) for folder in readable)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = [*args, None, None, None][:3]
            write = bool(mode and any(c in str(mode) for c in "wax+")) or bool(
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if path is not None and not allowed(path, write):
                raise PermissionError(errno.EACCES, "refused by the sandbox", os.fsdecode(path))
        elif event in ("os.listdir", "os.scandir") and args and args[0] is not None:
            if not allowed(args[0], False):
                raise PermissionError(errno.EACCES, "refused by the sandbox", str(args[0]))
        elif event == "ctypes.dlopen":  # numerical libraries load their own native helpers, from the libraries only
            name = str(args[0]) if args and args[0] else ""
            if os.sep in name and not allowed(name, False):
                raise PermissionError(errno.EACCES, "refused by the sandbox", str(args[0]))
        elif event.startswith(refused_prefixes):
            raise PermissionError(errno.EACCES, f"{event} refused by the sandbox")

    sys.addaudithook(hook)
    return "audit hook (Landlock unavailable: Python-level refusal only, bypassable by native code)"


def _confine(config: Mapping[str, Any], cage: str) -> str:
    readable = list(config["readable"])
    if config.get("confinement") == "audit-hook":
        return _audit_hook(readable, cage)
    try:
        import pyseccomp  # loads libseccomp now, while every library is still readable
    except (ImportError, OSError, RuntimeError, AttributeError):
        pyseccomp = None  # type: ignore[assignment]
    try:
        parts = [_landlock(readable, cage)]
    except (ImportError, OSError) as exc:
        return f"{_audit_hook(readable, cage)} [{exc}]"
    if pyseccomp is not None:
        try:
            parts.append(_seccomp())
        except OSError as exc:
            parts.append(f"no seccomp ({exc})")
    else:
        parts.append("no seccomp (libseccomp missing)")
    return " + ".join(parts)


def _receive(files: Sequence[Sequence[Any]]) -> None:
    """Copy the parent's files from stdin into the working folder (the file-size limit applies)."""
    source = sys.stdin.buffer
    for name, size in files:
        if not _NAME.match(str(name)):
            raise ValueError(f"bad input name {name!r}")
        remaining = int(size)
        with open(str(name), "wb") as out:
            while remaining:
                chunk = source.read(min(_CHUNK, remaining))
                if not chunk:
                    raise EOFError(f"the input {name} ended early")
                out.write(chunk)
                remaining -= len(chunk)


def child_main(raw_config: str) -> int:
    """The child's whole life: limits, confinement, then the command on the piped inputs; one JSON line out."""
    config = json.loads(raw_config)
    confinement = ""
    try:
        _set_limits(config)
        cage = os.path.realpath(os.getcwd())
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"  # the child's own setting, after it started with an empty environment
        from registry.pipeline import convert, loader  # imported while the project folder is still readable

        sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != _ROOT]
        confinement = _confine(config, cage)
        _receive(config["files"])
        data = loader.run_command(config["command"], list(config["args"]), extra_globals=config["extra_globals"],
                                  convert=convert)
    except MemoryError:
        out = {"ok": False, "error": f"MemoryError: the memory limit of {config['memory']} bytes was reached"}
    except OSError as exc:
        detail = "the file-size limit was reached" if exc.errno == errno.EFBIG else str(exc)
        out = {"ok": False, "error": f"{exc.__class__.__name__}: {detail}"}
    except Exception as exc:  # reported to the parent as data; the child never raises past here
        out = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    else:
        out = {"ok": True, "data": data}
    out["confinement"] = confinement
    out["error"] = str(out.get("error", ""))[:2000]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out["ok"] else 1
