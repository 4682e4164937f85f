"""The version-page plug point: other apps add tabs (the model card, deployments, history) and Overview panels (where
the version is deployed) to a version's page, as governance and deployments do from their AppConfig.ready().

The registry draws the tab bar and the page around them; a provider only renders its own content as HTML, for a
version the viewer may already see (the page checked that). Each provider reads in a fixed number of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString, mark_safe

# render(request=..., model=..., version=...) -> the HTML of the tab's content or of the panel
Render = Callable[..., str]


@dataclass(frozen=True)
class VersionTab:
    """A tab of the version page that another app provides: its address segment, its label and its content."""

    slug: str
    label: str
    render: Render
    order: int


@dataclass(frozen=True)
class OverviewPanel:
    """A panel on the Overview tab of the version page that another app provides."""

    key: str
    render: Render
    order: int


_tabs: dict[str, VersionTab] = {}
_panels: dict[str, OverviewPanel] = {}


def register_tab(slug: str, label: str, render: Render, *, order: int) -> None:
    """Add (or replace) the tab `slug`, shown as `label` at position `order` among the tabs (the registry's own take
    0, 10, 20 and 30); its address is the version's page followed by `slug`/."""
    _tabs[slug] = VersionTab(slug=slug, label=label, render=render, order=order)


def unregister_tab(slug: str) -> None:
    """Remove a tab added with register_tab."""
    _tabs.pop(slug, None)


def register_overview_panel(key: str, render: Render, *, order: int = 0) -> None:
    """Add (or replace) a panel shown on the Overview tab, above the version's description, in `order`."""
    _panels[key] = OverviewPanel(key=key, render=render, order=order)


def unregister_overview_panel(key: str) -> None:
    """Remove a panel added with register_overview_panel."""
    _panels.pop(key, None)


def version_tabs() -> list[VersionTab]:
    """Return the tabs other apps provide, in their order."""
    return sorted(_tabs.values(), key=lambda tab: (tab.order, tab.slug))


def version_tab(slug: str) -> VersionTab | None:
    """Return the provided tab `slug`, or None."""
    return _tabs.get(slug)


def render_tab(tab: VersionTab, *, request: Any, model: Any, version: Any) -> SafeString:
    """Return the content of a provided tab (providers render it with Django's escaping templates)."""
    return mark_safe(tab.render(request=request, model=model, version=version))  # noqa: S308 - template output


def render_overview_panels(*, request: Any, model: Any, version: Any) -> list[SafeString]:
    """Return the HTML of every Overview panel, in their order."""
    panels = sorted(_panels.values(), key=lambda panel: (panel.order, panel.key))
    return [mark_safe(panel.render(request=request, model=model, version=version))  # noqa: S308 - template output
            for panel in panels]
