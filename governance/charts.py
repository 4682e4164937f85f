"""Turn plain metric rows into Plotly figure dicts for governance pages; nothing here touches the ORM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

from registry.charts import ACCENT, FONT, GRID, TEXT

HOLDER = "#9ca3af"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_comparison_figure(rows: Iterable[Mapping[str, Any]], *, candidate_label: str, holder_label: str | None
                             ) -> dict[str, Any] | None:
    """Return grouped bars of each numeric metric, candidate beside current holder, or None when nothing is numeric."""
    rows = [r for r in rows if _numeric(r.get("candidate")) or _numeric(r.get("holder"))]
    if not rows:
        return None
    names = [str(r["name"]) for r in rows]
    traces = []
    if holder_label:
        traces.append(go.Bar(name=holder_label, x=names, y=[r["holder"] if _numeric(r.get("holder")) else None
                                                             for r in rows], marker_color=HOLDER,
                             hovertemplate="%{x}: %{y:.6g}<extra>" + holder_label + "</extra>"))
    traces.append(go.Bar(name=candidate_label, x=names, y=[r["candidate"] if _numeric(r.get("candidate")) else None
                                                            for r in rows], marker_color=ACCENT,
                         hovertemplate="%{x}: %{y:.6g}<extra>" + candidate_label + "</extra>"))
    figure = go.Figure(traces, layout={
        "template": "none", "barmode": "group",
        "font": {"family": FONT, "size": 12, "color": TEXT},
        "margin": {"l": 52, "r": 16, "t": 16, "b": 40}, "height": 280,
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "yaxis": {"gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"},
        "legend": {"orientation": "h", "y": -0.2},
    })
    return json.loads(figure.to_json())
