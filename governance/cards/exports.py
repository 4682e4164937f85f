"""Card exports that are not the PDF: Stratum JSON, Google Model Card Toolkit JSON, and Hugging Face Markdown."""

from __future__ import annotations

from typing import Any

import yaml
from django.http import HttpResponse, JsonResponse

from governance.cards.schema import SECTIONS
from governance.models import ModelCard

TASK_TYPES = {"binary": "tabular-classification", "multiclass": "tabular-classification",
              "regression": "tabular-regression"}


def card_json(card: ModelCard) -> dict[str, Any]:
    """Return the card as stored, with its state, revision and hash."""
    return {"model": card.model.name, "version": card.version.number, "state": card.state,
            "revision": card.revision, "completeness": card.completeness, "missing": card.missing,
            "sha256": card.sha256, "updated_at": card.updated_at.isoformat(), "content": card.content}


def _descriptions(*texts: str) -> list[dict[str, str]]:
    return [{"description": t} for t in texts if (t or "").strip()]


def card_mct(card: ModelCard) -> dict[str, Any]:
    """Return the card in the Google Model Card Toolkit schema layout (v0.0.2)."""
    c = card.content
    d = c.get("model_details", {})
    iu, cr, ec = c.get("intended_use", {}), c.get("caveats_recommendations", {}), c.get("ethical_considerations", {})
    data = [{"name": ds.get("name", ""), "link": ds.get("uri", ""), "sensitive": {"sensitive_data": []},
             "description": f"{ds.get('role', '')} dataset, digest {ds.get('digest', '') or 'unknown'}"}
            for key in ("training_data", "evaluation_data") for ds in c.get(key, {}).get("datasets", [])]
    metrics = []
    for m in c.get("metrics", {}).get("performance_measures", []):
        row: dict[str, Any] = {"type": m.get("name", ""), "value": "" if m.get("value") is None else str(m["value"]),
                               "slice": m.get("slice", "")}
        if m.get("ci_lower") is not None and m.get("ci_upper") is not None:
            row["confidence_interval"] = {"lower_bound": str(m["ci_lower"]), "upper_bound": str(m["ci_upper"])}
        metrics.append(row)
    for s in c.get("quantitative_analyses", {}).get("slices", []):
        row = {"type": s.get("metric", ""), "value": "" if s.get("value") is None else str(s["value"]),
               "slice": s.get("slice", "")}
        if s.get("ci_lower") is not None and s.get("ci_upper") is not None:
            row["confidence_interval"] = {"lower_bound": str(s["ci_lower"]), "upper_bound": str(s["ci_upper"])}
        metrics.append(row)
    return {
        "schema_version": "0.0.2",
        "model_details": {
            "name": d.get("name", ""), "overview": d.get("overview", ""),
            "owners": [{"name": o.get("name", ""), "contact": o.get("contact", "")} for o in d.get("owners", [])],
            "version": {"name": str(d.get("semver") or d.get("version", "")), "date": d.get("date", ""),
                        "diff": (c.get("change_log") or [{}])[-1].get("summary", "")},
            "licenses": [{"identifier": d["license"]}] if d.get("license") else [],
            "references": [{"reference": r} for r in d.get("references", [])],
            "citations": [{"citation": d["citation"]}] if d.get("citation") else [],
        },
        "model_parameters": {"model_architecture": ", ".join(f"{k}={v}" for k, v in d.get("parameters", {}).items()),
                             "data": data},
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "users": _descriptions(iu.get("primary_users", "")),
            "use_cases": _descriptions(iu.get("primary_uses", ""), iu.get("out_of_scope", "")),
            "limitations": _descriptions(cr.get("limitations", "")),
            "tradeoffs": _descriptions(cr.get("recommendations", "")),
            "ethical_considerations": ([{"name": ec.get("risks_and_harms", ""),
                                         "mitigation_strategy": ec.get("mitigations", "")}]
                                       if ec.get("risks_and_harms") else []),
        },
        "stratum": {"card_sha256": card.sha256, "state": str(card.state), "revision": card.revision},
    }


def card_markdown(card: ModelCard, task: str | None = None) -> str:
    """Return the card as Markdown with Hugging Face style YAML front matter (license, datasets, metrics, index)."""
    c = card.content
    d = c.get("model_details", {})
    measures = [m for m in c.get("metrics", {}).get("performance_measures", []) if m.get("value") is not None]
    datasets = [ds.get("name", "") for key in ("training_data", "evaluation_data")
                for ds in c.get(key, {}).get("datasets", [])]
    eval_sets = c.get("evaluation_data", {}).get("datasets", []) or c.get("training_data", {}).get("datasets", [])
    front: dict[str, Any] = {
        "license": d.get("license") or "other",
        "datasets": sorted(set(datasets)),
        "metrics": sorted({m["name"] for m in measures}),
        "model-index": [{
            "name": f"{d.get('name', card.model.name)} v{d.get('version', card.version.number)}",
            "results": [{
                "task": {"type": TASK_TYPES.get(task or "", "tabular-classification")},
                "dataset": {"name": eval_sets[0]["name"] if eval_sets else "unspecified",
                            "type": eval_sets[0]["name"] if eval_sets else "unspecified"},
                "metrics": [{"type": m["name"], "name": m["name"] + (f" ({m['slice']})" if m.get("slice") else ""),
                             "value": m["value"]} for m in measures],
            }],
        }],
        "stratum": {"card_sha256": card.sha256, "state": str(card.state), "revision": card.revision},
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# Model card: {d.get('name', '')} version {d.get('version', '')}", ""]
    for section in SECTIONS:
        values = c.get(section["key"], {})
        lines += [f"## {section['title']}", ""]
        for key, label, kind in section["fields"]:
            value = values.get(key)
            if not value:
                continue
            lines.append(f"### {label}")
            lines.append("")
            if kind == "owners":
                lines += [f"- {o.get('name', '')}" + (f" <{o['contact']}>" if o.get("contact") else "") for o in value]
            elif kind == "lines":
                lines += [f"- {v}" for v in value]
            elif kind in ("measures", "slices"):
                lines += ["| slice | metric | value | 95% CI |", "| --- | --- | --- | --- |"]
                for row in value:
                    ci = (f"[{row['ci_lower']}, {row['ci_upper']}]" if row.get("ci_lower") is not None
                          and row.get("ci_upper") is not None else "")
                    lines.append(f"| {row.get('slice') or 'overall'} | {row.get('name') or row.get('metric')} | "
                                 f"{row.get('value', '')} | {ci} |")
            else:
                lines.append(str(value))
            lines.append("")
        if section["key"] in ("training_data", "evaluation_data"):
            for ds in values.get("datasets", []):
                lines.append(f"- {ds.get('name')} ({ds.get('role')}) `{ds.get('digest') or 'no digest'}`")
            lines.append("")
    if c.get("change_log"):
        lines += ["## Change log", ""]
        lines += [f"- {e.get('date')} {e.get('author', '')}: {e.get('summary')}" for e in c["change_log"]]
    return "\n".join(lines).rstrip() + "\n"


FORMATS = ("json", "mct", "md", "pdf")


def export_response(card: ModelCard, fmt: str, actor: Any) -> HttpResponse:
    """Return the card in one export format as a download (the page and the API share this)."""
    from governance.cards import pdf

    stem = f"{card.model.name}-v{card.version.number}-model-card"
    if fmt == "pdf":
        response = HttpResponse(pdf.render_pdf([card], actor), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{stem}.pdf"'
    elif fmt == "md":
        task = card.model.tags.filter(key="task").values_list("value", flat=True).first()
        response = HttpResponse(card_markdown(card, task), content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.md"'
    elif fmt == "mct":
        response = JsonResponse(card_mct(card), json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{stem}.mct.json"'
    else:
        response = JsonResponse(card_json(card), json_dumps_params={"indent": 2})
    response["X-Card-SHA256"] = card.sha256
    return response
