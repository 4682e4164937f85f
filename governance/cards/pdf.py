"""Render model cards to PDF with WeasyPrint behind a locked-down URL fetcher (bundled assets and data: URIs only)."""

from __future__ import annotations

import base64
import logging
import time
import urllib.parse
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from governance.cards import bom, prefill, selectors, svg
from governance.cards.schema import SECTIONS
from governance.models import CardState, ModelCard
from registry.lineage import selectors as lineage
from registry.lineage.models import NodeKind
from registry.markdown import render_markdown
from registry.models import Role
from registry.permissions import model_role

ASSET_DIR = Path(__file__).resolve().parent / "assets"
# Relative URLs resolve against this base; nothing is ever fetched from the network for it.
ASSET_BASE = "https://stratum.invalid/__assets__/"
TIME_LIMIT = 10.0
MAX_DATA_URI = 4 * 1024 * 1024
LINEAGE_DEPTH = 3
log = logging.getLogger(__name__)


class RefusedURL(ValueError):
    """A URL the PDF renderer may not fetch."""


class LockedFetcher(URLFetcher):
    """Serve only bundled assets and data: URIs, never the network or the disk; no redirects; a time limit."""

    def __init__(self, time_limit: float = TIME_LIMIT) -> None:
        super().__init__(timeout=1, allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)
        self.deadline = time.monotonic() + time_limit
        self.refused: list[str] = []
        self.served: list[str] = []

    def _refuse(self, url: str, why: str) -> RefusedURL:
        self.refused.append(url)
        log.info("PDF renderer refused %s: %s", url[:200], why)
        return RefusedURL(f"refused ({why})")

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        """Return a bundled asset or a data: URI's bytes; refuse everything else."""
        if time.monotonic() > self.deadline:
            raise self._refuse(url, "time limit reached")
        if url.startswith("data:"):
            return self._data(url)
        if url.startswith(ASSET_BASE):
            name = urllib.parse.unquote(url[len(ASSET_BASE):].split("?")[0].split("#")[0])
            path = (ASSET_DIR / name).resolve()
            if path.parent != ASSET_DIR or not path.is_file():
                raise self._refuse(url, "not a bundled asset")
            self.served.append(url)
            kind = {".svg": "image/svg+xml", ".css": "text/css", ".png": "image/png"}.get(path.suffix,
                                                                                         "application/octet-stream")
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind})
        raise self._refuse(url, "only bundled assets and data: URIs are allowed")

    def _data(self, url: str) -> URLFetcherResponse:
        header, sep, payload = url[5:].partition(",")
        if not sep or len(payload) > MAX_DATA_URI:
            raise self._refuse(url[:64], "malformed or oversized data: URI")
        parts = header.split(";")
        body = base64.b64decode(payload) if "base64" in parts[1:] else urllib.parse.unquote_to_bytes(payload)
        self.served.append("data:")
        return URLFetcherResponse(url, body, {"Content-Type": parts[0] or "text/plain"})


def svg_data_uri(markup: str) -> str:
    """Return SVG markup as a base64 data: URI for an <img>."""
    return "data:image/svg+xml;base64," + base64.b64encode(markup.encode()).decode()


def _lineage_svg(card: ModelCard, actor: Any) -> str:
    node = lineage.node_for_version(version=card.version)
    if node is None:
        return ""
    graph = lineage.lineage_walk(actor=actor, node=node, direction="both", depth=LINEAGE_DEPTH)
    nodes = []
    for n in graph.nodes:
        label = (f"{n.model_version.model.name} v{n.model_version.number}"
                 if n.kind == NodeKind.MODEL_VERSION and n.model_version_id else f"{n.name} {n.version}".strip())
        nodes.append({"id": n.pk, "kind": n.kind, "label": label, "focus": n.pk == node.pk,
                      "personal": n.contains_personal_data})
    return svg.lineage_diagram(nodes, [(e.upstream_id, e.downstream_id) for e in graph.edges])


def _review_record(card: ModelCard) -> list[dict[str, Any]]:
    rows = []
    for rev in selectors.card_history(card=card).filter(action__in=["submitted", "approved", "returned",
                                                                     "reopened", "archived"]).select_related("actor"):
        role = model_role(rev.actor, card.model) if rev.actor else None
        rows.append({"who": rev.actor_username, "role": Role(role).label if role else "—",
                     "decision": f"card {rev.action}", "comment": rev.note, "at": rev.created_at})
    return list(reversed(rows))


def _sections(content: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for section in SECTIONS:
        values = content.get(section["key"], {})
        fields = []
        for key, label, kind in section["fields"]:
            value = values.get(key)
            entry: dict[str, Any] = {"label": label, "kind": kind, "value": value}
            if kind == "md":
                entry["html"] = render_markdown(value or "")
            fields.append(entry)
        out.append({"key": section["key"], "title": section["title"], "fields": fields,
                    "datasets": values.get("datasets") if isinstance(values, dict) else None})
    return out


def _per_metric(rows: list[tuple[Any, str, dict[str, Any]]], *, title: str) -> list[dict[str, str]]:
    """Group (metric, label, row) by metric and draw one bar chart each; return [{metric, uri}] in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for metric, label, row in rows:
        groups.setdefault(str(metric or "value"), []).append(
            {"label": label, "value": row.get("value"), "lo": row.get("ci_lower"), "hi": row.get("ci_upper")})
    charts = []
    for metric, group in groups.items():
        chart = svg.bar_chart(group, title=title.format(metric=metric))
        if chart:
            charts.append({"metric": metric, "uri": svg_data_uri(chart)})
    return charts


def card_document(card: ModelCard, actor: Any) -> dict[str, Any]:
    """Return what the PDF template needs for one card (charts as SVG data: URIs)."""
    c = card.content
    measures = c.get("metrics", {}).get("performance_measures", [])
    slices = c.get("quantitative_analyses", {}).get("slices", [])
    # One chart per metric, each on its own axis: an r2 of 0.5 and an rmse of 52 are not on the same scale.
    metric_charts = _per_metric(
        [(m.get("name"), m.get("slice") or "overall", m) for m in measures], title="{metric}")
    slice_charts = _per_metric(
        [(s.get("metric"), s.get("slice") or "", s) for s in slices],
        title="{metric} by slice (whiskers: confidence interval)")
    lineage_svg = _lineage_svg(card, actor)
    bom_data, bom_signed = bom.bom_get(version=card.version)
    return {
        "card": card, "content": c, "details": c.get("model_details", {}), "sections": _sections(c),
        "metric_charts": metric_charts, "slice_charts": slice_charts,
        "draft": card.state != CardState.APPROVED,
        "lineage_chart": svg_data_uri(lineage_svg) if lineage_svg else "",
        "promotion_record": prefill.approvals(card.version), "review_record": _review_record(card),
        "anchor": f"card-{card.pk}", "bom": bom.bom_summary(bom_data), "bom_signed": bom_signed,
    }


DRAFT_WATERMARK = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="840" viewBox="0 0 600 840">'
    '<text x="300" y="420" font-family="DejaVu Sans, sans-serif" font-size="120" font-weight="bold" '
    'fill="#c62828" fill-opacity="0.09" text-anchor="middle" transform="rotate(-45 300 420)">DRAFT</text></svg>')


def render_pdf(cards: list[ModelCard], actor: Any, *, fetcher: LockedFetcher | None = None) -> bytes:
    """Render one or more cards as a single PDF (cover, contents, sections, charts, lineage, approvals, hashes).

    Every page of a card that is not approved carries a DRAFT watermark and header.
    """
    docs = [card_document(card, actor) for card in cards]
    html = render_to_string("governance/card_pdf.html", {
        "docs": docs, "generated_at": timezone.now(), "generated_by": actor.get_username() if actor else "system",
        "asset_base": ASSET_BASE, "draft_watermark": svg_data_uri(DRAFT_WATERMARK)})
    fetcher = fetcher or LockedFetcher()
    document = HTML(string=html, base_url=ASSET_BASE, url_fetcher=fetcher)
    return document.write_pdf(attachments=[])
