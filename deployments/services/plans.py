"""What a rollout may be asked to do: the default analysis and canary steps, and the checks of steps, analysis
thresholds and A/B arms that run before anything changes."""

from __future__ import annotations

import math
from typing import Any

from deployments.models import Endpoint
from deployments.services.common import whole_number
from registry.errors import InvalidInput, NotFound
from registry.models import ModelVersion

DEFAULT_ANALYSIS: dict[str, Any] = {
    "window_seconds": 60,  # traffic an analysis looks at (and the least time a step waits before judging)
    "min_requests": 20,  # fewer candidate requests than this: inconclusive
    "max_error_rate": 0.05,
    "max_p95_ms": 250.0,
    "max_p99_ms": 1000.0,
    "max_label_psi": 0.25,  # class prediction distribution shift against the stable version (PSI)
    "max_ks_statistic": 0.3,  # numeric prediction shift against the stable version (two-sample KS statistic)
    "min_agreement": 0.9,  # shadow: share of mirrored rows whose answer matches the stable version's
    "failure_limit": 0,  # failed analyses tolerated before the rollout is rolled back
}
DEFAULT_CANARY_STEPS: list[dict[str, Any]] = [
    {"set_weight": 10}, {"pause": {"duration": 60}}, {"analysis": {}},
    {"set_weight": 50}, {"pause": {"duration": 60}}, {"analysis": {}},
]
MAX_STEPS = 50


def analysis_config(stored: dict[str, Any]) -> dict[str, Any]:
    """Return a deployment's analysis thresholds: the defaults overlaid with what it stored (not its `_` keys)."""
    return {**DEFAULT_ANALYSIS, **{k: v for k, v in stored.items() if not k.startswith("_")}}


def clean_steps(steps: Any) -> list[dict[str, Any]]:
    """Return canary steps checked and normalised (the default steps for None), or raise InvalidInput."""
    if steps is None:
        return [dict(s) for s in DEFAULT_CANARY_STEPS]
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise InvalidInput(f"Canary steps must be a list of 1 to {MAX_STEPS} steps.")
    return [_clean_step(i, step) for i, step in enumerate(steps, 1)]


def _clean_step(i: int, step: Any) -> dict[str, Any]:
    if not isinstance(step, dict) or len(step) != 1:
        raise InvalidInput(f"Step {i} must be an object with exactly one of set_weight, pause, analysis.")
    (kind, value), = step.items()
    if kind == "set_weight":
        return {"set_weight": whole_number(value, f"Step {i} set_weight", 0, 100)}
    if kind == "pause":
        if value in (None, {}):
            return {"pause": {}}
        if isinstance(value, dict) and set(value) == {"duration"}:
            return {"pause": {"duration": whole_number(value["duration"], f"Step {i} pause duration (seconds)",
                                                       1, 7 * 86400)}}
        raise InvalidInput(f"Step {i}: pause takes {{}} (until a person promotes) or {{\"duration\": seconds}}.")
    if kind == "analysis":
        return {"analysis": clean_analysis(value or {}, partial=True, where=f"Step {i} analysis")}
    raise InvalidInput(f"Step {i}: unknown step {kind!r}; use set_weight, pause or analysis.")


def clean_analysis(value: Any, *, partial: bool = False, where: str = "Analysis") -> dict[str, Any]:
    """Return analysis thresholds checked (over the defaults unless `partial`), or raise InvalidInput."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object.")
    unknown = set(value) - set(DEFAULT_ANALYSIS)
    if unknown:
        raise InvalidInput(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(DEFAULT_ANALYSIS)}.")
    out = {} if partial else dict(DEFAULT_ANALYSIS)
    for key, raw in value.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
            raise InvalidInput(f"{where}: {key} must be a non-negative number.")
        if key in ("max_error_rate", "min_agreement") and raw > 1:
            raise InvalidInput(f"{where}: {key} is a fraction from 0 to 1.")
        if key in ("window_seconds", "min_requests", "failure_limit"):
            raw = int(raw)
        out[key] = raw
    return out


def endpoint_version(endpoint: Endpoint, number: Any, what: str = "version") -> ModelVersion:
    """Return version `number` of the endpoint's model, or raise InvalidInput / NotFound."""
    number = whole_number(number, what.capitalize(), 1, 2**31 - 1)
    version = ModelVersion.objects.select_related("model").filter(model=endpoint.model, number=number).first()
    if version is None:
        raise NotFound(f"Model {endpoint.model.name!r} has no version {number}.")
    return version


def clean_arms(endpoint: Endpoint, arms: Any, stable: ModelVersion, candidate: ModelVersion) -> list[dict[str, Any]]:
    """Return an A/B test's two arms (50/50 for None): the version served now and the candidate, weights adding
    up to 100; or raise InvalidInput."""
    if arms is None:
        return [{"version_id": stable.pk, "number": stable.number, "weight": 50},
                {"version_id": candidate.pk, "number": candidate.number, "weight": 50}]
    if not isinstance(arms, list) or len(arms) != 2 or not all(isinstance(a, dict) for a in arms):
        raise InvalidInput("An A/B test has exactly two arms: [{\"version\": n, \"weight\": w}, ...] for the version "
                           "served now and the candidate.")
    out = []
    for arm in arms:
        version = endpoint_version(endpoint, arm.get("version"), "arm version")
        out.append({"version_id": version.pk, "number": version.number,
                    "weight": whole_number(arm.get("weight"), "Arm weight", 1, 99)})
    if {a["version_id"] for a in out} != {stable.pk, candidate.pk}:
        raise InvalidInput(f"The arms must be the version served now ({stable.number}) and the candidate "
                           f"({candidate.number}).")
    total = sum(a["weight"] for a in out)
    if total != 100:
        raise InvalidInput(f"Arm weights must add up to 100, not {total}.")
    return out
