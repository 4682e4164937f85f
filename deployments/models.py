"""Deployments data: environments, endpoints, rollouts, their routing history, traffic statistics and outcomes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Environment(models.Model):
    """Where endpoints live (staging, production); production may demand an executed promotion for what it serves."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True, default="")
    requires_promotion = models.BooleanField(default=False)
    # Only versions whose signed tree verifies may go live here (a signature that fails is refused everywhere).
    requires_signature = models.BooleanField(default=True)
    # When a rollout here succeeds, the served version's alias (e.g. "production") and/or stage follow it,
    # through the governance gate; with requires_promotion, the executed request must name that target.
    follow_alias = models.CharField(max_length=256, blank=True, default="")
    follow_stage = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Endpoint(models.Model):
    """A named serving slot in an environment for one registered model; its routing is a materialised snapshot."""

    name = models.SlugField(max_length=100, unique=True)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="endpoints")
    model = models.ForeignKey("registry.RegisteredModel", on_delete=models.CASCADE, related_name="endpoints")
    description = models.TextField(blank=True, default="")
    # What the gateway does with a request now; rewritten, with `generation` bumped, by every routing change.
    routing = models.JSONField(default=dict, blank=True)
    generation = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Strategy(models.TextChoices):
    """How a deployment moves traffic from the stable version to the candidate."""

    DIRECT = "direct", "Direct"
    BLUE_GREEN = "blue_green", "Blue-green"
    CANARY = "canary", "Canary"
    SHADOW = "shadow", "Shadow"
    AB = "ab", "A/B test"


class Phase(models.TextChoices):
    """Where a rollout is; the last three are final."""

    PENDING = "pending", "Pending"
    PROGRESSING = "progressing", "Progressing"
    PAUSED = "paused", "Paused"
    PROMOTING = "promoting", "Promoting"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Rolled back"
    ABORTED = "aborted", "Aborted"


ACTIVE_PHASES = (Phase.PENDING, Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING)
FINAL_PHASES = (Phase.SUCCEEDED, Phase.FAILED, Phase.ABORTED)


class Deployment(models.Model):
    """One rollout on an endpoint: which version(s) it serves under which strategy, and how far it has got."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deployments")
    strategy = models.CharField(max_length=16, choices=Strategy.choices)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.PENDING)
    stable_version = models.ForeignKey("registry.ModelVersion", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    candidate_version = models.ForeignKey("registry.ModelVersion", on_delete=models.PROTECT, related_name="+")
    weight = models.PositiveSmallIntegerField(default=0)  # percent of live traffic the candidate receives now
    steps = models.JSONField(default=list, blank=True)  # canary: [{"set_weight": 10}, {"pause": {...}}, ...]
    step_index = models.PositiveSmallIntegerField(default=0)
    step_started_at = models.DateTimeField(null=True, blank=True)
    analysis = models.JSONField(default=dict, blank=True)  # thresholds, window, failure limit
    failures = models.PositiveSmallIntegerField(default=0)
    shadow_percent = models.PositiveSmallIntegerField(default=0)
    arms = models.JSONField(default=list, blank=True)  # A/B: [{"version_id": 7, "number": 3, "weight": 50}, ...]
    ab_header = models.CharField(max_length=100, blank=True, default="")
    ab_field = models.CharField(max_length=100, blank=True, default="")
    keep_warm_seconds = models.PositiveIntegerField(default=0)
    warm_until = models.DateTimeField(null=True, blank=True)
    # Blue-green: switch by itself after a passed smoke check; otherwise hold at preview until a person promotes.
    auto_promote = models.BooleanField(default=False)
    rollback_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    message = models.TextField(blank=True, default="")
    # Who rolled the deployment back or aborted it by hand, and why (None and "" when the monitor did, or nobody).
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    end_reason = models.CharField(max_length=500, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Overlapping rollouts on one endpoint are impossible, whatever races the API.
            models.UniqueConstraint(fields=["endpoint"], condition=Q(phase__in=[p.value for p in ACTIVE_PHASES]),
                                    name="uniq_active_deployment_per_endpoint"),
            models.CheckConstraint(condition=Q(weight__lte=100) & Q(shadow_percent__lte=100),
                                   name="deployment_percentages"),
        ]
        indexes = [models.Index(fields=["phase"], name="deployment_phase")]

    def __str__(self) -> str:
        return f"deployment #{self.pk} on {self.endpoint_id}"

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def phase_label(self) -> str:
        """The phase as people read it: who rolled back or aborted, and why; the monitor's rollbacks say so."""
        # end_reason is set only by a person's hand: it outlives the account (ended_by is set null on deletion).
        who = self.ended_by.username if self.ended_by_id else ("a deleted user" if self.end_reason else None)
        if self.phase == Phase.ABORTED and who:
            return f"Aborted by {who}: {self.end_reason}"
        if self.phase in (Phase.FAILED, Phase.SUCCEEDED) and who:  # a finished one is rolled back by a new deployment
            return f"Rolled back by {who}: {self.end_reason}"
        if self.phase == Phase.FAILED:
            return f"Rolled back automatically: {self.message}"
        return self.get_phase_display()


class RoutingRecord(models.Model):
    """One routing change of an endpoint: the history that answers "what served at time T"."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="routing_history")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    generation = models.PositiveIntegerField()
    routing = models.JSONField(default=dict)
    reason = models.CharField(max_length=300)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["endpoint_id", "-at", "-pk"]
        indexes = [models.Index(fields=["endpoint", "at"], name="routing_endpoint_at")]

    def __str__(self) -> str:
        return f"routing {self.generation} of endpoint {self.endpoint_id}"


class AnalysisVerdict(models.TextChoices):
    """What one analysis run concluded."""

    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    INCONCLUSIVE = "inconclusive", "Inconclusive"


class AnalysisRun(models.Model):
    """One evaluation of a rollout by the monitor: the metrics measured and the verdict reached."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="analysis_runs")
    step_index = models.PositiveSmallIntegerField()
    verdict = models.CharField(max_length=16, choices=AnalysisVerdict.choices)
    metrics = models.JSONField(default=dict)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment_id", "-created_at", "-pk"]

    def __str__(self) -> str:
        return f"analysis of deployment {self.deployment_id}: {self.verdict}"


class TrafficRole(models.TextChoices):
    """Whether a version answered the caller or only received a mirrored copy."""

    LIVE = "live", "Live"
    SHADOW = "shadow", "Shadow"


class TrafficStat(models.Model):
    """Requests one version served on one endpoint in one 10-second bucket, as flushed by one gateway process."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, choices=TrafficRole.choices, default=TrafficRole.LIVE)
    bucket = models.DateTimeField()  # start of the 10-second bucket
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    latency_total_ms = models.FloatField(default=0)
    latency_hist = models.JSONField(default=list)  # counts per deployments.stats.LATENCY_BOUNDS_MS bucket
    label_counts = models.JSONField(default=dict)  # predicted label -> count (classification outputs)
    value_sample = models.JSONField(default=list)  # a uniform sample of numeric predictions (regression outputs)
    compared = models.PositiveIntegerField(default=0)  # shadow rows compared with the live answer
    agreed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["bucket", "pk"]
        indexes = [models.Index(fields=["endpoint", "bucket"], name="traffic_endpoint_bucket"),
                   models.Index(fields=["deployment", "bucket"], name="traffic_deployment_bucket")]

    def __str__(self) -> str:
        return f"traffic of version {self.version_id} at {self.bucket:%H:%M}"


class PredictionSample(models.Model):
    """A sampled request: its inputs and outputs, kept for drift checks and debugging."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, choices=TrafficRole.choices, default=TrafficRole.LIVE)
    request_id = models.CharField(max_length=32)
    inputs = models.JSONField(default=list)
    outputs = models.JSONField(default=list)
    error = models.CharField(max_length=500, blank=True, default="")
    latency_ms = models.FloatField(default=0)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["endpoint", "at"], name="sample_endpoint_at")]

    def __str__(self) -> str:
        return f"sample {self.request_id}"


class Outcome(models.Model):
    """A business outcome reported back for an A/B arm (conversion 0/1, revenue, rating)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="outcomes")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=100)
    value = models.FloatField()
    key_hash = models.CharField(max_length=64, blank=True, default="")  # keyed hash: no caller key is stored
    request_id = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["deployment_id", "pk"]
        indexes = [models.Index(fields=["deployment", "metric", "version"], name="outcome_arm")]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} for version {self.version_id}"


class PredictionBatch(models.Model):
    """What every request of one lineage prediction batch shares: the endpoint, the deployment, the version, its
    traffic role, routing role and routing generation; a trace record names only its request id, batch and time."""

    node = models.ForeignKey("registry.LineageNode", null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="+")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    version = models.ForeignKey("registry.ModelVersion", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, choices=TrafficRole.choices, default=TrafficRole.LIVE)
    route_role = models.CharField(max_length=16, blank=True, default="")  # stable, canary, preview, arm-a ...
    generation = models.PositiveIntegerField(default=0)  # the endpoint's routing generation that routed it

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"prediction batch {self.pk} of endpoint {self.endpoint_id}"


class PredictionRecord(models.Model):
    """One answered request, kept for the retention window so its id traces back, through its batch, to what
    answered it: the endpoint, the version and its routing role and generation, and the lineage prediction batch."""

    request_id = models.CharField(max_length=64)
    batch = models.ForeignKey(PredictionBatch, on_delete=models.CASCADE, related_name="records")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["request_id"], name="prediction_request_id"),
                   models.Index(fields=["at"], name="prediction_at")]

    def __str__(self) -> str:
        return f"prediction {self.request_id}"
