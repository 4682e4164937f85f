"""The sealed sandbox: the child that loads pickles cannot read the secrets, write outside its folder, reach the
network or run programs, even when the allowlist is deliberately widened so that hostile code actually runs.

Nothing hostile is ever loaded in this (the test) process: the payloads are bytes written by hand and handed to
`run_sandboxed`, whose child is the point.
"""

from __future__ import annotations

import os
import pickle
import sysconfig
import time
import zlib
from pathlib import Path

import pytest
from django.conf import settings

from registry.pipeline.keys import private_key
from registry.pipeline.loader import load_in_sandbox, run_sandboxed
from registry.pipeline.sandbox import SandboxMisconfigured, check_separation, readable_paths, secret_paths
from tests.conftest import need_service
from tests.registry.pickle_corpus import benign_models

MiB = 1024**2


def _text(value: str) -> bytes:
    return b"V" + value.encode("raw-unicode-escape") + b"\n"


def read_file_pickle(path: str) -> bytes:
    """Protocol 0: getattr(open(path), "read")() -- a pickle that returns a file's content."""
    return b"cbuiltins\ngetattr\n(cbuiltins\nopen\n(" + _text(path) + b"tR" + _text("read") + b"tR(tR."


def write_file_pickle(path: str) -> bytes:
    """Protocol 0: getattr(open(path, "w"), "write")("stolen")."""
    return (b"cbuiltins\ngetattr\n(cbuiltins\nopen\n(" + _text(path) + _text("w") + b"tR" + _text("write")
            + b"tR(" + _text("stolen") + b"tR.")


def call_pickle(module: str, name: str, *args: str) -> bytes:
    """Protocol 0: module.name(*args) with string arguments."""
    return f"c{module}\n{name}\n(".encode() + b"".join(_text(a) for a in args) + b"tR."


OPEN = ["builtins.open", "builtins.getattr"]


def run_payload(tmp_path: Path, payload: bytes, extra: list[str], **kwargs) -> object:
    path = tmp_path / "payload.pkl"
    path.write_bytes(payload)
    kwargs.setdefault("timeout", 60)
    return load_in_sandbox(str(path), "pickle", extra_globals=extra, **kwargs)


@pytest.fixture(autouse=True)
def kernel_confinement() -> None:
    """Landlock and libseccomp are what these tests check; without them the audit-hook fallback is the one tested."""
    import landlockpy

    if landlockpy.abi_version() < 1:
        need_service("Landlock", "the kernel needs 5.13+ with landlock in its LSM list")
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError, AttributeError):
        need_service("libseccomp", "install Debian's libseccomp2")


@pytest.fixture
def secrets_on_disk() -> dict[str, str]:
    """The development secret key and signing key files, as this process (not the child) can read them."""
    private_key()  # writes var/signing_key.pem when no key is configured
    paths = {"secret key": os.path.join(settings.VAR_DIR, "secret_key"),
             "signing key": os.path.join(settings.VAR_DIR, "signing_key.pem")}
    for path in paths.values():
        assert Path(path).read_bytes(), path  # the parent can read them: the child's failure is the sandbox's doing
    return paths


def test_the_child_starts_with_an_empty_environment_and_an_empty_folder():
    probe = run_sandboxed("limits", cpu_seconds=9, memory_bytes=2 * 1024**3, file_bytes=7 * MiB, timeout=30)
    assert probe.ok, probe.error
    # Nothing inherited: only LC_CTYPE, which the interpreter itself sets when it starts in the C locale (PEP 538).
    assert set(probe.data["environ"]) <= {"LC_CTYPE"} and probe.data["cwd_entries"] == []
    assert (probe.data["cpu"], probe.data["as"], probe.data["fsize"]) == (9, 2 * 1024**3, 7 * MiB)
    assert probe.confinement.startswith("landlock ABI") and "seccomp" in probe.confinement


def test_hostile_code_in_the_child_cannot_read_the_secret_key_or_the_signing_key(tmp_path, secrets_on_disk):
    control = run_payload(tmp_path, read_file_pickle(os.path.join(sysconfig.get_paths()["stdlib"], "os.py")), OPEN)
    assert control.ok and control.data["class"] == "builtins.str", control.error  # the payload does run
    for label, path in secrets_on_disk.items():
        stolen = run_payload(tmp_path, read_file_pickle(path), OPEN)
        assert not stolen.ok, label
        assert "PermissionError" in stolen.error and "Permission denied" in stolen.error, (label, stolen.error)
    listing = run_payload(tmp_path, call_pickle("posix", "listdir", str(settings.VAR_DIR)), ["posix.listdir"])
    assert not listing.ok and "PermissionError" in listing.error
    project = run_payload(tmp_path, read_file_pickle(os.path.join(settings.BASE_DIR, "stratum", "settings.py")), OPEN)
    assert not project.ok and "PermissionError" in project.error


def test_hostile_code_cannot_write_outside_its_folder_run_programs_or_open_sockets(tmp_path):
    target = tmp_path / "outside.txt"
    wrote = run_payload(tmp_path, write_file_pickle(str(target)), OPEN)
    assert not wrote.ok and "PermissionError" in wrote.error
    shell = run_payload(tmp_path, call_pickle("posix", "system", f"echo stolen > {target}"), ["posix.system"])
    assert not target.exists()
    assert shell.ok  # os.system returned a failure status: exec is refused, nothing ran
    sock = run_payload(tmp_path, b"csocket\nsocket\n(tR.", ["socket.socket"])
    assert not sock.ok and "PermissionError" in sock.error


def test_the_audit_hook_fallback_also_refuses_the_secrets(tmp_path, secrets_on_disk):
    path = tmp_path / "payload.pkl"
    path.write_bytes(read_file_pickle(secrets_on_disk["secret key"]))
    result = run_sandboxed("load", inputs={"model": str(path)}, args=["pickle"], cpu_seconds=30,
                           memory_bytes=2 * 1024**3, timeout=60, extra_globals=OPEN, confinement="audit-hook")
    assert result.confinement.startswith("audit hook")
    assert not result.ok and "refused by the sandbox" in result.error
    model = tmp_path / "m.pkl"
    model.write_bytes(pickle.dumps(benign_models()["logreg"]))
    fine = run_sandboxed("load", inputs={"model": str(model)}, args=["pickle"], cpu_seconds=30,
                         memory_bytes=2 * 1024**3, timeout=60, confinement="audit-hook")
    assert fine.ok and fine.data["class"].endswith("LogisticRegression"), fine.error


def test_a_two_gib_string_pickle_stops_at_the_file_size_limit(tmp_path):
    size = 2 * 1024**3
    path = tmp_path / "big.pkl"
    with open(path, "wb") as fh:  # PROTO 4, BINUNICODE8 of 2 GiB NULs (a sparse file), STOP
        fh.write(b"\x80\x04\x8d" + size.to_bytes(8, "little"))
        fh.seek(size, os.SEEK_CUR)
        fh.write(b".")
    result = load_in_sandbox(str(path), "pickle", file_bytes=64 * MiB, memory_bytes=1024 * MiB, timeout=120)
    assert not result.ok and "file-size limit" in result.error


def test_a_string_claiming_two_gib_stops_at_the_memory_limit(tmp_path):
    path = tmp_path / "claim.pkl"
    path.write_bytes(b"\x80\x04\x8d" + (2 * 1024**3).to_bytes(8, "little") + b"\x00" * 1024 + b".")
    result = load_in_sandbox(str(path), "pickle", memory_bytes=768 * MiB, timeout=60)
    assert not result.ok and ("MemoryError" in result.error or "truncated" in result.error), result.error


def test_a_compressed_joblib_bomb_stops_at_the_memory_limit(tmp_path):
    size = 1024**3
    packer = zlib.compressobj(9)
    path = tmp_path / "bomb.joblib"
    with open(path, "wb") as fh:  # joblib reads a zlib stream as a compressed pickle: BINBYTES8 of 1 GiB zeros
        fh.write(packer.compress(b"\x80\x04\x8e" + size.to_bytes(8, "little")))
        block = bytes(64 * MiB)
        for _ in range(size // len(block)):
            fh.write(packer.compress(block))
        fh.write(packer.compress(b"."))
        fh.write(packer.flush())
    assert path.stat().st_size < 8 * MiB
    result = load_in_sandbox(str(path), "joblib", memory_bytes=512 * MiB, timeout=120)
    assert not result.ok and "MemoryError" in result.error, result.error


def test_the_wall_time_limit_kills_a_child_that_waits(tmp_path):
    started = time.monotonic()
    result = run_payload(tmp_path, b"ctime\nsleep\n(I60\ntR.", ["time.sleep"], timeout=3)
    assert not result.ok and "wall-time limit of 3 s" in result.error
    assert time.monotonic() - started < 30


def test_the_sandbox_refuses_to_start_when_a_readable_path_holds_a_secret():
    check_separation(readable_paths(), secret_paths())  # this machine's layout is sound
    with pytest.raises(SandboxMisconfigured):
        check_separation(["/srv"], ["/srv/stratum/var"])
    with pytest.raises(SandboxMisconfigured):
        check_separation(["/srv/stratum/var/venv/lib"], ["/srv/stratum/var"])
    with pytest.raises(SandboxMisconfigured):
        check_separation(["/srv"], [], containers=["/srv/stratum"])
    # a virtualenv inside the project folder (make setup's .venv) is fine: only its libraries are granted
    check_separation(["/srv/stratum/.venv/lib/python3.11"], ["/srv/stratum/var"], containers=["/srv/stratum"])
