"""Every model of the registry app, gathered so Django finds them and callers import from one place.

Each area keeps its data beside its code (lineage/, pipeline/, tracking/); this module only re-exports it.
"""

from registry.lineage.models import (
    EdgeKind,
    LineageEdge,
    LineageNode,
    NodeKind,
)
from registry.models.access import (
    TOKEN_SCOPES,
    AccessToken,
    ModelRole,
    Role,
    default_token_scopes,
)
from registry.models.artifacts import (
    Artifact,
    ArtifactFormat,
    Blob,
    StoreCollection,
)
from registry.models.core import (
    Alias,
    DatasetRole,
    ModelTag,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionDataset,
    VersionStatus,
    VersionTag,
)
from registry.pipeline.models import (
    ArtifactScan,
    Job,
    JobKind,
    JobState,
    RetrainRequest,
    RetrainRule,
    RetrainTrigger,
    ScanVerdict,
    SignatureVerification,
    VersionSignature,
)
from registry.tracking.models import (
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Run,
    RunInput,
    RunMetric,
    RunParam,
    RunStatus,
    RunTag,
    TrackedArtifact,
)
from registry.webhooks.models import (
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "TOKEN_SCOPES",
    "AccessToken",
    "Alias",
    "Artifact",
    "ArtifactFormat",
    "ArtifactScan",
    "Blob",
    "DatasetRole",
    "EdgeKind",
    "Experiment",
    "Job",
    "JobKind",
    "JobState",
    "LifecycleStage",
    "LineageEdge",
    "LineageNode",
    "LoggedModel",
    "LoggedModelStatus",
    "ModelRole",
    "ModelTag",
    "ModelVersion",
    "NodeKind",
    "RegisteredModel",
    "RetrainRequest",
    "RetrainRule",
    "RetrainTrigger",
    "Role",
    "Run",
    "RunInput",
    "RunMetric",
    "RunParam",
    "RunStatus",
    "RunTag",
    "ScanVerdict",
    "SignatureVerification",
    "Stage",
    "StoreCollection",
    "TrackedArtifact",
    "VersionDataset",
    "VersionSignature",
    "VersionStatus",
    "VersionTag",
    "WebhookDelivery",
    "WebhookSubscription",
    "default_token_scopes",
]
