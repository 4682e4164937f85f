"""Turn plain routing and traffic rows into Plotly figure dicts for the deployment dashboard; no ORM here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go

from registry.charts import ACCENT, FONT, GRID, TEXT

PALETTE = [ACCENT, "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#6b7280"]


def _layout(height: int = 260, **extra: Any) -> dict[str, Any]:
    return {"template": "none", "font": {"family": FONT, "size": 12, "color": TEXT},
            "margin": {"l": 56, "r": 16, "t": 16, "b": 64}, "height": height,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "legend": {"orientation": "h", "y": -0.3}, **extra}


def _time_axis(x_range: tuple[str, str] | None) -> dict[str, Any]:
    axis: dict[str, Any] = {"gridcolor": GRID, "type": "date", "tickformat": "%H:%M", "title": {"text": "UTC"}}
    if x_range:
        axis["range"] = list(x_range)
        start, end = (datetime.fromisoformat(x) for x in x_range)
        if end - start <= timedelta(minutes=30):  # a short rollout: ticks every few seconds need the seconds
            axis["tickformat"] = "%H:%M:%S"
        elif end - start > timedelta(days=1):
            axis["tickformat"] = "%b %d %H:%M"
    return axis


def _json(figure: go.Figure) -> dict[str, Any]:
    return json.loads(figure.to_json())


def traffic_split_figure(routes: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Return a donut of the live traffic split (rows: label, weight), or None when nothing serves."""
    rows = [r for r in routes if r.get("weight")]
    if not rows:
        return None
    figure = go.Figure(go.Pie(labels=[str(r["label"]) for r in rows], values=[r["weight"] for r in rows],
                              hole=0.55, sort=False, marker={"colors": PALETTE[:len(rows)]},
                              texttemplate="%{label}<br>%{value}%", hovertemplate="%{label}: %{value}%<extra></extra>"))
    return _json(figure.update_layout(**_layout(220, showlegend=False, margin={"l": 8, "r": 8, "t": 8, "b": 8})))


def _label(row: Mapping[str, Any]) -> str:
    return f"v{row['version']}" + (" (shadow)" if row.get("role") == "shadow" else "")


def series_figure(series: Iterable[Mapping[str, Any]], key: str, *, y_title: str, tickformat: str = ".4~g",
                  roles: tuple[str, ...] = ("live", "shadow"), x_range: tuple[str, str] | None = None,
                  y_range: tuple[float, float] | None = None) -> dict[str, Any] | None:
    """Return one line per version (and role) of `key` over time, or None when there is no point to draw."""
    traces = []
    for i, row in enumerate(s for s in series if s.get("role") in roles):
        values = row.get(key) or []
        if not any(v is not None for v in values):
            continue
        traces.append(go.Scatter(x=row["t"], y=values, mode="lines+markers", name=_label(row),
                                 line={"color": PALETTE[i % len(PALETTE)], "width": 2,
                                       "dash": "dot" if row.get("role") == "shadow" else "solid"},
                                 connectgaps=False))
    if not traces:
        return None
    yaxis = {"gridcolor": GRID, "zeroline": False, "tickformat": tickformat, "title": {"text": y_title},
             "rangemode": "tozero"}
    if y_range:
        yaxis["range"] = list(y_range)
    return _json(go.Figure(traces, layout=_layout(yaxis=yaxis, xaxis=_time_axis(x_range))))


def latency_figure(series: Iterable[Mapping[str, Any]], *, x_range: tuple[str, str] | None = None
                   ) -> dict[str, Any] | None:
    """Return p50 (solid) and p95 (dashed) latency per version over time, or None without data."""
    traces = []
    for i, row in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        for key, dash in (("p50_ms", "solid"), ("p95_ms", "dash")):
            values = row.get(key) or []
            if any(v is not None for v in values):
                traces.append(go.Scatter(x=row["t"], y=values, mode="lines+markers",
                                         name=f"{_label(row)} {key[:3]}", line={"color": color, "dash": dash},
                                         hovertemplate="%{y:.1f} ms<extra>%{fullData.name}</extra>"))
    if not traces:
        return None
    return _json(go.Figure(traces, layout=_layout(
        yaxis={"gridcolor": GRID, "zeroline": False, "title": {"text": "ms"}, "rangemode": "tozero"},
        xaxis=_time_axis(x_range))))
