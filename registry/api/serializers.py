"""API input and output shapes (DRF serializers): they validate and render, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.lineage.features import versions_feature_sets
from registry.lineage.selectors import runs_held_elsewhere
from registry.models import AccessToken, Artifact, ModelRole, ModelVersion, RegisteredModel, Role
from registry.pipeline.scan.trust import TrustState, VersionTrust, versions_trust
from registry.validation import json_loads


@extend_schema_field(OpenApiTypes.ANY)
class JSONOrTextField(serializers.Field):
    """A JSON value that may also arrive as a JSON-encoded string (multipart form fields)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            if data.strip() == "":
                return None
            try:
                return json_loads(data)  # nesting bounded: never a RecursionError
            except ValueError:
                raise serializers.ValidationError("Must be valid JSON.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ModelInput(serializers.Serializer):
    name = serializers.CharField(max_length=256, trim_whitespace=False)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    tags = JSONOrTextField(required=False, default=None)


class ModelUpdateInput(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class RenameInput(serializers.Serializer):
    new_name = serializers.CharField(max_length=256, trim_whitespace=False)


class DeprecateInput(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)
    successor = serializers.CharField(required=False, allow_blank=True, default="")


class TagInput(serializers.Serializer):
    value = serializers.CharField(max_length=5000, allow_blank=True, trim_whitespace=False)


class VersionInput(serializers.Serializer):
    source_uri = serializers.CharField(required=False, allow_blank=True, default="", max_length=2048)
    run_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    semver = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    semver_bump = serializers.ChoiceField(choices=["major", "minor", "patch"], required=False, allow_null=True,
                                          default=None, help_text="Set semver to the model's highest, bumped.")
    metrics = JSONOrTextField(required=False, default=None)
    params = JSONOrTextField(required=False, default=None)
    signature = JSONOrTextField(required=False, default=None)
    code_repository = serializers.CharField(required=False, allow_blank=True, default="", max_length=2048)
    code_commit = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    environment = JSONOrTextField(required=False, default=None)
    datasets = JSONOrTextField(required=False, default=None)
    tags = JSONOrTextField(required=False, default=None)
    feature_sets = JSONOrTextField(
        required=False, default=None,
        help_text="Feature sets the version consumed: [{name, version, derived_from: ['dataset@version' | node id | "
                  "{name, version, uri, digest}], transformation_ref, uri, schema}], recorded as lineage.")


class VersionUpdateInput(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    semver = serializers.CharField(required=False, allow_blank=True, max_length=64)
    source_uri = serializers.CharField(required=False, allow_blank=True, max_length=2048)
    run_id = serializers.CharField(required=False, allow_blank=True, max_length=64)
    code_repository = serializers.CharField(required=False, allow_blank=True, max_length=2048)
    code_commit = serializers.CharField(required=False, allow_blank=True, max_length=64)
    metrics = JSONOrTextField(required=False)
    params = JSONOrTextField(required=False)
    signature = JSONOrTextField(required=False)
    environment = JSONOrTextField(required=False)


class StageInput(serializers.Serializer):
    stage = serializers.CharField(max_length=32)
    archive_existing_versions = serializers.BooleanField(required=False, default=False)


class AliasInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class RoleInput(serializers.Serializer):
    user = serializers.CharField(required=False, allow_blank=False)
    group = serializers.CharField(required=False, allow_blank=False)
    role = serializers.ChoiceField(choices=[label for _, label in Role.choices])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("user" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("Give exactly one of 'user' or 'group'.")
        return attrs


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=3650, allow_null=True)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=["api", "serve"]), required=False,
                                   min_length=1, help_text='"api" (default) and/or "serve" (the gateway).')


_DATETIME = serializers.DateTimeField()


def _iso(value: Any, field: serializers.DateTimeField | None = None) -> str | None:
    return None if value is None else (field or _DATETIME).to_representation(value)


def _page_datetimes() -> serializers.DateTimeField:
    """DRF's datetime rendering in the current time zone, looked up once for a page (the lookup cost more than the
    rendering when made for each value)."""
    return serializers.DateTimeField(default_timezone=timezone.get_current_timezone())


class ModelListOutput(serializers.ListSerializer):
    """A page of models: the current time zone is looked up once for the page."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        self.child.datetimes = _page_datetimes()
        try:
            return super().to_representation(data)
        finally:
            self.child.datetimes = None


class ModelOutput(serializers.Serializer):
    """A registered model. Plain fields (no model introspection): this shape is rendered on every hot path."""

    # Set by ModelListOutput for a page (None, not a field: a Field class attribute would declare a field).
    datetimes: serializers.DateTimeField | None = None

    class Meta:
        list_serializer_class = ModelListOutput

    name = serializers.CharField()
    description = serializers.CharField()
    owner = serializers.CharField(source="owner.username", default=None, allow_null=True)
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    latest_version = serializers.IntegerField(source="last_version_number")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    deprecated = serializers.BooleanField()
    deprecation_reason = serializers.CharField()
    successor = serializers.CharField(source="successor.name", default=None, allow_null=True)

    def get_tags(self, obj: RegisteredModel) -> dict[str, str]:
        return {t.key: t.value for t in obj.tags.all()}

    def get_aliases(self, obj: RegisteredModel) -> dict[str, int]:
        return {a.name: a.version.number for a in obj.aliases.all()}

    def to_representation(self, obj: RegisteredModel | Mapping[str, Any]) -> dict[str, Any]:
        """The fields above, rendered by hand from a model or from a row of selectors.model_rows (completed with
        model_rows_complete): list pages render up to 1,000 models. tests/registry/test_api_lists.py checks this
        against DRF's own rendering of the same declarations."""
        row = obj if isinstance(obj, Mapping) else _model_row(obj, self)
        return {
            "name": str(row["name"]),
            "description": str(row["description"]),
            "owner": None if row["owner__username"] is None else str(row["owner__username"]),
            "tags": {str(k): str(v) for k, v in row["tags"].items()},
            "aliases": {str(k): int(v) for k, v in row["aliases"].items()},
            "latest_version": int(row["last_version_number"]),
            "created_at": _iso(row["created_at"], self.datetimes),
            "updated_at": _iso(row["updated_at"], self.datetimes),
            "deprecated": bool(row["deprecated"]),
            "deprecation_reason": str(row["deprecation_reason"]),
            "successor": None if row["successor__name"] is None else str(row["successor__name"]),
        }


def _model_row(model: RegisteredModel, serializer: ModelOutput) -> dict[str, Any]:
    """A model as the row selectors.model_rows would give for it."""
    return {
        "name": model.name, "description": model.description,
        "owner__username": model.owner.username if model.owner_id is not None else None,
        "tags": serializer.get_tags(model), "aliases": serializer.get_aliases(model),
        "last_version_number": model.last_version_number, "created_at": model.created_at,
        "updated_at": model.updated_at, "deprecated": model.deprecated, "deprecation_reason": model.deprecation_reason,
        "successor__name": model.successor.name if model.successor_id is not None else None,
    }


class VersionListOutput(serializers.ListSerializer):
    """A page of versions: which of their runs Stratum holds is one query for the page, not one per version."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        rows = list(data.all() if hasattr(data, "all") else data)
        keys = [(v["pk"], v["run_id"]) if isinstance(v, Mapping) else (v.pk, v.run_id) for v in rows]
        self.child.runs_elsewhere = runs_held_elsewhere(run_id for _, run_id in keys)
        self.child.trust = versions_trust([pk for pk, _ in keys])
        self.child.features = versions_feature_sets([pk for pk, _ in keys])
        self.child.datetimes = _page_datetimes()
        try:
            return [self.child.to_representation(v) for v in rows]
        finally:
            self.child.runs_elsewhere = None
            self.child.trust = None
            self.child.features = None
            self.child.datetimes = None


class VersionOutput(serializers.Serializer):
    """A model version with its provenance (plain fields, for speed)."""

    runs_elsewhere: set[str] | None = None  # set by VersionListOutput for a page
    trust: dict[int, VersionTrust] | None = None  # likewise
    features: dict[int, list[dict[str, Any]]] | None = None  # likewise
    datetimes: serializers.DateTimeField | None = None  # likewise

    class Meta:
        list_serializer_class = VersionListOutput

    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="number")
    semver = serializers.CharField()
    stage = serializers.CharField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    source_uri = serializers.CharField()
    run_id = serializers.CharField()
    run_verified = serializers.SerializerMethodField(
        help_text="Whether Stratum holds the run the version names: false for a run tracked on another server (not "
                  "verified by Stratum), null when the version names no run.")
    scan_status = serializers.SerializerMethodField(
        help_text="Whether the version's files may be served: clean, pending (a pickle-family file awaits its scan), "
                  "quarantined (a scan found globals a load would import; nothing is served) or released (a "
                  "quarantined file was released by a maintainer and an administrator).")
    scan_detail = serializers.SerializerMethodField(help_text="Why, naming the files and the offending globals.")
    description = serializers.CharField()
    creator = serializers.CharField(source="creator.username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    metrics = serializers.DictField(child=serializers.FloatField())
    params = serializers.DictField(child=serializers.CharField())
    signature = serializers.JSONField()
    code = serializers.SerializerMethodField()
    environment = serializers.ListField(child=serializers.CharField())
    datasets = serializers.SerializerMethodField()
    feature_sets = serializers.SerializerMethodField(
        help_text="The feature sets the version consumed (lineage: dataset -> feature set -> version), each with the "
                  "lineage node id, name, version, uri, transformation_ref, schema and the datasets it derives from.")
    tags = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    deprecated = serializers.BooleanField()
    deprecation_reason = serializers.CharField()
    successor = serializers.SerializerMethodField()

    def to_representation(self, obj: ModelVersion | Mapping[str, Any]) -> dict[str, Any]:
        """The fields above, rendered by hand from a version or from a row of selectors.version_rows (completed with
        version_rows_complete): versions are the hottest read (alias resolution), and DRF's per-call copy of 24
        field objects cost more than the database. tests/registry/test_api.py checks this against DRF's own
        rendering of the same declarations."""
        row = obj if isinstance(obj, Mapping) else _version_row(obj, self)
        trust = self._trust(row["pk"])
        return {
            "model": str(row["model__name"]),
            "version": int(row["number"]),
            "semver": str(row["semver"]),
            "stage": str(row["stage"]),
            "status": str(row["status"]),
            "status_message": str(row["status_message"]),
            "source_uri": str(row["source_uri"]),
            "run_id": str(row["run_id"]),
            "run_verified": self._run_verified(row["run_id"]),
            "scan_status": str(trust.state),
            "scan_detail": trust.detail,
            "description": str(row["description"]),
            "creator": None if row["creator__username"] is None else str(row["creator__username"]),
            "created_at": _iso(row["created_at"], self.datetimes),
            "updated_at": _iso(row["updated_at"], self.datetimes),
            "metrics": {str(k): float(v) for k, v in (row["metrics"] or {}).items()},
            "params": {str(k): str(v) for k, v in (row["params"] or {}).items()},
            "signature": row["signature"],
            "code": {"repository": row["code_repository"], "commit": row["code_commit"]},
            "environment": [str(x) for x in (row["environment"] or [])],
            "datasets": [dict(d) for d in row["datasets"]],
            "feature_sets": self._feature_sets(row["pk"]),
            "tags": dict(row["tags"]),
            "aliases": sorted(row["aliases"]),
            "deprecated": bool(row["deprecated"]),
            "deprecation_reason": str(row["deprecation_reason"]),
            "successor": None if row["successor__number"] is None else {
                "model": row["successor__model__name"], "version": row["successor__number"]},
        }

    def _run_verified(self, run_id: str) -> bool | None:
        if not run_id:
            return None
        elsewhere = self.runs_elsewhere if self.runs_elsewhere is not None else runs_held_elsewhere([run_id])
        return run_id not in elsewhere

    @extend_schema_field({"type": "boolean", "nullable": True})
    def get_run_verified(self, obj: ModelVersion) -> bool | None:
        return self._run_verified(obj.run_id)

    def _trust(self, pk: int) -> VersionTrust:
        known = self.trust if self.trust is not None else versions_trust([pk])
        return known.get(pk) or VersionTrust()

    @extend_schema_field({"type": "string", "enum": [s.value for s in TrustState]})
    def get_scan_status(self, obj: ModelVersion) -> str:
        return str(self._trust(obj.pk).state)

    def get_scan_detail(self, obj: ModelVersion) -> str:
        return self._trust(obj.pk).detail

    def get_tags(self, obj: ModelVersion) -> dict[str, str]:
        return {t.key: t.value for t in obj.tags.all()}

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(a.name for a in obj.aliases.all())

    def get_datasets(self, obj: ModelVersion) -> list[dict[str, str]]:
        return [{"name": d.name, "uri": d.uri, "digest": d.digest, "role": d.role} for d in obj.datasets.all()]

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_feature_sets(self, obj: ModelVersion) -> list[dict[str, Any]]:
        return self._feature_sets(obj.pk)

    def _feature_sets(self, pk: int) -> list[dict[str, Any]]:
        known = self.features if self.features is not None else versions_feature_sets([pk])
        return known.get(pk, [])

    def get_code(self, obj: ModelVersion) -> dict[str, str]:
        return {"repository": obj.code_repository, "commit": obj.code_commit}

    def get_successor(self, obj: ModelVersion) -> dict[str, Any] | None:
        if obj.successor_id is None:
            return None
        return {"model": obj.successor.model.name, "version": obj.successor.number}


def _version_row(version: ModelVersion, serializer: VersionOutput) -> dict[str, Any]:
    """A version (with its relations loaded, as selectors.version_queryset gives it) as the row
    selectors.version_rows and version_rows_complete would give for it."""
    successor = version.successor if version.successor_id is not None else None
    return {
        "pk": version.pk, "model__name": version.model.name, "number": version.number, "semver": version.semver,
        "stage": version.stage, "status": version.status, "status_message": version.status_message,
        "source_uri": version.source_uri, "run_id": version.run_id, "description": version.description,
        "creator__username": version.creator.username if version.creator_id is not None else None,
        "created_at": version.created_at, "updated_at": version.updated_at, "metrics": version.metrics,
        "params": version.params, "signature": version.signature, "code_repository": version.code_repository,
        "code_commit": version.code_commit, "environment": version.environment, "deprecated": version.deprecated,
        "deprecation_reason": version.deprecation_reason,
        "successor__model__name": None if successor is None else successor.model.name,
        "successor__number": None if successor is None else successor.number,
        "tags": serializer.get_tags(version), "datasets": serializer.get_datasets(version),
        "aliases": serializer.get_aliases(version),
    }


class ArtifactOutput(serializers.ModelSerializer):
    sha256 = serializers.CharField(source="blob_id", read_only=True)

    class Meta:
        model = Artifact
        fields = ["path", "size", "sha256", "format", "created_at"]


class AliasOutput(serializers.Serializer):
    alias = serializers.CharField(source="name")
    model = serializers.CharField(source="model.name")
    version = serializers.IntegerField(source="version.number")


class RoleOutput(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", default=None, allow_null=True, read_only=True)
    group = serializers.CharField(source="group.name", default=None, allow_null=True, read_only=True)
    role = serializers.CharField(source="get_role_display", read_only=True)

    class Meta:
        model = ModelRole
        fields = ["user", "group", "role", "created_at"]


class TokenOutput(serializers.ModelSerializer):
    class Meta:
        model = AccessToken
        fields = ["name", "prefix", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at"]


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only in this response.")

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "token"]


# List answers wrap their rows in a named key (room for more keys later without breaking clients); these describe
# the wrappers so the schema says what the body is.
class AliasListOutput(serializers.Serializer):
    aliases = AliasOutput(many=True)


class RoleListOutput(serializers.Serializer):
    owner = serializers.CharField(allow_null=True, help_text="The model's owner, who holds every role.")
    roles = RoleOutput(many=True)


class ArtifactListOutput(serializers.Serializer):
    files = ArtifactOutput(many=True)


class TokenListOutput(serializers.Serializer):
    tokens = TokenOutput(many=True)
