"""The nine sections of Annex IV of Regulation (EU) 2024/1689, each assembled from registry facts with its gaps.

A section states only what the registry holds. Whatever Annex IV asks for that the registry does not hold is
named as a gap (what is missing, for the provider to supply), never filled with text of our own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from governance.cards.schema import label_of
from governance.models import Decision, PromotionState
from governance.techdoc.facts import Facts
from registry.lineage.models import NodeKind
from registry.models import DatasetRole

PLACEHOLDER = "[PLACEHOLDER — to be completed and signed by the provider]"
STANDARDS_NONE = ("No harmonised standard published in the Official Journal of the European Union is recorded as "
                  "applied")


@dataclass
class Section:
    """One numbered Annex IV section: its title as the Annex words it, the registry's content, and its gaps."""

    number: int
    key: str
    title: str
    content: dict[str, Any] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)

    def gap(self, missing: str) -> None:
        """Record that the registry holds nothing for `missing`."""
        self.gaps.append(missing)

    def as_dict(self) -> dict[str, Any]:
        """Return the section as plain JSON."""
        return {"number": self.number, "key": self.key, "title": self.title, "annex_iv_point": self.number,
                "content": self.content, "gaps": list(self.gaps)}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _card_field(facts: Facts, section: str, name: str) -> str:
    values = facts.content.get(section) or {}
    return _text(values.get(name)) if isinstance(values, dict) else ""


def _card_fields(facts: Facts, section: Section, fields: list[tuple[str, str]]) -> dict[str, str]:
    """Copy the named card fields; every empty one is a gap naming the card field to fill."""
    out = {}
    for path_section, name in fields:
        value = _card_field(facts, path_section, name)
        out[f"{path_section}.{name}"] = value
        if not value:
            where = "no model card" if facts.card is None else "empty in the model card"
            section.gap(f"{label_of(f'{path_section}.{name}')} ({where})")
    return out


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


# ----------------------------------------------------------------------------------------------- point 1


def general_description(facts: Facts) -> Section:
    """Point 1: intended purpose, provider, versions and their relation, software it runs with, how it is deployed."""
    s = Section(1, "general_description", "A general description of the AI system")
    v, model = facts.version, facts.model
    owner = model.owner
    s.content["system"] = {
        "model": model.name, "version": v.number, "semver": v.semver or None, "stage": v.stage, "status": v.status,
        "registered_at": _iso(v.created_at), "registered_by": v.creator.get_username() if v.creator_id else None,
        "aliases": facts.aliases.get(v.pk, []), "description": v.description or model.description or "",
        "deprecated": v.deprecated, "deprecation_reason": v.deprecation_reason,
    }
    s.content["provider"] = {"owner": owner.get_username() if owner else None,
                             "owner_name": (owner.get_full_name() if owner else "") or None,
                             "contact": (owner.email if owner else "") or None}
    if owner is None:
        s.gap("The provider: the model has no owner recorded")
    s.content["intended_purpose"] = _card_fields(facts, s, [
        ("intended_use", "primary_uses"), ("intended_use", "primary_users"), ("intended_use", "out_of_scope")])
    s.content["versions"] = [{
        "number": row["number"], "semver": row["semver"] or None, "stage": row["stage"], "status": row["status"],
        "registered_at": _iso(row["created_at"]), "deprecated": row["deprecated"],
        "aliases": facts.aliases.get(row["pk"], []), "this_version": row["pk"] == v.pk} for row in facts.versions]
    signature = v.signature or {}
    s.content["interfaces"] = {"inputs": list(signature.get("inputs") or []),
                               "outputs": list(signature.get("outputs") or [])}
    if not s.content["interfaces"]["inputs"] and not s.content["interfaces"]["outputs"]:
        s.gap("The input/output signature (how the system interacts with other software)")
    s.content["software_requirements"] = [str(line) for line in v.environment or []]
    if not s.content["software_requirements"]:
        s.gap("The versions of the software the model runs with (no environment requirements recorded)")
    ops = facts.operations
    s.content["deployments"] = ops["deployments"]
    s.content["serving_now"] = [{"endpoint": m["endpoint"], "environment": m["environment"],
                                 "routes": m["serving"]} for m in ops["monitoring"]]
    s.content["lineage_deployments"] = facts.deployment_nodes
    if not facts.operations_reported:
        s.gap("How the system is deployed: no serving component reports deployments to the registry")
    elif not ops["deployments"] and not facts.deployment_nodes:
        s.gap("How the system is deployed: the version has never been deployed through the registry")
    s.gap("The hardware on which the system is intended to run (the registry does not record it)")
    s.gap("Instructions for use for the deployer and a description of the user interface "
          "(the registry does not hold them)")
    return s


# ----------------------------------------------------------------------------------------------- point 2


def development_process(facts: Facts) -> Section:
    """Point 2: data and its provenance, features, code, training parameters, metrics, signatures and the BOM."""
    s = Section(2, "development_process",
                "A detailed description of the elements of the AI system and of the process for its development")
    v = facts.version
    datasets = [{"name": d.name, "role": d.role, "uri": d.uri, "digest": d.digest} for d in v.datasets.all()]
    s.content["datasets"] = datasets
    roles = {d["role"] for d in datasets}
    if DatasetRole.TRAIN not in roles:
        s.gap("The training dataset")
    if DatasetRole.VALIDATION not in roles:
        s.gap("A validation dataset")
    if DatasetRole.TEST not in roles:
        s.gap("A test dataset")
    for d in datasets:
        if not d["digest"]:
            s.gap(f"The digest of dataset {d['name']!r} (its exact content cannot be identified)")
    s.content["provenance"] = facts.lineage
    s.content["feature_sets"] = [n for n in facts.lineage if n["kind"] == NodeKind.FEATURE_SET]
    if not facts.lineage_recorded or not facts.lineage:
        s.gap("Data provenance: no lineage is recorded upstream of this version")
    s.content["data_descriptions"] = _card_fields(facts, s, [("training_data", "description"),
                                                            ("evaluation_data", "description")])
    s.content["code"] = {"repository": v.code_repository or None, "commit": v.code_commit or None,
                         "run_id": v.run_id or None, "source_uri": v.source_uri or None}
    if not v.code_commit:
        s.gap("The code commit the version was built from")
    s.content["training_parameters"] = {str(k): val for k, val in sorted((v.params or {}).items())}
    if not v.params:
        s.gap("The training parameters (hyperparameters)")
    s.content["metrics"] = {str(k): val for k, val in sorted((v.metrics or {}).items())}
    s.content["evaluation_datasets"] = [d["name"] for d in datasets
                                        if d["role"] in (DatasetRole.VALIDATION, DatasetRole.TEST)]
    if not v.metrics:
        s.gap("Validation and test metrics")
    s.content["artifacts"] = [{"path": a["path"], "format": a["format"], "size": a["size"], "sha256": a["blob_id"]}
                              for a in facts.artifacts]
    s.content["artifact_scan"] = {"status": facts.scan["status"], "detail": facts.scan["detail"],
                                  "scanners": sorted({r["scanner"] for r in facts.scan["artifacts"] if r["scanner"]})}
    if not facts.artifacts:
        s.gap("The model's files (no artifacts are registered)")
    sig = facts.signature
    s.content["signature"] = {"status": sig["status"], "detail": sig["detail"], **(sig["signature"] or {})}
    if sig["status"] == "unsigned":
        s.gap("A signature over the version's files")
    s.content["bom"] = {"spec": f"CycloneDX {facts.bom['spec']}", "sha256": facts.bom["sha256"],
                        "serial_number": facts.bom["serial"], "signed": facts.bom_signed,
                        "components": facts.bom["counts"]}
    if not facts.bom_signed:
        s.gap("A signed AI-BOM (the CycloneDX BOM here is built from the current tree, not covered by a signature)")
    return s


# ----------------------------------------------------------------------------------------------- point 3


def _decision_row(d: Any) -> dict[str, Any]:
    # Approvals go stale when their evidence changes (a later addition to PromotionDecision); read with defaults
    # so this document works on registries with and without those fields.
    return {"reviewer": d.reviewer_username, "decision": Decision(d.decision).label, "comment": d.comment,
            "at": _iso(d.created_at), "stale": bool(getattr(d, "stale", False)), "stale_reasons": _stale_reasons(d)}


def _stale_reasons(d: Any) -> list[str]:
    reasons = getattr(d, "stale_reasons", None)
    if reasons:
        return [str(r) for r in reasons] if isinstance(reasons, (list, tuple)) else [str(reasons)]
    reason = getattr(d, "stale_reason", "")
    return [str(reason)] if reason else []


def approval_record(facts: Facts) -> list[dict[str, Any]]:
    """Every promotion request on the version with its decisions: the human-oversight record."""
    return [{"id": r.pk, "target": r.target_label, "state": r.state, "justification": r.justification,
             "requested_by": r.requested_by.get_username() if r.requested_by_id else None,
             "requested_at": _iso(r.created_at), "executed_at": _iso(r.executed_at),
             "approvals_required": r.approvals_required, "is_rollback": r.is_rollback,
             "decisions": [_decision_row(d) for d in r.decisions.all()]} for r in facts.requests]


def monitoring_and_control(facts: Facts) -> Section:
    """Point 3: capabilities and limitations, gateway metrics, rollout analyses, drift checks, human oversight."""
    s = Section(3, "monitoring_functioning_control",
                "Detailed information about the monitoring, functioning and control of the AI system")
    s.content["capabilities_and_limitations"] = _card_fields(facts, s, [
        ("caveats_recommendations", "limitations"), ("caveats_recommendations", "recommendations")])
    ops = facts.operations
    s.content["gateway_metrics"] = ops["gateway"]
    if not ops["gateway"]:
        s.gap("Gateway metrics: the serving gateway has recorded no traffic for this version")
    s.content["rollout_analyses"] = ops["analyses"]
    if not ops["analyses"]:
        s.gap("Rollout analyses: no automated analysis has judged this version in a rollout")
    drift = [a for a in ops["analyses"] if a["label_psi"] is not None or a["ks_statistic"] is not None]
    s.content["drift_checks"] = drift
    if not drift:
        s.gap("Drift checks: no prediction-shift check (PSI or KS) has been run against this version")
    s.content["human_oversight"] = _card_fields(facts, s, [("human_oversight", "description")])
    record = approval_record(facts)
    s.content["approval_record"] = record
    if not any(r["state"] == PromotionState.EXECUTED for r in record):
        s.gap("Human oversight record: no approved promotion request moved this version")
    card = facts.card
    s.content["card_review"] = [{"revision": r.revision, "action": r.action, "by": r.actor_username,
                                 "note": r.note, "at": _iso(r.created_at)}
                                for r in facts.card_revisions if r.action in ("submitted", "approved", "returned")]
    if card is None or card.approved_by_id is None:
        s.gap("An approved model card")
    return s


# ----------------------------------------------------------------------------------------------- point 4


def metrics_appropriateness(facts: Facts) -> Section:
    """Point 4: which metrics are measured, how they are judged and the card's reasoning about them."""
    s = Section(4, "performance_metrics_appropriateness",
                "A description of the appropriateness of the performance metrics for the specific AI system")
    metrics = facts.content.get("metrics") or {}
    measures = metrics.get("performance_measures") or [] if isinstance(metrics, dict) else []
    s.content["performance_measures"] = measures
    if not measures and not facts.version.metrics:
        s.gap("Performance metrics (none recorded on the version or its card)")
    s.content["reasoning"] = _card_fields(facts, s, [
        ("metrics", "decision_thresholds"), ("metrics", "variation_approaches"),
        ("factors", "relevant_factors"), ("factors", "evaluation_factors")])
    slices = (facts.content.get("quantitative_analyses") or {}).get("slices") or []
    s.content["results_by_slice"] = slices
    if not slices:
        s.gap("Results by slice with confidence intervals (for groups of persons the system is used on)")
    s.content["promotion_metric_rules"] = [
        {"target": t.label, "metric": r.get("metric"),
         "direction": "higher is better" if r.get("higher_is_better", True) else "lower is better",
         "margin": r.get("margin", 0)} for t in facts.targets for r in (t.metric_rules or [])]
    if not s.content["promotion_metric_rules"]:
        s.gap("Metric rules: no protected target compares this model's metrics before a promotion")
    return s


# ----------------------------------------------------------------------------------------------- point 5


def risk_management(facts: Facts) -> Section:
    """Point 5: the card's risks and mitigations, protected targets and their gates, stale approvals."""
    s = Section(5, "risk_management_system",
                "A detailed description of the risk management system in accordance with Article 9")
    s.content["risks"] = _card_fields(facts, s, [
        ("ethical_considerations", "risks_and_harms"), ("ethical_considerations", "mitigations"),
        ("ethical_considerations", "sensitive_data")])
    s.content["controls"] = [{"target": t.label, "approvals_required": t.approvals_required,
                              "required_gates": list(t.required_gates or []),
                              "emergency_rollback": t.allow_emergency_rollback} for t in facts.targets]
    if not facts.targets:
        s.gap("Promotion controls: no stage or alias of this model is protected by review")
    s.content["gates_now"] = [{"target": label, "gates": [
        {"gate": g["label"], "status": g["status"], "required": g["required"], "blocking": g["blocking"],
         "detail": g["detail"]} for g in results]} for label, results in facts.gate_results.items()]
    s.content["gates_at_promotion"] = [{"request": r.pk, "target": r.target_label, "gates": r.gate_results}
                                       for r in facts.requests if r.gate_results]
    stale = [{"request": r.pk, "target": r.target_label, **_decision_row(d)}
             for r in facts.requests for d in r.decisions.all() if getattr(d, "stale", False)]
    s.content["stale_approvals"] = stale
    personal = [n["name"] for n in facts.lineage if n["personal_data"]]
    s.content["personal_data_in_lineage"] = personal
    return s


# ----------------------------------------------------------------------------------------------- point 6


def lifecycle_changes(facts: Facts) -> Section:
    """Point 6: the model's alias, stage, card, policy and promotion history from the audit trail."""
    s = Section(6, "lifecycle_changes",
                "A description of relevant changes made by the provider to the system through its lifecycle")
    s.content["events"] = [{
        "seq": e.seq, "at": _iso(e.created_at), "actor": e.actor_username, "action": e.action,
        "target": e.target_label, "version": e.version_number, "data": e.data, "event_hash": e.hash}
        for e in facts.events]
    if not facts.events:
        s.gap("Lifecycle history: the audit trail holds no change to this model")
    s.content["card_revisions"] = [{"revision": r.revision, "action": r.action, "state": r.state,
                                    "sha256": r.sha256, "by": r.actor_username, "note": r.note,
                                    "at": _iso(r.created_at)} for r in facts.card_revisions]
    change_log = facts.content.get("change_log") or []
    s.content["card_change_log"] = change_log if isinstance(change_log, list) else []
    return s


# ----------------------------------------------------------------------------------------------- point 7


def standards_applied(facts: Facts) -> Section:
    """Point 7: the standards and specifications the registry actually applied to this version."""
    s = Section(7, "standards_applied",
                "A list of the harmonised standards applied, and of other relevant standards and technical "
                "specifications applied")
    applied = [{"name": f"CycloneDX {facts.bom['spec']} ML-BOM",
                "how": "the version's AI-BOM, validated against the official JSON schema"
                       + (" and covered by the version's signature" if facts.bom_signed else "")}]
    sig = facts.signature
    if sig["status"] != "unsigned":
        applied.append({"name": "OpenSSF model-signing (Sigstore bundle format), ECDSA P-256 / SHA-256",
                        "how": f"signature over the version's files; {sig['detail']}"})
    if facts.lineage_recorded:
        applied.append({"name": "OpenLineage", "how": "the version's lineage is exported as OpenLineage run events"})
    if facts.card is not None:
        applied.append({"name": "Model Cards for Model Reporting (Mitchell et al., 2019), JSON Schema 2020-12",
                        "how": "the model card's sections, validated by the registry's JSON schema"})
    if any(a["format"] == "onnx" for a in facts.artifacts):
        applied.append({"name": "ONNX", "how": "the served model format"})
    applied.append({"name": "SHA-256 hash-chained audit trail"
                            + (", with ECDSA P-256 signed checkpoints" if facts.checkpoints else ""),
                    "how": "every change recorded in this document is an event of the chain"})
    s.content["harmonised_standards"] = []
    s.content["other_standards_and_specifications"] = applied
    s.gap(f"{STANDARDS_NONE}; the provider lists them, or describes the solutions adopted to meet Chapter III, "
          f"Section 2")
    return s


# ----------------------------------------------------------------------------------------------- point 8


def declaration_of_conformity(facts: Facts) -> Section:
    """Point 8: the Annex V items of the EU declaration of conformity, as placeholders the provider signs."""
    s = Section(8, "eu_declaration_of_conformity",
                "A copy of the EU declaration of conformity referred to in Article 47")
    v = facts.version
    personal = any(n["personal_data"] for n in facts.lineage)
    items = [
        ("AI system name and type and any additional unambiguous reference allowing its identification and "
         "traceability", f"{v.model.name} version {v.number}" + (f" ({v.semver})" if v.semver else "")
         + f"; AI-BOM serial {facts.bom['serial']}", False),
        ("Name and address of the provider or of their authorised representative", PLACEHOLDER, True),
        ("Statement that the declaration is issued under the sole responsibility of the provider", PLACEHOLDER, True),
        ("Statement that the AI system is in conformity with Regulation (EU) 2024/1689 and any other relevant Union "
         "law", PLACEHOLDER, True),
        ("Statement of compliance with Regulations (EU) 2016/679 and (EU) 2018/1725 and Directive (EU) 2016/680"
         + (" (applies: the lineage holds personal data)" if personal else " (where personal data is processed)"),
         PLACEHOLDER, True),
        ("References to harmonised standards or common specifications in relation to which conformity is declared",
         PLACEHOLDER, True),
        ("Notified body, conformity assessment procedure performed and certificate issued (where applicable)",
         PLACEHOLDER, True),
        ("Place and date of issue; name and function of the signatory, for or on behalf of whom; signature",
         PLACEHOLDER, True),
    ]
    s.content["status"] = "placeholder: not signed"
    s.content["items"] = [{"number": n, "item": item, "value": value, "placeholder": placeholder}
                          for n, (item, value, placeholder) in enumerate(items, 1)]
    s.gap("The signed EU declaration of conformity (the items above marked as placeholders)")
    return s


# ----------------------------------------------------------------------------------------------- point 9


def post_market_monitoring(facts: Facts) -> Section:
    """Point 9: the monitoring configuration of what serves the version now, as the post-market plan."""
    s = Section(9, "post_market_monitoring",
                "A detailed description of the system in place to evaluate the AI system performance in the "
                "post-market phase in accordance with Article 72, including the post-market monitoring plan")
    plans = facts.operations["monitoring"]
    s.content["monitoring"] = plans
    s.content["gateway_metrics_recorded"] = bool(facts.operations["gateway"])
    if not plans:
        s.gap("Post-market monitoring plan: no endpoint serves this version, so no monitoring configuration "
              "applies to it")
    s.gap("Serious incident reporting (Article 73): the registry holds no procedure")
    return s


BUILDERS: tuple[Callable[[Facts], Section], ...] = (
    general_description, development_process, monitoring_and_control, metrics_appropriateness, risk_management,
    lifecycle_changes, standards_applied, declaration_of_conformity, post_market_monitoring,
)
