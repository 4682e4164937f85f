"""The version page's tabs: Overview, Artifacts, Pipeline and Lineage from the registry, then the tabs other apps
provide through registry.panels (Card, Deployments, History). Each tab has its own address; a direct visit renders
the whole page with that tab selected, a tab link's htmx request (aimed at the tab area) only the tab bar and the
tab's content, and any other htmx request to the same address (the pipeline panel polling itself, the lineage
graph's controls) the panel alone, as before the tabs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_vary_headers

from registry import panels, selectors
from registry.models import ModelVersion, RegisteredModel
from registry.pipeline.scan.release import model_releases
from registry.pipeline.scan.trust import TrustState, version_trust
from registry.pipeline.selectors import version_scan_status

TABS_TARGET = "version-tabs"  # the id of the element tab links swap; htmx names it in the HX-Target header

# The registry's own tabs: slug, label, order, URL name (None: the generic tab route).
BUILTIN_TABS = (
    ("overview", "Overview", 0, "registry:version-detail"),
    ("artifacts", "Artifacts", 10, None),
    ("pipeline", "Pipeline", 20, "registry:version-pipeline"),
    ("lineage", "Lineage", 30, "registry:version-lineage"),
)


@dataclass(frozen=True)
class TabLink:
    """One entry of the tab bar."""

    slug: str
    label: str
    url: str
    selected: bool


def tab_links(model: RegisteredModel, version: ModelVersion, selected: str) -> list[TabLink]:
    """Return the tab bar of a version's page, in order, with `selected` marked."""
    args = [model.name, version.number]
    entries = [(order, slug, label, reverse(url_name, args=args) if url_name
                else reverse("registry:version-tab", args=[*args, slug]))
               for slug, label, order, url_name in BUILTIN_TABS]
    entries += [(tab.order, tab.slug, tab.label, reverse("registry:version-tab", args=[*args, tab.slug]))
                for tab in panels.version_tabs()]
    return [TabLink(slug=slug, label=label, url=url, selected=slug == selected)
            for _, slug, label, url in sorted(entries, key=lambda e: (e[0], e[1]))]


def wants_tab(request: HttpRequest) -> bool:
    """Whether an htmx request comes from a tab link (it swaps the tab area), so it wants the tab bar and content."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == TABS_TARGET


def wants_panel(request: HttpRequest) -> bool:
    """Whether an htmx request wants a panel alone (polling, a graph control): any htmx request but a tab link's and
    htmx's own reload of a page missing from its history cache (that one needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target != TABS_TARGET


def artifacts_context(model: RegisteredModel, version: ModelVersion, trust: Any = None) -> dict[str, Any]:
    """What the Artifacts tab shows: the file tree with what is withheld and why, and the release requests."""
    artifacts = list(selectors.artifact_list(version=version))
    scan = version_scan_status(version=version)
    file_trust = {row["path"]: row for row in scan["artifacts"]}
    trust = trust if trust is not None else version_trust(version)
    withheld = {f.path: f for f in trust.files if not f.servable}
    for artifact in artifacts:
        artifact.withheld = withheld.get(artifact.path)
    releases = list(model_releases(model=model).filter(blob_id__in=[a.blob_id for a in artifacts]))
    return {
        "artifacts": artifacts,
        "quarantined_files": [dict(file_trust[f.path], trust_detail=f.detail) for f in trust.files
                              if f.state == TrustState.QUARANTINED],
        "releases": releases,
        "open_release_digests": {r.blob_id for r in releases if r.state != "revoked"},
    }


def version_tab_response(
    request: HttpRequest, model: RegisteredModel, version: ModelVersion, *, tab: str, template: str,
    context: dict[str, Any], status: int = 200,
) -> HttpResponse:
    """Render tab `tab` of a version's page: the whole page, or only the tab area for a tab link's htmx request.

    `template` renders the tab's content from `context` (plus model and version).
    """
    links = tab_links(model, version, tab)
    selected = next(link for link in links if link.selected)
    full = {"model": model, "version": version, "tabs": links, "tab": selected, "tab_template": template,
            "partial": wants_tab(request), **context}
    if full["partial"]:
        response = render(request, "registry/_version_tabs.html", full, status=status)
    else:
        trust = context.get("trust") or version_trust(version)
        full["trust"] = trust
        response = render(request, "registry/version_detail.html", full, status=status)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    add_never_cache_headers(response)  # the same address answers a page or a fragment: never reuse one for the other
    return response
