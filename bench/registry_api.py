#!/usr/bin/env python3
"""Benchmark Stratum's native REST API against the stock-MLflow figures measured on the same machine.

It starts nothing: point it at a running server and a token with the right to create models.

    python bench/registry_api.py --base-url http://127.0.0.1:8765 --token stm_...
    python bench/registry_api.py --base-url ... --token ... --quick      # smoke run in a few seconds

Sections (all on by default; --only a,c to pick):
  a  versions created per second, one client, sequential POSTs
  b  alias resolutions: one client for N requests, then C concurrent clients for S seconds
  c  search latency over >= 1,000 registered models (created once, reused by later runs)
  d  concurrency check: T threads x K creates on one fresh model; numbers must be exactly 1..T*K
  w  plain-word search (`q=`), 100-row pages over 10,000 models and 100,000 versions (seed them once with
     bench/seed_scale.py in the server's environment, or pass --seed-scale when this runs beside the server):
     p50/p95 per page and its ratio to the same list without words; with --server-side (beside the server, in
     its environment) also each page's queries and SQL time, apart from HTTP, middleware and rendering
  e  ceiling: the same 1-client and C-client harness on GET /healthz (no work behind it), for what the machine
     carries at all; a throughput target above this ceiling cannot be met on that machine

Only the standard library and `requests` are used. Requests go through bench/lightclient.py (a keep-alive client
costing about a quarter of the CPU `requests` does per request; client and server share the machine), or
through requests with --client requests. Every model this run creates is named after a unique
run prefix (the search corpus uses a stable prefix, so it is built only once per database).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from common import Call, Latencies, many_clients, one_client, print_table, say
from lightclient import new_session
from registry_api_report import figures, summary

CLIENT_ERRORS = (requests.RequestException, OSError, http.client.HTTPException)
CLIENT = {"kind": "light"}
SEARCH_TEAMS = 10  # the corpus spreads models over team-0 … team-9


class BenchError(RuntimeError):
    """The server answered something the benchmark cannot go on with."""


# ------------------------------------------------------------------------------------------------ client


class Api:
    """A thin JSON client over one session (one per thread: sessions are not shared)."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.root = base_url.rstrip("/") + "/api/v1/"
        self.session = new_session(CLIENT["kind"])
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.timeout = timeout

    def url(self, *parts: str) -> str:
        return self.root + "/".join(quote(p, safe="") for p in parts)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.session.request(method, url, timeout=self.timeout, **kwargs)

    def call(self, method: str, url: str, expect: Iterable[int] = (200,), **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        if response.status_code not in tuple(expect):
            raise BenchError(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
        return response.json() if response.content else None

    def timed(self, method: str, url: str, **kwargs: Any) -> tuple[float, Any]:
        start = time.perf_counter()
        response = self.request(method, url, **kwargs)
        _ = response.content
        return time.perf_counter() - start, response

    def ensure_model(self, name: str, tags: dict[str, str] | None = None) -> None:
        """Create `name` unless it exists already."""
        self.call("POST", self.url("models"), expect=(201, 409), json={"name": name, "tags": tags or {}})

    def create_version(self, model: str, i: int) -> Any:
        body = {
            "source_uri": f"s3://bench-artifacts/{model}/{i}/model",
            "run_id": uuid.uuid4().hex,
            "metrics": {"accuracy": 0.9 + (i % 100) / 1000, "loss": 1.0 / (i + 1)},
            "params": {"lr": "0.01", "depth": str(i % 7)},
        }
        return self.request("POST", self.url("models", model, "versions"), json=body)


# ------------------------------------------------------------------------------------------------ sections


def bench_creates(api: Api, prefix: str, count: int) -> Latencies:
    """(a) Sequential version creates on one model."""
    model = f"{prefix}-creates"
    api.ensure_model(model, {"bench": "creates"})
    for i in range(3):  # warm the connection and the server's code paths
        response = api.create_version(model, i)
        if response.status_code != 201:
            raise BenchError(f"creating a version failed: {response.status_code} {response.text[:300]}")
    result = Latencies()
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        response = api.create_version(model, i)
        result.record(time.perf_counter() - t0, response.status_code, ok=201)
    result.wall = time.perf_counter() - start
    return result


def _alias_target(api: Api, prefix: str) -> str:
    model = f"{prefix}-alias"
    api.ensure_model(model, {"bench": "alias"})
    numbers = []
    for i in range(3):
        response = api.create_version(model, i)
        if response.status_code != 201:
            raise BenchError(f"creating a version for the alias benchmark failed: {response.text[:300]}")
        numbers.append(response.json()["version"])
    api.call("PUT", api.url("models", model, "aliases", "champion"), json={"version": numbers[1]})
    resolved = api.call("GET", api.url("models", model, "aliases", "champion"))
    if resolved.get("version") != numbers[1]:
        raise BenchError(f"alias resolved to {resolved.get('version')}, expected {numbers[1]}")
    return model


def bench_alias_single(api: Api, model: str, count: int) -> Latencies:
    """(b1) One client, `count` sequential alias resolutions."""
    return bench_get_single(api, api.url("models", model, "aliases", "champion"), count)


def bench_alias_concurrent(make_api: Callable[[], Api], model: str, clients: int, seconds: float) -> Latencies:
    """(b2) `clients` threads, each with its own session, resolving the alias for `seconds`."""
    return bench_get_concurrent(make_api, make_api().url("models", model, "aliases", "champion"), clients, seconds)


def _get_call(api: Api, url: str) -> Call:
    def call() -> tuple[float, int]:
        try:
            elapsed, response = api.timed("GET", url)
        except CLIENT_ERRORS:
            return 0.0, 0
        return elapsed, response.status_code

    return call


def bench_get_single(api: Api, url: str, count: int) -> Latencies:
    """One client, `count` sequential GETs of `url` (after 20 warm-up requests)."""
    return one_client(_get_call(api, url), count)


def bench_get_concurrent(make_api: Callable[[], Api], url: str, clients: int, seconds: float) -> Latencies:
    """`clients` threads, each with its own session, GETting `url` for `seconds`."""
    return many_clients([_get_call(make_api(), url) for _ in range(clients)], seconds)


def _list_all(api: Api, url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.call("GET", url, params={**params, **({"cursor": cursor} if cursor else {})})
        results += page["results"]
        cursor = page.get("next_cursor")
        if not cursor:
            return results


def ensure_search_corpus(make_api: Callable[[], Api], prefix: str, count: int, teams: int) -> float:
    """(c, setup) Make sure models <prefix>-0000 … exist with tags.team; return the seconds spent creating."""
    api = make_api()
    existing = {m["name"] for m in _list_all(api, api.url("models"),
                                              {"filter": f"name LIKE '{prefix}-%'", "max_results": 1000})}
    missing = [i for i in range(count) if f"{prefix}-{i:04d}" not in existing]
    if not missing:
        return 0.0
    say(f"  creating {len(missing)} of {count} search models (reused by later runs) …")
    local = threading.local()

    def create(i: int) -> None:
        if not hasattr(local, "api"):
            local.api = make_api()
        local.api.ensure_model(f"{prefix}-{i:04d}", {"team": f"team-{i % teams}", "bench": "search"})

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create, missing))
    return time.perf_counter() - start


def bench_search(api: Api, prefix: str, count: int, teams: int, repeats: int) -> dict[str, tuple[Latencies, int]]:
    """(c) Time a few typical searches `repeats` times each; return latencies and result counts."""
    middle = f"{count // 2:04d}"
    decade = middle[:3]  # models <prefix>-<decade>0 … 9: ten hits
    team = int(middle) % teams
    queries = {
        "name prefix": f"name LIKE '{prefix}-{decade}%'",
        "name prefix AND tag": f"name LIKE '{prefix}-{decade}%' AND tags.team = 'team-{team}'",
        "exact name": f"name = '{prefix}-{middle}'",
        "tag AND name prefix (page)": f"tags.team = 'team-{(team + 1) % teams}' AND name LIKE '{prefix}-%'",
    }
    url = api.url("models")
    return time_pages(api, {label: (url, {"filter": text}) for label, text in queries.items()}, repeats)


def time_pages(api: Api, queries: dict[str, tuple[str, dict[str, str]]], repeats: int
               ) -> dict[str, tuple[Latencies, int]]:
    """Time 100-row pages of each (url, params) `repeats` times; return latencies and the rows of each page."""
    out: dict[str, tuple[Latencies, int]] = {}
    for label, (url, params) in queries.items():
        params = {**params, "max_results": 100}
        hits = len(api.call("GET", url, params=params)["results"])
        result = Latencies()
        start = time.perf_counter()
        for _ in range(repeats):
            elapsed, response = api.timed("GET", url, params=params)
            result.record(elapsed, response.status_code)
        result.wall = time.perf_counter() - start
        out[label] = (result, hits)
    return out


# (w) pages: label -> (path under /api/v1/, params, the label of the unfiltered page of the same list it is set
# against). The baselines are the same lists without words: what a page costs before any search.
WORD_PAGES: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
    "models (baseline)": (("models",), {}, ""),
    "models q=wine": (("models",), {"q": "wine"}, "models (baseline)"),
    "models q=wine region": (("models",), {"q": "wine region"}, "models (baseline)"),
    "models q=wine + filter": (("models",), {"q": "wine", "filter": "name LIKE 'scale-0%'"}, "models (baseline)"),
    "versions (baseline)": (("versions",), {}, ""),
    "versions q=wine": (("versions",), {"q": "wine"}, "versions (baseline)"),
    "versions q=retrain scale-05": (("versions",), {"q": "retrain scale-05"}, "versions (baseline)"),
    "one model's versions (baseline)": (("models", "scale-05000", "versions"), {}, ""),
    "one model's versions q=retrain": (("models", "scale-05000", "versions"), {"q": "retrain"},
                                       "one model's versions (baseline)"),
}


def bench_word_search(api: Api, repeats: int) -> dict[str, tuple[Latencies, int]]:
    """(w) Time 100-row pages of plain-word searches over the scale corpus, and the same lists without words;
    return latencies and result counts."""
    probe = api.call("GET", api.url("models"), params={"filter": "name = 'scale-09999'"})
    if not probe["results"]:
        raise BenchError("the scale corpus is missing: run bench/seed_scale.py with the server's environment first")
    return time_pages(api, {label: (api.url(*parts), params) for label, (parts, params, _) in WORD_PAGES.items()},
                      repeats)


def word_search_server_side(token: str, repeats: int) -> dict[str, Any]:
    """(w, --server-side) Each page's queries and SQL time, measured in this process (bench/registry_api_server.py)."""
    from urllib.parse import quote as q

    from registry_api_server import page_costs

    pages = {label: ("/api/v1/" + "/".join(q(p, safe="") for p in parts), {**params, "max_results": 100})
             for label, (parts, params, _) in WORD_PAGES.items()}
    return page_costs(token, pages, repeats)


def print_word_search(results: dict[str, Any]) -> bool:
    """Print section (w): p50/p95 per page, its ratio to the unfiltered list, and the server-side split if measured."""
    ok = True
    costs = results.get("words_server") or {}
    for label, (lat, hits) in results["words"].items():
        baseline = WORD_PAGES[label][2]
        ratio = f"{lat.ms(50) / results['words'][baseline][0].ms(50):4.1f}x base" if baseline else "  baseline"
        verdict = "meets" if lat.ms(50) < 50 else "MISSES"
        line = (f"  {label:<34} {hits:>3} rows: p50 {lat.ms(50):6.2f} ms, p95 {lat.ms(95):6.2f} ms, {ratio} "
                f"({verdict} 50 ms)")
        if label in costs:
            cost = costs[label]
            line += (f" | {cost.queries} queries, SQL {cost.sql_ms:5.2f} ms, in-process {cost.request_ms:6.2f} ms "
                     f"(CPU {cost.cpu_ms:5.2f} ms)")
        say(line + (f", {lat.failed} errors" if lat.failed else ""))
        ok &= lat.failed == 0
    if costs:
        say("  queries: the page's statements, whatever its size; SQL: those statements replayed on their own "
            "(executed and fetched); in-process: the request through Django's test client, no HTTP")
    return ok


@dataclass
class ConcurrencyResult:
    """What the concurrent-create check saw."""

    threads: int
    per_thread: int
    wall: float
    created: list[int]
    errors: dict[str, int]
    listed: list[int]

    @property
    def expected(self) -> int:
        return self.threads * self.per_thread

    @property
    def problems(self) -> list[str]:
        found = []
        if self.errors:
            found.append(f"{sum(self.errors.values())} failed creates: {self.errors}")
        want = list(range(1, self.expected + 1))
        if sorted(self.created) != want:
            dupes = len(self.created) - len(set(self.created))
            found.append(f"create responses: {len(self.created)} numbers, {dupes} duplicates, "
                         f"{len(set(want) - set(self.created))} missing")
        if sorted(self.listed) != want:
            dupes = len(self.listed) - len(set(self.listed))
            gaps = sorted(set(want) - set(self.listed))
            found.append(f"listing: {len(self.listed)} versions, {dupes} duplicates, {len(gaps)} gaps "
                         f"(first {gaps[:5]}), {len(set(self.listed) - set(want))} out of range")
        return found

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def per_second(self) -> float:
        return len(self.created) / self.wall if self.wall else math.nan


def bench_concurrency(make_api: Callable[[], Api], prefix: str, threads: int, per_thread: int) -> ConcurrencyResult:
    """(d) `threads` x `per_thread` concurrent creates on one fresh model, then list and check numbering."""
    model = f"{prefix}-concurrency"
    admin = make_api()
    admin.call("POST", admin.url("models"), expect=(201,), json={"name": model, "tags": {"bench": "concurrency"}})
    apis = [make_api() for _ in range(threads)]
    created: list[list[int]] = [[] for _ in range(threads)]
    errors: list[dict[str, int]] = [{} for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        api = apis[index]
        barrier.wait()
        for i in range(per_thread):
            try:
                response = api.create_version(model, index * per_thread + i)
            except CLIENT_ERRORS as exc:
                key = type(exc).__name__
                errors[index][key] = errors[index].get(key, 0) + 1
                continue
            if response.status_code == 201:
                created[index].append(response.json()["version"])
            else:
                key = str(response.status_code)
                errors[index][key] = errors[index].get(key, 0) + 1

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    listed = [v["version"] for v in _list_all(admin, admin.url("models", model, "versions"), {"max_results": 1000})]
    all_errors: dict[str, int] = {}
    for part in errors:
        for key, n in part.items():
            all_errors[key] = all_errors.get(key, 0) + n
    return ConcurrencyResult(threads, per_thread, wall, [n for part in created for n in part], all_errors, listed)


# ------------------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8765")
    parser.add_argument("--token", default=os.environ.get("STRATUM_TOKEN"),
                        help="API token (default: $STRATUM_TOKEN)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run in a few seconds")
    parser.add_argument("--only", default="abecd", help="sections to run, e.g. 'ab' (default: abecd)")
    parser.add_argument("--label", default="", help="what is being measured, e.g. 'sqlite, gunicorn -w 4'")
    parser.add_argument("--prefix", default=None, help="run prefix for model names (default: random)")
    parser.add_argument("--creates", type=int, help="(a) sequential creates (default 200; quick 30)")
    parser.add_argument("--alias-requests", type=int, help="(b) one-client requests (default 500; quick 100)")
    parser.add_argument("--alias-clients", type=int, default=8, help="(b) concurrent clients (default 8)")
    parser.add_argument("--alias-seconds", type=float, help="(b) concurrent duration (default 10; quick 2)")
    parser.add_argument("--search-models", type=int, help="(c) corpus size (default 1000; quick 100)")
    parser.add_argument("--search-prefix", default=None,
                        help="(c) stable corpus prefix, so the corpus is created once (default bench-search-N)")
    parser.add_argument("--search-repeats", type=int, help="(c) runs of each query (default 100; quick 20)")
    parser.add_argument("--seed-scale", action="store_true",
                        help="(w) seed the 10,000-model corpus first, here (needs the server's DATABASE_URL)")
    parser.add_argument("--server-side", action="store_true",
                        help="(w) also measure each page's queries and SQL time in this process (needs the "
                             "server's environment: DATABASE_URL and the settings module)")
    parser.add_argument("--threads", type=int, default=16, help="(d) concurrent creators (default 16)")
    parser.add_argument("--per-thread", type=int, help="(d) creates per thread (default 100; quick 10)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--client", choices=("light", "requests"), default="light",
                        help="HTTP client (default: bench/lightclient.py)")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or $STRATUM_TOKEN) is required")
    quick = args.quick
    defaults = {"creates": (200, 30), "alias_requests": (500, 100), "alias_seconds": (10.0, 2.0),
                "search_models": (1000, 100), "search_repeats": (100, 20), "per_thread": (100, 10)}
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.prefix = args.prefix or f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    args.search_prefix = args.search_prefix or f"bench-search-{args.search_models}"
    return args


def run_sections(args: argparse.Namespace, make_api: Callable[[], Api]) -> tuple[dict[str, Any], bool]:
    """Run the chosen sections, printing as they go; return the results and whether every request succeeded."""
    api = make_api()
    results: dict[str, Any] = {"alias_clients": args.alias_clients, "search_models": args.search_models}
    ok = True
    if "a" in args.only:
        say(f"\n(a) {args.creates} sequential version creates on one model")
        results["creates"] = bench_creates(api, args.prefix, args.creates)
        say("  " + results["creates"].line())
        ok &= results["creates"].failed == 0
    if "b" in args.only:
        model = _alias_target(api, args.prefix)
        say(f"\n(b) alias resolution GET /models/{model}/aliases/champion")
        results["alias_1"] = bench_alias_single(api, model, args.alias_requests)
        say("  1 client:   " + results["alias_1"].line())
        results["alias_n"] = bench_alias_concurrent(make_api, model, args.alias_clients, args.alias_seconds)
        say(f"  {args.alias_clients} clients:  " + results["alias_n"].line())
        ok &= results["alias_1"].failed == 0 and results["alias_n"].failed == 0
    if "e" in args.only:
        # The same client and harness against /healthz (no database, no serializer): what this machine can
        # carry at all, so a throughput target above it is shown to be out of reach, not merely missed.
        url = args.base_url.rstrip("/") + "/healthz"
        say(f"\n(e) ceiling: GET {url}, the same harness with no work behind it")
        results["ceiling_1"] = bench_get_single(api, url, args.alias_requests)
        say("  1 client:   " + results["ceiling_1"].line())
        results["ceiling_n"] = bench_get_concurrent(make_api, url, args.alias_clients, args.alias_seconds)
        say(f"  {args.alias_clients} clients:  " + results["ceiling_n"].line())
    if "c" in args.only:
        say(f"\n(c) search over {args.search_models:,} models ({args.search_prefix}-NNNN, tags.team)")
        spent = ensure_search_corpus(make_api, args.search_prefix, args.search_models, SEARCH_TEAMS)
        if spent:
            say(f"  corpus created in {spent:.1f}s ({args.search_models / spent:,.0f} models/s, 4 clients)")
        results["search"] = bench_search(api, args.search_prefix, args.search_models, SEARCH_TEAMS,
                                         args.search_repeats)
        for label, (lat, hits) in results["search"].items():
            say(f"  {label:<28} {hits:>3} hits: p50 {lat.ms(50):.2f} ms, p99 {lat.ms(99):.2f} ms"
                f"{', ' + str(lat.failed) + ' errors' if lat.failed else ''}")
            ok &= lat.failed == 0
    if "w" in args.only:
        say("\n(w) plain-word search, 100-row pages, over 10,000 models / 100,000 versions (target p50 < 50 ms)")
        if args.seed_scale:
            from seed_scale import ensure_scale_corpus

            spent = ensure_scale_corpus()
            if spent:
                say(f"  corpus seeded in {spent:.1f}s")
        results["words"] = bench_word_search(api, args.search_repeats)
        if args.server_side:
            results["words_server"] = word_search_server_side(args.token, args.search_repeats)
        say(f"  machine load (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        ok &= print_word_search(results)
    if "d" in args.only:
        say(f"\n(d) concurrency: {args.threads} threads x {args.per_thread} creates on one fresh model")
        conc = results["concurrency"] = bench_concurrency(make_api, args.prefix, args.threads, args.per_thread)
        say(f"  {len(conc.created)} created in {conc.wall:.2f}s = {conc.per_second:,.1f}/s; "
            f"listed {len(conc.listed)} versions")
        say(f"  {'PASS' if conc.passed else 'FAIL'}: version numbers are "
            + ("exactly 1.." + str(conc.expected) if conc.passed else "; ".join(conc.problems)))
        ok &= conc.passed
    return results, ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    CLIENT["kind"] = args.client

    def make_api() -> Api:
        return Api(args.base_url, args.token)

    api = make_api()
    try:
        api.call("GET", api.url("models"), params={"max_results": 1})
    except (*CLIENT_ERRORS, BenchError) as exc:
        say(f"Cannot use the API at {args.base_url}: {exc}")
        return 2
    say(f"Stratum REST API benchmark: {args.base_url}{'  [' + args.label + ']' if args.label else ''}")
    say(f"run prefix {args.prefix}; client: Python {sys.version.split()[0]}, {args.client} client, "
        f"{os.cpu_count()} CPUs (shared with the server if it runs here)")
    try:
        results, ok = run_sections(args, make_api)
    except (*CLIENT_ERRORS, BenchError) as exc:
        say(f"\nABORTED: {exc}")
        return 2
    say("\nSummary" + (f" [{args.label}]" if args.label else "") + (" (quick run: small samples)" if args.quick
                                                                       else ""))
    rows = summary(results)
    print_table(("metric", "Stratum", "MLflow", "ratio", "target", ""), rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"label": args.label, "base_url": args.base_url, "quick": args.quick,
                       "rows": [dict(zip(("metric", "stratum", "mlflow", "ratio", "target", "verdict"), r,
                                         strict=True)) for r in rows],
                       "figures": figures(results)}, fh, indent=2)
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
