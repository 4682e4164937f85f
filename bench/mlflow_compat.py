#!/usr/bin/env python3
"""Drive the same plain-HTTP MLflow workload against Stratum's /api/2.0/mlflow and a stock `mlflow server`.

    python bench/mlflow_compat.py --stratum-url http://127.0.0.1:8765 --token stm_...   # starts MLflow itself
    python bench/mlflow_compat.py --start-stratum                                       # starts both
    python bench/mlflow_compat.py ... --mlflow-url http://127.0.0.1:5000                # reuse a running MLflow
    python bench/mlflow_compat.py ... --quick                                           # smaller, for a smoke run

Workload (identical requests to both servers, one keep-alive client per thread: bench/lightclient.py, or
requests with --client requests):
  create    POST model-versions/create: sequential, then 8 threads on one model (numbers must be 1..N, no dup)
  alias     GET registered-models/alias: 1 client, then 8 concurrent clients
  search_rm GET registered-models/search over 1,000 models (the client's prompt clause, 100 per page, all pages)
  search_mv GET model-versions/search over a 2,000-version model (the client's default max_results=10000)
  ceiling   the alias harness on each server's health route (/healthz, /health): what the machine carries at all
The stock server uses SQLite (like Stratum's embedded default); only the standard library and requests are used.
Client and server share the machine: a client's own CPU per request is taken from the server it measures,
which is why the default client is the light one (see bench/lightclient.py for the figures).
Servers this script starts are stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import (
    Call,
    CpuMeter,
    Latencies,
    free_port,
    load_line,
    many_clients,
    one_client,
    percentile,
    settle,
    start_stratum,
    stop,
    wait_ready,
)
from lightclient import new_session

PROMPT_CLAUSE = "tag.`mlflow.prompt.is_prompt` != 'true'"
# Issue 16's floor: Stratum at least this many times stock MLflow on the same machine.
TARGETS = {"create_seq": 4.0, "create_8": 4.0, "alias_1": 4.0, "alias_8": 4.0, "search_rm_page": 3.0,
           "search_mv": 3.0}


class Server:
    """One MLflow-compatible endpoint with a session per thread."""

    def __init__(self, label: str, url: str, token: str = "", health: str = "healthz", client: str = "light") -> None:
        self.label, self.url, self.health, self.client = label, url.rstrip("/"), health, client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.local = threading.local()

    def session(self) -> Any:
        if not hasattr(self.local, "s"):
            self.local.s = new_session(self.client)
            self.local.s.headers.update(self.headers)
        return self.local.s

    def call(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        """Call /api/2.0/mlflow/<endpoint>; raise on any non-200."""
        kwargs = {"params": kwargs} if method == "GET" else {"json": kwargs}
        response = self.session().request(method, f"{self.url}/api/2.0/mlflow/{endpoint}", timeout=120, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(f"{self.label} {method} {endpoint} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else {}


def start_mlflow(workdir: Path, workers: int) -> tuple[str, subprocess.Popen]:
    """Start a stock MLflow server on SQLite with proxied artifacts."""
    cli = Path(sys.executable).with_name("mlflow")
    cli = cli if cli.exists() else Path(shutil.which("mlflow") or "mlflow")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(
        [str(cli), "server", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}", "--artifacts-destination",
         str(workdir / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=workdir, env=env, stdout=open(workdir / "mlflow.log", "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", proc, "mlflow server")
    return url, proc


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _p(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values` in seconds, in milliseconds."""
    return percentile(values, q * 100) * 1000


def bench_create(server: Server, n: int, tag: str) -> dict[str, float]:
    """Sequential and 8-way concurrent version creation, checking numbering."""
    seq = f"bench-seq-{tag}"
    server.call("POST", "registered-models/create", name=seq)
    elapsed = _timed(lambda: [server.call("POST", "model-versions/create", name=seq, source=f"s3://bench/{seq}")
                              for _ in range(n)])
    conc = f"bench-conc-{tag}"
    server.call("POST", "registered-models/create", name=conc)
    numbers: list[int] = []
    lock = threading.Lock()

    def worker(count: int) -> None:
        for _ in range(count):
            body = server.call("POST", "model-versions/create", name=conc, source=f"s3://bench/{conc}")
            with lock:
                numbers.append(int(body["model_version"]["version"]))

    per = n // 8
    with ThreadPoolExecutor(8) as pool:
        start = time.perf_counter()
        list(pool.map(worker, [per] * 8))
        conc_elapsed = time.perf_counter() - start
    ok = sorted(numbers) == list(range(1, per * 8 + 1))
    return {"create_seq": n / elapsed, "create_8": per * 8 / conc_elapsed, "create_8_numbers_ok": float(ok)}


def _as_call(call: Callable[[], Any]) -> Call:
    """`call` (which raises unless it got a 200) as a timed call for the shared harness."""
    def timed() -> tuple[float, int]:
        return _timed(call), 200

    return timed


def _one_then_eight(call: Callable[[], Any], n: int, seconds: float) -> tuple[Latencies, Latencies]:
    """Latencies of `call`: `n` sequential calls from one client, then 8 clients calling for `seconds`."""
    return one_client(_as_call(call), n, warmup=0), many_clients([_as_call(call)] * 8, seconds)


def bench_alias(server: Server, n: int, seconds: float, tag: str) -> dict[str, float]:
    """get-by-alias with one client, then eight."""
    name = f"bench-seq-{tag}"
    server.call("POST", "registered-models/alias", name=name, alias="champion", version="1")
    lat, all8 = _one_then_eight(lambda: server.call("GET", "registered-models/alias", name=name, alias="champion"),
                                n, seconds)
    return {"alias_1": lat.per_second, "alias_1_p50_ms": lat.ms(50), "alias_8": all8.per_second,
            "alias_8_p99_ms": all8.ms(99)}


def bench_ceiling(server: Server, n: int, seconds: float, health: str) -> dict[str, float]:
    """The alias harness against the server's own health route (no database, no registry code): the most this
    machine carries for that server, so a ratio target above it shows as out of reach, not merely missed."""
    url = f"{server.url}/{health}"

    def get() -> None:
        response = server.session().get(url, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"{server.label} GET /{health} -> {response.status_code}")

    for _ in range(20):
        get()
    lat, all8 = _one_then_eight(get, n, seconds)
    return {"noop_1": lat.per_second, "noop_8": all8.per_second}


def _ensure_corpus_models(server: Server, count: int) -> None:
    have = {m["name"] for m in _all_models(server, "name LIKE 'corpus-%'")}
    missing = [f"corpus-{i:04d}" for i in range(count) if f"corpus-{i:04d}" not in have]

    def make(name: str) -> None:
        server.call("POST", "registered-models/create", name=name,
                    tags=[{"key": "team", "value": f"team-{hash(name) % 10}"}])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, missing))


def _all_models(server: Server, filter_string: str) -> list[dict[str, Any]]:
    out, token = [], None
    while True:
        params: dict[str, Any] = {"filter": f"{filter_string} AND {PROMPT_CLAUSE}", "max_results": 100}
        if token:
            params["page_token"] = token
        body = server.call("GET", "registered-models/search", **params)
        out.extend(body.get("registered_models", []))
        token = body.get("next_page_token")
        if not token:
            return out


def bench_search_models(server: Server, count: int, rounds: int) -> dict[str, float]:
    """Time full paged sweeps of search_registered_models over the corpus."""
    _ensure_corpus_models(server, count)
    sweeps = []
    for _ in range(rounds):
        sweeps.append(_timed(lambda: _all_models(server, "name LIKE 'corpus-%'")))
    first_page = [_timed(lambda: server.call("GET", "registered-models/search",
                                             filter=f"name LIKE 'corpus-%' AND {PROMPT_CLAUSE}", max_results=100))
                  for _ in range(rounds * 3)]
    return {"search_rm_sweep_ms": statistics.median(sweeps) * 1000, "search_rm_page_p50_ms": _p(first_page, 0.5)}


def bench_search_versions(server: Server, count: int, rounds: int) -> dict[str, float]:
    """Time search_model_versions (max_results=10000) over one model with `count` versions."""
    name = f"corpus-versions-{count}"
    try:
        server.call("POST", "registered-models/create", name=name)
    except RuntimeError:
        pass
    have = len(server.call("GET", "model-versions/search", filter=f"name='{name}'", max_results=10000)
               .get("model_versions", []))

    def make(_: int) -> None:
        server.call("POST", "model-versions/create", name=name, source=f"s3://bench/{name}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(make, range(count - have)))
    lat = []
    for _ in range(rounds):
        def one() -> None:
            body = server.call("GET", "model-versions/search", filter=f"name='{name}'", max_results=10000)
            assert len(body["model_versions"]) == count, len(body["model_versions"])
        lat.append(_timed(one))
    return {"search_mv_p50_ms": _p(lat, 0.5)}


def run_all(server: Server, args: argparse.Namespace) -> dict[str, float]:
    """Run every section against one server."""
    tag = uuid.uuid4().hex[:8]
    out: dict[str, float] = {}
    meter = CpuMeter().start()
    print(f"  {server.label}: create …", flush=True)
    out.update(bench_create(server, args.creates, tag))
    print(f"  {server.label}: alias …", flush=True)
    out.update(bench_alias(server, args.alias_requests, args.alias_seconds, tag))
    print(f"  {server.label}: no-op ceiling (/{server.health}) …", flush=True)
    out.update(bench_ceiling(server, args.alias_requests, args.alias_seconds, server.health))
    print(f"  {server.label}: search registered models over {args.models} …", flush=True)
    out.update(bench_search_models(server, args.models, args.rounds))
    print(f"  {server.label}: search versions over {args.versions} …", flush=True)
    out.update(bench_search_versions(server, args.versions, args.rounds))
    out["machine_busy"] = meter.busy()
    return out


def report(stratum: dict[str, float], mlflow: dict[str, float]) -> None:
    """Print figures side by side with ratios and targets."""
    rows = [
        ("create versions, sequential (/s)", "create_seq", True, "create_seq"),
        ("create versions, 8 threads (/s)", "create_8", True, "create_8"),
        ("get-by-alias, 1 client (/s)", "alias_1", True, "alias_1"),
        ("get-by-alias, 1 client p50 (ms)", "alias_1_p50_ms", False, None),
        ("get-by-alias, 8 clients (/s)", "alias_8", True, "alias_8"),
        ("get-by-alias, 8 clients p99 (ms)", "alias_8_p99_ms", False, None),
        ("search_registered_models, full sweep (ms)", "search_rm_sweep_ms", False, None),
        ("search_registered_models, one page p50 (ms)", "search_rm_page_p50_ms", False, "search_rm_page"),
        ("search_model_versions, 2,000 versions p50 (ms)", "search_mv_p50_ms", False, "search_mv"),
    ]
    print(f"\n{'measure':48} {'Stratum':>10} {'MLflow':>10} {'ratio':>8}  target")
    for label, key, higher, target in rows:
        s, m = stratum[key], mlflow[key]
        ratio = (s / m) if higher else (m / s)
        goal = f">= {TARGETS[target]:.0f}x {'ok' if ratio >= TARGETS[target] else 'MISSED'}" if target else ""
        print(f"{label:48} {s:10.1f} {m:10.1f} {ratio:7.1f}x  {goal}")
    print("\nCeiling: the same harness on each server's health route (no database, no registry code)")
    for label, key, target in (("no-op, 1 client (/s)", "noop_1", "alias_1"), ("no-op, 8 clients (/s)", "noop_8",
                                                                                 "alias_8")):
        s, m = stratum[key], mlflow[key]
        need = TARGETS[target] * mlflow[target]
        print(f"{label:48} {s:10.1f} {m:10.1f} {s / m:7.1f}x  a {TARGETS[target]:.0f}x get-by-alias needs "
              f"{need:,.0f}/s: {'within' if need <= s else 'ABOVE'} Stratum's no-op ceiling")
    verdict = {label: "yes" if figures["create_8_numbers_ok"] else "NO"
               for label, figures in (("Stratum", stratum), ("MLflow", mlflow))}
    print(f"version numbers 1..N without duplicates under 8 threads: Stratum {verdict['Stratum']}, "
          f"MLflow {verdict['MLflow']}")
    print(f"machine CPU busy while each server was measured (everything on the machine): Stratum "
          f"{stratum['machine_busy']:.0%}, MLflow {mlflow['machine_busy']:.0%}; {load_line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stratum-url")
    parser.add_argument("--token", default=os.environ.get("STRATUM_TOKEN", ""))
    parser.add_argument("--start-stratum", action="store_true", help="start a fresh SQLite Stratum (deploy/uwsgi.ini)")
    parser.add_argument("--server", choices=("uwsgi", "gunicorn"), default="uwsgi",
                        help="web server --start-stratum runs (default: uwsgi, as deployed)")
    parser.add_argument("--mlflow-url", help="a running stock MLflow server (default: start one)")
    parser.add_argument("--workers", type=int, default=3, help="web workers for servers this script starts")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--client", choices=("light", "requests"), default="light",
                        help="HTTP client driving both servers (default: bench/lightclient.py)")
    args = parser.parse_args()
    args.creates, args.alias_requests, args.alias_seconds = (80, 100, 3.0) if args.quick else (200, 400, 8.0)
    args.models, args.versions, args.rounds = (200, 300, 3) if args.quick else (1000, 2000, 5)
    if not args.stratum_url and not args.start_stratum:
        parser.error("give --stratum-url and --token, or --start-stratum")

    procs: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="mlflow-compat-"))
    try:
        if args.start_stratum:
            url, token, proc = start_stratum(var_dir=workdir / "stratum", workers=args.workers, server=args.server)
            procs.append(proc)
            args.stratum_url, args.token = url, token
        if not args.mlflow_url:
            (workdir / "mlflow").mkdir()
            args.mlflow_url, proc = start_mlflow(workdir / "mlflow", args.workers)
            procs.append(proc)
        served = f", {args.server}" if args.start_stratum else ""
        print(f"Stratum {args.stratum_url}{served}  vs  MLflow {args.mlflow_url}  ({args.client} client); "
              f"{load_line()}", flush=True)
        print(f"  waited {settle():.0f}s for the machine to settle after start-up", flush=True)
        stratum = run_all(Server("Stratum", args.stratum_url, args.token, client=args.client), args)
        mlflow = run_all(Server("MLflow", args.mlflow_url, health="health", client=args.client), args)
        report(stratum, mlflow)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
