"""Version comparison for engineers: resolve a selection of 2-5 visible versions and build plain comparison rows."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Sum

from registry import selectors
from registry.errors import InvalidInput
from registry.models import Artifact, ModelVersion, RegisteredModel
from registry.pipeline.scan.trust import versions_trust
from registry.pipeline.selectors import versions_signature_state
from registry.spreadsheet import csv_cell

MIN_VERSIONS = 2
MAX_VERSIONS = 5
MAX_SELECTION_CHARS = 2000
REF = re.compile(r"^(?P<model>[\w][\w.\- ]{0,255})/(?P<ref>[\w.\-]{1,256})$")
# Metrics whose names contain one of these words are better when lower; every other metric is better when higher.
LOWER_IS_BETTER = ("loss", "error", "err", "rmse", "mse", "mae", "mape", "latency", "time", "duration", "perplexity",
                   "brier", "logloss", "fpr", "fnr", "size", "memory")


def higher_is_better(metric: str) -> bool:
    """Guess a metric's direction from its name: losses, errors and latencies are better when lower."""
    words = re.split(r"[^a-z0-9]+", metric.lower())
    return not any(word in LOWER_IS_BETTER or any(word.endswith(w) for w in ("loss", "error")) for word in words)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------ selection


def parse_selection(raw: str | Sequence[str] | None) -> list[tuple[str, str]]:
    """Parse 'churn/3,churn/champion' (or a list of such items) into (model name, version ref) pairs."""
    items: list[str] = []
    for chunk in [raw] if isinstance(raw, str) or raw is None else list(raw):
        if chunk is None:
            continue
        if len(chunk) > MAX_SELECTION_CHARS:
            raise InvalidInput("The selection is too long.")
        items.extend(part.strip() for part in chunk.split(","))
    items = [item for item in items if item]
    if not items:
        raise InvalidInput(
            f"Pick {MIN_VERSIONS} to {MAX_VERSIONS} versions to compare, e.g. versions=churn/3,churn/5.")
    if len(items) > MAX_VERSIONS:
        raise InvalidInput(f"Compare at most {MAX_VERSIONS} versions at a time; {len(items)} were given.")
    pairs: list[tuple[str, str]] = []
    for item in items:
        match = REF.fullmatch(item)
        if match is None:
            raise InvalidInput(
                f"{item[:80]!r} is not a version reference; write model/version, e.g. churn/3 or churn/champion.")
        pairs.append((match["model"], match["ref"]))
    if len(items) < MIN_VERSIONS:
        raise InvalidInput(f"Pick at least {MIN_VERSIONS} versions to compare; only one was given.")
    return pairs


def selection_string(versions: Iterable[ModelVersion]) -> str:
    """Return the canonical query-string value naming `versions` (model/number, comma-separated)."""
    return ",".join(f"{v.model.name}/{v.number}" for v in versions)


def versions_resolve(*, actor: Any, pairs: Sequence[tuple[str, str]]) -> list[ModelVersion]:
    """Resolve (model, ref) pairs to versions `actor` may see; an invisible model is NotFound, never a leak."""
    versions: list[ModelVersion] = []
    models: dict[str, RegisteredModel] = {}
    for name, ref in pairs:
        model = models.get(name) or selectors.model_get(actor=actor, name=name)
        models[name] = model
        version = selectors.version_resolve(model=model, ref=ref)
        if any(v.pk == version.pk for v in versions):
            raise InvalidInput(f"Version {name}/{version.number} is selected twice.")
        versions.append(version)
    return versions


# ------------------------------------------------------------------------------------------ comparison


@dataclass
class Comparison:
    """Plain rows describing 2-5 versions side by side; pages, the API and the CSV export all read these."""

    columns: list[dict[str, Any]]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    code: list[dict[str, Any]] = field(default_factory=list)
    signature: list[dict[str, Any]] = field(default_factory=list)
    overview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def selection(self) -> str:
        """The canonical selection string of these columns."""
        return ",".join(c["ref"] for c in self.columns)

    @property
    def metric_cells(self) -> list[dict[str, Any]]:
        """Metric rows with one cell per version (value, delta to the first, best, better/worse) for templates."""
        out = []
        for row in self.metrics:
            cells = []
            for value, delta, best in zip(row["values"], row["deltas"], row["best"], strict=True):
                gain = None if delta is None else (delta if row["higher_is_better"] else -delta)
                cells.append({"value": value, "delta": delta, "best": best,
                              "improved": gain is not None and gain > 0, "worsened": gain is not None and gain < 0})
            out.append({**row, "cells": cells})
        return out

    @property
    def changed_params(self) -> list[dict[str, Any]]:
        """Only the parameters whose values differ between the versions."""
        return [row for row in self.params if row["changed"]]

    def as_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-ready data."""
        return {"selection": self.selection, "versions": self.columns, "metrics": self.metrics,
                "params": self.params, "datasets": self.datasets, "code": self.code, "signature": self.signature,
                "overview": self.overview}


def _metric_rows(versions: Sequence[ModelVersion]) -> list[dict[str, Any]]:
    names = sorted({name for v in versions for name in (v.metrics or {})})
    rows = []
    for name in names:
        raw = [(v.metrics or {}).get(name) for v in versions]
        values = [value if _is_number(value) else None for value in raw]
        higher = higher_is_better(name)
        present = [value for value in values if value is not None]
        best_value = (max(present) if higher else min(present)) if present else None
        base = values[0]
        deltas = [None if value is None or base is None else value - base for value in values]
        best = [value is not None and value == best_value and len(present) > 1 for value in values]
        rows.append({"name": name, "values": values, "deltas": deltas, "best": best,
                     "higher_is_better": higher, "changed": len(set(map(repr, values))) > 1})
    return rows


def _diff_rows(keys: Iterable[str], lookup: Callable[[ModelVersion, str], Any], versions: Sequence[ModelVersion]
               ) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        values = [lookup(v, key) for v in versions]
        rows.append({"name": key, "values": values, "changed": len({repr(value) for value in values}) > 1})
    return rows


def _signature_map(version: ModelVersion) -> dict[str, str]:
    out: dict[str, str] = {}
    signature = version.signature or {}
    for side in ("inputs", "outputs"):
        columns = signature.get(side) or []
        if not isinstance(columns, list):
            continue
        for i, column in enumerate(columns):
            if isinstance(column, dict):
                name = column.get("name") or f"#{i}"
                out[f"{side}.{name}"] = str(column.get("type") or "—")
    return out


def _artifact_summary(versions: Sequence[ModelVersion]) -> dict[int, dict[str, Any]]:
    ids = [v.pk for v in versions]
    summary: dict[int, dict[str, Any]] = {pk: {"files": 0, "size": 0, "formats": []} for pk in ids}
    rows = (Artifact.objects.filter(version_id__in=ids).values("version_id", "format")
            .annotate(files=Count("id"), size=Sum("size")).order_by("version_id", "format"))
    for row in rows:
        entry = summary[row["version_id"]]
        entry["files"] += row["files"]
        entry["size"] += row["size"] or 0
        entry["formats"].append(row["format"])
    return summary


def comparison_build(versions: Sequence[ModelVersion]) -> Comparison:
    """Build the comparison rows of already visible, resolved versions (the first one is the baseline)."""
    artifacts = _artifact_summary(versions)
    same_model = len({v.model_id for v in versions}) == 1
    trust = versions_trust([v.pk for v in versions])
    signatures_state = versions_signature_state(version_ids=[v.pk for v in versions])
    columns = []
    for v in versions:
        art = artifacts[v.pk]
        columns.append({
            "id": v.pk, "ref": f"{v.model.name}/{v.number}",
            "label": f"v{v.number}" if same_model else f"{v.model.name} v{v.number}",
            "model": v.model.name, "version": v.number, "semver": v.semver, "stage": v.stage,
            "status": v.status, "aliases": sorted(a.name for a in v.aliases.all()),
            "deprecated": v.deprecated, "created_at": v.created_at.isoformat(),
            "creator": v.creator.get_username() if v.creator else None,
            "run_id": v.run_id, "code_repository": v.code_repository, "code_commit": v.code_commit,
            "artifact_files": art["files"], "artifact_size": art["size"], "artifact_formats": art["formats"],
            "scan_status": str(trust[v.pk].state) if v.pk in trust else "clean",
            "signature_status": signatures_state[v.pk],
        })
    param_keys = sorted({key for v in versions for key in (v.params or {})})
    dataset_keys = sorted({f"{d.role}: {d.name}" for v in versions for d in v.datasets.all()})

    def dataset_digest(v: ModelVersion, key: str) -> str | None:
        for d in v.datasets.all():
            if f"{d.role}: {d.name}" == key:
                return d.digest or d.uri or "(recorded)"
        return None

    code_fields = {"repository": "code_repository", "commit": "code_commit", "run id": "run_id",
                   "source": "source_uri"}
    signatures = {v.pk: _signature_map(v) for v in versions}
    overview_fields = [("stage", lambda c: c["stage"]), ("aliases", lambda c: ", ".join(c["aliases"]) or None),
                       ("semver", lambda c: c["semver"] or None), ("status", lambda c: c["status"]),
                       ("deprecated", lambda c: "yes" if c["deprecated"] else "no"),
                       ("artifact files", lambda c: c["artifact_files"]),
                       ("artifact size (bytes)", lambda c: c["artifact_size"]),
                       ("artifact formats", lambda c: ", ".join(c["artifact_formats"]) or None),
                       ("artifact scan", lambda c: c["scan_status"]),
                       ("signature", lambda c: c["signature_status"])]
    overview = []
    for name, get in overview_fields:
        values = [get(c) for c in columns]
        overview.append({"name": name, "values": values, "changed": len({repr(x) for x in values}) > 1})
    return Comparison(
        columns=columns,
        metrics=_metric_rows(versions),
        params=_diff_rows(param_keys, lambda v, k: (v.params or {}).get(k), versions),
        datasets=_diff_rows(dataset_keys, dataset_digest, versions),
        code=_diff_rows(code_fields, lambda v, k: getattr(v, code_fields[k]) or None, versions),
        signature=_diff_rows(sorted({k for m in signatures.values() for k in m}),
                             lambda v, k: signatures[v.pk].get(k), versions),
        overview=overview,
    )


def comparison_get(*, actor: Any, selection: str | Sequence[str] | None) -> Comparison:
    """Parse a selection, resolve it to versions `actor` may see, and build their comparison."""
    return comparison_build(versions_resolve(actor=actor, pairs=parse_selection(selection)))


def comparison_as_json(comparison: Comparison) -> dict[str, Any]:
    """Return the comparison as JSON-ready data (the API's response body)."""
    return comparison.as_dict()


def comparison_csv(comparison: Comparison) -> str:
    """Return the comparison table as CSV: one row per compared field, one column per version."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "name", *[c["ref"] for c in comparison.columns]])
    for section, rows in (("overview", comparison.overview), ("metric", comparison.metrics),
                          ("param", comparison.params), ("dataset", comparison.datasets),
                          ("code", comparison.code), ("signature", comparison.signature)):
        for row in rows:
            writer.writerow([section, _csv_safe(row["name"]), *["" if v is None else _csv_safe(v)
                                                                for v in row["values"]]])
    for row in comparison.metrics:
        writer.writerow(["metric delta vs first", _csv_safe(row["name"]),
                         *["" if d is None else repr(d) for d in row["deltas"]]])
    return out.getvalue()


def _csv_safe(value: Any) -> str:
    """Neutralise spreadsheet formulas in user-controlled cells (CSV injection)."""
    return csv_cell(value)


# ------------------------------------------------------------------------------- trends and champion/challenger

PolicySource = Callable[[RegisteredModel], "list[dict[str, Any]] | None"]
_policy_sources: list[PolicySource] = []


def register_metric_policy(source: PolicySource) -> None:
    """Install a source of champion/challenger metric rules ({metric, higher_is_better, margin}) for a model."""
    if source not in _policy_sources:
        _policy_sources.append(source)


def unregister_metric_policy(source: PolicySource) -> None:
    """Remove a previously installed metric-policy source."""
    if source in _policy_sources:
        _policy_sources.remove(source)


def metric_policy(model: RegisteredModel, champion: ModelVersion, challenger: ModelVersion) -> list[dict[str, Any]]:
    """Return the metric rules for `model`: from an installed source, else every metric both versions record."""
    for source in list(_policy_sources):
        rules = source(model)
        if rules:
            return [{"metric": str(r.get("metric", "")), "higher_is_better": bool(r.get("higher_is_better", True)),
                     "margin": float(r.get("margin", 0.0) or 0.0)} for r in rules]
    shared = sorted(set(champion.metrics or {}) & set(challenger.metrics or {}))
    return [{"metric": name, "higher_is_better": higher_is_better(name), "margin": 0.0} for name in shared]


def champion_challenger(*, model: RegisteredModel, versions: Sequence[ModelVersion]) -> dict[str, Any] | None:
    """Return the champion/challenger pair of a model and whether the challenger beats the champion, or None."""
    by_alias = {alias.name: v for v in versions for alias in v.aliases.all()}
    champion, challenger = by_alias.get("champion"), by_alias.get("challenger")
    if champion is None or challenger is None:
        return None
    rows = []
    for rule in metric_policy(model, champion, challenger):
        name = rule["metric"]
        a, b = (champion.metrics or {}).get(name), (challenger.metrics or {}).get(name)
        if not (_is_number(a) and _is_number(b)):
            rows.append({**rule, "champion": a, "challenger": b, "delta": None, "verdict": "missing"})
            continue
        gain = (b - a) if rule["higher_is_better"] else (a - b)
        verdict = "better" if gain > 0 else ("worse" if gain < -rule["margin"] else "same")
        rows.append({**rule, "champion": a, "challenger": b, "delta": b - a, "verdict": verdict})
    beats = bool(rows) and all(r["verdict"] in ("better", "same") for r in rows) and any(
        r["verdict"] == "better" for r in rows)
    return {"champion": champion, "challenger": challenger, "rows": rows, "beats": beats,
            "same_version": champion.pk == challenger.pk}


def metric_trend_rows(versions: Sequence[ModelVersion]) -> dict[str, list[tuple[int, float]]]:
    """Return each numeric metric as (version number, value) pairs in version order."""
    series: dict[str, list[tuple[int, float]]] = {}
    for v in sorted(versions, key=lambda v: v.number):
        for name, value in (v.metrics or {}).items():
            if _is_number(value):
                series.setdefault(name, []).append((v.number, float(value)))
    return series


def trend_panel(*, actor: Any, model: RegisteredModel, metric: str | None = None, x: str | None = None,
                y: str | None = None) -> dict[str, Any]:
    """Return what the model's trend panel shows: champion/challenger, a metric trend and a two-metric scatter."""
    versions = list(selectors.version_list(actor=actor, model=model))
    series = metric_trend_rows(versions)
    names = sorted(series)
    for requested in (metric, x, y):
        if requested and requested not in series:
            raise InvalidInput(f"Model {model.name!r} records no numeric metric {requested!r}.")
    metric = metric or (names[0] if names else None)
    x = x or (names[0] if names else None)
    y = y or (names[1] if len(names) > 1 else x)
    marks = {v.number: sorted(a.name for a in v.aliases.all()) for v in versions if v.aliases.all()}
    points = []
    for v in sorted(versions, key=lambda v: v.number):
        mx, my = (v.metrics or {}).get(x), (v.metrics or {}).get(y)
        if x and y and _is_number(mx) and _is_number(my):
            points.append((v.number, float(mx), float(my), marks.get(v.number, [])))
    return {"versions": versions, "metric_names": names, "metric": metric, "x": x, "y": y,
            "trend": series.get(metric, []) if metric else [], "marks": marks, "scatter": points,
            "pair": champion_challenger(model=model, versions=versions)}

