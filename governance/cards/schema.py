"""The model card JSON Schema kept in the repository: loading, validation, completeness and the card hash."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from registry.errors import InvalidInput

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "model_card.schema.json"
SCHEMA_VERSION = "1.0"

# The sections, in the order of "Model Cards for Model Reporting", with the fields people fill in the form.
# kind: "md" (Markdown, sanitised on render), "text" (one line), "owners", "lines" (one item per line),
# "measures" and "slices" (one row per line, fields separated by "|").
SECTIONS: list[dict[str, Any]] = [
    {"key": "model_details", "title": "Model details", "fields": [
        ("overview", "Overview", "md"), ("owners", "Owners and contact", "owners"), ("license", "Licence", "text"),
        ("references", "References", "lines"), ("citation", "Citation", "md")]},
    {"key": "intended_use", "title": "Intended use", "fields": [
        ("primary_uses", "Primary intended uses", "md"), ("primary_users", "Primary intended users", "md"),
        ("out_of_scope", "Out-of-scope uses", "md")]},
    {"key": "factors", "title": "Factors", "fields": [
        ("relevant_factors", "Relevant factors", "md"), ("evaluation_factors", "Evaluation factors", "md")]},
    {"key": "metrics", "title": "Metrics", "fields": [
        ("performance_measures", "Performance measures", "measures"),
        ("decision_thresholds", "Decision thresholds", "md"),
        ("variation_approaches", "Variation approaches", "md")]},
    {"key": "evaluation_data", "title": "Evaluation data", "fields": [("description", "Description", "md")]},
    {"key": "training_data", "title": "Training data", "fields": [("description", "Description", "md")]},
    {"key": "quantitative_analyses", "title": "Quantitative analyses", "fields": [
        ("unitary_results", "Unitary results", "md"), ("intersectional_results", "Intersectional results", "md"),
        ("slices", "Results by slice, with confidence intervals", "slices")]},
    {"key": "ethical_considerations", "title": "Ethical considerations", "fields": [
        ("sensitive_data", "Sensitive data", "md"), ("risks_and_harms", "Risks and harms", "md"),
        ("mitigations", "Mitigations", "md")]},
    {"key": "caveats_recommendations", "title": "Caveats and recommendations", "fields": [
        ("limitations", "Limitations", "md"), ("recommendations", "Recommendations", "md")]},
    {"key": "human_oversight", "title": "Human oversight", "fields": [("description", "Human oversight", "md")]},
]
SECTION_KEYS = [s["key"] for s in SECTIONS]


@functools.cache
def schema() -> dict[str, Any]:
    """Return the model card JSON Schema (read once from the repository)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def required_fields() -> list[str]:
    """Return the dotted paths a complete card must fill."""
    return list(schema()["x-completeness-required"])


def empty_content() -> dict[str, Any]:
    """Return a card with every section present and nothing filled."""
    content: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "change_log": []}
    for key in SECTION_KEYS:
        content[key] = {}
    return content


def validate(content: Any) -> None:
    """Raise InvalidInput listing every place where `content` breaks the schema."""
    errors = sorted(_validator().iter_errors(content), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'.'.join(str(p) for p in e.absolute_path) or '(card)'}: {e.message}" for e in errors[:10]]
        raise InvalidInput("The model card does not match its schema: " + "; ".join(lines),
                           details={"errors": lines})


def value_at(content: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path, or None."""
    node: Any = content
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, dict)):
        return bool(value)
    return value is not None


def completeness(content: dict[str, Any]) -> tuple[int, list[str]]:
    """Return the percentage of required fields filled and the dotted paths still missing."""
    required = required_fields()
    missing = [path for path in required if not _filled(value_at(content, path))]
    score = round(100 * (len(required) - len(missing)) / len(required)) if required else 100
    return score, missing


def label_of(path: str) -> str:
    """Return a readable label for a dotted path, section then field."""
    section_key, _, field_key = path.partition(".")
    for section in SECTIONS:
        if section["key"] == section_key:
            for key, label, _kind in section["fields"]:
                if key == field_key:
                    return f"{section['title']} › {label}"
            return f"{section['title']} › {field_key.replace('_', ' ')}"
    return path


def content_sha256(content: dict[str, Any]) -> str:
    """SHA-256 of the card's canonical JSON (sorted keys, compact): the hash printed in every export."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def merged(base: dict[str, Any], section: str, values: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `base` with `values` written into one section."""
    if section not in SECTION_KEYS:
        raise InvalidInput(f"Unknown card section {section!r}; use one of {', '.join(SECTION_KEYS)}.")
    out = copy.deepcopy(base)
    out.setdefault(section, {}).update(values)
    return out
