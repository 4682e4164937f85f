"""manage.py import_mlflow --tracking-uri URL --owner USER: copy an MLflow registry into Stratum, idempotently.

Registered models (descriptions, tags, aliases) and their versions (numbers, tags, stages, descriptions, run ids,
the run's params and metrics, and the files behind mlflow-artifacts:/ download URIs) are copied through the
services, over plain HTTP (no mlflow package needed). Versions already imported are recognised by the
`stratum.imported_from` tag and skipped, so the command can run again to pick up new versions.

The runs behind those versions come too (unless --no-runs), and any others named by --experiment or --run-id:
experiment, run info, params, every metric's history, tags and dataset inputs, under their own run ids, before the
versions, so a version is born verified. Then every version in Stratum recorded with its run held elsewhere (for
example one registered from a split tracking/registry setup) whose run Stratum now holds is linked to it.
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
from registry.models import Alias, Experiment, ModelTag, ModelVersion, RegisteredModel, Run, VersionTag
from registry.tracking import experiments as tracking_experiments
from registry.tracking import provenance
from registry.tracking import runs as tracking_runs

IMPORT_TAG = "stratum.imported_from"
ORIGINAL_SOURCE_TAG = "stratum.original_source"
TIMEOUT = 60
HISTORY_PAGE = 25_000


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

    def post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON to /api/2.0/mlflow/<endpoint> and return the JSON body."""
        request = urllib.request.Request(  # noqa: S310 - http(s) only (checked in __init__)
            f"{self.base}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
            headers={**self.headers, "Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s) only
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise CommandError(f"MLflow answered {exc.code} to {endpoint}: {detail}")
        except urllib.error.URLError as exc:
            raise CommandError(f"Cannot reach MLflow at {self.base}: {exc.reason}")

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
    runs_new: int = 0
    runs_seen: int = 0
    versions_linked: int = 0
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
        parser.add_argument("--no-runs", action="store_true",
                            help="Do not copy the runs behind the imported versions")
        parser.add_argument("--experiment", action="append", default=[], metavar="NAME",
                            help="Also copy every run of this MLflow experiment (repeatable)")
        parser.add_argument("--run-id", action="append", default=[], metavar="RUN_ID",
                            help="Also copy this MLflow run (repeatable)")

    def handle(self, *args: Any, tracking_uri: str, owner: str | None = None, filter: str = "",
               no_artifacts: bool = False, no_runs: bool = False, experiment: list[str] | None = None,
               run_id: list[str] | None = None, **options: Any) -> None:
        actor = self._owner(owner)
        remote = MlflowHttp(tracking_uri, token=os.environ.get("MLFLOW_TRACKING_TOKEN", ""),
                            username=os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
                            password=os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        summary = Summary()
        models = remote.paged("registered-models/search", "registered_models", max_results=1000,
                              **({"filter": filter} if filter else {}))
        plan = [(m, remote.paged("model-versions/search", "model_versions", filter=f"name='{_quote(m['name'])}'",
                                 max_results=10000)) for m in models]
        wanted = [] if no_runs else [v.get("run_id") or "" for _, versions in plan for v in versions]
        wanted += list(run_id or [])
        for name in experiment or []:
            wanted += self._experiment_run_ids(remote, name)
        self._import_runs(remote, tracking_uri, list(dict.fromkeys(r for r in wanted if r)), actor, summary)
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
        for version in provenance.versions_awaiting_run():
            try:
                summary.versions_linked += provenance.version_run_link(version=version, actor=actor)
            except DomainError as exc:
                summary.warnings.append(f"{version.model.name} v{version.number}: run not linked: {exc.message}")
        self.stdout.write(
            f"Imported from {tracking_uri}: {summary.models_seen} models ({summary.models_new} new), "
            f"{summary.versions_new} new versions ({summary.versions_skipped} already imported), "
            f"{summary.files} files ({summary.bytes} bytes), {summary.aliases} aliases set."
        )
        self.stdout.write(f"Runs: {summary.runs_seen} copied ({summary.runs_new} new); {summary.versions_linked} "
                          "versions linked to their runs.")
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
        held = Run.objects.filter(pk=rv.get("run_id") or "").first()
        datasets: list[dict[str, str]] = []
        feature_sets: list[Any] = []
        if held is not None:  # imported just before: the version inherits what Stratum holds, datasets included
            prov = provenance.run_provenance(held)
            params, metrics, datasets = prov.params, prov.metrics, prov.datasets
            feature_sets = prov.feature_sets
            summary.warnings.extend(f"{model.name} v{number}: {e} (feature set not recorded)"
                                    for e in prov.feature_set_errors)
        else:
            params, metrics = self._run_data(remote, rv.get("run_id") or "")
        files: list[tuple[str, SpooledUpload]] = []
        try:
            if not no_artifacts:
                files = self._download(remote, model, rv, summary)
            version = services.version_create(
                model=model, actor=actor, number=number, source_uri=source, run_id=rv.get("run_id") or "",
                description=rv.get("description") or "", tags=tags, params=params, metrics=metrics, files=files,
                datasets=datasets, feature_sets=feature_sets,
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

    def _experiment_run_ids(self, remote: MlflowHttp, name: str) -> list[str]:
        """The ids of every run (active or deleted) of the MLflow experiment called `name`."""
        exp_id = remote.get("experiments/get-by-name", experiment_name=name)["experiment"]["experiment_id"]
        ids: list[str] = []
        token = None
        while True:
            body = remote.post("runs/search", {"experiment_ids": [exp_id], "run_view_type": "ALL",
                                               "max_results": 1000, **({"page_token": token} if token else {})})
            ids += [r["info"]["run_id"] for r in body.get("runs", [])]
            token = body.get("next_page_token")
            if not token:
                return ids

    def _import_runs(self, remote: MlflowHttp, tracking_uri: str, run_ids: list[str], actor: Any,
                     summary: Summary) -> None:
        """Copy each run (its experiment first) with its params, metric histories, tags and dataset inputs."""
        if not run_ids:
            return
        experiments: dict[str, Experiment] = {}
        progress = Progress(self.stderr, len(run_ids), "runs")
        for rid in run_ids:
            progress.step(rid)
            try:
                run = remote.get("runs/get", run_id=rid).get("run", {})
            except CommandError as exc:
                summary.warnings.append(f"run {rid}: not copied: {exc}")
                continue
            info, data = run.get("info", {}), run.get("data", {})
            try:
                exp_id = str(info.get("experiment_id", ""))
                if exp_id not in experiments:
                    remote_exp = remote.get("experiments/get", experiment_id=exp_id).get("experiment", {})
                    tags = {t["key"]: t.get("value", "") for t in remote_exp.get("tags", [])}
                    experiments[exp_id], _ = tracking_experiments.experiment_for_import(
                        actor=actor, name=remote_exp.get("name", ""), tags=tags)
                metrics = [point for key in sorted({m["key"] for m in data.get("metrics", [])})
                           for point in remote.paged("metrics/get-history", "metrics", run_id=rid, metric_key=key,
                                                     max_results=HISTORY_PAGE)]
                _, created = tracking_runs.run_import(
                    actor=actor, experiment=experiments[exp_id], run_id=rid, info=info,
                    params=[(p["key"], p.get("value", "")) for p in data.get("params", [])],
                    tags=[(t["key"], t.get("value", "")) for t in data.get("tags", [])], metrics=metrics,
                    inputs=run.get("inputs", {}).get("dataset_inputs", []), origin=f"{tracking_uri.rstrip('/')}")
            except (DomainError, CommandError) as exc:
                summary.warnings.append(f"run {rid}: not copied: {getattr(exc, 'message', exc)}")
                continue
            summary.runs_seen += 1
            summary.runs_new += created
        progress.close()

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
