"""Presentation helpers for registry templates: Markdown, badges, artifact trees and download links."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from django import template
from django.utils.html import format_html, strip_tags
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from registry.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render Markdown as sanitised HTML."""
    return render_markdown(text or "")


@register.filter
def excerpt(text: str, length: int = 160) -> str:
    """Return the plain text of a Markdown description, cut to `length` characters."""
    plain = " ".join(html.unescape(strip_tags(render_markdown(text or ""))).split())  # autoescape re-escapes
    return Truncator(plain).chars(int(length))


@register.filter
def stage_class(stage: str) -> str:
    """Return the badge modifier class of a stage (None, Staging, Production, Archived)."""
    return f"badge-stage-{(stage or 'none').lower()}"


@register.filter
def stage_badge(stage: str) -> SafeString:
    """Return a stage's badge (what _stage_badge.html includes): a filter, as a page may list hundreds of them."""
    return format_html('<span class="badge {}" title="Stage: {}">{}</span>', stage_class(stage), stage, stage)


@register.filter
def short_sha(digest: str, length: int = 12) -> str:
    """Return the first characters of a hex digest."""
    return (digest or "")[: int(length)]


@register.filter
def metric(value: Any) -> str:
    """Format a metric value with up to 6 significant digits (no float noise such as 0.16000000000000003)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.6g}"


@register.filter
def sorted_items(mapping: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """Return a mapping's items sorted by key."""
    return sorted((mapping or {}).items())


@register.simple_tag
def artifact_url(model_name: str, number: int, path: str) -> str:
    """Return the API download address of one artifact (each segment percent-encoded)."""
    name, file_path = quote(model_name, safe=""), quote(path, safe="/")
    return f"/api/v1/models/{name}/versions/{int(number)}/artifacts/{file_path}"


@dataclass(frozen=True)
class TreeRow:
    """One row of an artifact tree: a folder, or a file with its artifact."""

    name: str
    depth: int
    is_dir: bool
    artifact: Any = None


@register.filter
def artifact_tree(artifacts: Iterable[Any]) -> list[TreeRow]:
    """Lay out artifacts (sorted by path) as folder and file rows with their nesting depth."""
    rows: list[TreeRow] = []
    seen: set[str] = set()
    for artifact in sorted(artifacts, key=lambda a: a.path.split("/")):
        parts = artifact.path.split("/")
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[: depth + 1])
            if folder not in seen:
                seen.add(folder)
                rows.append(TreeRow(name=parts[depth] + "/", depth=depth, is_dir=True))
        rows.append(TreeRow(name=parts[-1], depth=len(parts) - 1, is_dir=False, artifact=artifact))
    return rows


@register.filter
def indent(depth: int) -> str:
    """Return a CSS padding value for a tree row at `depth`."""
    return f"{1.25 + 1.25 * int(depth):.2f}rem"


@register.filter
def ms_datetime(value: Any) -> datetime | None:
    """Turn milliseconds since the epoch (MLflow's run times) into an aware UTC datetime for the `date` filter."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
