"""Hand-built SVG for the PDF (no browser, no kaleido): metric bars, slices with intervals, the lineage diagram."""

from __future__ import annotations

from html import escape
from typing import Any

from registry.lineage.layout import layered_layout

ACCENT, MUTED, GRID, TEXT = "#2563eb", "#9aa5b1", "#e5e7eb", "#1f2933"
KIND_COLOURS = {"dataset": "#0f766e", "feature_set": "#7c3aed", "code_commit": "#b45309",
                "model_version": "#2563eb", "converted_artifact": "#4b5563", "deployment": "#be123c",
                "prediction_batch": "#65a30d"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def bar_chart(rows: list[dict[str, Any]], *, title: str, width: int = 640) -> str:
    """Return horizontal bars for rows of {label, value, lo?, hi?}, with interval whiskers where given."""
    rows = [r for r in rows if _num(r.get("value")) is not None][:40]
    if not rows:
        return ""
    label_w, pad, bar_h, gap = 200, 12, 16, 8
    values = [_num(r["value"]) or 0.0 for r in rows] + [_num(r.get("hi")) or 0.0 for r in rows]
    top = max(max(abs(v) for v in values), 1e-12)
    plot_w = width - label_w - pad * 2 - 60
    height = 34 + len(rows) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{TEXT}">{escape(title)}</text>']
    x0 = label_w + pad
    parts.append(f'<line x1="{x0}" y1="24" x2="{x0}" y2="{height - 4}" stroke="{GRID}"/>')
    for i, row in enumerate(rows):
        y = 28 + i * (bar_h + gap)
        value = _num(row["value"]) or 0.0
        w = max(1.0, abs(value) / top * plot_w)
        parts.append(f'<text x="{label_w}" y="{y + 12}" font-size="10" text-anchor="end" fill="{TEXT}">'
                     f'{escape(str(row.get("label", ""))[:38])}</text>')
        parts.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{ACCENT}" rx="2"/>')
        lo, hi = _num(row.get("lo")), _num(row.get("hi"))
        if lo is not None and hi is not None:
            xl, xh = x0 + abs(lo) / top * plot_w, x0 + abs(hi) / top * plot_w
            mid = y + bar_h / 2
            parts.append(f'<line x1="{xl:.1f}" y1="{mid}" x2="{xh:.1f}" y2="{mid}" stroke="{TEXT}" '
                         'stroke-width="1.5"/>')
            for xe in (xl, xh):
                parts.append(f'<line x1="{xe:.1f}" y1="{mid - 5}" x2="{xe:.1f}" y2="{mid + 5}" stroke="{TEXT}"/>')
        parts.append(f'<text x="{x0 + w + 6:.1f}" y="{y + 12}" font-size="10" fill="{TEXT}">{value:.4g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lineage_diagram(nodes: list[dict[str, Any]], edges: list[tuple[Any, Any]], *, width: int = 640) -> str:
    """Return a left-to-right layered diagram of nodes {id, kind, label} joined by (upstream, downstream) edges."""
    if not nodes:
        return ""
    ids = [n["id"] for n in nodes]
    layout = layered_layout(ids, edges, sort_key={n["id"]: f"{n['kind']}:{n['label']}" for n in nodes})
    layers, widest = max(layout.layers, 1), max(layout.widest, 1)
    box_w, box_h, row_h = 150, 30, 44
    col_w = (width - box_w - 20) / max(layers - 1, 1)
    height = int(widest * row_h + 20)

    def centre(x: float, y: float) -> tuple[float, float]:
        return 10 + x * col_w + box_w / 2, 10 + (-y) * row_h + box_h / 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Lineage diagram">']
    for line in layout.polylines:
        pts = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in (centre(x, y) for x, y in line))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{MUTED}" stroke-width="1.2"/>')
    for n in nodes:
        cx, cy = centre(*layout.positions[n["id"]])
        colour = KIND_COLOURS.get(n["kind"], MUTED)
        parts.append(f'<rect x="{cx - box_w / 2:.1f}" y="{cy - box_h / 2:.1f}" width="{box_w}" height="{box_h}" '
                     f'rx="4" fill="#ffffff" stroke="{colour}" stroke-width="{2.5 if n.get("focus") else 1.2}"/>')
        parts.append(f'<text x="{cx:.1f}" y="{cy - 2:.1f}" font-size="9" text-anchor="middle" fill="{TEXT}">'
                     f'{escape(str(n["label"])[:26])}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{cy + 9:.1f}" font-size="7" text-anchor="middle" fill="{colour}">'
                     f'{escape(n["kind"].replace("_", " "))}{" · personal data" if n.get("personal") else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)
