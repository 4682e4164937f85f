"""`manage.py seed_demo` trains real models, registers them through the services, and is idempotent."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from registry import access, permissions, services
from registry.authentication import user_for_token
from registry.models import (
    AccessToken,
    Alias,
    Artifact,
    ArtifactFormat,
    ModelRole,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Role,
    Stage,
    VersionDataset,
)
from stratum.demo import registry as demo

pytestmark = pytest.mark.django_db

MODEL_NAMES = {"breast-cancer-classifier", "wine-quality", "iris-species", "diabetes-progression"}
PASSWORDS = {"admin": "stratum-admin", "engineer": "stratum-engineer", "reviewer": "stratum-reviewer",
             "compliance": "stratum-compliance"}
TOKEN = re.compile(r"stm_[0-9a-f]{12}_\S+")


def _counts() -> dict[str, int]:
    return {
        "users": get_user_model().objects.count(),
        "models": RegisteredModel.objects.count(),
        "versions": ModelVersion.objects.count(),
        "artifacts": Artifact.objects.count(),
        "datasets": VersionDataset.objects.count(),
        "aliases": Alias.objects.count(),
        "roles": ModelRole.objects.count(),
        "model_tags": ModelTag.objects.count(),
        "tokens": AccessToken.objects.count(),
    }


def _state() -> list[tuple]:
    versions = list(ModelVersion.objects.order_by("pk").values_list("pk", "stage", "updated_at"))
    aliases = list(Alias.objects.order_by("pk").values_list("pk", "version_id", "updated_at"))
    return versions + aliases


def _seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Seeding sets four passwords per run; the production hasher would dominate the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def iris_only(monkeypatch):
    """Seed only the smallest model, for tests about re-running rather than about the models."""
    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))


# ------------------------------------------------------------------------------------------ the full seed


def _assert_models_and_versions() -> None:
    assert set(RegisteredModel.objects.values_list("name", flat=True)) == MODEL_NAMES
    engineer = get_user_model().objects.get(username="engineer")
    for model in RegisteredModel.objects.all():
        assert model.owner == engineer
        assert 3 <= model.versions.count() <= 6
        tags = dict(model.tags.values_list("key", "value"))
        assert tags["team"] and tags["task"] in {"binary", "multiclass", "regression"}
        assert model.description.startswith("# ")
        semvers = list(model.versions.order_by("number").values_list("semver", flat=True))
        assert semvers[0] == "1.0.0" and len(set(semvers)) == len(semvers)


def _assert_provenance() -> None:
    for version in ModelVersion.objects.select_related("model"):
        task = version.model.tags.get(key="task").value
        expected = {"regression": {"r2", "rmse", "mae"}, "binary": {"accuracy", "f1", "roc_auc"},
                    "multiclass": {"accuracy", "f1_macro", "roc_auc_ovr"}}[task]
        assert expected <= set(version.metrics), version
        if task != "regression":
            assert 0.8 < version.metrics["accuracy"] <= 1.0
        assert version.params["algorithm"] and version.params["estimator"]
        assert version.signature["inputs"] and version.signature["outputs"]
        assert all(col["type"] == "double" for col in version.signature["inputs"])
        assert re.fullmatch(r"[0-9a-f]{40}", version.code_commit)
        assert re.fullmatch(r"[0-9a-f]{32}", version.run_id)
        assert version.code_repository.startswith("https://")
        assert any(line.startswith("scikit-learn==") for line in version.environment)
        assert version.description.startswith("**")
        datasets = {d.role: d for d in version.datasets.all()}
        assert set(datasets) == {"train", "test"}
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", d.digest) for d in datasets.values())
        assert datasets["train"].digest != datasets["test"].digest
        formats = dict(version.artifacts.values_list("path", "format"))
        assert formats["model.pkl"] == ArtifactFormat.PICKLE  # detected from the bytes, not the name
        assert formats["MLmodel"] == ArtifactFormat.MLMODEL


def _assert_champion_and_challenger() -> None:
    ranking = {"binary": ("roc_auc", max), "multiclass": ("f1_macro", max), "regression": ("rmse", min)}
    for model in RegisteredModel.objects.all():
        aliases = {a.name: a.version for a in model.aliases.select_related("version")}
        champion, challenger = aliases["champion"], aliases["challenger"]
        assert champion.stage == Stage.PRODUCTION
        assert challenger.stage == Stage.STAGING
        others = model.versions.exclude(pk__in=[champion.pk, challenger.pk])
        assert set(others.values_list("stage", flat=True)) == {Stage.ARCHIVED}
        metric, best = ranking[model.tags.get(key="task").value]
        assert champion.metrics[metric] == best(v.metrics[metric] for v in model.versions.all())


def _assert_roles() -> None:
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not any(users[name].is_staff for name in ("engineer", "reviewer", "compliance"))
    for username, password in PASSWORDS.items():
        assert users[username].check_password(password)
    for model in RegisteredModel.objects.all():
        assert permissions.model_role(users["engineer"], model) == Role.OWNER
        assert permissions.model_role(users["reviewer"], model) == Role.REVIEWER
        assert permissions.model_role(users["compliance"], model) == Role.VIEWER


def test_seed_demo_twice(captured_events):
    """One full seed (it trains ~17 models, so it runs once here) checked from every side."""
    first = _seed()
    after_first, state, events = _counts(), _state(), len(captured_events)
    second = _seed()

    assert _counts() == after_first
    assert _state() == state
    assert len(captured_events) == events, "a re-run must emit no domain events"
    assert "nothing to create" in second

    assert after_first["versions"] == sum(len(spec.versions) for spec in demo.DEMO_MODELS)
    _assert_models_and_versions()
    _assert_provenance()
    _assert_champion_and_challenger()
    _assert_roles()

    for login, password in PASSWORDS.items():
        assert re.search(rf"{login}\s+{password}\s", first)
        assert password not in second  # existing accounts keep whatever password they have now
    token = TOKEN.search(first)
    assert token, first
    assert token.group(0) not in second and "already has the demo API token" in second
    assert AccessToken.objects.filter(user__username="engineer", name="seed-demo").count() == 1
    assert user_for_token(token.group(0)).username == "engineer"


# --------------------------------------------------------------------------------------------- re-runs


def test_token_reaches_the_api(iris_only, client):
    raw = TOKEN.search(_seed()).group(0)
    response = client.get("/api/v1/models/iris-species/aliases/champion", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    assert response.json()["stage"] == Stage.PRODUCTION


def test_rerun_keeps_later_human_changes(iris_only):
    """Once seeded, a model's aliases and stages belong to people: re-seeding never moves them back."""
    _seed()
    model = RegisteredModel.objects.get(name="iris-species")
    engineer = get_user_model().objects.get(username="engineer")
    oldest = model.versions.get(number=1)
    services.alias_set(model=model, alias="challenger", version=oldest, actor=engineer)
    _seed()
    assert model.aliases.get(name="challenger").version == oldest


def test_rerun_completes_a_partial_seed(iris_only):
    _seed()
    model = RegisteredModel.objects.get(name="iris-species")
    model.versions.get(semver="1.0.0").delete()
    _seed()
    assert sorted(model.versions.values_list("semver", flat=True)) == ["1.0.0", "1.1.0", "1.2.0"]
    assert model.versions.get(semver="1.0.0").number == 4  # numbers are never reused


def test_existing_passwords_are_kept_unless_reset(iris_only):
    _seed()
    user = get_user_model().objects.get(username="reviewer")
    user.set_password("changed-by-someone-1")
    user.save()
    _seed()
    user.refresh_from_db()
    assert user.check_password("changed-by-someone-1")
    out = _seed("--reset-passwords", "--reviewer-password", "another-pw-77")
    user.refresh_from_db()
    assert user.check_password("another-pw-77")
    assert "another-pw-77" in out


def test_revoked_token_is_replaced(iris_only):
    _seed()
    token = AccessToken.objects.get(user__username="engineer", name="seed-demo")
    access.token_revoke(token=token, actor=token.user)
    assert TOKEN.search(_seed())
    assert AccessToken.objects.filter(user__username="engineer", name="seed-demo", revoked_at__isnull=True).count() == 1


def test_a_promotion_gate_refusal_is_reported_not_forced(iris_only):
    from registry import gates
    from registry.errors import Forbidden

    _seed()
    RegisteredModel.objects.get(name="iris-species").versions.get(semver="1.0.0").delete()

    def refuse(**kwargs):
        raise Forbidden("protected in this test")

    gates.register_gate(refuse)
    try:
        out = _seed()
    finally:
        gates.unregister_gate(refuse)
    recreated = ModelVersion.objects.get(model__name="iris-species", semver="1.0.0")
    assert recreated.stage == Stage.NONE
    assert "protected in this test" in out
