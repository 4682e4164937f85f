"""The policy editor's forms: a document as YAML or JSON text, and a decision on a proposed version."""

from __future__ import annotations

from django import forms


class PolicyForm(forms.Form):
    """Propose a new version of a policy, written as YAML or JSON."""

    source = forms.CharField(
        label="Policy (YAML or JSON)", max_length=100_000, strip=False,
        widget=forms.Textarea(attrs={"rows": 22, "class": "mono", "spellcheck": "false"}),
        help_text="Validated by the published schema (GET /api/v1/promotions/policy-schema). The new version takes "
                  "effect once another maintainer approves it.")
    note = forms.CharField(label="Why this change", required=False, max_length=10_000,
                           widget=forms.Textarea(attrs={"rows": 2}))


class PolicyDecisionForm(forms.Form):
    """Approve or reject (withdraw, for its author) a proposed version."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    number = forms.IntegerField(min_value=1)
    comment = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}))
