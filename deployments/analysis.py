"""Rollout analysis: measure a deployment's versions from the gateway's traffic statistics and reach a verdict."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Sum
from django.utils import timezone

from deployments import stats
from deployments.models import AnalysisRun, AnalysisVerdict, Deployment, Outcome, Strategy, TrafficRole, TrafficStat


def version_metrics(*, deployment: Deployment, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """Return per-version live and shadow figures (requests, error rate, p50/p95/p99, labels, agreement)."""
    qs = TrafficStat.objects.filter(deployment=deployment, bucket__gte=_bucket_start(since))
    if until is not None:
        qs = qs.filter(bucket__lte=until)
    acc: dict[tuple[int, str], dict[str, Any]] = defaultdict(lambda: {
        "requests": 0, "errors": 0, "rows": 0, "latency_total_ms": 0.0, "hist": [], "labels": defaultdict(int),
        "values": [], "compared": 0, "agreed": 0})
    for row in qs.values_list("version_id", "role", "requests", "errors", "rows", "latency_total_ms",
                              "latency_hist", "label_counts", "value_sample", "compared", "agreed"):
        vid, role, requests, errors, rows, total, hist, labels, values, compared, agreed = row
        a = acc[(vid, role)]
        a["requests"] += requests
        a["errors"] += errors
        a["rows"] += rows
        a["latency_total_ms"] += total
        a["hist"] = stats.histogram_merge(a["hist"], hist or [])
        for label, count in (labels or {}).items():
            a["labels"][label] += count
        a["values"].extend(values or [])
        a["compared"] += compared
        a["agreed"] += agreed
    out: dict[str, Any] = {}
    for (vid, role), a in acc.items():
        key = f"{vid}:{role}"
        out[key] = {
            "version_id": vid, "role": role, "requests": a["requests"], "errors": a["errors"], "rows": a["rows"],
            "error_rate": a["errors"] / a["requests"] if a["requests"] else None,
            # Latencies to 0.1 ms: the histogram's interpolation invents the digits beyond that.
            "mean_ms": _ms(a["latency_total_ms"] / a["requests"]) if a["requests"] else None,
            "p50_ms": _ms(stats.histogram_percentile(a["hist"], 50)),
            "p95_ms": _ms(stats.histogram_percentile(a["hist"], 95)),
            "p99_ms": _ms(stats.histogram_percentile(a["hist"], 99)),
            "labels": dict(a["labels"]),
            "values": a["values"][-2000:],
            "compared": a["compared"], "agreed": a["agreed"],
            "agreement": a["agreed"] / a["compared"] if a["compared"] else None,
        }
    return out


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _bucket_start(moment: datetime) -> datetime:
    from deployments.serving import BUCKET_SECONDS

    return moment.replace(second=moment.second - moment.second % BUCKET_SECONDS, microsecond=0)


def _check(failures: list[str], name: str, value: float | None, limit: float, above_is_bad: bool = True,
           fmt: str = "{:.3g}", scale: float = 1) -> None:
    if value is None:
        return
    if (value > limit) if above_is_bad else (value < limit):
        failures.append(f"{name} {fmt.format(value * scale)} {'>' if above_is_bad else '<'} "
                        f"{fmt.format(limit * scale)}")


def analyse(deployment: Deployment, cfg: dict[str, Any], *, now: datetime | None = None,
            since: datetime | None = None) -> AnalysisRun:
    """Measure the candidate against its thresholds (and the stable version) over the window; record the verdict."""
    now = now or timezone.now()
    window_start = now - timedelta(seconds=cfg["window_seconds"])
    since = max(since, window_start) if since else window_start
    figures = version_metrics(deployment=deployment, since=since)
    cand_id, stable_id = deployment.candidate_version_id, deployment.stable_version_id
    role = TrafficRole.SHADOW if deployment.strategy == Strategy.SHADOW else TrafficRole.LIVE
    candidate = figures.get(f"{cand_id}:{role}") or {"requests": 0, "errors": 0}
    stable = figures.get(f"{stable_id}:{TrafficRole.LIVE}") or {"requests": 0, "errors": 0}
    metrics: dict[str, Any] = {"window_seconds": cfg["window_seconds"], "since": since.isoformat(),
                               "candidate": candidate, "stable": stable, "thresholds": {
                                   k: cfg[k] for k in ("min_requests", "max_error_rate", "max_p95_ms", "max_p99_ms",
                                                       "max_label_psi", "max_ks_statistic", "min_agreement")}}
    if candidate["requests"] < cfg["min_requests"]:
        for side in (candidate, stable):
            side.pop("values", None)
        return record(deployment, verdict=AnalysisVerdict.INCONCLUSIVE, metrics=metrics,
                      detail=f"only {candidate['requests']} candidate request(s) in the window; "
                             f"{cfg['min_requests']} needed.")
    failures: list[str] = []
    _check(failures, "error rate", candidate.get("error_rate"), cfg["max_error_rate"], fmt="{:.3g}%", scale=100)
    _check(failures, "p95 latency", candidate.get("p95_ms"), cfg["max_p95_ms"], fmt="{:.1f} ms")
    _check(failures, "p99 latency", candidate.get("p99_ms"), cfg["max_p99_ms"], fmt="{:.1f} ms")
    if candidate.get("labels") and stable.get("labels"):
        shift = stats.label_shift(stable["labels"], candidate["labels"])
        metrics["label_shift"] = shift
        _check(failures, "prediction shift (PSI)", shift["psi"], cfg["max_label_psi"])
    if candidate.get("values") and stable.get("values"):
        shift = stats.numeric_shift(stable["values"], candidate["values"])
        metrics["value_shift"] = shift
        _check(failures, "prediction shift (KS statistic)", shift["statistic"], cfg["max_ks_statistic"])
    for side in (candidate, stable):
        side.pop("values", None)  # the samples served the test; the run keeps the verdict's figures
    if role == TrafficRole.SHADOW:
        _check(failures, "agreement with stable", candidate.get("agreement"), cfg["min_agreement"],
               above_is_bad=False, fmt="{:.3g}%", scale=100)
    if deployment.strategy == Strategy.AB:
        metrics["outcomes"] = outcome_comparison(deployment=deployment)
    verdict = AnalysisVerdict.FAILED if failures else AnalysisVerdict.PASSED
    detail = "; ".join(failures) if failures else (
        f"{candidate['requests']} candidate request(s): error rate, latency"
        f"{', agreement' if role == TrafficRole.SHADOW else ''} and prediction shift within limits.")
    return record(deployment, verdict=verdict, metrics=metrics, detail=detail)


def record(deployment: Deployment, *, verdict: str, metrics: dict[str, Any], detail: str) -> AnalysisRun:
    """Store one analysis run and announce it (audited)."""
    from registry import events

    run = AnalysisRun.objects.create(deployment=deployment, step_index=deployment.step_index, verdict=verdict,
                                     metrics=_plain(metrics), detail=detail)
    events.emit("deployment.analysis_recorded", actor=None, target=deployment, data={
        "model_id": deployment.endpoint.model_id, "model": deployment.endpoint.model.name,
        "endpoint": deployment.endpoint.name, "deployment": deployment.pk, "step": deployment.step_index,
        "verdict": verdict, "detail": detail})
    return run


def outcome_comparison(*, deployment: Deployment) -> list[dict[str, Any]]:
    """Compare the A/B arms on every reported metric: fixed-horizon and sequential tests, with sample sizes."""
    if len(deployment.arms) != 2:
        return []
    a_arm, b_arm = deployment.arms
    rows = (Outcome.objects.filter(deployment=deployment)
            .values("metric", "version_id").annotate(n=Count("pk"), total=Sum("value"),
                                                     total_sq=Sum(F("value") * F("value"))))
    by_metric: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_metric[row["metric"]][row["version_id"]] = row
    out = []
    for metric, arms in sorted(by_metric.items()):
        values = Outcome.objects.filter(deployment=deployment, metric=metric)
        binary = not values.exclude(value__in=(0.0, 1.0)).exists()
        summaries = []
        for arm in (a_arm, b_arm):
            row = arms.get(arm["version_id"]) or {"n": 0, "total": 0.0, "total_sq": 0.0}
            name = f"v{arm['number']}"
            if binary:
                summaries.append({"name": name, "n": row["n"], "successes": int(row["total"] or 0)})
            else:
                summaries.append({"name": name, "n": row["n"], "total": float(row["total"] or 0),
                                  "total_sq": float(row.get("total_sq") or 0)})
        comparison = stats.compare_arms(summaries[0], summaries[1], "binary" if binary else "continuous")
        out.append({"metric": metric, **comparison})
    return out


def _plain(value: Any) -> Any:
    """Make a metrics tree JSON-safe (numpy numbers, defaultdicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
