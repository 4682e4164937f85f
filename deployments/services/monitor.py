"""The rollout monitor's judgement: advance timed canary steps, run due analyses, then promote, pause for a person
or roll back. Every function takes `now`, the clock the rollout is judged on (the real time unless a caller
injects one)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from deployments import analysis
from deployments.models import Deployment, Phase, Strategy
from deployments.services.common import locked, scope
from deployments.services.plans import analysis_config
from deployments.services.routes import routing_apply
from deployments.services.transitions import end, promotion_finish, smoke_check, step_next, succeed
from registry import events
from registry.errors import InvalidState


def rollouts_evaluate_all(*, now: datetime | None = None) -> int:
    """Evaluate every progressing rollout; return how many were looked at (the beat task's body)."""
    due = list(Deployment.objects.filter(phase__in=(Phase.PENDING, Phase.PROGRESSING, Phase.PROMOTING))
               .select_related("endpoint"))
    for deployment in due:
        rollout_evaluate(deployment=deployment, now=now)
    return len(due)


@transaction.atomic
def rollout_evaluate(*, deployment: Deployment, now: datetime | None = None) -> Deployment:
    """Let the monitor judge one rollout: advance timed steps, run due analyses, promote or roll back."""
    now = now or timezone.now()
    d = locked(deployment, None)
    if d.phase == Phase.PROMOTING:
        if d.warm_until is None or now >= d.warm_until:
            promotion_finish(d, actor=None, reason="keep-warm window over; the old version is released", now=now)
        return d
    if d.phase not in (Phase.PENDING, Phase.PROGRESSING):
        return d
    d.last_evaluated_at = now
    d.save(update_fields=["last_evaluated_at"])
    cfg = analysis_config(d.analysis)
    if d.strategy == Strategy.BLUE_GREEN:
        return _evaluate_blue_green(d, now=now)
    if d.strategy in (Strategy.SHADOW, Strategy.AB):
        return _evaluate_window(d, cfg, now=now)
    return _evaluate_canary(d, cfg, now=now)


def _evaluate_blue_green(d: Deployment, *, now: datetime) -> Deployment:
    """Smoke-check the preview; switch to it (or wait for a person) when it answers, roll back when it cannot."""
    try:
        smoke_check(d)
    except InvalidState as error:
        return end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back", reason=error.message, now=now)
    analysis.record(d, verdict="passed", metrics={"smoke_check": "passed"},
                    detail=f"Version {d.candidate_version.number} answered a synthesised row.")
    if d.auto_promote:
        succeed(d, actor=None, reason="blue-green switch after a passed smoke check", now=now)
    else:
        _pause_for_person(d, "Smoke check passed; waiting for someone to promote the switch.")
    return d


def _evaluate_window(d: Deployment, cfg: dict[str, Any], *, now: datetime) -> Deployment:
    """Shadow and A/B: analyse each full window; roll back once failures pass the limit, else keep measuring."""
    if d.step_started_at and now - d.step_started_at < timedelta(seconds=cfg["window_seconds"]):
        return d
    run = analysis.analyse(d, cfg, now=now)
    d.step_started_at = now
    d.save(update_fields=["step_started_at"])
    if run.verdict == "failed":
        d.failures += 1
        d.save(update_fields=["failures"])
        if d.failures > cfg["failure_limit"]:
            return end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back",
                       reason=f"analysis failed: {run.detail}", now=now)
    return d


def _evaluate_canary(d: Deployment, cfg: dict[str, Any], *, now: datetime) -> Deployment:
    """Work through the canary steps that are due; succeed after the last one."""
    while d.phase == Phase.PROGRESSING and d.step_index < len(d.steps):
        step = d.steps[d.step_index]
        started = d.step_started_at or now
        if "pause" in step:
            duration = step["pause"].get("duration")
            if duration is None:
                _pause_for_person(d, "Waiting for someone to promote the next step.")
                break
            if now - started < timedelta(seconds=duration):
                break
            step_next(d, actor=None, now=now, reason=f"pause of {duration}s over")
            continue
        step_cfg = {**cfg, **step["analysis"]}
        if now - started < timedelta(seconds=step_cfg["window_seconds"]):
            break
        run = analysis.analyse(d, step_cfg, now=now, since=started)
        if run.verdict == "passed":
            step_next(d, actor=None, now=now, reason="analysis passed")
            continue
        if run.verdict == "inconclusive":
            _pause_for_person(d, f"Analysis inconclusive: {run.detail} A person decides: promote, resume to analyse "
                                 "again, or roll back.")
            break
        d.failures += 1
        d.step_started_at = now
        d.save(update_fields=["failures", "step_started_at"])
        if d.failures > step_cfg["failure_limit"]:
            return end(d, actor=None, phase=Phase.FAILED, action="deployment.rolled_back",
                       reason=f"analysis failed at step {d.step_index + 1}: {run.detail}", now=now)
        break
    if d.phase == Phase.PROGRESSING and d.step_index >= len(d.steps):
        succeed(d, actor=None, reason="canary completed its steps", now=now)
    return d


def _pause_for_person(d: Deployment, message: str) -> None:
    """Hold a rollout (traffic unchanged) until someone promotes, resumes or rolls it back; say why."""
    d.phase, d.message = Phase.PAUSED, message[:2000]
    d.save(update_fields=["phase", "message", "updated_at"])
    routing_apply(d, actor=None, reason=f"paused by the monitor: {d.message}"[:300])
    events.emit("deployment.paused", actor=None, target=d, data={
        **scope(d.endpoint, d.candidate_version), "deployment": d.pk, "step": d.step_index, "reason": d.message})
