#!/usr/bin/env python3
"""Run bench/registry_api.py against Stratum served from two source trees, one after the other, on PostgreSQL.

    python bench/compare_trees.py --baseline 67c334c                      # this tree against commit 67c334c
    python bench/compare_trees.py --baseline 67c334c --rounds 1 --quick   # a smoke run
    python bench/compare_trees.py --baseline-tree /tmp/old --candidate-tree /tmp/new -- --only ab

The baseline commit is checked out once as a detached git worktree (/tmp/stratum-baseline-<commit>, kept for
later runs). Each tree gets its own fresh PostgreSQL database (dropped and created: --db-prefix names them) and
var dir, is migrated, and is served by its own deploy/uwsgi.ini from the same venv, its packages first on the
path. This tree's bench/registry_api.py drives both with the same arguments (anything after `--` is passed to
it). Rounds alternate the order (baseline, candidate, then candidate, baseline, ...) so that drift in the
machine's load weighs on both alike; each figure is the median over the rounds. `change` is the candidate's
performance relative to the baseline's (a rate, or the inverse of a time): a figure more than --tolerance below
is flagged, and the exit status is 1 when any is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, CpuMeter, load_line, say, settle, start_stratum, stop


def baseline_tree(commit: str, path: Path | None) -> Path:
    """A checkout of `commit`: `path` as given, or a detached worktree made once under /tmp."""
    if path is not None:
        return path
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", commit], check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = Path(tempfile.gettempdir()) / f"stratum-baseline-{sha}"
    if not (tree / "manage.py").exists():
        say(f"checking out {commit} ({sha}) into {tree}")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha], check=True,
                       capture_output=True)
    return tree


def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create PostgreSQL database `name`; return its URL."""
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True)
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def run_bench(label: str, url: str, token: str, out: Path, bench_args: list[str]) -> dict[str, float]:
    """Run registry_api.py once against `url`; return its figures and the machine's busy share meanwhile."""
    meter = CpuMeter().start()
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "registry_api.py"), "--base-url", url,
                             "--token", token, "--label", label, "--json", str(out), *bench_args])
    if result.returncode not in (0, 1):  # 1: some target of its own missed, the figures are still there
        raise SystemExit(f"registry_api.py against {label} failed with {result.returncode}")
    figures = json.loads(out.read_text())["figures"]
    figures["machine busy %"] = meter.busy() * 100
    return figures


def compare(runs: dict[str, list[dict[str, float]]], tolerance: float) -> bool:
    """Print each figure's median per tree and the change; return True when none is more than `tolerance` below."""
    base, cand = runs["baseline"], runs["candidate"]
    names = [n for n in base[0] if all(n in r for r in base + cand)]
    say(f"\n{'figure':44} {'baseline':>11} {'candidate':>11} {'change':>8}  verdict (median of {len(base)} "
        f"round(s) each)")
    ok = True
    for name in names:
        b = statistics.median(r[name] for r in base)
        c = statistics.median(r[name] for r in cand)
        if name == "machine busy %":
            say(f"{name:44} {b:11.0f} {c:11.0f}")
            continue
        # The candidate's performance (a rate, or the inverse of a time) relative to the baseline's.
        change = (c / b if name.endswith("_per_s") else b / c) - 1
        verdict = "ok" if change >= -tolerance else f"MORE THAN {tolerance:.0%} BELOW"
        ok &= change >= -tolerance
        say(f"{name:44} {b:11.2f} {c:11.2f} {change:+8.0%}  {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bench_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="67c334c", help="commit to compare against (default 67c334c)")
    parser.add_argument("--baseline-tree", type=Path, help="an existing checkout to use as the baseline instead")
    parser.add_argument("--candidate-tree", type=Path, default=ROOT, help="the tree measured (default: this one)")
    parser.add_argument("--pg-admin-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL URL allowed to create databases")
    parser.add_argument("--db-prefix", default="stratum_bench",
                        help="databases <prefix>_baseline and <prefix>_candidate are dropped and created")
    parser.add_argument("--workers", type=int, default=3, help="uWSGI processes per server (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree, order alternating (default 2)")
    parser.add_argument("--tolerance", type=float, default=0.20, help="allowed slowdown (default 0.20)")
    parser.add_argument("--quick", action="store_true", help="pass --quick to registry_api.py")
    args = parser.parse_args(own)
    if args.quick:
        bench_args = ["--quick", *bench_args]

    trees = {"baseline": baseline_tree(args.baseline, args.baseline_tree), "candidate": args.candidate_tree}
    workdir = Path(tempfile.mkdtemp(prefix="stratum-compare-"))
    servers: dict[str, tuple[str, str]] = {}
    procs = []
    try:
        for label, tree in trees.items():
            database = fresh_database(args.pg_admin_url, f"{args.db_prefix}_{label}")
            url, token, proc = start_stratum(var_dir=workdir / label, workers=args.workers, tree=tree,
                                             database_url=database)
            procs.append(proc)
            servers[label] = (url, token)
            say(f"{label}: {tree} at {url} on {database.rsplit('/', 1)[1]}")
        say(f"waited {settle():.0f}s for the machine to settle; {load_line()}")
        runs: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
        for index in range(args.rounds):
            order = ["baseline", "candidate"] if index % 2 == 0 else ["candidate", "baseline"]
            for label in order:
                say(f"\n=== round {index + 1}: {label} ({trees[label]}) ===")
                url, token = servers[label]
                runs[label].append(run_bench(label, url, token, workdir / f"{label}-{index}.json", bench_args))
        ok = compare(runs, args.tolerance)
        say(f"\n{load_line()} at the end")
        return 0 if ok else 1
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
