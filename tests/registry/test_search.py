"""The search filter language: every operator, tags, metrics, precedence, and precise errors."""

from __future__ import annotations

import pytest

from registry import services
from registry.models import ModelVersion, RegisteredModel
from registry.search import parser as search
from registry.search.compiler import compile_model_filter, compile_version_filter
from registry.search.parser import FilterError

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(owner, make_version):
    """churn (team=ml, `env name`=prod; v1 auc .85, v2 auc .95), fraud (team=risk; v1 auc .7), untagged."""
    churn = services.model_create(
        actor=owner, name="churn", description="Predicts churn.", tags={"team": "ml", "env name": "prod"}
    )
    fraud = services.model_create(actor=owner, name="fraud", description="Flags fraud.", tags={"team": "risk"})
    services.model_create(actor=owner, name="untagged")
    make_version(churn, run_id="run-a", metrics={"auc": 0.85, "loss": 0.4}, params={"lr": "0.1"},
                 semver="1.0.0", tags={"candidate": "yes"})
    make_version(churn, run_id="run-b", metrics={"auc": 0.95}, params={"lr": "0.01"})
    make_version(fraud, run_id="run-c", metrics={"auc": 0.7}, source_uri="s3://bucket/fraud")
    services.version_transition_stage(version=churn.versions.get(number=2), actor=owner, stage="Production")
    return churn, fraud


def models(text):
    return sorted(RegisteredModel.objects.filter(compile_model_filter(text)).values_list("name", flat=True))


def versions(text):
    qs = ModelVersion.objects.filter(compile_version_filter(text))
    return sorted(f"{name}/{number}" for name, number in qs.values_list("model__name", "number"))


# -------------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["churn", "fraud", "untagged"]),
        ("name = 'churn'", ["churn"]),
        ('name = "churn"', ["churn"]),
        ("name == 'churn'", ["churn"]),
        ("name != 'churn'", ["fraud", "untagged"]),
        ("name <> 'churn'", ["fraud", "untagged"]),
        ("name < 'fraud'", ["churn"]),
        ("name <= 'fraud'", ["churn", "fraud"]),
        ("name > 'fraud'", ["untagged"]),
        ("name >= 'fraud'", ["fraud", "untagged"]),
        ("name LIKE 'ch%'", ["churn"]),
        ("name LIKE '%ud'", ["fraud"]),
        ("name LIKE '%a%'", ["fraud", "untagged"]),
        ("name LIKE 'fr_ud'", ["fraud"]),
        ("name LIKE 'churn'", ["churn"]),
        ("name NOT LIKE 'ch%'", ["fraud", "untagged"]),
        ("name IN ('churn', 'fraud')", ["churn", "fraud"]),
        ("name NOT IN ('churn')", ["fraud", "untagged"]),
        ("description LIKE '%fraud%'", ["fraud"]),
        ("name like 'ch%' or name = 'fraud'", ["churn", "fraud"]),
    ],
)
def test_model_filter_operators(catalog, text, expected):
    assert models(text) == expected


def test_like_is_case_sensitive_and_ilike_is_not(catalog, owner):
    services.model_create(actor=owner, name="Fraud-Large")
    assert models("name ILIKE 'FRAUD%'") == ["Fraud-Large", "fraud"]
    assert models("name ILIKE '%LARGE'") == ["Fraud-Large"]
    assert models("name ILIKE 'fr_ud%'") == ["Fraud-Large", "fraud"]
    assert models("name LIKE 'Fr_ud%'") == ["Fraud-Large"]
    # Without '_' the pattern compiles to startswith/contains; LIKE must still respect case.
    assert models("name LIKE 'Fraud%'") == ["Fraud-Large"]
    assert models("name LIKE '%Large'") == ["Fraud-Large"]
    assert models("name LIKE '%large%'") == []
    assert models("name NOT LIKE 'fraud%'") == ["Fraud-Large", "churn", "untagged"]


def test_like_prefix_is_exactly_the_prefix(catalog, owner):
    """A plain `LIKE 'prefix%'` compiles to a range scan on SQLite: neighbours and case must stay outside."""
    for name, team in [("frauc", "zé"), ("fraue", "zéa"), ("fraud-2", "zf"), ("FRAUD-3", "Zé"), ("fraud-x", "z\uffff")]:
        services.model_create(actor=owner, name=name, tags={"team": team})
    assert models("name LIKE 'fraud%'") == ["fraud", "fraud-2", "fraud-x"]
    assert models("name LIKE 'fraud-%'") == ["fraud-2", "fraud-x"]
    assert models("name NOT LIKE 'fraud%'") == ["FRAUD-3", "churn", "frauc", "fraue", "untagged"]
    assert models("tags.team LIKE 'zé%'") == ["frauc", "fraue"]
    assert models("tags.team LIKE 'z\uffff%'") == ["fraud-x"]
    assert models("tags.team LIKE 'z%'") == ["frauc", "fraud-2", "fraud-x", "fraue"]


def test_like_wildcards_cross_lines(catalog, owner):
    services.model_create(actor=owner, name="multi", description="# Title\n\nPredicts churn weekly.\n")
    assert models("description LIKE '%ch_rn%'") == ["churn", "multi"]
    assert models("description ILIKE '%CH_RN WEEKLY%'") == ["multi"]


# ------------------------------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags.team = 'ml'", ["churn"]),
        ("tag.team = 'ml'", ["churn"]),
        ("tags.`team` = 'risk'", ["fraud"]),
        ('tags."team" = \'risk\'', ["fraud"]),
        ("tag.`env name` = 'prod'", ["churn"]),
        ("tags.`env name` LIKE 'pr%'", ["churn"]),
        ("tags.team IN ('ml', 'risk')", ["churn", "fraud"]),
        ("tags.team LIKE 'r%'", ["fraud"]),
        ("tags.team ILIKE 'ML'", ["churn"]),
        ("tags.team != 'ml'", ["fraud", "untagged"]),
        ("tags.team NOT LIKE 'm%'", ["fraud", "untagged"]),
        ("tags.team NOT IN ('risk')", ["churn", "untagged"]),
        ("tags.missing = 'x'", []),
    ],
)
def test_model_tag_filters(catalog, text, expected):
    assert models(text) == expected


# ---------------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.auc > 0.9", ["churn"]),
        ("metric.auc > 0.9", ["churn"]),
        ("metrics.auc < 0.9", ["churn", "fraud"]),  # churn v1 (0.85) matches: any version counts
        ("metrics.auc <= 0.7", ["fraud"]),
        ("metrics.auc >= 0.85", ["churn"]),
        ("metrics.auc = 0.7", ["fraud"]),
        ("metrics.loss > 0", ["churn"]),
        ("metrics.auc > 2", []),
        ("tags.team = 'ml' AND metrics.auc > 0.9", ["churn"]),
    ],
)
def test_model_metric_filters(catalog, text, expected):
    assert models(text) == expected


@pytest.mark.parametrize("text", ["metrics.a__b > 1", "metrics.`a__b` > 1", "metrics.`a'b` > 1"])
def test_metric_names_with_unsafe_characters_rejected(catalog, text):
    with pytest.raises(FilterError, match="metric"):
        models(text)
    with pytest.raises(FilterError, match="metric"):
        versions(text)


# --------------------------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version_number = 2", ["churn/2"]),
        ("version_number != 1", ["churn/2"]),
        ("version_number < 2", ["churn/1", "fraud/1"]),
        ("version_number <= 2", ["churn/1", "churn/2", "fraud/1"]),
        ("version_number > 1", ["churn/2"]),
        ("version_number >= 1", ["churn/1", "churn/2", "fraud/1"]),
        ("version_number IN (2, 3)", ["churn/2"]),
        ("version = 1 AND name = 'fraud'", ["fraud/1"]),
        ("run_id = 'run-b'", ["churn/2"]),
        ("run_id LIKE 'run-%'", ["churn/1", "churn/2", "fraud/1"]),
        ("run_id IN ('run-a', 'run-c')", ["churn/1", "fraud/1"]),
        ("run_id != 'run-a'", ["churn/2", "fraud/1"]),
        ("name = 'churn'", ["churn/1", "churn/2"]),
        ("stage = 'Production'", ["churn/2"]),
        ("current_stage != 'Production'", ["churn/1", "fraud/1"]),
        ("semver = '1.0.0'", ["churn/1"]),
        ("source_path LIKE 's3://%'", ["fraud/1"]),
        ("metrics.auc > 0.9", ["churn/2"]),
        ("metrics.auc != 0.95", ["churn/1", "fraud/1"]),
        ("metrics.loss < 1", ["churn/1"]),
        ("params.lr = '0.1'", ["churn/1"]),
        ("tags.candidate = 'yes'", ["churn/1"]),
        ("tags.candidate != 'yes'", ["churn/2", "fraud/1"]),
    ],
)
def test_version_filters(catalog, text, expected):
    assert versions(text) == expected


# ------------------------------------------------------------------------------------ precedence, parens


def test_and_binds_tighter_than_or(catalog):
    # ml OR (fraud AND untagged) -> churn; left-to-right would give (ml OR fraud) AND untagged -> nothing.
    assert models("tags.team = 'ml' OR name = 'fraud' AND name = 'untagged'") == ["churn"]
    assert models("name = 'fraud' AND name = 'untagged' OR tags.team = 'ml'") == ["churn"]


def test_parentheses_override_precedence(catalog):
    assert models("(tags.team = 'ml' OR name = 'fraud') AND name = 'fraud'") == ["fraud"]
    assert models("tags.team = 'ml' OR (name = 'fraud' AND name = 'untagged')") == ["churn"]
    assert models("((name = 'churn'))") == ["churn"]
    assert versions("name = 'churn' AND (version_number = 1 OR metrics.auc < 0.8)") == ["churn/1"]


def test_quotes_are_data_not_syntax(catalog, owner):
    services.model_create(actor=owner, name="obrien", description="o'brien")
    assert models("description = 'o''brien'") == ["obrien"]
    assert models(r"description = 'o\'brien'") == ["obrien"]
    assert models("name = 'x'' OR 1=1 --'") == []
    assert models("name = 'x\" OR 1=1 --'") == []


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(name = 'churn'", r"\)"),
        ("((name = 'churn') OR name = 'x'", r"\)"),
        ("name = 'churn')", r"Unexpected '\)'"),
        ("name =", r"ended unexpectedly|value"),
        ("name = AND name = 'x'", r"quoted string or a number"),
        ("name 'churn'", r"comparison operator"),
        ("name IS 'churn'", r"NULL or NOT NULL after IS"),
        ("colour = 'red'", r"Unknown field 'colour'"),
        ("tags = 'x'", r"Unknown field 'tags'"),
        # The error must point at the bad character itself, not the whitespace before it.
        ("name = 'churn' ; DROP TABLE x", r"Unexpected character ';.* at position 15"),
        ("name = 'churn' & x", r"Unexpected character '&.* at position 15"),
        ("name = 'churn'&x", r"Unexpected character '&x' at position 14"),
        ("name = 'unterminated", r"Unexpected character"),
        ("churn", r"ended unexpectedly|comparison operator"),
        ("churn model", r"comparison operator after 'churn'"),
        ("name = 'a' name = 'b'", r"Unexpected 'name'"),
        ("name = 'a' AND", r"ended unexpectedly"),
        ("AND name = 'a'", r"field name"),
        ("name IN 'churn'", r"parenthesised list"),
        ("name IN ('a' 'b')", r"',' or '\)'"),
        ("name NOT = 'a'", r"LIKE, ILIKE or IN after NOT"),
        ("name LIKE 3", r"quoted pattern"),
        ("metrics.auc LIKE '0.9%'", r"metrics.auc supports"),
        ("metrics.auc > 'high'", r"number"),
        ("()", r"field name"),
        ("tags.team IS NULL", r"IS NULL is not supported in a registered model filter"),
        ("name IS 'x'", r"NULL or NOT NULL after IS"),
        ("name IS NOT 'x'", r"NULL or NOT NULL after IS"),
        ("name IS NOT", r"ended unexpectedly"),
    ],
)
def test_model_filter_syntax_errors_name_the_problem(text, message):
    with pytest.raises(FilterError, match=message):
        compile_model_filter(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version_number LIKE '1%'", r"version_number supports"),
        ("version_number = 'two'", r"number"),
        ("description = 'x'", r"Unknown field 'description'"),
        ("params.a__b = 'x'", r"param"),
        ("tags.k IS NOT NULL", r"IS NOT NULL is not supported in a model version filter"),
    ],
)
def test_version_filter_errors(text, message):
    with pytest.raises(FilterError, match=message):
        compile_version_filter(text)


def test_filter_errors_are_invalid_input_and_length_is_capped():
    from registry.errors import InvalidInput

    assert issubclass(FilterError, InvalidInput)
    with pytest.raises(FilterError, match="longer than"):
        compile_model_filter("name = 'x' OR " * 400 + "name = 'y'")
    assert compile_model_filter("name = 'x'" + " " * (search.MAX_FILTER_LENGTH - 10)) is not None


# ------------------------------------------------------------------------------------------ nesting depth


def _nested(levels: int) -> str:
    return "(" * levels + "name = 'churn'" + ")" * levels


def test_parentheses_nest_up_to_the_cap_and_no_deeper(catalog):
    assert models(_nested(search.MAX_NESTING)) == ["churn"]
    with pytest.raises(FilterError, match=f"deeper than {search.MAX_NESTING}"):
        compile_model_filter(_nested(search.MAX_NESTING + 1))
    with pytest.raises(FilterError, match="deeper than"):  # unclosed: the cap answers before the end is reached
        compile_version_filter("(" * 1900)


# Within the length cap, 1,900 levels would exhaust Python's recursion (a 500) without the depth cap; 10,000
# levels are refused by the length cap first. Both must be a plain 400 in every API.
DEEP_FILTERS = [_nested(1900), "(" * 1990 + "name = 'x' OR name = 'y'" + ")" * 1980, _nested(10_000)]


@pytest.mark.parametrize("text", DEEP_FILTERS)
@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/versions", "/api/v1/models/churn/versions"])
def test_deeply_nested_filter_is_400_in_the_native_api(catalog, owner, api_client_for, path, text):
    response = api_client_for(owner).get(path, {"filter": text})
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETER_VALUE"
    assert "deeper than" in error["message"] or "longer than" in error["message"]


@pytest.mark.parametrize("text", DEEP_FILTERS)
@pytest.mark.parametrize("path", ["registered-models/search", "model-versions/search", "experiments/search"])
def test_deeply_nested_filter_is_400_in_the_mlflow_api(catalog, owner, api_client_for, path, text):
    response = api_client_for(owner).get(f"/api/2.0/mlflow/{path}", {"filter": text})
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "deeper than" in body["message"] or "longer than" in body["message"]


def test_deeply_nested_filter_is_400_in_mlflow_logged_model_search(owner, api_client_for):
    response = api_client_for(owner).post("/api/2.0/mlflow/logged-models/search",
                                          {"experiment_ids": ["0"], "filter": _nested(1900)}, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_is_null_parses_to_a_comparison_without_value():
    node = search.parse("tags.a IS NULL AND params.`b c` is not null")
    assert node.operands == (search.Comparison("tags.a", "IS NULL", None),
                             search.Comparison("params.`b c`", "IS NOT NULL", None))
