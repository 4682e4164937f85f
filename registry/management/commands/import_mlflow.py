"""manage.py import_mlflow --tracking-uri URL --owner USER: copy an MLflow registry into Stratum, idempotently.

Registered models (descriptions, tags, aliases) and their versions (numbers, tags, stages, descriptions, run ids,
the run's params and metrics, and the files behind mlflow-artifacts:/ download URIs) are copied through the
services, over plain HTTP (no mlflow package needed). Versions already imported are recognised by the
`stratum.imported_from` tag and skipped, so the command can run again to pick up new versions.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from registry import selectors, services
from registry.artifacts import sources
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import SpooledUpload, spool_stream
from registry.errors import DomainError, InvalidInput
from registry.models import Alias, ModelTag, ModelVersion, RegisteredModel, VersionTag

IMPORT_TAG = "stratum.imported_from"
ORIGINAL_SOURCE_TAG = "stratum.original_source"
TIMEOUT = 60


class MlflowHttp:
    """A tiny MLflow REST client over urllib, with the same credentials the mlflow client reads."""

    def __init__(self, base: str, token: str = "", username: str = "", password: str = "") -> None:
        parsed = urllib.parse.urlparse(base)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise CommandError("--tracking-uri must be an http(s) URL of an MLflow server.")
        self.base = base.rstrip("/")
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif username:
            raw = base64.b64encode(f"{username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {raw}"

    def _open(self, path: str, params: dict[str, Any] | None = None) -> IO[bytes]:
        query = f"?{urllib.parse.urlencode(params, doseq=True)}" if params else ""
        request = urllib.request.Request(f"{self.base}{path}{query}", headers=self.headers)  # noqa: S310 - http(s) only
        return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310

    def get(self, endpoint: str, **params: Any) -> dict[str, Any]:
        """GET /api/2.0/mlflow/<endpoint> and return the JSON body."""
        try:
            with self._open(f"/api/2.0/mlflow/{endpoint}", params) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise CommandError(f"MLflow answered {exc.code} to {endpoint}: {detail}")
        except urllib.error.URLError as exc:
            raise CommandError(f"Cannot reach MLflow at {self.base}: {exc.reason}")
        return json.loads(body or b"{}")

    def paged(self, endpoint: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged search."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            body = self.get(endpoint, **params, **({"page_token": token} if token else {}))
            items.extend(body.get(key, []))
            token = body.get("next_page_token")
            if not token:
                return items

    def list_files(self, root: str) -> list[tuple[str, int | None]]:
        """Every file under an mlflow-artifacts root, as (relative path, size)."""
        out: list[tuple[str, int | None]] = []
        pending = [""]
        while pending:
            rel = pending.pop()
            path = f"{root}/{rel}" if rel else root
            with self._open("/api/2.0/mlflow-artifacts/artifacts", {"path": path}) as response:
                listing = json.loads(response.read() or b"{}")
            for item in listing.get("files", []):
                child = f"{rel}/{item['path']}" if rel else item["path"]
                validate_artifact_path(child)
                if item.get("is_dir"):
                    pending.append(child)
                else:
                    out.append((child, item.get("file_size")))
        return sorted(out)

    def download(self, root: str, rel: str) -> SpooledUpload:
        """Stream one artifact into a spool file (memory stays flat)."""
        quoted = urllib.parse.quote(f"{root}/{rel}")
        with self._open(f"/api/2.0/mlflow-artifacts/artifacts/{quoted}") as response:
            return spool_stream(response)


@dataclass
class Summary:
    """What one import did."""

    models_new: int = 0
    models_seen: int = 0
    versions_new: int = 0
    versions_skipped: int = 0
    files: int = 0
    bytes: int = 0
    aliases: int = 0
    warnings: list[str] = field(default_factory=list)


class Progress:
    """A one-line text progress bar on stderr."""

    def __init__(self, stream: Any, total: int, label: str) -> None:
        self.stream, self.total, self.label, self.done = stream, max(total, 1), label, 0
        self.tty = stream.isatty()

    def step(self, note: str = "") -> None:
        self.done += 1
        filled = int(30 * self.done / self.total)
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {self.label} {note}"[:120]
        self.stream.write(("\r" + line.ljust(120)) if self.tty else line, ending="" if self.tty else "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("")


class Command(BaseCommand):
    help = "Copy registered models, versions, tags, stages, aliases and artifacts from an MLflow server."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tracking-uri", required=True, help="The MLflow server, e.g. http://127.0.0.1:5000")
        parser.add_argument("--owner", default=None, help="Stratum user who owns and imports (default: a superuser)")
        parser.add_argument("--filter", default="", help="MLflow filter for search_registered_models")
        parser.add_argument("--no-artifacts", action="store_true", help="Copy metadata only")

    def handle(self, *args: Any, tracking_uri: str, owner: str | None = None, filter: str = "",
               no_artifacts: bool = False, **options: Any) -> None:
        actor = self._owner(owner)
        remote = MlflowHttp(tracking_uri, token=os.environ.get("MLFLOW_TRACKING_TOKEN", ""),
                            username=os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
                            password=os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        summary = Summary()
        models = remote.paged("registered-models/search", "registered_models", max_results=1000,
                              **({"filter": filter} if filter else {}))
        plan = [(m, remote.paged("model-versions/search", "model_versions", filter=f"name='{_quote(m['name'])}'",
                                 max_results=10000)) for m in models]
        progress = Progress(self.stderr, sum(len(v) for _, v in plan) + len(plan), "models and versions")
        for remote_model, versions in plan:
            try:
                model = self._import_model(remote_model, actor, summary)
            except DomainError as exc:
                summary.warnings.append(f"model {remote_model['name']!r}: {exc.message}")
                progress.step(remote_model["name"])
                for _ in versions:
                    progress.step()
                continue
            progress.step(model.name)
            for remote_version in sorted(versions, key=lambda v: int(v["version"])):
                self._import_version(remote, tracking_uri, model, remote_version, actor, summary, no_artifacts)
                progress.step(f"{model.name} v{remote_version['version']}")
            self._import_aliases(model, remote_model, actor, summary)
        progress.close()
        self.stdout.write(
            f"Imported from {tracking_uri}: {summary.models_seen} models ({summary.models_new} new), "
            f"{summary.versions_new} new versions ({summary.versions_skipped} already imported), "
            f"{summary.files} files ({summary.bytes} bytes), {summary.aliases} aliases set."
        )
        for warning in summary.warnings:
            self.stdout.write(f"warning: {warning}")

    def _owner(self, username: str | None) -> Any:
        users = get_user_model().objects.filter(is_active=True)
        user = users.filter(username=username).first() if username else users.filter(is_superuser=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}." if username else "Give --owner USER.")
        return user

    def _import_model(self, remote: dict[str, Any], actor: Any, summary: Summary) -> RegisteredModel:
        summary.models_seen += 1
        name = remote["name"]
        tags = {t["key"]: t.get("value", "") for t in remote.get("tags", [])}
        tags = {k: v for k, v in tags.items() if not k.lower().startswith(sources.PROMPT_TAG_PREFIX)}
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            summary.models_new += 1
            return services.model_create(actor=actor, name=name, description=remote.get("description", ""),
                                         tags=tags)
        model = selectors.model_get(actor=actor, name=name)
        if (remote.get("description") or "") != model.description:
            model = services.model_update(model=model, actor=actor, description=remote.get("description", ""))
        current = dict(ModelTag.objects.filter(model=model).values_list("key", "value"))
        for key, value in tags.items():
            if current.get(key) != value:
                services.model_tag_set(model=model, actor=actor, key=key, value=value)
        return model

    def _import_version(self, remote: MlflowHttp, tracking_uri: str, model: RegisteredModel,
                        rv: dict[str, Any], actor: Any, summary: Summary, no_artifacts: bool) -> None:
        number = int(rv["version"])
        marker = f"{tracking_uri.rstrip('/')}/{model.name}/{number}"[:5000]
        if VersionTag.objects.filter(version__model=model, key=IMPORT_TAG, value=marker).exists():
            summary.versions_skipped += 1
            return
        if ModelVersion.objects.filter(model=model, number=number).exists() or number <= model.last_version_number:
            summary.warnings.append(f"{model.name} v{number}: Stratum already used that number; not imported.")
            return
        tags = {t["key"]: t.get("value", "") for t in rv.get("tags", [])}
        tags = {k: v for k, v in tags.items() if not k.lower().startswith(sources.PROMPT_TAG_PREFIX)}
        tags[IMPORT_TAG] = marker
        source = rv.get("source", "") or ""
        try:
            source = sources.validate_source(source) if source else ""
        except InvalidInput:
            tags[ORIGINAL_SOURCE_TAG] = source[:5000]
            summary.warnings.append(f"{model.name} v{number}: source {source[:100]!r} is not an allowed source; "
                                    f"kept as tag {ORIGINAL_SOURCE_TAG}.")
            source = ""
        params, metrics = self._run_data(remote, rv.get("run_id") or "")
        files: list[tuple[str, SpooledUpload]] = []
        try:
            if not no_artifacts:
                files = self._download(remote, model, rv, summary)
            version = services.version_create(
                model=model, actor=actor, number=number, source_uri=source, run_id=rv.get("run_id") or "",
                description=rv.get("description") or "", tags=tags, params=params, metrics=metrics, files=files,
            )
        except DomainError as exc:
            for _, upload in files:
                upload.discard()
            summary.warnings.append(f"{model.name} v{number}: {exc.message}")
            return
        summary.versions_new += 1
        summary.files += len(files)
        summary.bytes += sum(upload.size for _, upload in files)
        stage = rv.get("current_stage") or "None"
        if stage != "None":
            try:
                services.version_transition_stage(version=version, actor=actor, stage=stage)
            except DomainError as exc:
                summary.warnings.append(f"{model.name} v{number}: stage {stage} not applied: {exc.message}")

    def _run_data(self, remote: MlflowHttp, run_id: str) -> tuple[dict[str, str], dict[str, float]]:
        if not run_id:
            return {}, {}
        try:
            data = remote.get("runs/get", run_id=run_id).get("run", {}).get("data", {})
        except CommandError:
            return {}, {}
        params = {p["key"]: p.get("value", "") for p in data.get("params", []) if "__" not in p["key"]}
        metrics = {}
        for m in data.get("metrics", []):
            try:
                value = float(m.get("value"))
            except (TypeError, ValueError):
                continue
            if "__" not in m["key"] and value == value and abs(value) != float("inf"):
                metrics[m["key"]] = value
        return params, metrics

    def _download(self, remote: MlflowHttp, model: RegisteredModel, rv: dict[str, Any], summary: Summary
                  ) -> list[tuple[str, SpooledUpload]]:
        uri = remote.get("model-versions/get-download-uri", name=model.name, version=rv["version"]).get(
            "artifact_uri", "")
        if not uri.startswith("mlflow-artifacts:"):
            if uri:
                summary.warnings.append(f"{model.name} v{rv['version']}: files at {uri[:100]} are not served by the "
                                        "MLflow server; metadata only.")
            return []
        root = urllib.parse.urlparse(uri).path.lstrip("/")
        files: list[tuple[str, SpooledUpload]] = []
        try:
            for rel, _ in remote.list_files(root):
                files.append((rel, remote.download(root, rel)))
        except BaseException:
            for _, upload in files:
                upload.discard()
            raise
        return files

    def _import_aliases(self, model: RegisteredModel, remote: dict[str, Any], actor: Any, summary: Summary) -> None:
        current = dict(Alias.objects.filter(model=model).values_list("name", "version__number"))
        for item in remote.get("aliases", []):
            alias, number = item.get("alias"), int(item.get("version"))
            if current.get(alias) == number:
                continue
            version = ModelVersion.objects.filter(model=model, number=number).first()
            if version is None:
                summary.warnings.append(f"{model.name}@{alias}: version {number} was not imported.")
                continue
            try:
                services.alias_set(model=model, alias=alias, version=version, actor=actor)
                summary.aliases += 1
            except DomainError as exc:
                summary.warnings.append(f"{model.name}@{alias}: {exc.message}")


def _quote(name: str) -> str:
    """Escape a name for a single-quoted MLflow filter string."""
    return name.replace("\\", "\\\\").replace("'", "\\'")
