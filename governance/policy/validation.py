"""The checks a policy needs beyond its schema: gates and metrics that exist, people who can approve, windows that
end. Each refusal names the field by its JSON pointer."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel

from . import freeze, people
from .schema import check_schema, normalise, parse, refuse


def validate(source: Any, *, model: RegisteredModel, check_people: bool = True) -> tuple[dict[str, Any], str]:
    """Return (normalised document, source text) of a YAML/JSON policy for `model`, or raise PolicyInvalid.

    `check_people` also refuses a quorum or role count larger than the people who could approve now (the settings
    form that predates policies keeps its old rule: a number from 1 to 10)."""
    document, text = parse(source)
    check_schema(document)
    errors = _semantic_errors(document, model)
    if not errors:
        normalised = normalise(document)
        if check_people:
            errors = _people_errors(normalised, model)
    if errors:
        raise refuse(errors)
    return normalised, text


def _semantic_errors(document: dict[str, Any], model: RegisteredModel) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    gates = document.get("gates") or {}
    both = set(gates.get("required") or []) & set(gates.get("advisory") or [])
    for index, key in enumerate(gates.get("advisory") or []):
        if key in both:
            errors.append((f"/gates/advisory/{index}", f"Gate {key!r} is listed as both required and advisory."))
    rules = document.get("metric_rules") or []
    known = _known_metrics(model, {r["metric"].strip() for r in rules})
    for index, rule in enumerate(rules):
        name = rule["metric"].strip()
        if name not in known:
            errors.append((f"/metric_rules/{index}/metric",
                           f"No version of {model.name!r} records a metric named {name!r}."))
        if rule.get("against") == "floor" and "margin" in rule:
            errors.append((f"/metric_rules/{index}/margin", "A floor rule compares with its value; it takes no "
                                                            "margin."))
        if rule.get("against", "holder") == "holder" and "value" in rule:
            errors.append((f"/metric_rules/{index}/value", "A rule against the holder takes a margin, not a value "
                                                           "(use against: floor for an absolute bound)."))
    for index, window in enumerate(document.get("freeze_windows") or []):
        errors.extend(_window_errors(index, window))
    roles = document.get("roles") or {}
    needed = sum(roles.values())
    if needed > document["quorum"]:
        errors.append(("/roles", f"The roles need {needed} distinct approvals, more than the quorum of "
                                 f"{document['quorum']}; raise the quorum to at least {needed}."))
    if not errors:
        normalised = normalise(document)
        if freeze.always_frozen(normalised["freeze_windows"], timezone.now()):
            errors.append(("/freeze_windows", "Together these freeze windows cover every minute of the week: no "
                                              "version could ever be moved onto the target."))
    return errors


def _window_errors(index: int, window: dict[str, Any]) -> list[tuple[str, str]]:
    errors = []
    base = f"/freeze_windows/{index}"
    if "timezone" in window and freeze.zone(window["timezone"]) is None:
        errors.append((f"{base}/timezone", f"Unknown timezone {window['timezone']!r} (use an IANA name such as "
                                           "Europe/Paris or UTC)."))
        return errors
    if "days" in window:
        start, end = window.get("start", "00:00"), window.get("end", "24:00")
        if start >= end:
            errors.append((f"{base}/end", f"The window ends ({end}) before it starts ({start}); split a window "
                                          "over midnight into two days."))
        return errors
    try:
        start, end = freeze.dated_bounds({"timezone": "UTC", **window})
    except ValueError as error:
        errors.append((f"{base}/from", f"Not a valid date or time: {error}."))
        return errors
    if end <= start:
        errors.append((f"{base}/until", "The window ends before it starts."))
    return errors


def _known_metrics(model: RegisteredModel, names: set[str]) -> set[str]:
    """Return which of `names` some version of the model records (one query per name, names are few)."""
    return {name for name in names
            if ModelVersion.objects.filter(model_id=model.pk, metrics__has_key=name).exists()}


def _people_errors(document: dict[str, Any], model: RegisteredModel) -> list[tuple[str, str]]:
    errors = []
    roles = document["roles"]
    holders = {"reviewer": people.reviewers(model), "compliance": people.compliance_viewers(model)}
    for role, count in roles.items():
        have = holders[role].count()
        if count > have:
            who = "reviewers of the model" if role == "reviewer" else "compliance members who can see the model"
            errors.append((f"/roles/{role}", f"Needs {count} approval(s) from {who}, but only {have} such people "
                                             "exist: no request could ever be approved."))
    eligible = people.approvers(model, compliance=bool(roles.get("compliance"))).count()
    if document["quorum"] > eligible:
        errors.append(("/quorum", f"A quorum of {document['quorum']} is more than the {eligible} people who could "
                                  f"approve a promotion of {model.name!r}."))
    emergency = document["emergency_rollback"]
    if emergency["allowed"] and emergency["approvals_after"] > eligible:
        errors.append(("/emergency_rollback/approvals_after",
                       f"{emergency['approvals_after']} approvals after the fact are more than the {eligible} "
                       "people who could approve."))
    return errors
