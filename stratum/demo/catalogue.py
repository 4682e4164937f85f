"""The demo's cast and catalogue: the logins with their roles, and each demo model with the versions to train."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn import datasets as sk_datasets
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from registry.models import Role

SEED = 42
TEST_SIZE = 0.25
CODE_REPOSITORY = "https://github.com/stratum-demo/model-training"
DEMO_TOKEN_NAME = "seed-demo"  # noqa: S105 (a label, not a secret)
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class DemoUser:
    """A demo login: its password, whether it is a superuser, and the role it holds on every demo model."""

    username: str
    password: str
    superuser: bool = False
    role: int | None = None
    description: str = ""


DEFAULT_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "stratum-admin", superuser=True, description="superuser, staff (owner of everything)"),
    DemoUser("engineer", "stratum-engineer", role=Role.OWNER,
             description="ML engineer: created and owns every demo model"),
    DemoUser("reviewer", "stratum-reviewer", role=Role.REVIEWER, description="reviewer on every demo model"),
    DemoUser("reviewer2", "stratum-reviewer2", role=Role.REVIEWER,
             description="second reviewer on every demo model (protected moves need two approvals)"),
    DemoUser("compliance", "stratum-compliance", role=Role.VIEWER,
             description="compliance officer: viewer on every demo model"),
)


@dataclass(frozen=True)
class VersionSpec:
    """One training run: a semantic version, the estimator it trains and a one-line summary."""

    semver: str
    algorithm: str
    build: Callable[[], BaseEstimator]
    summary: str


@dataclass(frozen=True)
class ModelSpec:
    """A demo registered model: its dataset, task, team, description and the runs behind its versions."""

    name: str
    loader: Callable[..., Any]
    task: str  # "binary", "multiclass" or "regression"
    team: str
    description: str
    versions: tuple[VersionSpec, ...]

    @property
    def dataset_name(self) -> str:
        return self.loader.__name__.removeprefix("load_")

    @property
    def primary_metric(self) -> tuple[str, bool]:
        """The metric that ranks versions, and whether higher is better."""
        return ("rmse", False) if self.task == "regression" else (
            ("roc_auc", True) if self.task == "binary" else ("f1_macro", True)
        )


def _scaled(estimator: BaseEstimator) -> Callable[[], BaseEstimator]:
    return lambda: Pipeline([("scaler", StandardScaler()), ("model", estimator)])


def _plain(estimator: BaseEstimator) -> Callable[[], BaseEstimator]:
    return lambda: Pipeline([("model", estimator)])


DEMO_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="breast-cancer-classifier",
        loader=sk_datasets.load_breast_cancer,
        task="binary",
        team="oncology-ml",
        description=(
            "# Breast cancer classifier\n\n"
            "Predicts whether a breast mass is **malignant** or **benign** from 30 features computed "
            "from a digitized image of a fine needle aspirate (Wisconsin Diagnostic Breast Cancer data).\n\n"
            "- **Intended use:** decision *support* for pathologists; never a sole basis for diagnosis.\n"
            "- **Primary metric:** ROC AUC on a stratified 25% hold-out split.\n"
            "- **Owner:** oncology-ml team.\n"
        ),
        versions=(
            VersionSpec("1.0.0", "random_forest",
                        _plain(RandomForestClassifier(n_estimators=60, max_depth=6, random_state=SEED)),
                        "Random forest baseline: 60 trees, depth at most 6."),
            VersionSpec("1.1.0", "random_forest",
                        _plain(RandomForestClassifier(n_estimators=120, min_samples_leaf=2,
                                                      random_state=SEED)),
                        "Larger forest: 120 fully grown trees, at least 2 samples per leaf."),
            VersionSpec("2.0.0", "gradient_boosting",
                        _plain(GradientBoostingClassifier(n_estimators=80, learning_rate=0.1, max_depth=2,
                                                          random_state=SEED)),
                        "Gradient boosting: 80 rounds of depth-2 trees."),
            VersionSpec("3.0.0", "logistic_regression",
                        _scaled(LogisticRegression(C=0.05, max_iter=2000, random_state=SEED)),
                        "Back to a linear model: strongly regularised logistic regression (C=0.05)."),
            VersionSpec("3.1.0", "logistic_regression",
                        _scaled(LogisticRegression(C=1.0, max_iter=2000, random_state=SEED)),
                        "Logistic regression with the default regularisation (C=1)."),
        ),
    ),
    ModelSpec(
        name="wine-quality",
        loader=sk_datasets.load_wine,
        task="multiclass",
        team="food-science",
        description=(
            "# Wine cultivar classifier\n\n"
            "Identifies which of **three cultivars** a wine comes from, using 13 results of a chemical "
            "analysis (alcohol, malic acid, flavanoids, colour intensity …).\n\n"
            "- **Intended use:** quality control in the bottling line.\n"
            "- **Primary metric:** macro-averaged F1 on a stratified 25% hold-out split.\n"
        ),
        versions=(
            VersionSpec("1.0.0", "k_nearest_neighbours",
                        _scaled(KNeighborsClassifier(n_neighbors=7)),
                        "k-NN baseline (k=7) on standardised features."),
            VersionSpec("1.1.0", "logistic_regression",
                        _scaled(LogisticRegression(C=0.5, max_iter=2000, random_state=SEED)),
                        "Multinomial logistic regression, C=0.5."),
            VersionSpec("1.2.0", "svm_rbf",
                        _scaled(CalibratedClassifierCV(SVC(C=2.0, gamma="scale", random_state=SEED),
                                                       ensemble=False)),
                        "RBF support-vector machine with sigmoid-calibrated probabilities."),
            VersionSpec("2.0.0", "random_forest",
                        _plain(RandomForestClassifier(n_estimators=80, max_depth=5, random_state=SEED)),
                        "Random forest: 80 trees, depth at most 5."),
        ),
    ),
    ModelSpec(
        name="iris-species",
        loader=sk_datasets.load_iris,
        task="multiclass",
        team="botany",
        description=(
            "# Iris species\n\n"
            "Classifies iris flowers into *setosa*, *versicolor* or *virginica* from sepal and petal "
            "measurements. The smallest model in the registry: handy for trying the API.\n"
        ),
        versions=(
            VersionSpec("1.0.0", "decision_tree",
                        _plain(DecisionTreeClassifier(max_depth=2, random_state=SEED)),
                        "Shallow decision tree (depth 2): readable rules."),
            VersionSpec("1.1.0", "decision_tree",
                        _plain(DecisionTreeClassifier(max_depth=4, random_state=SEED)),
                        "Deeper decision tree (depth 4)."),
            VersionSpec("1.2.0", "logistic_regression",
                        _scaled(LogisticRegression(C=10.0, max_iter=2000, random_state=SEED)),
                        "Logistic regression, weak regularisation (C=10)."),
        ),
    ),
    ModelSpec(
        name="diabetes-progression",
        loader=sk_datasets.load_diabetes,
        task="regression",
        team="endocrinology-ml",
        description=(
            "# Diabetes progression\n\n"
            "Predicts a quantitative measure of disease progression **one year after baseline** from "
            "age, sex, BMI, blood pressure and six blood serum measurements.\n\n"
            "- **Intended use:** research cohort stratification only.\n"
            "- **Primary metric:** RMSE on a 25% hold-out split (lower is better).\n"
        ),
        versions=(
            VersionSpec("1.0.0", "ridge", _plain(Ridge(alpha=1.0)), "Ridge regression baseline (alpha=1)."),
            VersionSpec("2.0.0", "random_forest",
                        _plain(RandomForestRegressor(n_estimators=60, max_depth=5, random_state=SEED)),
                        "Random forest regressor: 60 trees, depth at most 5."),
            VersionSpec("2.1.0", "gradient_boosting",
                        _plain(GradientBoostingRegressor(n_estimators=100, learning_rate=0.05, max_depth=2,
                                                         random_state=SEED)),
                        "Gradient boosting, 100 rounds at learning rate 0.05, depth 2."),
            VersionSpec("3.0.0", "ridge", _plain(Ridge(alpha=0.1)),
                        "Ridge regression, weaker penalty (alpha=0.1)."),
            VersionSpec("3.1.0", "lasso", _plain(Lasso(alpha=0.05, random_state=SEED)),
                        "Lasso (alpha=0.05): sparse coefficients, fewer features to monitor."),
        ),
    ),
)
