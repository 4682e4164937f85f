"""HTML forms of the deployment pages: they parse what a person typed; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from deployments.models import Strategy
from deployments.services import DEFAULT_CANARY_STEPS
from deployments.services.plans import DEFAULT_ANALYSIS, MAX_STEPS


class EnvironmentForm(forms.Form):
    """Define an environment (staff)."""

    name = forms.CharField(label="Environment name", max_length=64)
    description = forms.CharField(label="Description", required=False, max_length=5000)
    requires_promotion = forms.BooleanField(label="Requires an executed promotion", required=False)
    requires_signature = forms.BooleanField(label="Requires signed versions", required=False, initial=True,
                                            help_text="Only versions whose signature verifies may go live here.")
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


STEP_KINDS = [("weight", "Set weight"), ("pause", "Pause"), ("analysis", "Run analysis")]
# What each strategy's part of the form applies to (the template marks fieldsets with these; JS shows the chosen one).
STRATEGY_FIELDSETS = {
    "canary": ("canary",), "blue_green": ("blue_green",), "shadow": ("shadow",), "ab": ("ab",),
    "analysis": ("canary", "shadow", "ab"), "warm": ("blue_green", "canary", "shadow", "ab"),
}


class CanaryStepForm(forms.Form):
    """One row of the canary step editor: set a weight, pause (for some seconds or until promoted), or analyse."""

    kind = forms.ChoiceField(label="Step", choices=STEP_KINDS)
    weight = forms.IntegerField(label="Weight %", required=False, min_value=0, max_value=100)
    pause_seconds = forms.IntegerField(label="Pause seconds", required=False, min_value=1, max_value=7 * 86400,
                                       help_text="Empty: until someone promotes.")

    def clean(self) -> dict[str, Any]:
        """A weight step needs its weight."""
        data = super().clean()
        if data.get("kind") == "weight" and data.get("weight") is None and "weight" not in self.errors:
            self.add_error("weight", "Give the candidate's share of traffic, 0 to 100.")
        return data

    def step(self) -> dict[str, Any]:
        """Return the step as the service takes it."""
        data = self.cleaned_data
        if data["kind"] == "weight":
            return {"set_weight": data["weight"]}
        if data["kind"] == "pause":
            return {"pause": {"duration": data["pause_seconds"]} if data.get("pause_seconds") else {}}
        return {"analysis": {}}

    @staticmethod
    def initial_for(step: dict[str, Any]) -> dict[str, Any]:
        """Return a row's initial values for a service step."""
        (kind, value), = step.items()
        if kind == "set_weight":
            return {"kind": "weight", "weight": value}
        if kind == "pause":
            return {"kind": "pause", "pause_seconds": (value or {}).get("duration")}
        return {"kind": "analysis"}


class BaseCanaryStepFormSet(forms.BaseFormSet):
    """The canary's steps, in order; rows left empty are skipped."""

    def clean(self) -> None:
        """At least one step."""
        if any(self.errors):
            return
        if not self.steps():
            raise forms.ValidationError("A canary needs at least one step.")

    def steps(self) -> list[dict[str, Any]]:
        """Return the steps as the service takes them (after is_valid)."""
        return [f.step() for f in self.forms if f.cleaned_data]


CanaryStepFormSet = forms.formset_factory(CanaryStepForm, formset=BaseCanaryStepFormSet, extra=0,
                                          max_num=MAX_STEPS, validate_max=True, absolute_max=MAX_STEPS)
STEPS_PREFIX = "steps"


def step_formset(data: Any = None, *, steps: list[dict[str, Any]] | None = None) -> BaseCanaryStepFormSet:
    """Return the step editor: bound to posted rows, or showing `steps` (the default canary when None)."""
    if data is not None:
        return CanaryStepFormSet(data, prefix=STEPS_PREFIX)
    rows = [CanaryStepForm.initial_for(s) for s in (DEFAULT_CANARY_STEPS if steps is None else steps)]
    return CanaryStepFormSet(initial=rows, prefix=STEPS_PREFIX)


def step_rows_edited(data: Any, *, add: bool = False, remove: int | None = None) -> list[dict[str, Any]]:
    """Return the posted step rows as typed (not validated), with one row added or one removed (the no-JS editor)."""
    try:
        total = max(0, min(int(data.get(f"{STEPS_PREFIX}-TOTAL_FORMS", 0)), MAX_STEPS))
    except (TypeError, ValueError):
        total = 0
    rows = [{k: data.get(f"{STEPS_PREFIX}-{i}-{k}", "") for k in ("kind", "weight", "pause_seconds")}
            for i in range(total)]
    if remove is not None and 0 <= remove < len(rows):
        del rows[remove]
    if add and len(rows) < MAX_STEPS:
        rows.append({"kind": "weight", "weight": "", "pause_seconds": ""})
    return rows


class VersionSelect(forms.Select):
    """A select whose versions that cannot be deployed are shown, disabled, with the reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disabled_values: set[str] = set()

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Mark the undeployable options disabled."""
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.disabled_values:
            option["attrs"]["disabled"] = True
        return option


class DeploymentStartForm(forms.Form):
    """Start a rollout on an endpoint: the strategy, the version, and only that strategy's settings."""

    strategy = forms.ChoiceField(label="Strategy", choices=Strategy.choices, initial=Strategy.CANARY,
                                 widget=forms.Select(attrs={"data-strategy-select": ""}))
    version = forms.TypedChoiceField(label="Version", coerce=int, widget=VersionSelect)
    auto_promote = forms.BooleanField(
        label="Switch automatically after a passed smoke check", required=False, initial=False,
        help_text="Otherwise the candidate holds at preview (reachable with the X-Stratum-Preview: 1 header, no live "
                  "traffic) until someone promotes it.")
    max_error_rate_percent = forms.FloatField(label="Max error rate (%)", required=False, min_value=0, max_value=100,
                                              help_text=f"Default {DEFAULT_ANALYSIS['max_error_rate'] * 100:g}%.")
    max_p95_ms = forms.FloatField(label="Max p95 latency (ms)", required=False, min_value=0,
                                  help_text=f"Default {DEFAULT_ANALYSIS['max_p95_ms']:g} ms.")
    window_seconds = forms.IntegerField(label="Analysis window (seconds)", required=False, min_value=1,
                                        max_value=86400, help_text=f"Default {DEFAULT_ANALYSIS['window_seconds']} s.")
    min_requests = forms.IntegerField(label="Fewest candidate requests to judge", required=False, min_value=0,
                                      max_value=10**9, help_text=f"Default {DEFAULT_ANALYSIS['min_requests']}; "
                                                                 "fewer and the analysis is inconclusive.")
    failure_limit = forms.IntegerField(label="Failed analyses tolerated", required=False, min_value=0, max_value=100,
                                       help_text=f"Default {DEFAULT_ANALYSIS['failure_limit']}: roll back on the "
                                                 "first failure.")
    shadow_percent = forms.IntegerField(label="Shadow percent", required=False, initial=100, min_value=1,
                                        max_value=100, help_text="Share of live requests mirrored to the candidate.")
    min_agreement_percent = forms.FloatField(label="Least agreement with the live answer (%)", required=False,
                                             min_value=0, max_value=100,
                                             help_text=f"Default {DEFAULT_ANALYSIS['min_agreement'] * 100:g}%.")
    arm_a_weight = forms.IntegerField(label="A/B weight of the version served now", required=False, initial=50,
                                      min_value=1, max_value=99)
    arm_b_weight = forms.IntegerField(label="A/B weight of the candidate", required=False, initial=50,
                                      min_value=1, max_value=99)
    keep_warm_seconds = forms.IntegerField(label="Keep the old version warm (seconds)", initial=300, min_value=0,
                                           required=False,
                                           max_value=7 * 86400,
                                           help_text="How long a one-action rollback stays instant after success.")

    def __init__(self, *args: Any, versions: list[tuple[int, str | None]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refusals = {number: reason for number, reason in versions if reason}
        self.fields["version"].choices = [
            (n, f"Version {n}" + (f" — cannot deploy: {reason}" if reason else "")) for n, reason in versions]
        self.fields["version"].widget.disabled_values = {str(n) for n in self.refusals}
        if not self.is_bound and "version" not in self.initial:
            first = next((n for n, reason in versions if not reason), None)
            if first is not None:
                self.initial["version"] = first

    def clean_version(self) -> int:
        """Refuse a version that cannot be deployed, with the reason the service would give."""
        number = self.cleaned_data["version"]
        if number in self.refusals:
            raise forms.ValidationError(f"Version {number} cannot be deployed: {self.refusals[number]}.")
        return number

    def clean(self) -> dict[str, Any]:
        """The chosen strategy's own fields must be filled; the others are ignored."""
        data = super().clean()
        strategy = data.get("strategy")
        if strategy == Strategy.AB:
            for name in ("arm_a_weight", "arm_b_weight"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, "Give each arm's weight (the two add up to 100).")
        if strategy != Strategy.DIRECT and data.get("keep_warm_seconds") is None and "keep_warm_seconds" not in \
                self.errors:
            self.add_error("keep_warm_seconds", "Give how long the old version stays warm (0 for not at all).")
        return data

    def analysis(self) -> dict[str, Any]:
        """Return the analysis thresholds typed (percentages as fractions); the defaults apply to the rest."""
        data, out = self.cleaned_data, {}
        if data.get("max_error_rate_percent") is not None:
            out["max_error_rate"] = data["max_error_rate_percent"] / 100
        if data.get("min_agreement_percent") is not None and data.get("strategy") == Strategy.SHADOW:
            out["min_agreement"] = data["min_agreement_percent"] / 100
        for name in ("max_p95_ms", "window_seconds", "min_requests", "failure_limit"):
            if data.get(name) is not None:
                out[name] = data[name]
        return out

    def service_arguments(self, *, stable_number: int | None, steps: list[dict[str, Any]] | None = None
                          ) -> dict[str, Any]:
        """Return the keyword arguments of services.deployment_start for the chosen strategy (`steps`: canary)."""
        data = self.cleaned_data
        strategy = data["strategy"]
        out: dict[str, Any] = {"strategy": strategy, "version": data["version"],
                               "keep_warm_seconds": data["keep_warm_seconds"] or 0}
        if strategy in STRATEGY_FIELDSETS["analysis"]:
            out["analysis"] = self.analysis()
        if strategy == Strategy.CANARY:
            out["steps"] = steps
        if strategy == Strategy.BLUE_GREEN:
            out["auto_promote"] = bool(data["auto_promote"])
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
