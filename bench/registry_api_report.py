"""bench/registry_api.py's report: its figures against stock MLflow's (from the issue) and as plain numbers."""

from __future__ import annotations

import math
from typing import Any

from common import percentile

# Stock MLflow on this machine (from the issue): creates/s, alias resolutions, search over 1,000 models.
MLFLOW = {
    "create_per_s": 15.0,
    "alias_1_per_s": 16.0,
    "alias_1_p50_ms": 60.0,
    "alias_8_per_s": 80.0,
    "alias_8_p99_ms": (150.0, 210.0),
    "search_p50_ms": 105.0,
}
TARGET_SPEEDUP = 10.0
TARGETS = {"alias_1_p50_ms": 5.0, "alias_8_p99_ms": 25.0, "search_p50_ms": 20.0}


def _fmt(value: float, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.1f}/s"


def summary(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows: metric, Stratum, MLflow, ratio, target, verdict."""
    rows = []

    def throughput(label: str, ours: float, base: float) -> None:
        ratio = ours / base if base else math.nan
        rows.append((label, _fmt(ours), _fmt(base), f"{ratio:.1f}x", f">= {TARGET_SPEEDUP:.0f}x",
                     "PASS" if ratio >= TARGET_SPEEDUP else "MISS"))

    def latency(label: str, ours: float, base: float | tuple[float, float], target: float) -> None:
        lo, hi = base if isinstance(base, tuple) else (base, base)
        base_text = f"{lo:.0f}-{hi:.0f} ms" if lo != hi else f"{lo:.0f} ms"
        ratio = "-"
        if ours and not math.isnan(ours):
            ratio = f"{lo / ours:.1f}x faster" if lo == hi else f"{lo / ours:.1f}-{hi / ours:.1f}x faster"
        rows.append((label, _fmt(ours, "ms"), base_text, ratio, f"< {target:.0f} ms",
                     "PASS" if ours < target else "MISS"))

    if "creates" in results:
        throughput("version creates/s (1 client)", results["creates"].per_second, MLFLOW["create_per_s"])
    if "alias_1" in results:
        throughput("alias resolutions/s (1 client)", results["alias_1"].per_second, MLFLOW["alias_1_per_s"])
        latency("alias p50 (1 client)", results["alias_1"].ms(50), MLFLOW["alias_1_p50_ms"],
                TARGETS["alias_1_p50_ms"])
    if "alias_n" in results:
        n = results["alias_clients"]
        throughput(f"alias resolutions/s ({n} clients)", results["alias_n"].per_second, MLFLOW["alias_8_per_s"])
        latency(f"alias p99 ({n} clients)", results["alias_n"].ms(99), MLFLOW["alias_8_p99_ms"],
                TARGETS["alias_8_p99_ms"])
    if "ceiling_n" in results:
        n = results["alias_clients"]
        for key, label, base in (("ceiling_1", "1 client", MLFLOW["alias_1_per_s"]),
                                 ("ceiling_n", f"{n} clients", MLFLOW["alias_8_per_s"])):
            lat = results[key]
            rows.append((f"no-op /healthz ceiling ({label})", _fmt(lat.per_second), _fmt(base),
                         f"{lat.per_second / base:.1f}x", f"p99 {lat.ms(99):.1f} ms", "info"))
    if "search" in results:
        samples = [s for lat, _ in results["search"].values() for s in lat.samples]
        p50 = percentile(samples, 50) * 1000
        latency(f"search p50 ({results['search_models']:,} models)", p50, MLFLOW["search_p50_ms"],
                TARGETS["search_p50_ms"])
        rows.append((f"search p99 ({results['search_models']:,} models)", _fmt(percentile(samples, 99) * 1000,
                                                                                "ms"), "-", "-", "-", ""))
    if "concurrency" in results:
        c = results["concurrency"]  # registry_api.ConcurrencyResult
        rows.append((f"concurrent creates/s ({c.threads} clients)", _fmt(c.per_second), _fmt(MLFLOW["create_per_s"]),
                     f"{c.per_second / MLFLOW['create_per_s']:.1f}x", "-", ""))
        rows.append((f"numbering 1..{c.expected} under concurrency", "exact" if c.passed else "BROKEN", "-", "-",
                     "no gaps/dupes", "PASS" if c.passed else "FAIL"))
    return rows


def figures(results: dict[str, Any]) -> dict[str, float]:
    """The measured figures as plain numbers, named `<what>_per_s` (higher is better) or `<what>_ms` (lower is
    better), for tools that compare runs (bench/compare_trees.py)."""
    out: dict[str, float] = {}
    if "creates" in results:
        out["creates_per_s"] = results["creates"].per_second
        out["creates_p50_ms"] = results["creates"].ms(50)
    for key, name in (("alias_1", "alias_1"), ("alias_n", f"alias_{results['alias_clients']}"),
                      ("ceiling_1", "healthz_1"), ("ceiling_n", f"healthz_{results['alias_clients']}")):
        if key in results:
            out[f"{name}_per_s"] = results[key].per_second
            out[f"{name}_p50_ms"] = results[key].ms(50)
            out[f"{name}_p99_ms"] = results[key].ms(99)
    if "search" in results:
        for label, (lat, _) in results["search"].items():
            out[f"search {label}_p50_ms"] = lat.ms(50)
        samples = [s for lat, _ in results["search"].values() for s in lat.samples]
        out["search_all_p50_ms"] = percentile(samples, 50) * 1000
        out["search_all_p99_ms"] = percentile(samples, 99) * 1000
    if "concurrency" in results:
        out[f"concurrent_creates_{results['concurrency'].threads}_per_s"] = results["concurrency"].per_second
    return out
