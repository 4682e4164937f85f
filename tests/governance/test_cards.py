"""Model cards: schema, pre-fill, completeness, states, history, audit, and the promotion gate."""

from __future__ import annotations

import json

import pytest

from governance import gates
from governance import services as governance_services
from governance.cards import schema, services
from governance.models import AuditEvent, CardState, ModelCardRevision
from registry.errors import Forbidden, InvalidInput, InvalidState
from tests.governance.policy_support import protect

COMPLETE = {
    "model_details": {"overview": "Predicts churn.", "license": "apache-2.0"},
    "intended_use": {"primary_uses": "Retention offers.", "primary_users": "CRM team.",
                     "out_of_scope": "Credit decisions."},
    "factors": {"relevant_factors": "Region, tenure."},
    "evaluation_data": {"description": "A held-out 20% split of events-2026."},
    "metrics": {"decision_thresholds": "0.5 on the score."},
    "quantitative_analyses": {"unitary_results": "AUC 0.85 overall.",
                              "slices": [{"slice": "EU", "metric": "auc", "value": 0.84, "ci_lower": 0.81,
                                          "ci_upper": 0.87}]},
    "ethical_considerations": {"risks_and_harms": "Unequal offers across regions."},
    "caveats_recommendations": {"limitations": "Trained on 2026 data only.", "recommendations": "Retrain yearly."},
    "human_oversight": {"description": "A CRM analyst reviews every batch."},
}


def fill(card, actor):
    """Fill every human section of `card` so it is complete."""
    for section, values in COMPLETE.items():
        card = services.card_update(card=card, actor=actor, section=section, values=values)
    return card


def test_the_schema_in_the_repository_is_valid_and_an_empty_card_matches_it():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema.schema())
    schema.validate(schema.empty_content())
    assert schema.completeness(schema.empty_content())[0] == 0


def test_a_new_card_is_a_draft_prefilled_from_the_registry(protected, team, captured_events):
    v2 = protected["v2"]
    card = services.card_create(version=v2, actor=team["engineer"])
    c = card.content
    assert card.state == CardState.DRAFT and card.revision == 1
    assert c["model_details"]["name"] == "churn" and c["model_details"]["version"] == v2.number
    assert c["model_details"]["owners"][0]["name"] == "owner"
    assert c["model_details"]["code"]["commit"] == "b" * 40
    assert {m["name"]: m["value"] for m in c["metrics"]["performance_measures"]} == {"auc": 0.85, "loss": 0.4}
    assert c["training_data"]["datasets"][0]["name"] == "events-2026"
    assert any(n["kind"] == "dataset" and n["name"] == "events-2026" for n in c["model_details"]["lineage"])
    assert 0 < card.completeness < 100 and "intended_use.out_of_scope" in card.missing
    assert card.sha256 == schema.content_sha256(c)
    assert [e.action for e in captured_events if e.action.startswith("model_card")] == ["model_card.created"]


def test_completeness_lists_missing_fields_and_reaches_100(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    card = fill(card, team["engineer"])
    assert (card.completeness, card.missing) == (100, [])
    assert card.revision == 1 + len(COMPLETE)


def test_edits_are_validated_against_the_schema(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    with pytest.raises(InvalidInput, match="schema"):
        services.card_update(card=card, actor=team["engineer"], section="quantitative_analyses",
                             values={"slices": [{"slice": "EU"}]})
    with pytest.raises(InvalidInput, match="no editable field"):
        services.card_update(card=card, actor=team["engineer"], section="model_details", values={"name": "x"})


def test_states_history_and_audit(protected, team):
    engineer, r1 = team["engineer"], team["r1"]
    card = fill(services.card_create(version=protected["v2"], actor=engineer), engineer)
    card = services.card_submit(card=card, actor=engineer)
    with pytest.raises(InvalidState):
        services.card_update(card=card, actor=engineer, section="factors", values={"relevant_factors": "x"})
    with pytest.raises(Forbidden, match="four-eyes"):
        services.card_approve(card=card, actor=_reviewer_who_submitted(card, team))
    card = services.card_approve(card=card, actor=r1, comment="Looks right.")
    assert card.state == CardState.APPROVED and card.approved_by == r1
    card = services.card_archive(card=card, actor=team["maint"], reason="Superseded.")
    assert card.state == CardState.ARCHIVED
    with pytest.raises(InvalidState):
        services.card_update(card=card, actor=engineer, section="factors", values={"relevant_factors": "y"})
    actions = list(ModelCardRevision.objects.filter(card=card).order_by("revision").values_list("action", flat=True))
    assert actions[0] == "created" and actions[-3:] == ["submitted", "approved", "archived"]
    audited = list(AuditEvent.objects.filter(target_type="governance.modelcard").values_list("action", flat=True))
    assert audited.count("model_card.updated") == len(COMPLETE) and "model_card.approved" in audited
    event = AuditEvent.objects.filter(action="model_card.approved").get()
    assert event.model_name == "churn" and event.version_number == protected["v2"].number


def _reviewer_who_submitted(card, team):
    """Make r2 the submitter so the four-eyes rule applies to them."""
    card.submitted_by = team["r2"]
    card.save(update_fields=["submitted_by"])
    return team["r2"]


def test_an_incomplete_card_cannot_be_approved_and_viewers_cannot_edit(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    with pytest.raises(Forbidden):
        services.card_update(card=card, actor=team["viewer"], section="factors", values={"relevant_factors": "x"})
    with pytest.raises(InvalidState, match=r"% complete; 'churn' needs 100% before a card goes for review"):
        services.card_submit(card=card, actor=team["engineer"])
    governance_services.review_policy_set(model=card.model, actor=team["maint"], card_approvers="both",
                                          card_min_completeness=card.completeness)
    card = services.card_submit(card=card, actor=team["engineer"])
    governance_services.review_policy_set(model=card.model, actor=team["maint"], card_approvers="both",
                                          card_min_completeness=100)
    with pytest.raises(InvalidState, match="needs 100%"):  # the bar rose while it waited: it goes back, not through
        services.card_approve(card=card, actor=team["r1"])
    card = services.card_return(card=card, actor=team["r1"], comment="Fill the rest.")
    assert card.state == CardState.DRAFT


def _gate(request):
    return {r["key"]: r for r in gates.evaluate(request)}["model_card"]


def test_the_promotion_gate_reads_the_card(protected, team, owner):
    v2 = protected["v2"]
    request = governance_services.promotion_request_create(
        version=v2, actor=team["engineer"], kind="alias", target="champion", justification="Better AUC.")
    gate = _gate(request)
    assert gate["status"] == "not_available" and not gate["blocking"] and gate["required"] is False  # advisory
    protect(approver=team["maint"], model=protected["model"], actor=owner, kind="alias", name="champion",
            approvals_required=2, required_gates=["model_card", "metrics"])
    gate = _gate(request)
    assert gate["status"] == "not_available" and gate["blocking"] and gate["required"]
    assert gate["fix"] == {"label": "Write the model card", "url": "/models/churn/versions/2/card/"}
    card = services.card_create(version=v2, actor=team["engineer"])
    gate = _gate(request)
    assert gate["status"] == "failed" and gate["blocking"] and "Out-of-scope uses" in gate["detail"]
    fill(card, team["engineer"])
    gate = _gate(request)
    assert gate["status"] == "passed" and not gate["blocking"] and gate["fix"] is None


def test_card_content_is_json_serialisable_and_hash_is_stable(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    assert schema.content_sha256(json.loads(json.dumps(card.content))) == card.sha256


def test_control_characters_in_card_fields_are_refused(protected, team):
    card = services.card_create(version=protected["v2"], actor=team["engineer"])
    with pytest.raises(InvalidInput, match="control characters"):
        services.card_update(card=card, actor=team["engineer"], section="model_details",
                             values={"overview": "Predicts\x00 churn."})
    card = services.card_update(card=card, actor=team["engineer"], section="model_details",
                                values={"overview": "Predicts churn.\nLine two."})
    assert card.content["model_details"]["overview"] == "Predicts churn.\nLine two."
