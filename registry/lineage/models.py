"""Lineage data: typed nodes (datasets, features, code, versions, artifacts, deployments, predictions) and edges."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class NodeKind(models.TextChoices):
    """What a lineage node stands for."""

    DATASET = "dataset", "Dataset version"
    FEATURE_SET = "feature_set", "Feature set version"
    CODE_COMMIT = "code_commit", "Code commit"
    MODEL_VERSION = "model_version", "Model version"
    CONVERTED_ARTIFACT = "converted_artifact", "Converted artifact"
    DEPLOYMENT = "deployment", "Deployment"
    PREDICTION_BATCH = "prediction_batch", "Prediction batch"
    EXTERNAL_RUN = "external_run", "Run held elsewhere (not verified by Stratum)"


class EdgeKind(models.TextChoices):
    """How the downstream node relates to the upstream one ("downstream <kind> upstream")."""

    DERIVED_FROM = "derived_from", "derived from"
    TRAINED_ON = "trained_on", "trained on"
    USES_FEATURES = "uses_features", "uses features"
    BUILT_FROM_CODE = "built_from_code", "built from code"
    CONVERTED_FROM = "converted_from", "converted from"
    FINE_TUNED_FROM = "fine_tuned_from", "fine-tuned from"
    DEPLOYED_AS = "deployed_as", "deployed as"
    PRODUCED = "produced", "produced by"
    TRAINED_IN = "trained_in", "trained in run"


NODE_KIND_LABELS: dict[str, str] = dict(NodeKind.choices)
EDGE_KIND_LABELS: dict[str, str] = dict(EdgeKind.choices)


class LineageNode(models.Model):
    """One node of the lineage graph; `key` is its natural identity within its kind (a digest of what names it)."""

    kind = models.CharField(max_length=24, choices=NodeKind.choices)
    key = models.CharField(max_length=64)
    name = models.CharField(max_length=500)
    version = models.CharField(max_length=128, blank=True, default="")
    uri = models.CharField(max_length=2048, blank=True, default="")
    digest = models.CharField(max_length=128, blank=True, default="")
    row_count = models.BigIntegerField(null=True, blank=True)
    schema = models.JSONField(default=dict, blank=True)
    contains_personal_data = models.BooleanField(default=False)
    repository = models.CharField(max_length=2048, blank=True, default="")
    commit = models.CharField(max_length=64, blank=True, default="")
    transformation_ref = models.CharField(max_length=2048, blank=True, default="")
    external_id = models.CharField(max_length=256, blank=True, default="")
    endpoint = models.CharField(max_length=256, blank=True, default="")
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    # Nodes scoped to a model (its versions, their conversions, deployments and predictions) are visible only to
    # those who may see the model; unscoped nodes (datasets, feature sets, code) to every signed-in user.
    model = models.ForeignKey("registry.RegisteredModel", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="lineage_nodes")
    model_version = models.OneToOneField("registry.ModelVersion", null=True, blank=True, on_delete=models.CASCADE,
                                         related_name="lineage_node")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], name="uniq_lineage_node_key"),
            models.CheckConstraint(
                condition=(Q(kind="model_version", model_version__isnull=False, model__isnull=False)
                           | (~Q(kind="model_version") & Q(model_version__isnull=True))),
                name="lineage_node_version_iff_kind",
            ),
        ]
        indexes = [models.Index(fields=["kind", "name"], name="lineage_node_kind_name")]

    def __str__(self) -> str:
        # The labels by dict: get_kind_display() flattens and hashes the choices anew on every call, about a sixth
        # of graph_context's time at 2,000 nodes (one call per node listed, one per edge).
        return f"{NODE_KIND_LABELS.get(self.kind, self.kind)} {self.name}{' ' + self.version if self.version else ''}"


class LineageEdge(models.Model):
    """A typed, directed edge from an upstream node to a downstream one; the graph stays acyclic."""

    upstream = models.ForeignKey(LineageNode, on_delete=models.CASCADE, related_name="downstream_edges")
    downstream = models.ForeignKey(LineageNode, on_delete=models.CASCADE, related_name="upstream_edges")
    kind = models.CharField(max_length=24, choices=EdgeKind.choices)
    role = models.CharField(max_length=16, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["upstream", "downstream", "kind", "role"], name="uniq_lineage_edge"),
            models.CheckConstraint(condition=~Q(upstream=F("downstream")), name="lineage_edge_no_self_loop"),
        ]
        # The unique constraint's index serves downstream walks (upstream_id first); this one serves upstream walks.
        indexes = [models.Index(fields=["downstream", "upstream"], name="lineage_edge_down_up")]

    def __str__(self) -> str:
        return f"{self.downstream_id} {self.get_kind_display()} {self.upstream_id}"
