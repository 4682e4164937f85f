"""HTML forms of the deployment pages: they parse what a person typed; the services decide what is allowed."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from deployments.models import Strategy
from deployments.services import DEFAULT_CANARY_STEPS
from registry import validation


class EnvironmentForm(forms.Form):
    """Define an environment (staff)."""

    name = forms.CharField(label="Environment name", max_length=64)
    description = forms.CharField(label="Description", required=False, max_length=5000)
    requires_promotion = forms.BooleanField(label="Requires an executed promotion", required=False)
    follow_alias = forms.CharField(label="Alias that follows", required=False, max_length=256)
    follow_stage = forms.ChoiceField(label="Stage that follows", required=False,
                                     choices=[("", "—"), ("Staging", "Staging"), ("Production", "Production")])


class EndpointForm(forms.Form):
    """Create an endpoint for a model the user maintains."""

    name = forms.CharField(label="Endpoint name", max_length=100)
    environment = forms.ModelChoiceField(label="Environment", queryset=None, to_field_name="name")
    model = forms.ModelChoiceField(label="Model", queryset=None, to_field_name="name")

    def __init__(self, *args: Any, environments, models, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["environment"].queryset = environments
        self.fields["model"].queryset = models
        self.fields["environment"].label_from_instance = lambda env: env.name
        self.fields["model"].label_from_instance = lambda model: model.name


def _json_field(value: str, label: str) -> Any:
    if not value.strip():
        return None
    try:
        return validation.json_loads(value)
    except ValueError as error:
        raise forms.ValidationError(f"{label} is not valid JSON: {error}.") from error


class DeploymentStartForm(forms.Form):
    """Start a rollout on an endpoint."""

    strategy = forms.ChoiceField(label="Strategy", choices=Strategy.choices, initial=Strategy.CANARY)
    version = forms.TypedChoiceField(label="Version", coerce=int)
    steps = forms.CharField(label="Canary steps (JSON)", required=False,
                            widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}),
                            help_text='Canary only. Steps: {"set_weight": 20}, {"pause": {}} (until promoted), '
                                      '{"pause": {"duration": 60}}, {"analysis": {}}.')
    analysis = forms.CharField(label="Analysis thresholds (JSON)", required=False,
                               widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                               help_text='E.g. {"max_error_rate": 0.02, "max_p95_ms": 200}; defaults apply otherwise.')
    shadow_percent = forms.IntegerField(label="Shadow percent", required=False, initial=100,
                                        help_text="Shadow only: share of live requests mirrored to the candidate.")
    arm_a_weight = forms.IntegerField(label="A/B weight of the version served now", required=False, initial=50)
    arm_b_weight = forms.IntegerField(label="A/B weight of the candidate", required=False, initial=50)
    keep_warm_seconds = forms.IntegerField(label="Keep the old version warm (seconds)", initial=300,
                                           help_text="How long a one-action rollback stays instant after success.")

    def __init__(self, *args: Any, versions: list[int], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("steps", json.dumps(DEFAULT_CANARY_STEPS))
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(n, f"Version {n}") for n in versions]

    def clean_steps(self) -> Any:
        """Parse the steps JSON (the service checks its shape)."""
        return _json_field(self.cleaned_data["steps"], "Canary steps")

    def clean_analysis(self) -> Any:
        """Parse the thresholds JSON (the service checks the names and values)."""
        return _json_field(self.cleaned_data["analysis"], "Analysis thresholds")

    def service_arguments(self, *, stable_number: int | None) -> dict[str, Any]:
        """Return the keyword arguments of services.deployment_start for what was typed."""
        data = self.cleaned_data
        strategy = data["strategy"]
        out: dict[str, Any] = {"strategy": strategy, "version": data["version"], "analysis": data["analysis"],
                               "keep_warm_seconds": data["keep_warm_seconds"]}
        if strategy == Strategy.CANARY:
            out["steps"] = data["steps"]
        if strategy == Strategy.SHADOW:
            out["shadow_percent"] = data["shadow_percent"] if data["shadow_percent"] is not None else 100
        if strategy == Strategy.AB and stable_number is not None:
            out["arms"] = [{"version": stable_number, "weight": data["arm_a_weight"]},
                           {"version": data["version"], "weight": data["arm_b_weight"]}]
        return out


class RoutingAtForm(forms.Form):
    """Ask what served at a moment."""

    at = forms.DateTimeField(label="What served at", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                                                     "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}))
