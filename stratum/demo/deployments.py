"""Demo serving state: staging and production environments, and one endpoint per demo model serving its champion."""

from __future__ import annotations

from typing import Any

from deployments import services
from deployments.models import Deployment, Endpoint, Environment
from registry import access as registry_access
from registry.errors import DomainError
from registry.models import AccessToken, RegisteredModel

SERVING_TOKEN_NAME = "demo-serving"  # noqa: S105 - a token label, not a secret


def _environments(admin) -> Environment:
    for name, description, requires, alias in (
        ("staging", "Pre-production: any scanned, signed ONNX version may be served.", False, ""),
        ("production", "Customer traffic: serves only versions promoted to @champion through governance.", True,
         "champion"),
    ):
        if not Environment.objects.filter(name=name).exists():
            services.environment_create(actor=admin, name=name, description=description, requires_promotion=requires,
                                        follow_alias=alias)
    return Environment.objects.get(name="staging")


def _serving_token(engineer) -> list[str]:
    live = AccessToken.objects.filter(user=engineer, name=SERVING_TOKEN_NAME, revoked_at__isnull=True).first()
    if live is not None:
        return [f"engineer already has the serving token {registry_access.TOKEN_PREFIX}{live.prefix}_… "
                "(shown only when created); revoke it to have the next seeding create a new one."]
    _, raw = registry_access.token_create(user=engineer, actor=engineer, name=SERVING_TOKEN_NAME, scopes=["serve"])
    return ["New serving token for engineer (serve scope; shown once):", f"  {raw}"]


CANARY_STEPS = [{"set_weight": 20}, {"pause": {}}, {"set_weight": 50}, {"pause": {}}]


def _canary(model: RegisteredModel, engineer) -> str | None:
    """Start one canary of the model's challenger on its staging endpoint, held at 20% until a person promotes it.

    Only on an endpoint that has had no rollout but the first one, so a re-run (or a person's later rollouts)
    is left alone.
    """
    endpoint = Endpoint.objects.filter(name=f"{model.name}-staging"[:100]).first()
    challenger = model.aliases.filter(name="challenger").select_related("version").first()
    if endpoint is None or challenger is None or Deployment.objects.filter(endpoint=endpoint).count() != 1:
        return None
    try:
        d = services.deployment_start(actor=model.owner or engineer, endpoint=endpoint, strategy="canary",
                                      version=challenger.version.number, steps=CANARY_STEPS)
    except DomainError as error:
        return f"{endpoint.name}: canary not started ({error.message})"
    return (f"{endpoint.name}: canary of version {challenger.version.number} in progress (deployment #{d.pk}, "
            f"20% of traffic, paused until someone promotes or rolls it back)")


def seed_endpoints(*, users: dict[str, Any], models: list[RegisteredModel], report: Any = None,
                   **kwargs: Any) -> None:
    """Create the environments and a staging endpoint per demo model serving its champion; idempotent."""
    engineer, admin = users.get("engineer"), users.get("admin")
    if engineer is None or admin is None or not models:
        return
    staging = _environments(admin)
    lines = []
    for model in models:
        name = f"{model.name}-staging"[:100]
        endpoint = Endpoint.objects.filter(name=name).first()
        champion = model.aliases.filter(name="champion").select_related("version").first()
        if champion is None:
            continue
        actor = model.owner or engineer
        if endpoint is None:
            endpoint = services.endpoint_create(actor=actor, name=name, environment=staging, model=model,
                                                description=f"Demo endpoint serving {model.name}@champion.")
        if not Deployment.objects.filter(endpoint=endpoint).exists():
            problem = None
            try:
                services.deployment_start(actor=actor, endpoint=endpoint, strategy="direct",
                                          version=champion.version.number)
            except DomainError as error:
                problem = error.message
            if problem is not None and report is not None:
                report.notes.append(f"{name}: not deployed ({problem})")
                continue
        endpoint.refresh_from_db()
        served = (endpoint.routing or {}).get("routes") or [{}]
        lines.append(f"{name}: version {served[0].get('number', '?')} — "
                     f"POST http://127.0.0.1:8000/serve/{name}/predict")
    canary = _canary(models[-1], engineer)
    if canary and report is not None:
        lines.append(canary)
    if report is not None:
        token_lines = _serving_token(engineer)
        def width(model: RegisteredModel) -> int:
            latest = model.versions.order_by("-number").first()
            return len(((latest.signature if latest else None) or {}).get("inputs") or []) or 4

        example = min(models, key=width)
        report.sections.append(("Serving gateway (demo endpoints):", [
            *lines, *token_lines,
            f"  e.g. curl -H 'Authorization: Bearer <serving token>' -H 'Content-Type: application/json' "
            f"-d '{{\"rows\": [[{', '.join(['0.1'] * width(example))}]]}}' "
            f"http://127.0.0.1:8000/serve/{example.name}-staging/predict"]))
