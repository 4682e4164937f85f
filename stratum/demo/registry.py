"""Seed a demo registry: users with roles and real scikit-learn models trained on bundled datasets.

Everything goes through the registry services, so the demo data carries the same audit events,
validation and artifact handling as data registered by a real client. Seeding is idempotent:
models are found by name and versions by semantic version, and only what is missing is created.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import joblib
import numpy as np
import sklearn
import time_machine
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from registry import access, services
from registry.artifacts.storage import SpooledUpload, spool_stream
from registry.errors import Forbidden
from registry.models import AccessToken, ModelRole, ModelVersion, RegisteredModel, Stage
from stratum.demo import deployments as deployments_demo
from stratum.demo import governance as governance_demo
from stratum.demo import lineage as lineage_demo
from stratum.demo.catalogue import (
    CHALLENGER,
    CHAMPION,
    CODE_REPOSITORY,
    DEFAULT_USERS,
    DEMO_MODELS,
    DEMO_TOKEN_NAME,
    SEED,
    TEST_SIZE,
    DemoUser,
    ModelSpec,
    VersionSpec,
)


@dataclass
class SeedReport:
    """What a seeding run did: the logins, what it created, and the engineer's API token if it made one."""

    users: list[tuple[DemoUser, bool]] = field(default_factory=list)  # (user, newly created)
    models_created: list[str] = field(default_factory=list)
    versions_created: list[str] = field(default_factory=list)
    token: str | None = None
    access_note: str = ""
    notes: list[str] = field(default_factory=list)  # lifecycle moves a promotion gate kept for people to make
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # what other apps' demo receivers added

    @property
    def changed(self) -> bool:
        return bool(self.models_created or self.versions_created or any(new for _, new in self.users))


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class _Split:
    """A train/test split of one bundled dataset, with its provenance."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    target_names: list[str]


def _load_split(spec: ModelSpec) -> _Split:
    bunch = spec.loader()
    stratify = None if spec.task == "regression" else bunch.target
    X_train, X_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=TEST_SIZE, random_state=SEED, stratify=stratify
    )
    target_names = [str(t) for t in getattr(bunch, "target_names", [])] if spec.task != "regression" else []
    return _Split(X_train, X_test, y_train, y_test, [str(f) for f in bunch.feature_names], target_names)


def _digest(X: np.ndarray, y: np.ndarray) -> str:
    """sha256 over the exact bytes of a split (features, then target)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(y).tobytes())
    return f"sha256:{h.hexdigest()}"


def _datasets(spec: ModelSpec, split: _Split) -> list[dict[str, str]]:
    base = f"sklearn://datasets/{spec.loader.__name__}?test_size={TEST_SIZE}&random_state={SEED}"
    return [
        {"name": f"{spec.dataset_name}-train", "uri": f"{base}&split=train",
         "digest": _digest(split.X_train, split.y_train), "role": "train"},
        {"name": f"{spec.dataset_name}-test", "uri": f"{base}&split=test",
         "digest": _digest(split.X_test, split.y_test), "role": "test"},
    ]


def _signature(spec: ModelSpec, split: _Split) -> dict[str, Any]:
    inputs = [{"name": name, "type": "double"} for name in split.feature_names]
    if spec.task == "regression":
        outputs = [{"name": "progression", "type": "double"}]
    else:
        outputs = [{"name": "class", "type": "long", "labels": split.target_names}]
    return {"inputs": inputs, "outputs": outputs}


def _environment() -> list[str]:
    import scipy

    return [
        f"python=={platform.python_version()}",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={np.__version__}",
        f"scipy=={scipy.__version__}",
        f"joblib=={joblib.__version__}",
    ]


# ------------------------------------------------------------------------------------------------ time

HISTORY_WEEKS_BEFORE_NOW = 3  # the newest demo version was trained three weeks before the seeding


@contextlib.contextmanager
def _at(moment: datetime) -> Iterator[None]:
    """Run the block as if it happened at `moment` (the clock keeps ticking from there).

    The demo replays weeks of history in seconds; travelling in time (rather than rewriting timestamps after
    the fact) keeps every row, audit event and hash consistent with the date it claims.
    """
    if abs((timezone.now() - moment).total_seconds()) < 60:
        yield
        return
    with time_machine.travel(moment, tick=True):
        yield


def _trained_at(index: int, spec: ModelSpec, vspec: VersionSpec, started: datetime) -> datetime:
    """When the demo pretends `vspec` was trained: one week apart, staggered by a few hours per model."""
    position = [v.semver for v in spec.versions].index(vspec.semver)
    weeks_ago = HISTORY_WEEKS_BEFORE_NOW + (len(spec.versions) - 1 - position)
    return started - timedelta(weeks=weeks_ago, hours=5 * index)


# -------------------------------------------------------------------------------------------- training


def _metrics(spec: ModelSpec, estimator: BaseEstimator, split: _Split) -> dict[str, float]:
    predicted = estimator.predict(split.X_test)
    if spec.task == "regression":
        out = {
            "r2": r2_score(split.y_test, predicted),
            "rmse": np.sqrt(mean_squared_error(split.y_test, predicted)),
            "mae": mean_absolute_error(split.y_test, predicted),
        }
        return {key: round(float(value), 6) for key, value in out.items()}
    proba = estimator.predict_proba(split.X_test)
    out = {"accuracy": accuracy_score(split.y_test, predicted)}
    if spec.task == "binary":
        out |= {
            "f1": f1_score(split.y_test, predicted),
            "precision": precision_score(split.y_test, predicted),
            "recall": recall_score(split.y_test, predicted),
            "roc_auc": roc_auc_score(split.y_test, proba[:, 1]),
        }
    else:
        out |= {
            "f1_macro": f1_score(split.y_test, predicted, average="macro"),
            "roc_auc_ovr": roc_auc_score(split.y_test, proba, multi_class="ovr"),
        }
    return {key: round(float(value), 6) for key, value in out.items()}


def _params(spec: ModelSpec, vspec: VersionSpec, estimator: Pipeline) -> dict[str, str]:
    final = estimator.named_steps["model"]
    params = {"algorithm": vspec.algorithm, "estimator": type(final).__name__,
              "scaler": "standard" if "scaler" in estimator.named_steps else "none",
              "test_size": str(TEST_SIZE), "split_random_state": str(SEED)}
    for key, value in sorted(final.get_params(deep=False).items()):
        if isinstance(value, str) and value == "deprecated":  # a placeholder sklearn keeps for removed params
            continue
        params[key] = "" if value is None else str(value)
    return params


def _ids(spec: ModelSpec, vspec: VersionSpec) -> tuple[str, str]:
    """A deterministic MLflow-style run id (32 hex) and git commit (40 hex) for a training run."""
    seed = f"{spec.name}@{vspec.semver}".encode()
    return hashlib.sha256(b"run:" + seed).hexdigest()[:32], hashlib.sha1(b"commit:" + seed).hexdigest()  # noqa: S324


def _mlmodel(spec: ModelSpec, run_id: str) -> bytes:
    """A minimal MLflow MLmodel file describing the pickled scikit-learn model beside it."""
    return (
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "    model_path: model.pkl\n"
        f"    predict_fn: {'predict' if spec.task == 'regression' else 'predict_proba'}\n"
        f"    python_version: {platform.python_version()}\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    serialization_format: pickle\n"
        f"    sklearn_version: {sklearn.__version__}\n"
        f"run_id: {run_id}\n"
    ).encode()


def _description(spec: ModelSpec, vspec: VersionSpec, metrics: dict[str, float], split: _Split) -> str:
    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in metrics.items())
    return (
        f"**{vspec.summary}**\n\n"
        f"Trained on {len(split.y_train)} rows of `{spec.loader.__name__}` and evaluated on a held-out "
        f"{len(split.y_test)} rows (random_state={SEED}).\n\n"
        f"| metric | value |\n| --- | ---: |\n{rows}\n"
    )


def _spool(data: bytes) -> SpooledUpload:
    return spool_stream(io.BytesIO(data))


def _register_version(spec: ModelSpec, vspec: VersionSpec, model: RegisteredModel, actor, split: _Split
                      ) -> ModelVersion:
    estimator = vspec.build()
    estimator.fit(split.X_train, split.y_train)
    metrics = _metrics(spec, estimator, split)
    run_id, commit = _ids(spec, vspec)
    buffer = io.BytesIO()
    pickle.dump(estimator, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    files = [("model.pkl", _spool(buffer.getvalue())), ("MLmodel", _spool(_mlmodel(spec, run_id))),
             ("requirements.txt", _spool(("\n".join(_environment()) + "\n").encode()))]
    return services.version_create(
        model=model, actor=actor, source_uri=f"runs:/{run_id}/model", run_id=run_id,
        description=_description(spec, vspec, metrics, split), semver=vspec.semver, metrics=metrics,
        params=_params(spec, vspec, estimator), signature=_signature(spec, split),
        code_repository=CODE_REPOSITORY, code_commit=commit, environment=_environment(),
        datasets=_datasets(spec, split), tags={"algorithm": vspec.algorithm, "dataset": spec.dataset_name},
        files=files,
    )


def _finish_job(job) -> Any:
    """Run a pipeline job in this process (a worker already holding it finishes it instead), and wait for it."""
    from registry.models import JobState
    from registry.pipeline.services import job_run

    deadline = time.monotonic() + 180
    job.refresh_from_db()
    while job.state not in (JobState.SUCCEEDED, JobState.FAILED) and time.monotonic() < deadline:
        if job_run(job.pk) is None:
            time.sleep(0.5)
        job.refresh_from_db()
    return job


def _prepare_for_serving(version: ModelVersion, actor) -> str | None:
    """Scan, convert to ONNX and sign a demo version, so the gateway can serve it; return what failed, if anything."""
    from registry.models import ArtifactFormat, JobState
    from registry.pipeline import selectors as pipeline_selectors
    from registry.pipeline import services as pipeline

    for artifact in version.artifacts.all():
        _finish_job(pipeline.scan_enqueue(artifact))
    if not version.artifacts.filter(format=ArtifactFormat.ONNX).exists():
        source = version.artifacts.filter(format__in=(ArtifactFormat.PICKLE, ArtifactFormat.JOBLIB)).first()
        if source is None:
            return "no scikit-learn file to convert"
        job = _finish_job(pipeline.convert_enqueue(artifact=source, actor=actor))
        if job.state != JobState.SUCCEEDED:
            return f"conversion failed: {job.error}"
        for artifact in version.artifacts.all():  # the ONNX file and its parity report (each scanned once)
            _finish_job(pipeline.scan_enqueue(artifact))
    if pipeline_selectors.version_signature_status(version=version)["status"] != "verified":
        job = _finish_job(pipeline.sign_enqueue(version=version, actor=actor))
        if job.state != JobState.SUCCEEDED:
            return f"signing failed: {job.error}"
    return None


def _ranked(spec: ModelSpec, model: RegisteredModel) -> list[ModelVersion]:
    """The demo versions of `model`, best primary metric first (no metric last; on a tie the newer first)."""
    metric, higher_is_better = spec.primary_metric
    sign = -1 if higher_is_better else 1
    return sorted(
        model.versions.filter(semver__in=[v.semver for v in spec.versions]),
        key=lambda v: (metric not in v.metrics, sign * v.metrics.get(metric, 0.0), -v.number),
    )


def _move(version: ModelVersion, actor, stage: str | None, alias: str | None, report: SeedReport) -> None:
    """Set a stage and an alias directly (targets not protected yet); a refusing gate is noted, never forced."""
    model = version.model
    try:
        if stage and version.stage != stage:
            services.version_transition_stage(version=version, actor=actor, stage=stage)
        if alias and not model.aliases.filter(name=alias, version=version).exists():
            services.alias_set(model=model, alias=alias, version=version, actor=actor)
    except Forbidden as refused:
        report.notes.append(f"{model.name} v{version.number}: left as is ({refused.message})")


def _play_history(spec: ModelSpec, model: RegisteredModel, owner, accounts: dict[str, Any], report: SeedReport,
                  created: dict[int, datetime]) -> None:
    """Replay a few weeks of the model's life, each step at its own date.

    The runner-up becomes the first champion (in Production) the day after it was trained; Production and
    @champion are then protected (two approvals); each of the two best versions gets a complete card, approved
    by a reviewer; the best version is promoted to @champion and Production through requests that both
    reviewers approve; the former champion stays warm in Staging as @challenger. The model history therefore
    holds a real earlier champion, and a rollback has somewhere to go.
    """
    versions = _ranked(spec, model)
    for version in versions[:2]:  # champion and challenger, before their stages freeze their files
        with _at(created.get(version.pk, timezone.now()) + timedelta(hours=2)):
            problem = _prepare_for_serving(version, owner)
        if problem:
            report.notes.append(f"{model.name} v{version.number}: not prepared for serving ({problem})")
    if not versions:
        return
    best, earlier = versions[0], (versions[1] if len(versions) > 1 else None)
    first_champion = earlier or best
    t1 = created.get(first_champion.pk, timezone.now()) + timedelta(days=1)
    with _at(t1):
        for version in versions[2:]:
            _move(version, owner, Stage.ARCHIVED, None, report)
        _move(first_champion, owner, Stage.PRODUCTION, CHAMPION, report)
    with _at(t1 + timedelta(hours=3)):
        governance_demo.protect_model(model=model, actor=owner)
    reviewers = [accounts[name] for name in governance_demo.REVIEWERS if name in accounts]
    if earlier is None or len(reviewers) < 2:
        return
    t2 = max(t1, created.get(best.pk, t1)) + timedelta(days=5)
    with _at(t2 - timedelta(days=3)):
        for version in (earlier, best):
            governance_demo.card_complete_and_approve(version=version, author=owner, reviewer=reviewers[0])
    for offset, (kind, target) in enumerate((("alias", CHAMPION), ("stage", Stage.PRODUCTION))):
        def clock(step: int, offset: int = offset) -> Any:
            return _at(t2 - timedelta(days=2) + timedelta(hours=6 * offset) + timedelta(hours=20 * step))
        request = governance_demo.promote_with_reviews(
            version=best, kind=kind, target=target, requester=owner, reviewers=reviewers, clock=clock,
            justification=(f"Version {best.number} beats version {earlier.number} on {spec.primary_metric[0]} on "
                           "the same hold-out split; its card is complete and approved, and it is scanned and "
                           "signed."))
        if request.state != "executed":
            blocking = ", ".join(r["label"] for r in request.gate_results if r.get("blocking"))
            report.notes.append(f"{model.name} v{best.number}: promotion to {target} {request.state} ({blocking})")
    with _at(t2 + timedelta(days=1)):
        _move(earlier, owner, Stage.STAGING, CHALLENGER, report)


def _complete_lifecycle(spec: ModelSpec, model: RegisteredModel, actor, report: SeedReport) -> None:
    """On a model that already has its story (a re-run after a version was deleted), archive what is new."""
    held = set(model.aliases.values_list("version_id", flat=True))
    for version in _ranked(spec, model):
        if version.pk not in held and version.stage == Stage.NONE:
            _move(version, actor, Stage.ARCHIVED, None, report)


# ------------------------------------------------------------------------------------------- top level


def _ensure_users(users: tuple[DemoUser, ...], reset_passwords: bool, report: SeedReport) -> dict[str, Any]:
    User = get_user_model()
    found: dict[str, Any] = {}
    for demo in users:
        user = User.objects.filter(username=demo.username).first()
        created = user is None
        if created:
            user = User(username=demo.username, email=f"{demo.username}@stratum.example",
                        is_staff=demo.superuser, is_superuser=demo.superuser)
        if created or reset_passwords:
            user.set_password(demo.password)
            user.save()
        found[demo.username] = user
        report.users.append((demo, created))
    return found


def _ensure_roles(
    model: RegisteredModel, owner, users: tuple[DemoUser, ...], accounts: dict[str, Any]
) -> None:
    for demo in users:
        user = accounts[demo.username]
        if demo.role is None or user.pk == model.owner_id:
            continue
        if not ModelRole.objects.filter(model=model, user=user, role=demo.role).exists():
            access.role_grant(model=model, actor=owner, user=user, role=demo.role)


def _ensure_token(engineer, report: SeedReport) -> None:
    live = AccessToken.objects.filter(user=engineer, name=DEMO_TOKEN_NAME, revoked_at__isnull=True).first()
    if live is not None:
        report.access_note = (
            f"engineer already has the demo API token {access.TOKEN_PREFIX}{live.prefix}_… "
            "(secrets are shown only when created); revoke it to have the next seeding create a new one."
        )
        return
    _, raw = access.token_create(user=engineer, actor=engineer, name=DEMO_TOKEN_NAME)
    report.token = raw
    report.access_note = "New API token for engineer (shown once; it is stored only as a hash):"


def seed_demo(
    *, users: tuple[DemoUser, ...] = DEFAULT_USERS, models: tuple[ModelSpec, ...] | None = None,
    reset_passwords: bool = False,
) -> SeedReport:
    """Create the demo users, models, versions, stages, aliases and engineer token that do not exist yet."""
    models = DEMO_MODELS if models is None else models
    report = SeedReport()
    with transaction.atomic():
        accounts = _ensure_users(users, reset_passwords, report)
    engineer = accounts["engineer"]
    started = timezone.now()
    for index, spec in enumerate(models):
        # One transaction per model: an interrupted run leaves whole models, and the next run completes it.
        with transaction.atomic():
            model = RegisteredModel.objects.filter(name=spec.name).first()
            touched = model is None
            if model is None:
                model = services.model_create(actor=engineer, name=spec.name, description=spec.description,
                                              tags={"team": spec.team, "task": spec.task,
                                                    "dataset": spec.dataset_name})
                report.models_created.append(spec.name)
            owner = model.owner or engineer
            _ensure_roles(model, owner, users, accounts)
            existing = set(model.versions.values_list("semver", flat=True))
            missing = [v for v in spec.versions if v.semver not in existing]
            split = _load_split(spec) if missing else None
            fresh = not model.aliases.filter(name=CHAMPION).exists()
            created: dict[int, datetime] = {}
            for vspec in missing:
                # A fresh model's versions are trained a week apart, ending three weeks ago (see _trained_at).
                moment = _trained_at(index, spec, vspec, started) if fresh else timezone.now()
                with _at(moment):
                    version = _register_version(spec, vspec, model, owner, split)
                created[version.pk] = moment
                report.versions_created.append(f"{spec.name} v{version.number} ({vspec.semver})")
                touched = True
            # Stages and aliases are only set when this run added something, so later changes made by
            # people (a new champion, an archived version) are never undone by re-running the seed.
            if touched and fresh:
                _play_history(spec, model, owner, accounts, report, created)
            elif touched:
                _complete_lifecycle(spec, model, owner, report)
    with transaction.atomic():
        _ensure_token(engineer, report)
    demo_models = list(RegisteredModel.objects.filter(name__in=[spec.name for spec in models]).order_by("name"))
    # Then the other apps' parts of the story, on the same users and models.
    governance_demo.protect_demo_models(users=accounts, models=demo_models)
    governance_demo.seed_cards_and_erasure(users=accounts, models=demo_models, report=report)
    deployments_demo.seed_endpoints(users=accounts, models=demo_models, report=report)
    lineage_demo.seed_lineage(users=accounts, models=demo_models, specs=models, report=report)
    # Last, so the signature covers everything above.
    governance_demo.audit_checkpoint(report=report if report.changed else None)
    return report
