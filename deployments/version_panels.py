"""What deployments adds to a version's page through the registry's plug point (registry.panels): the "Deployed at"
panel on the Overview tab (the endpoints serving the version now, with its share of their traffic) and the
Deployments tab (that panel and the rollouts the version took part in). Each renders in a fixed number of queries."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from deployments import selectors
from registry import panels
from registry.models import ModelVersion, RegisteredModel


def deployed_at_panel(*, request: HttpRequest, model: RegisteredModel, version: ModelVersion) -> str:
    """The "Deployed at" panel: each endpoint serving `version` now, its environment, role and traffic share."""
    rows = selectors.version_deployed_at(actor=request.user, version=version)
    return render_to_string("deployments/_deployed_at.html", {"rows": rows, "model": model, "version": version},
                            request=request)


def deployments_tab(*, request: HttpRequest, model: RegisteredModel, version: ModelVersion) -> str:
    """The Deployments tab: where the version serves now, then every rollout it took part in."""
    context = {"rows": selectors.version_deployed_at(actor=request.user, version=version),
               "rollouts": selectors.version_rollouts(actor=request.user, version=version),
               "model": model, "version": version}
    return render_to_string("deployments/_version_deployments_tab.html", context, request=request)


def register() -> None:
    """Add the panel and the tab to the version page (called from DeploymentsConfig.ready)."""
    panels.register_overview_panel("deployed-at", deployed_at_panel, order=0)
    panels.register_tab("deployments", "Deployments", deployments_tab, order=50)
