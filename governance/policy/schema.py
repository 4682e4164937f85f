"""The promotion policy document: its published JSON Schema, parsing (YAML or JSON), validation, defaults, hash."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from governance.models import DEFAULT_SCOPE, GATE_KEYS, TargetKind
from registry import validation
from registry.errors import InvalidInput
from registry.models import Stage

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "promotion_policy.schema.json"
MAX_SOURCE = 100_000
PROTECTABLE_STAGES = (Stage.STAGING, Stage.PRODUCTION)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicyInvalid(InvalidInput):
    """A policy document that does not validate; `details` names each failing field by its JSON pointer."""


@functools.cache
def schema() -> dict[str, Any]:
    """Return the promotion policy JSON Schema (read once from the repository)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def pointer(path: Any) -> str:
    """Return the JSON pointer (RFC 6901) of a path of keys and indexes; "/" for the document itself."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


def refuse(errors: list[tuple[str, str]]) -> PolicyInvalid:
    """Build the refusal of a document from (pointer, message) pairs: the message names the first field."""
    first_pointer, first_message = errors[0]
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return PolicyInvalid(f"{first_pointer}: {first_message}{more}",
                         details={"fields": {p: m for p, m in reversed(errors)},
                                  "errors": [{"pointer": p, "message": m} for p, m in errors]})


def parse(source: Any) -> tuple[dict[str, Any], str]:
    """Return (document, source text) from YAML or JSON text or an already parsed mapping; refuse anything else."""
    if isinstance(source, dict):  # a JSON object: kept as the YAML people read and edit on the page
        return source, yaml.safe_dump(source, sort_keys=False, allow_unicode=True, default_flow_style=False)
    if not isinstance(source, str) or not source.strip():
        raise refuse([("/", "The policy is empty: write a YAML or JSON document.")])
    if len(source) > MAX_SOURCE:
        raise refuse([("/", f"The policy is longer than {MAX_SOURCE} characters.")])
    validation.no_controls(source, "Policy")
    try:
        document = yaml.safe_load(source)  # YAML 1.1 is a superset of JSON: one parser for both
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML or JSON"
        raise refuse([("/", f"The policy cannot be read{where}: {problem}.")]) from None
    if not isinstance(document, dict):
        raise refuse([("/", "The policy must be a mapping (key: value lines, or a JSON object).")])
    return document, source


def check_schema(document: dict[str, Any]) -> None:
    """Refuse a document the published JSON Schema rejects, naming every failing field."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        raise refuse([(pointer(e.absolute_path), _message(e)) for e in errors])


def _message(error: Any) -> str:
    if error.validator == "oneOf" and list(error.absolute_path)[:1] == ["freeze_windows"]:
        return ("A freeze window is either weekly (days, with optional start and end) or dated (from and until), "
                "with an optional name and timezone.")
    if error.validator == "additionalProperties":
        return f"{error.message} (see GET /api/v1/promotions/policy-schema)."
    return error.message


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Return a schema-valid document with every default written out, so its hash says what it means."""
    gates = document.get("gates") or {}
    required = list(gates["required"]) if "required" in gates else (
        [k for k in GATE_KEYS if k not in (gates.get("advisory") or [])])
    rules = []
    for rule in document.get("metric_rules") or []:
        against = rule.get("against", "holder")
        out: dict[str, Any] = {"metric": rule["metric"].strip(), "direction": rule["direction"], "against": against}
        if against == "holder":
            out["margin"] = float(rule.get("margin", 0.0))
        else:
            out["value"] = float(rule["value"])
        rules.append(out)
    windows = []
    for window in document.get("freeze_windows") or []:
        out = {"name": window.get("name", ""), "timezone": window.get("timezone", "UTC")}
        if "days" in window:
            out |= {"days": [d for d in WEEKDAYS if d in window["days"]], "start": window.get("start", "00:00"),
                    "end": window.get("end", "24:00")}
        else:
            out |= {"from": window["from"], "until": window["until"]}
        windows.append(out)
    emergency = document.get("emergency_rollback") or {"allowed": False}
    roles = {k: v for k, v in sorted((document.get("roles") or {}).items()) if v}
    return {
        "quorum": document["quorum"],
        "roles": roles,
        "gates": {"required": [k for k in GATE_KEYS if k in required],
                  "advisory": [k for k in GATE_KEYS if k not in required]},
        "metric_rules": rules,
        "freeze_windows": windows,
        "emergency_rollback": {"allowed": bool(emergency["allowed"]),
                               "who": list(emergency.get("who") or ["maintainer"]),
                               "approvals_after": int(emergency.get("approvals_after", 0))},
    }


def digest(document: dict[str, Any] | None) -> str:
    """Return the SHA-256 of the canonical JSON of a normalised document (a removal hashes as null)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_yaml(document: dict[str, Any] | None) -> str:
    """Render a document as the YAML people edit (keys in the schema's order)."""
    if document is None:
        return "# This version lifts the protection of the target.\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def parse_scope(scope: Any) -> tuple[str, str]:
    """Return (kind, target) of a scope: "default" (the model-wide default, ("", "")), "alias:<name>",
    "stage:<Staging|Production>", or a bare stage or alias name."""
    if not isinstance(scope, str) or not scope.strip():
        raise InvalidInput("A policy scope is required: default, alias:<name> or stage:<name>.")
    scope = scope.strip()
    if scope == DEFAULT_SCOPE:
        return "", ""
    kind, _, target = scope.partition(":") if ":" in scope else ("", "", scope)
    return normalise_target(kind or None, target)


def normalise_target(kind: str | None, target: str) -> tuple[str, str]:
    """Return a valid (kind, target): a protectable stage or an alias; the kind is inferred when not given."""
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput("A target (a stage such as Production, or an alias such as champion) is required.")
    target = target.strip()
    if kind in (None, ""):
        kind = TargetKind.STAGE if target.lower() in {s.lower() for s in Stage.values} else TargetKind.ALIAS
    if kind == TargetKind.STAGE:
        stage = validation.stage(target)
        if stage not in PROTECTABLE_STAGES:
            raise InvalidInput(f"Only {' and '.join(PROTECTABLE_STAGES)} can be protected, not {stage}.")
        return TargetKind.STAGE, stage
    if kind == TargetKind.ALIAS:
        return TargetKind.ALIAS, validation.alias_name(target.lstrip("@"))
    raise InvalidInput(f"Unknown target kind {kind!r}; use 'stage' or 'alias'.")


def from_protection(*, approvals_required: int, required_gates: list[str] | None, allow_emergency_rollback: bool,
                    metric_rules: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Translate the settings of a protected target (the form before policies) into the normalised document that
    decides exactly the same moves."""
    gates = list(GATE_KEYS) if required_gates is None else [k for k in GATE_KEYS if k in required_gates]
    return normalise({
        "quorum": approvals_required,
        "gates": {"required": gates},
        "metric_rules": [{"metric": str(r["metric"]), "direction": "higher" if r.get("higher_is_better", True)
                          else "lower", "against": "holder", "margin": float(r.get("margin", 0.0) or 0.0)}
                         for r in (metric_rules or [])],
        "emergency_rollback": {"allowed": bool(allow_emergency_rollback), "who": ["maintainer"],
                               "approvals_after": 0},
    })


def protection_fields(document: dict[str, Any] | None) -> dict[str, Any]:
    """The summary a ProtectedTarget row keeps of its active policy (for the pages and plug-ins that read it)."""
    assert document is not None
    return {"approvals_required": document["quorum"], "required_gates": list(document["gates"]["required"]),
            "allow_emergency_rollback": document["emergency_rollback"]["allowed"],
            "metric_rules": [{"metric": r["metric"], "higher_is_better": r["direction"] == "higher",
                              "margin": r.get("margin", 0.0), "against": r["against"],
                              **({"value": r["value"]} if r["against"] == "floor" else {})}
                             for r in document["metric_rules"]]}
