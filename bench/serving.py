#!/usr/bin/env python3
"""Measure Stratum's serving gateway: overhead over ONNX Runtime, throughput against `mlflow models serve`, canary cost.

    .venv/bin/python bench/serving.py            # full run (about 2-3 minutes on 2 cores)
    .venv/bin/python bench/serving.py --quick    # smaller samples, a smoke run

Everything is set up from scratch in a temporary var dir with its own SQLite database (through the services): an
iris LogisticRegression trained here, converted with skl2onnx (float32, no zipmap), uploaded as two scanned and
signed versions, an endpoint with a direct deployment and a token with the serve scope. Sections:
  a  p50/p90/p99 of InferenceSession.run on one float32 row vs the in-process gateway (Django test Client POST
     /serve/<endpoint>/predict, same row): the difference is the gateway's overhead
  b  requests/s with 8 concurrent keep-alive clients (threads, http.client, plain JSON) against Stratum under
     gunicorn (2 and 4 workers; the best is reported) and `mlflow models serve --env-manager local` of the same
     scikit-learn model; both get the same dataframe_split body, warm-up and request count
  c  in-process gateway latency with a direct deployment vs a 50% canary between two versions
Prediction batches (issue 21) are recorded throughout, as in production; (a) and (b) also measure the gateway with
them off (STRATUM_PREDICTION_BATCHES=false: no request ids kept, no batches written), in the same run, so their
cost is the difference: overhead p50 at most 1 ms, throughput at most 10% below the run without them.
Servers this script starts are stopped at the end, and the temporary directory is removed.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Latencies,
    django_on_sqlite,
    free_port,
    group_cpu_seconds,
    load_line,
    print_table,
    say,
    stop,
    wait_ready,
)

FEATURES = ["f0", "f1", "f2", "f3"]
ROW = [5.1, 3.5, 1.4, 0.2]
BODY = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [ROW]}}).encode()
SIGNATURE = {"inputs": [{"name": n, "type": "double"} for n in FEATURES],
             "outputs": [{"name": "class", "type": "long", "labels": ["setosa", "versicolor", "virginica"]}]}
ENDPOINT = "iris-bench"
CLIENTS = 8
TARGETS = {"overhead_p50_ms": 1.0, "throughput_ratio": 2.0, "batches_throughput": 0.9}


# ------------------------------------------------------------------------------------------------ figures


def timed_loop(call: Any, iterations: int, warmup: int) -> Latencies:
    """Time `call()` `iterations` times after `warmup` untimed calls; `call` returns True when it succeeded."""
    for _ in range(warmup):
        call()
    out = Latencies()
    start = time.perf_counter()
    for _ in range(iterations):
        t0 = time.perf_counter()
        ok = call()
        elapsed = time.perf_counter() - t0
        if ok is True:
            out.samples.append(elapsed)
        else:
            out.fail(ok)
    out.wall = time.perf_counter() - start
    return out


# ------------------------------------------------------------------------------------------------ set-up


def configure_django(var_dir: Path) -> None:
    """Point Django at a fresh var dir (SQLite, artifacts), no broker, no rate limit; migrate."""
    django_on_sqlite(var_dir, STRATUM_SERVING_RATE_PER_MINUTE="0")


def train(workdir: Path) -> tuple[bytes, Path]:
    """Train the iris LogisticRegression; return its ONNX bytes and an MLflow model directory of the same model."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(x, columns=FEATURES)
    model = LogisticRegression(max_iter=500).fit(frame, y)
    onx = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    mlflow_dir = workdir / "mlflow-model"
    mlflow.sklearn.save_model(model, str(mlflow_dir))
    return onx.SerializeToString(), mlflow_dir


@dataclass
class Setup:
    """What the sections need: the serve token, the versions and the endpoint's owner."""

    token: str
    owner: Any
    endpoint: Any
    numbers: list[int]


def create_data(onnx_bytes: bytes) -> Setup:
    """Create a staff owner, model, two scanned and signed versions, an endpoint, a direct deployment, a token."""
    from django.contrib.auth import get_user_model

    from deployments import services as deployments
    from registry import services as registry
    from registry.access import token_create
    from registry.artifacts.storage import spool_stream
    from registry.pipeline import (
        handlers,  # noqa: F401 - installs the job handlers
        signing,
    )
    from registry.pipeline.jobs import job_run
    from registry.pipeline.scan.services import scan_enqueue

    owner = get_user_model().objects.create_user("bench", password=None, is_staff=True)
    model = registry.model_create(actor=owner, name="iris-bench")
    numbers = []
    for _ in range(2):  # identical files: the canary splits traffic between two equal versions
        files = [("model.onnx", spool_stream(io.BytesIO(onnx_bytes))),
                 ("MLmodel", spool_stream(io.BytesIO(b"flavors: {}\n")))]
        version = registry.version_create(model=model, actor=owner, files=files, signature=SIGNATURE)
        for artifact in version.artifacts.all():
            job_run(scan_enqueue(artifact).pk)
        job_run(signing.sign_enqueue(version=version, actor=owner).pk)
        numbers.append(version.number)
    env = deployments.environment_create(actor=owner, name="bench")
    endpoint = deployments.endpoint_create(actor=owner, name=ENDPOINT, environment=env, model=model)
    deployments.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=numbers[0])
    token = token_create(user=owner, actor=owner, name="bench-serve", scopes=["serve"])[1]
    return Setup(token, owner, endpoint, numbers)


# ------------------------------------------------------------------------------------------------ (a), (c)


def bare_ort(onnx_bytes: bytes, iterations: int) -> Latencies:
    """InferenceSession.run on one float32 row, with the gateway's session options (one thread)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.asarray([ROW], dtype=np.float32)

    def call() -> bool:
        session.run(None, {name: x})
        return True

    return timed_loop(call, iterations, warmup=200)


def in_process_gateway(token: str, iterations: int, versions: dict[str, int] | None = None, *,
                       batches: bool = True) -> Latencies:
    """POST the row to the gateway through Django's test Client (the whole middleware stack, no socket), with
    prediction batches recorded or not."""
    from django.test import Client, override_settings

    if not batches:
        with override_settings(STRATUM_PREDICTION_BATCHES=False):
            return in_process_gateway(token, iterations, versions)

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    url = f"/serve/{ENDPOINT}/predict"

    def call() -> bool | int:
        response = client.post(url, data=BODY, content_type="application/json")
        if response.status_code != 200:
            return response.status_code
        if versions is not None:
            number = response["X-Stratum-Version"]
            versions[number] = versions.get(number, 0) + 1
        return True

    for _ in range(200):  # warm the session, routing and token caches
        call()
    if versions is not None:
        versions.clear()
    return timed_loop(call, iterations, warmup=0)


def start_canary(setup: Setup) -> Any:
    """Start a canary of the second version at 50%, held there by a long pause (no monitor runs here)."""
    from deployments import services as deployments

    return deployments.deployment_start(actor=setup.owner, endpoint=setup.endpoint, strategy="canary",
                                        version=setup.numbers[1],
                                        steps=[{"set_weight": 50}, {"pause": {"duration": 86400}}])


# ------------------------------------------------------------------------------------------------ (b)


def start_gunicorn(var_dir: Path, workers: int, log: Path, *, batches: bool = True) -> tuple[int, subprocess.Popen]:
    """Serve the benchmark's Stratum (same SQLite and artifacts) with `workers` sync gunicorn workers."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update({"STRATUM_VAR_DIR": str(var_dir), "STRATUM_HTTPS": "false", "DEBUG": "false",
                "STRATUM_SERVING_RATE_PER_MINUTE": "0", "STRATUM_CACHE": "file",  # the workers share one cache
                "STRATUM_PREDICTION_BATCHES": "true" if batches else "false"})
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen([str(gunicorn), "stratum.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}"],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}/healthz", proc, f"gunicorn -w {workers}")
    return port, proc


def start_mlflow(model_dir: Path, workers: int | None, log: Path) -> tuple[int, subprocess.Popen]:
    """`mlflow models serve -m <dir> --env-manager local` of the same scikit-learn model."""
    cli = Path(sys.executable).with_name("mlflow")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{cli.parent}{os.pathsep}{env.get('PATH', '')}"  # it execs `uvicorn` from the venv by name
    cmd = [str(cli), "models", "serve", "-m", str(model_dir), "--env-manager", "local", "-p", str(port),
           "-h", "127.0.0.1"] + (["-w", str(workers)] if workers else [])
    proc = subprocess.Popen(cmd, cwd=model_dir.parent, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}/ping", proc, "mlflow models serve", timeout=180)
    return port, proc


def throughput(port: int, path: str, headers: dict[str, str], total: int, warmup: int) -> Latencies:
    """`CLIENTS` threads, one keep-alive connection each (reopened if the server closes it), `total` requests."""
    per_client = total // CLIENTS
    parts = [Latencies() for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS + 1)
    send = {"Content-Type": "application/json", **headers}

    def work(part: Latencies) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def one() -> tuple[float, int]:
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=BODY, headers=send)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()  # http.client reconnects on the next request
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            return time.perf_counter() - t0, status

        for _ in range(warmup // CLIENTS):
            one()
        barrier.wait()
        for _ in range(per_client):
            part.record(*one())
        conn.close()

    threads = [threading.Thread(target=work, args=(part,), daemon=True) for part in parts]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return Latencies.merged(parts, time.perf_counter() - start)


def check_same_answer(stratum_port: int, mlflow_port: int, token: str) -> str:
    """Both servers must answer the row with the same class (they serve the same model)."""
    answers = []
    for port, path, headers in ((stratum_port, f"/serve/{ENDPOINT}/predict", {"Authorization": f"Bearer {token}"}),
                                (mlflow_port, "/invocations", {})):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", path, body=BODY, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise SystemExit(f"port {port} {path} answered {response.status}: {body}")
        answers.append(body["predictions"])
        conn.close()
    if answers[0] != answers[1]:
        raise SystemExit(f"Stratum and MLflow disagree on the row: {answers}")
    return str(answers[0])


# ------------------------------------------------------------------------------------------------ main


def section_throughput(setup: Setup, var_dir: Path, mlflow_dir: Path, workdir: Path, args: argparse.Namespace,
                       total: int, warmup: int, procs: list[subprocess.Popen]
                       ) -> tuple[int, Latencies, Latencies, Latencies]:
    """(b) Stratum under gunicorn with each worker count, then on the best count alternated runs without and with
    prediction batches, then `mlflow models serve`, `CLIENTS` clients each; return the best worker count, the best
    figures with batches and without, and MLflow's."""
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    say(f"\n(b) throughput, {CLIENTS} concurrent keep-alive clients, {total} requests after {warmup} warm-up "
        "requests per server")
    stratum_runs: dict[int, Latencies] = {}
    for workers in worker_counts:
        port, proc = start_gunicorn(var_dir, workers, workdir / f"gunicorn-{workers}.log")
        _wait_warm(port, setup.token)
        procs.append(proc)
        result = throughput(port, f"/serve/{ENDPOINT}/predict", {"Authorization": f"Bearer {setup.token}"},
                            total, warmup)
        stratum_runs[workers] = result
        say(f"  Stratum, gunicorn -w {workers} (sync workers): {result.line(digits=3)}")
        stop(proc)
        procs.remove(proc)
    best_workers = max(stratum_runs, key=lambda w: stratum_runs[w].per_second)
    # With and without prediction batches, alternated (off, on, off, on …) on the best worker count, each server
    # warmed alike, so neither side gains from running later on a calmer machine; the best of each side counts.
    # The server's CPU time per request (master and workers, flush threads included) is printed beside each run:
    # on a loaded machine it says what recording costs more steadily than requests per second do.
    with_batches: list[Latencies] = []
    without_batches: list[Latencies] = []
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for batches in [False, True] * args.pairs:
        port, proc = start_gunicorn(var_dir, best_workers, workdir / f"gunicorn-{best_workers}-{batches}.log",
                                    batches=batches)
        _wait_warm(port, setup.token)
        procs.append(proc)
        cpu_before = group_cpu_seconds(proc.pid)
        result = throughput(port, f"/serve/{ENDPOINT}/predict", {"Authorization": f"Bearer {setup.token}"},
                            total, warmup)
        time.sleep(1.5)  # the last flush (every second) of what was counted
        per_request_ms = (group_cpu_seconds(proc.pid) - cpu_before) / (total + warmup) * 1000
        cpu[batches].append(per_request_ms)
        (with_batches if batches else without_batches).append(result)
        say(f"  Stratum, gunicorn -w {best_workers}, prediction batches {'ON ' if batches else 'OFF'}: "
            f"{result.line(digits=3)}; server CPU {per_request_ms:.3f} ms/request ({load_line()})")
        stop(proc)
        procs.remove(proc)
    say(f"  server CPU per request, best run of each side: batches ON {min(cpu[True]):.3f} ms, OFF "
        f"{min(cpu[False]):.3f} ms: requests per CPU-second with / without = {min(cpu[False]) / min(cpu[True]):.2f}")
    best = max(with_batches, key=lambda r: r.per_second)
    without = max(without_batches, key=lambda r: r.per_second)
    stratum_port, proc = start_gunicorn(var_dir, best_workers, workdir / "gunicorn-answer.log")
    procs.append(proc)
    mlflow_port, proc = start_mlflow(mlflow_dir, args.mlflow_workers, workdir / "mlflow.log")
    procs.append(proc)
    answer = check_same_answer(stratum_port, mlflow_port, setup.token)
    ml = throughput(mlflow_port, "/invocations", {}, total, warmup)
    ml_label = f"-w {args.mlflow_workers}" if args.mlflow_workers else "default workers"
    say(f"  mlflow models serve ({ml_label}): {ml.line(digits=3)}")
    say(f"  (both answered the row with {answer})")
    say(f"  best Stratum: gunicorn -w {best_workers}, {best.per_second:,.0f}/s = "
        f"{best.per_second / ml.per_second:.1f}x MLflow's {ml.per_second:,.0f}/s")
    say(f"  with prediction batches / without: {best.per_second:,.0f}/s / {without.per_second:,.0f}/s = "
        f"{best.per_second / without.per_second:.2f}")
    for proc in procs:
        stop(proc)
    procs.clear()
    return best_workers, best, without, ml


def _wait_warm(port: int, token: str) -> None:
    """One request, so a worker has loaded the session before the timed clients start."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", f"/serve/{ENDPOINT}/predict", body=BODY,
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    conn.getresponse().read()
    conn.close()


def recorded() -> tuple[int, int]:
    """Prediction batches (lineage nodes) and traced request ids written so far by every process."""
    from deployments.models import PredictionRecord
    from registry.lineage.models import LineageNode, NodeKind

    return (LineageNode.objects.filter(kind=NodeKind.PREDICTION_BATCH).count(), PredictionRecord.objects.count())


def section_canary(setup: Setup, iterations: int) -> tuple[Latencies, Latencies, dict[int, float]]:
    """(c) The in-process gateway on a direct deployment, then on a 50/50 canary."""
    say(f"\n(c) canary routing vs direct, in-process gateway, {iterations} calls each")
    direct_again = in_process_gateway(setup.token, iterations)
    say(f"  direct (v{setup.numbers[0]} 100%):    {direct_again.line(rate=False, digits=3)}")
    canary = start_canary(setup)
    seen: dict[str, int] = {}
    split = in_process_gateway(setup.token, iterations, versions=seen)
    say(f"  canary (v{setup.numbers[0]}/v{setup.numbers[1]} 50/50): {split.line(rate=False, digits=3)}")
    say(f"  timed calls answered by version: {dict(sorted(seen.items()))} (deployment #{canary.pk}, "
        f"{canary.phase}, weight {canary.weight}%)")
    canary_cost = {p: split.ms(p) - direct_again.ms(p) for p in (50, 99)}
    say(f"  canary - direct: p50 {canary_cost[50]:+.3f} ms, p99 {canary_cost[99]:+.3f} ms")
    return direct_again, split, canary_cost


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small samples: a smoke run")
    parser.add_argument("--iterations", type=int, help="(a, c) timed calls per measurement (default 10000; quick 500)")
    parser.add_argument("--requests", type=int, help="(b) requests per server (default 6000; quick 800)")
    parser.add_argument("--warmup", type=int, help="(b) warm-up requests per server (default 400; quick 80)")
    parser.add_argument("--workers", default="2,4", help="(b) gunicorn worker counts to try (default 2,4)")
    parser.add_argument("--mlflow-workers", type=int, default=None,
                        help="(b) uvicorn workers for mlflow models serve (default: its own default, 1)")
    parser.add_argument("--pairs", type=int, default=2,
                        help="(b) alternated runs without and with prediction batches (default 2 pairs)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    iterations = args.iterations or (500 if args.quick else 10000)
    total = args.requests or (800 if args.quick else 6000)
    warmup = args.warmup or (80 if args.quick else 400)
    workdir = Path(tempfile.mkdtemp(prefix="stratum-serving-bench-"))
    var_dir = workdir / "var"
    procs: list[subprocess.Popen] = []
    try:
        say(f"Stratum serving benchmark ({'quick' if args.quick else 'full'} run), {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}; temporary var dir {var_dir}")
        started = time.perf_counter()
        configure_django(var_dir)
        onnx_bytes, mlflow_dir = train(workdir)
        setup = create_data(onnx_bytes)
        import mlflow
        import onnxruntime

        say(f"set-up: iris LogisticRegression -> ONNX ({len(onnx_bytes):,} bytes), versions {setup.numbers} scanned "
            f"and signed, endpoint {ENDPOINT} (direct, v{setup.numbers[0]}); onnxruntime {onnxruntime.__version__}, "
            f"mlflow {mlflow.__version__}; {time.perf_counter() - started:.1f}s")

        say(f"\n(a) gateway overhead over a bare ONNX Runtime call, one row, {iterations} calls each")
        bare = bare_ort(onnx_bytes, iterations)
        say(f"  bare InferenceSession.run:        {bare.line(rate=False, digits=3)}")
        direct = in_process_gateway(setup.token, iterations)
        say(f"  in-process gateway (test Client): {direct.line(rate=False, digits=3)}")
        overhead = {p: direct.ms(p) - bare.ms(p) for p in (50, 90, 99)}
        say(f"  overhead: p50 {overhead[50]:.3f} ms, p90 {overhead[90]:.3f} ms, p99 {overhead[99]:.3f} ms")
        from deployments import serving

        serving.drain()
        batches_a, records_a = recorded()
        say(f"  recorded: {batches_a} prediction batches, {records_a:,} traced request ids")
        off = in_process_gateway(setup.token, iterations, batches=False)
        say(f"  in-process gateway, prediction batches OFF: {off.line(rate=False, digits=3)}")
        overhead_off = {p: off.ms(p) - bare.ms(p) for p in (50, 99)}
        say(f"  overhead without batches: p50 {overhead_off[50]:.3f} ms; batches cost "
            f"{overhead[50] - overhead_off[50]:+.3f} ms at p50")

        best_workers, best, without, ml = section_throughput(setup, var_dir, mlflow_dir, workdir, args, total, warmup,
                                                    procs)
        ratio = best.per_second / ml.per_second
        direct_again, split, canary_cost = section_canary(setup, iterations)

        serving.drain()
        batches, records = recorded()
        errors = sum(r.failed for r in (direct, off, best, without, ml, direct_again, split))
        met_overhead = overhead[50] < TARGETS["overhead_p50_ms"]
        met_ratio = ratio >= TARGETS["throughput_ratio"]
        kept = best.per_second / without.per_second
        met_kept = kept >= TARGETS["batches_throughput"]
        say("\nSummary" + (" (quick run: small samples)" if args.quick else ""))
        print_table(("metric", "value", "target", ""), [
            ("bare ONNX Runtime p50", f"{bare.ms(50):.3f} ms", "-", ""),
            ("in-process gateway p50", f"{direct.ms(50):.3f} ms", "-", ""),
            ("gateway overhead p50", f"{overhead[50]:.3f} ms", f"< {TARGETS['overhead_p50_ms']:g} ms",
             "met" if met_overhead else "MISSED"),
            ("gateway overhead p99", f"{overhead[99]:.3f} ms", "-", ""),
            ("gateway overhead p50, prediction batches off", f"{overhead_off[50]:.3f} ms", "-", ""),
            (f"Stratum req/s ({CLIENTS} clients, gunicorn -w {best_workers})", f"{best.per_second:,.0f}", "-", ""),
            (f"mlflow models serve req/s ({CLIENTS} clients)", f"{ml.per_second:,.0f}", "-", ""),
            ("throughput ratio Stratum / MLflow", f"{ratio:.2f}x", f">= {TARGETS['throughput_ratio']:g}x",
             "met" if met_ratio else "MISSED"),
            (f"Stratum req/s, prediction batches off (-w {best_workers})", f"{without.per_second:,.0f}", "-", ""),
            ("throughput with / without batches", f"{kept:.2f}", f">= {TARGETS['batches_throughput']:g}",
             "met" if met_kept else "MISSED"),
            ("prediction batches / traced ids written", f"{batches} / {records:,}", "> 0",
             "met" if batches and records else "MISSED"),
            ("canary 50% - direct, p50", f"{canary_cost[50]:+.3f} ms", "-", ""),
            ("canary 50% - direct, p99", f"{canary_cost[99]:+.3f} ms", "-", ""),
            ("failed requests (all sections)", str(errors), "0", "met" if errors == 0 else "MISSED"),
        ])
        say(f"\ntotal time {time.perf_counter() - started:.0f}s")
        return 0 if (met_overhead and met_ratio and met_kept and batches and errors == 0) else 1
    finally:
        for proc in procs:
            stop(proc)
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
