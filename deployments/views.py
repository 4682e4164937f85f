"""Deployment pages: endpoints by environment, the endpoint dashboard (htmx-refreshed), rollout controls, deploy."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views import View

from deployments import charts, permissions, selectors, services
from deployments.forms import (
    STEPS_PREFIX,
    STRATEGY_FIELDSETS,
    CanaryStepFormSet,
    DeploymentStartForm,
    EndpointForm,
    EnvironmentForm,
    RoutingAtForm,
    step_formset,
    step_rows_edited,
)
from deployments.models import ACTIVE_PHASES, Deployment, Endpoint, Phase, Strategy
from registry.errors import DomainError, Forbidden, NotFound

POLL_SECONDS = 5
HISTORY_ROWS = 50
CHART_LEAD = timedelta(seconds=10)  # the charts open a little before the rollout, to show what served just before
CHART_MAX_DAYS = 7


def _raise_http(error: DomainError) -> None:
    if isinstance(error, Forbidden):
        raise PermissionDenied(error.message)
    if isinstance(error, NotFound):
        raise Http404(error.message)


def _endpoint(request: HttpRequest, name: str) -> Endpoint:
    try:
        return selectors.endpoint_get(actor=request.user, name=name)
    except DomainError as error:
        _raise_http(error)
        raise


def route_rows(routing: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the live routes of a routing snapshot as plain rows (version, weight, role, label)."""
    return [{"version": r.get("number"), "weight": r.get("weight", 0), "role": r.get("role", ""),
             "label": f"v{r.get('number')}"} for r in (routing or {}).get("routes") or []]


# ------------------------------------------------------------------------------------------------ the list


class EndpointListView(LoginRequiredMixin, View):
    """Endpoints grouped by environment, what each serves now and its active rollout; create forms."""

    def _render(self, request: HttpRequest, *, env_form: EnvironmentForm | None = None,
                endpoint_form: EndpointForm | None = None, status: int = 200) -> HttpResponse:
        user = request.user
        environments = list(selectors.environment_list())
        endpoints = list(selectors.endpoint_list(actor=user))
        active = selectors.active_deployments(endpoints=endpoints)
        maintained = selectors.maintained_models(actor=user)
        groups = []
        for env in environments:
            rows = [{"endpoint": e, "routes": route_rows(e.routing), "active": active.get(e.pk)}
                    for e in endpoints if e.environment_id == env.pk]
            groups.append({"environment": env, "rows": rows})
        can_create_endpoint = bool(environments) and maintained.exists()
        context = {
            "groups": groups, "endpoint_count": len(endpoints),
            "can_manage_environments": permissions.can_manage_environments(user),
            "can_create_endpoint": can_create_endpoint,
            "env_form": env_form or EnvironmentForm(),
            "endpoint_form": endpoint_form or EndpointForm(environments=selectors.environment_list(),
                                                           models=maintained),
        }
        return render(request, "deployments/endpoint_list.html", context, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the list."""
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        """Create an environment (staff) or an endpoint (maintainers); errors re-render the page with 400."""
        if request.POST.get("form") == "environment":
            form = EnvironmentForm(request.POST)
            if form.is_valid():
                try:
                    env = services.environment_create(actor=request.user, **form.cleaned_data)
                except Forbidden as error:
                    raise PermissionDenied(error.message) from error
                except DomainError as error:
                    form.add_error(None, error.message)
                else:
                    messages.success(request, f"Environment {env.name} created.")
                    return redirect("deployments:list")
            return self._render(request, env_form=form, status=400)
        form = EndpointForm(request.POST, environments=selectors.environment_list(),
                            models=selectors.maintained_models(actor=request.user))
        if form.is_valid():
            try:
                endpoint = services.endpoint_create(actor=request.user, **form.cleaned_data)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Endpoint {endpoint.name} created.")
                return redirect("deployments:dashboard", endpoint=endpoint.name)
        return self._render(request, endpoint_form=form, status=400)


# ------------------------------------------------------------------------------------------- the dashboard


def _steps(deployment: Deployment) -> list[dict[str, Any]]:
    current = deployment.step_index if deployment.active else None
    rows = []
    for i, step in enumerate(deployment.steps or []):
        (kind, value), = step.items()
        if kind == "set_weight":
            text = f"Set weight to {value}%"
        elif kind == "pause":
            text = f"Pause {value['duration']} s" if value.get("duration") else "Pause until promoted"
        else:
            text = "Analysis" + (f" ({', '.join(f'{k}={v}' for k, v in value.items())})" if value else "")
        rows.append({"number": i + 1, "kind": kind, "text": text, "current": i == current,
                     "done": i < deployment.step_index})
    return rows


def _controls(deployment: Deployment | None, latest_pk: int | None, can_deploy: bool) -> list[dict[str, str]]:
    if deployment is None or not can_deploy:
        return []
    phase, out = deployment.phase, []
    if phase == Phase.PROGRESSING:
        out.append({"action": "pause", "label": "Pause", "style": ""})
    blue_green = deployment.strategy == Strategy.BLUE_GREEN
    if phase == Phase.PAUSED and not blue_green:  # a held blue-green preview waits for its switch, not a resume
        out.append({"action": "resume", "label": "Resume", "style": ""})
    if phase in (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED):
        if deployment.strategy == Strategy.CANARY:
            out.append({"action": "promote", "label": "Promote", "style": "btn-primary"})
        out.append({"action": "promote-full", "style": "btn-primary",
                    "label": f"Switch to v{deployment.candidate_version.number}" if blue_green else "Promote fully"})
    if phase == Phase.PROMOTING:  # switched; the old version is still warm
        out.append({"action": "promote-full", "label": "Finish now (release old version)", "style": "btn-primary"})
    candidate = f"v{deployment.candidate_version.number}"
    rollback = {"action": "rollback", "label": "Roll back", "style": "btn-danger", "reason": "Reason for rolling back",
                "confirm": f"Roll back {candidate}? Every request goes back to the last good version at once."}
    if phase in ACTIVE_PHASES:
        out.append({"action": "abort", "label": "Abort", "style": "btn-danger", "reason": "Reason for aborting",
                    "confirm": f"Abort the rollout of {candidate}? Its traffic returns to the stable version and the "
                               "rollout cannot be resumed."})
        out.append(rollback)
    elif phase == Phase.SUCCEEDED and deployment.pk == latest_pk and deployment.stable_version_id:
        out.append(rollback)
    return out


def chart_window_start(deployment: Deployment | None, *, now: datetime) -> datetime | None:
    """Return where the live charts start: a few seconds before the rollout in force or just ended began (so a
    two-minute canary fills the chart), at most CHART_MAX_DAYS back; None (the last hour) when there is none."""
    if deployment is None or deployment.started_at is None:
        return None
    if not deployment.active and (deployment.finished_at is None
                                  or now - deployment.finished_at > timedelta(minutes=60)):
        return None
    return max(deployment.started_at - CHART_LEAD, now - timedelta(days=CHART_MAX_DAYS))


def _live_context(request: HttpRequest, endpoint: Endpoint) -> dict[str, Any]:
    """Everything the polled part of the dashboard shows: routing, rollout, analysis, charts."""
    history = list(selectors.deployment_list(actor=request.user, endpoint=endpoint)[:HISTORY_ROWS])
    current = history[0] if history else None
    routing = endpoint.routing or {}
    routes = route_rows(routing)
    now = timezone.now()
    since = chart_window_start(current, now=now)
    traffic = selectors.traffic_series(endpoint=endpoint, now=now, since=since)
    series = traffic["series"]
    window = (traffic["since"], now.isoformat())
    figures = [
        ("split", "Live traffic split", charts.traffic_split_figure(routes)),
        ("requests", "Requests per minute", charts.series_figure(series, "requests_per_min", y_title="req/min",
                                                                 roles=("live",), x_range=window)),
        ("errors", "Error rate", charts.series_figure(series, "error_rate", y_title="errors", tickformat=".1%",
                                                     x_range=window)),
        ("latency", "Latency p50 / p95", charts.latency_figure(series, x_range=window)),
    ]
    if routing.get("shadow") or any(s["role"] == "shadow" for s in series):
        figures.append(("agreement", "Shadow agreement with the live answer",
                        charts.series_figure(series, "agreement", y_title="agreement", tickformat=".0%",
                                             roles=("shadow",), x_range=window, y_range=(0, 1))))
    runs, metrics = [], None
    if current is not None:
        runs = selectors.analysis_runs(deployment=current, limit=10)
        if current.strategy == Strategy.AB:
            metrics = selectors.deployment_metrics(deployment=current)
    return {
        "endpoint": endpoint, "routing": routing, "routes": routes,
        "preview": routing.get("preview"), "shadow": routing.get("shadow"),
        "current": current, "steps": _steps(current) if current else [],
        "runs": runs, "outcomes": (metrics or {}).get("outcomes"),
        "controls": _controls(current, current.pk if current else None,
                              permissions.can_deploy(request.user, endpoint)),
        "history": history,
        "chart_since": since, "chart_bucket_seconds": traffic["bucket_seconds"],
        "charts": [{"name": n, "title": t, "figure": f} for n, t, f in figures if f is not None],
        "chart_slots": [{"name": n, "title": t, "empty": f is None} for n, t, f in figures],
        "poll_seconds": POLL_SECONDS,
        "polling": True,
    }


class EndpointDashboardView(LoginRequiredMixin, View):
    """An endpoint's dashboard; an htmx request (the 5-second poll) gets only the live fragment."""

    def get(self, request: HttpRequest, endpoint: str) -> HttpResponse:
        """Render the dashboard or its live partial."""
        obj = _endpoint(request, endpoint)
        context = _live_context(request, obj)
        if request.htmx:
            response = render(request, "deployments/_live.html", context)
        else:
            at_form = RoutingAtForm(request.GET if "at" in request.GET else None)
            served_at = None
            if at_form.is_bound and at_form.is_valid():
                served_at = {"at": at_form.cleaned_data["at"],
                             "record": selectors.routing_at(endpoint=obj, at=at_form.cleaned_data["at"])}
                if served_at["record"] is not None:
                    served_at["routes"] = route_rows(served_at["record"].routing)
            context.update(at_form=at_form, served_at=served_at,
                           can_deploy=permissions.can_deploy(request.user, obj), now=timezone.now())
            response = render(request, "deployments/dashboard.html", context,
                              status=400 if at_form.is_bound and not at_form.is_valid() else 200)
        patch_vary_headers(response, ("HX-Request",))
        add_never_cache_headers(response)
        return response


ACTIONS = {
    "pause": lambda d, user, reason: services.deployment_pause(deployment=d, actor=user),
    "resume": lambda d, user, reason: services.deployment_resume(deployment=d, actor=user),
    "promote": lambda d, user, reason: services.deployment_promote(deployment=d, actor=user),
    "promote-full": lambda d, user, reason: services.deployment_promote(deployment=d, actor=user, full=True),
    "abort": lambda d, user, reason: services.deployment_abort(deployment=d, actor=user, reason=reason),
    "rollback": lambda d, user, reason: services.deployment_rollback(deployment=d, actor=user, reason=reason),
}
DONE = {"pause": "Paused", "resume": "Resumed", "promote": "Promoted to the next step",
        "promote-full": "Promoted fully", "abort": "Aborted", "rollback": "Rolled back"}


class DeploymentActionView(LoginRequiredMixin, View):
    """Pause, resume, promote, abort or roll back one deployment (POST, maintainers), then back to the dashboard."""

    def post(self, request: HttpRequest, endpoint: str, pk: int, action: str) -> HttpResponse:
        """Call the service; refusals come back as a message on the dashboard."""
        obj = _endpoint(request, endpoint)
        if action not in ACTIONS:
            raise Http404(f"Unknown action {action!r}.")
        try:
            deployment = selectors.deployment_get(actor=request.user, pk=pk)
            if deployment.endpoint_id != obj.pk:
                raise NotFound(f"Deployment #{pk} not found.")
            result = ACTIONS[action](deployment, request.user, request.POST.get("reason", ""))
        except (Forbidden, NotFound) as error:
            _raise_http(error)
            raise
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"{DONE[action]}: deployment #{result.pk} is "
                                      f"{result.get_phase_display().lower()}"
                                      f"{f' ({result.end_reason})' if result.end_reason else ''}.")
        return redirect("deployments:dashboard", endpoint=obj.name)


# ------------------------------------------------------------------------------------------------ deploy


class DeploymentStartView(LoginRequiredMixin, View):
    """Start a rollout on an endpoint (maintainers of its model): the form shows the chosen strategy's settings, the
    canary's steps in a step editor (a formset: rows added and removed by the server without JavaScript, in place
    with it) and every version, those that cannot be deployed disabled with the reason."""

    def _prepare(self, request: HttpRequest, endpoint: str) -> tuple[Endpoint, list[tuple[int, str | None]]]:
        obj = _endpoint(request, endpoint)
        if not permissions.can_deploy(request.user, obj):
            raise PermissionDenied(f"You need the maintainer role on model {obj.model.name!r} to deploy to "
                                   f"endpoint {obj.name!r}.")
        versions = [(v.number, reason) for v, reason in selectors.deployable_versions(endpoint=obj)]
        return obj, versions

    def _render(self, request: HttpRequest, obj: Endpoint, form: DeploymentStartForm, steps: Any,
                status: int = 200) -> HttpResponse:
        return render(request, "deployments/deploy.html",
                      {"endpoint": obj, "form": form, "steps": steps, "routes": route_rows(obj.routing),
                       "fieldsets": {k: " ".join(v) for k, v in STRATEGY_FIELDSETS.items()},
                       "refusals": sorted(form.refusals.items(), reverse=True)}, status=status)

    def get(self, request: HttpRequest, endpoint: str) -> HttpResponse:
        """Render the form."""
        obj, versions = self._prepare(request, endpoint)
        return self._render(request, obj, DeploymentStartForm(versions=versions), step_formset())

    def post(self, request: HttpRequest, endpoint: str) -> HttpResponse:
        """Add or remove a step row (the editor without JavaScript), or start the rollout; errors re-render (400)."""
        obj, versions = self._prepare(request, endpoint)
        if "add_step" in request.POST or "remove_step" in request.POST:
            try:
                remove = int(request.POST["remove_step"]) if "remove_step" in request.POST else None
            except ValueError:
                remove = None
            rows = step_rows_edited(request.POST, add="add_step" in request.POST, remove=remove)
            form = DeploymentStartForm(initial=request.POST.dict(), versions=versions)
            steps = CanaryStepFormSet(initial=rows, prefix=STEPS_PREFIX)
            return self._render(request, obj, form, steps)
        form = DeploymentStartForm(request.POST, versions=versions)
        steps = step_formset(request.POST)
        form_ok = form.is_valid()
        canary = form_ok and form.cleaned_data["strategy"] == Strategy.CANARY
        if form_ok and (not canary or steps.is_valid()):
            from deployments.routing import served_route

            stable = served_route(obj.routing)
            try:
                deployment = services.deployment_start(
                    actor=request.user, endpoint=obj,
                    **form.service_arguments(stable_number=stable["number"] if stable else None,
                                             steps=steps.steps() if canary else None))
            except (Forbidden, NotFound) as error:
                _raise_http(error)
                raise
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Deployment #{deployment.pk} started: {deployment.get_strategy_display()} "
                                          f"of version {deployment.candidate_version.number}.")
                return redirect("deployments:dashboard", endpoint=obj.name)
        if not canary:  # the step rows are shown as typed, not judged, when the canary is not what was asked
            steps = CanaryStepFormSet(initial=step_rows_edited(request.POST), prefix=STEPS_PREFIX)
        return self._render(request, obj, form, steps, status=400)
