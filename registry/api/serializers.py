"""API input and output shapes (DRF serializers): they validate and render, nothing else."""

from __future__ import annotations

from typing import Any

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


class ModelOutput(serializers.Serializer):
    """A registered model. Plain fields (no model introspection): this shape is rendered on every hot path."""

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


_DATETIME = serializers.DateTimeField()


def _iso(value: Any) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


class VersionListOutput(serializers.ListSerializer):
    """A page of versions: which of their runs Stratum holds is one query for the page, not one per version."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        rows = list(data.all() if hasattr(data, "all") else data)
        self.child.runs_elsewhere = runs_held_elsewhere(v.run_id for v in rows)
        self.child.trust = versions_trust([v.pk for v in rows])
        self.child.features = versions_feature_sets([v.pk for v in rows])
        try:
            return [self.child.to_representation(v) for v in rows]
        finally:
            self.child.runs_elsewhere = None
            self.child.trust = None
            self.child.features = None


class VersionOutput(serializers.Serializer):
    """A model version with its provenance (plain fields, for speed)."""

    runs_elsewhere: set[str] | None = None  # set by VersionListOutput for a page
    trust: dict[int, VersionTrust] | None = None  # likewise
    features: dict[int, list[dict[str, Any]]] | None = None  # likewise

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

    def to_representation(self, obj: ModelVersion) -> dict[str, Any]:
        """The fields above, rendered by hand: versions are the hottest read (alias resolution), and DRF's
        per-call copy of 24 field objects cost more than the database. tests/registry/test_api.py checks this
        against DRF's own rendering of the same declarations."""
        creator = obj.creator if obj.creator_id is not None else None
        trust = self._trust(obj)
        return {
            "model": obj.model.name,
            "version": int(obj.number),
            "semver": str(obj.semver),
            "stage": str(obj.stage),
            "status": str(obj.status),
            "status_message": str(obj.status_message),
            "source_uri": str(obj.source_uri),
            "run_id": str(obj.run_id),
            "run_verified": self.get_run_verified(obj),
            "scan_status": str(trust.state),
            "scan_detail": trust.detail,
            "description": str(obj.description),
            "creator": None if creator is None else str(creator.username),
            "created_at": _iso(obj.created_at),
            "updated_at": _iso(obj.updated_at),
            "metrics": {str(k): float(v) for k, v in (obj.metrics or {}).items()},
            "params": {str(k): str(v) for k, v in (obj.params or {}).items()},
            "signature": obj.signature,
            "code": self.get_code(obj),
            "environment": [str(x) for x in (obj.environment or [])],
            "datasets": self.get_datasets(obj),
            "feature_sets": self.get_feature_sets(obj),
            "tags": self.get_tags(obj),
            "aliases": self.get_aliases(obj),
            "deprecated": bool(obj.deprecated),
            "deprecation_reason": str(obj.deprecation_reason),
            "successor": self.get_successor(obj),
        }

    @extend_schema_field({"type": "boolean", "nullable": True})
    def get_run_verified(self, obj: ModelVersion) -> bool | None:
        if not obj.run_id:
            return None
        elsewhere = self.runs_elsewhere if self.runs_elsewhere is not None else runs_held_elsewhere([obj.run_id])
        return obj.run_id not in elsewhere

    def _trust(self, obj: ModelVersion) -> VersionTrust:
        known = self.trust if self.trust is not None else versions_trust([obj.pk])
        return known.get(obj.pk) or VersionTrust()

    @extend_schema_field({"type": "string", "enum": [s.value for s in TrustState]})
    def get_scan_status(self, obj: ModelVersion) -> str:
        return str(self._trust(obj).state)

    def get_scan_detail(self, obj: ModelVersion) -> str:
        return self._trust(obj).detail

    def get_tags(self, obj: ModelVersion) -> dict[str, str]:
        return {t.key: t.value for t in obj.tags.all()}

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return sorted(a.name for a in obj.aliases.all())

    def get_datasets(self, obj: ModelVersion) -> list[dict[str, str]]:
        return [{"name": d.name, "uri": d.uri, "digest": d.digest, "role": d.role} for d in obj.datasets.all()]

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_feature_sets(self, obj: ModelVersion) -> list[dict[str, Any]]:
        known = self.features if self.features is not None else versions_feature_sets([obj.pk])
        return known.get(obj.pk, [])

    def get_code(self, obj: ModelVersion) -> dict[str, str]:
        return {"repository": obj.code_repository, "commit": obj.code_commit}

    def get_successor(self, obj: ModelVersion) -> dict[str, Any] | None:
        if obj.successor_id is None:
            return None
        return {"model": obj.successor.model.name, "version": obj.successor.number}


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
