"""HTML forms of the governance pages: they parse what a person typed; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.models import GATE_KEYS, GATE_LABELS, CardApprovers, TargetKind
from registry.models import Stage


class PromotionRequestForm(forms.Form):
    """Open a promotion request for one version."""

    target = forms.ChoiceField(label="Target")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=20_000,
                                    help_text="Why should this version move? Reviewers read this first.")

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = targets

    def kind_and_target(self) -> tuple[str, str]:
        """Return the (kind, target) the chosen option stands for."""
        kind, _, target = self.cleaned_data["target"].partition(":")
        return kind, target


class DecisionForm(forms.Form):
    """A reviewer's approve/reject with a comment."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject"), ("cancel", "Cancel"),
                                          ("execute", "Execute")])
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=10_000)


class ProtectedTargetForm(forms.Form):
    """Protect a stage or alias, or change its policy."""

    kind = forms.ChoiceField(choices=TargetKind.choices)
    name = forms.CharField(max_length=256, help_text=f"A stage ({Stage.STAGING} or {Stage.PRODUCTION}) or an alias.")
    approvals_required = forms.IntegerField(min_value=1, max_value=10, initial=2)
    required_gates = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, initial=list(GATE_KEYS), label="Required gates",
        choices=[(key, GATE_LABELS[key]) for key in GATE_KEYS],
        help_text="A required gate that fails or cannot be checked blocks the move; unticked gates are advisory.")
    allow_emergency_rollback = forms.BooleanField(required=False, label="Maintainers may roll back in an emergency")
    metric_rules = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        help_text="One per line: metric, higher|lower, margin — e.g. auc, higher, 0.01",
    )

    def clean_metric_rules(self) -> list[dict[str, Any]]:
        """Parse the metric-rule lines."""
        rules = []
        for number, line in enumerate((self.cleaned_data.get("metric_rules") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            try:
                metric, direction = parts[0], (parts[1] if len(parts) > 1 else "higher").lower()
                margin = float(parts[2]) if len(parts) > 2 and parts[2] else 0.0
            except ValueError:
                raise forms.ValidationError(f"Line {number}: the margin must be a number.")
            if not metric or direction not in ("higher", "lower"):
                raise forms.ValidationError(f"Line {number}: write metric, higher|lower, margin.")
            rules.append({"metric": metric, "higher_is_better": direction == "higher", "margin": margin})
        return rules


class ReviewPolicyForm(forms.Form):
    """Who approves a model's cards, and how complete a card must be to be sent for review."""

    card_approvers = forms.ChoiceField(choices=CardApprovers.choices, label="Who approves model cards")
    card_min_completeness = forms.IntegerField(min_value=1, max_value=100, label="Completeness needed for review (%)")


class AuditFilterForm(forms.Form):
    """Filters of the audit page (shared with its export links)."""

    model = forms.CharField(required=False, max_length=256)
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=100)
    since = forms.CharField(required=False, max_length=40, help_text="ISO date or time, UTC")
    until = forms.CharField(required=False, max_length=40)


class RollbackForm(forms.Form):
    """Roll a target back to its previous holder."""

    target = forms.CharField(max_length=260)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=20_000)
    emergency = forms.BooleanField(required=False)
