"""HTML forms of the registry pages: they parse what a person typed; the services decide what is allowed."""

from __future__ import annotations

from typing import Any

from django import forms

from registry.errors import InvalidInput
from registry.lineage.features import FeatureSetSpec, feature_set_lines_parse
from registry.models import Stage


class KeyValueLinesField(forms.CharField):
    """A textarea of `key=value` lines, cleaned to a dict (blank lines and `#` comments are ignored)."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> dict[str, str]:  # type: ignore[override]
        """Return the lines as an ordered mapping, or raise a ValidationError naming the bad line."""
        text = super().to_python(value) or ""
        result: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, val = line.partition("=")
            key, val = key.strip(), val.strip()
            if not sep or not key:
                raise forms.ValidationError(
                    "Line %(line)s (%(text)s) is not of the form name=value.",
                    code="invalid_line",
                    params={"line": number, "text": line[:60]},
                )
            if key in result:
                raise forms.ValidationError(
                    "%(key)s appears twice.", code="duplicate_key", params={"key": key}
                )
            result[key] = val
        return result


class FeatureSetLinesField(forms.CharField):
    """A textarea of `name@version <- dataset@version, … | code reference` lines, cleaned to feature-set specs;
    every bad line is named at once."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono",
                                   "placeholder": "customer_features@3 <- customers@2024-05, orders@2024-05 | "
                                                  "git+https://github.com/acme/features@4f2a9c1#build.py"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> list[FeatureSetSpec]:  # type: ignore[override]
        """Return the specs, or raise a ValidationError with one message per fault."""
        text = super().to_python(value) or ""
        try:
            return feature_set_lines_parse(text)
        except InvalidInput as error:
            errors = (error.details or {}).get("errors") or [error.message]
            raise forms.ValidationError([forms.ValidationError(e, code="invalid_line") for e in errors]) from None


class MultipleFileInput(forms.ClearableFileInput):
    """A file input that lets the browser pick several files at once."""

    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that cleans to a list of uploaded files."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        """Validate each uploaded file and return them as a list."""
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data if item]
        return [single(data, initial)] if data else []


class ModelCreateForm(forms.Form):
    """Create a registered model."""

    name = forms.CharField(
        max_length=256, widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"})
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown is supported."
    )
    tags = KeyValueLinesField(help_text="One key=value per line, e.g. team=ml.")


class VersionCreateForm(forms.Form):
    """Register a new version of a model, with its files and provenance."""

    files = MultipleFileField(
        required=False,
        help_text="Pick one or more files (model.pkl, model.onnx, MLmodel, requirements.txt …).",
    )
    semver = forms.CharField(
        label="Semantic version", required=False, max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "1.4.0", "class": "mono"}),
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), help_text="Markdown is supported."
    )
    source_uri = forms.CharField(label="Source URI", required=False, max_length=2048)
    run_id = forms.CharField(label="Run id", required=False, max_length=64)
    code_repository = forms.CharField(label="Code repository", required=False, max_length=2048)
    code_commit = forms.CharField(label="Commit", required=False, max_length=64)
    metrics = KeyValueLinesField(help_text="One name=value per line, e.g. auc=0.91.")
    params = KeyValueLinesField(label="Parameters", help_text="One name=value per line, e.g. max_depth=6.")
    environment = forms.CharField(
        label="Requirements", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        help_text="One requirement per line, as in requirements.txt.",
    )
    feature_sets = FeatureSetLinesField(
        label="Feature sets",
        help_text="One feature set per line: name@version <- the datasets it derives from (dataset@version, comma "
                  "separated), optionally | the transformation's code reference. A dataset not yet in lineage is "
                  "added; one already there (or a feature set) is linked.",
    )


class AliasSetForm(forms.Form):
    """Point an alias at one version of the model."""

    alias = forms.CharField(
        max_length=255, widget=forms.TextInput(attrs={"placeholder": "champion", "autocomplete": "off"})
    )
    version = forms.TypedChoiceField(coerce=int, choices=())

    def __init__(self, *args: Any, version_numbers: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(n, f"Version {n}") for n in version_numbers]


class StageTransitionForm(forms.Form):
    """Move a version to another stage."""

    stage = forms.ChoiceField(choices=Stage.choices)
    archive_existing_versions = forms.BooleanField(
        required=False, label="Archive the versions currently in this stage"
    )


class TokenCreateForm(forms.Form):
    """Create a personal API token."""

    name = forms.CharField(
        max_length=100, widget=forms.TextInput(attrs={"placeholder": "ci-pipeline", "autocomplete": "off"})
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)", required=False, min_value=1, max_value=3650,
        help_text="Leave empty for a token that never expires.",
    )
    scope = forms.ChoiceField(
        choices=[("api", "Registry API (REST and MLflow client)"), ("serve", "Serving gateway only")],
        initial="api", required=False, help_text="A serving token can call /serve/ endpoints and nothing else.",
    )


class RetrainRuleForm(forms.Form):
    """Add a versioning trigger to a model."""

    trigger = forms.ChoiceField(choices=[("schedule", "On a schedule (cron, UTC)"),
                                         ("new_data", "When a training dataset gets a new version"),
                                         ("degradation", "When the rollout monitor reports degradation")])
    cron = forms.CharField(required=False, max_length=100, label="Cron expression",
                           widget=forms.TextInput(attrs={"placeholder": "0 3 * * 1"}),
                           help_text="Schedule triggers only: minute hour day-of-month month day-of-week.")
