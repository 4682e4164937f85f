"""Conversion of scanned-clean scikit-learn pickles to ONNX, with a parity report, inside the sandbox child.

`convert_in_child` runs only in the limited child process (see loader.py); `artifact_convert_run` is the worker
side: it refuses anything not scanned clean, stores the ONNX file and its parity report as artifacts of the version,
and links them in lineage as converted_from the version.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

SAMPLE_ROWS = 64
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def _outputs(model: Any, x: Any) -> tuple[Any, Any]:
    import numpy as np

    labels = np.asarray(model.predict(x))
    proba = model.predict_proba(x) if hasattr(model, "predict_proba") else None
    return labels, None if proba is None else np.asarray(proba, dtype=np.float64)


def convert_in_child(src: str, fmt: str, out: str, sample: str = "", signature_columns: str = "0") -> dict[str, Any]:
    """Load `src` through the allowlist, convert it (zipmap off, float32), check it, and compare outputs (call only
    inside the sandbox child, whose working folder holds `src`, `sample` and receives `out`)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from skl2onnx import to_onnx

    from registry.pipeline.loader import restricted_load

    model = restricted_load(src, fmt)
    n_features = getattr(model, "n_features_in_", None)
    if not isinstance(n_features, int) and int(signature_columns) > 0:
        n_features = int(signature_columns)  # rows synthesised from the version's input signature
    if sample:
        x = np.load(sample, allow_pickle=False).astype(np.float32)
        source = "held-out sample"
    else:
        if not isinstance(n_features, int):
            raise ValueError("no sample stored with the version and the model does not say how many features it takes")
        x = np.random.default_rng(0).normal(size=(SAMPLE_ROWS, n_features)).astype(np.float32)
        source = "synthesised rows"
    if x.ndim != 2:
        raise ValueError(f"the sample must be a 2-D table, not shape {x.shape}")
    from sklearn.base import is_classifier

    options = {"zipmap": False} if is_classifier(model) else None
    onx = to_onnx(model, x[:1], options=options, target_opset=TARGET_OPSET)
    onnx.checker.check_model(onx)
    with open(out, "wb") as fh:
        fh.write(onx.SerializeToString())
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    results = session.run(None, {session.get_inputs()[0].name: x})
    labels, proba = _outputs(model, x)
    onnx_labels = np.asarray(results[0]).reshape(labels.shape)
    report: dict[str, Any] = {"rows": int(x.shape[0]), "features": int(x.shape[1]), "sample": source,
                              "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                              "opset": TARGET_OPSET[""], "onnx_outputs": [o.name for o in session.get_outputs()]}
    if proba is not None and len(results) > 1:
        report["label_agreement"] = float(np.mean(onnx_labels == labels))
        report["max_abs_diff"] = float(np.max(np.abs(np.asarray(results[1], dtype=np.float64) - proba)))
    elif np.issubdtype(labels.dtype, np.number) and proba is None and not hasattr(model, "classes_"):
        report["max_abs_diff"] = float(np.max(np.abs(onnx_labels.astype(np.float64) - labels.astype(np.float64))))
    else:
        report["label_agreement"] = float(np.mean(onnx_labels == labels))
    return report


# ------------------------------------------------------------------------------------------ worker side


def _sample_file(version: Any, workdir: str) -> str:
    """Write the version's held-out sample (MLflow input_example.json or sample.json) as .npy; "" when none."""
    import numpy as np

    from registry.artifacts.storage import blob_open
    from registry.models import Artifact

    artifact = (Artifact.objects.filter(version=version, format="json")
                .filter(path__regex=r"(^|/)(input_example|sample)\.json$").order_by("path").first())
    if artifact is None or artifact.size > 50 * 1024 * 1024:
        return ""
    with blob_open(artifact.blob) as fh:
        doc = json.load(fh)
    rows = doc.get("data") if isinstance(doc, dict) else doc
    try:
        table = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        return ""
    if table.ndim != 2 or table.size == 0:
        return ""
    path = os.path.join(workdir, "sample.npy")
    np.save(path, table, allow_pickle=False)
    return path


def _local_copy(artifact: Any, workdir: str) -> str:
    from registry.artifacts.storage import artifact_storage, blob_open

    storage = artifact_storage()
    try:
        return storage.path(artifact.blob.storage_name)
    except NotImplementedError:
        path = os.path.join(workdir, "source")
        with blob_open(artifact.blob) as src, open(path, "wb") as dst:
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                dst.write(chunk)
        return path


class ConversionFailed(Exception):
    """The conversion could not be done; the reason is recorded on the job."""


def _wait_for_scan(artifact: Any) -> None:
    """Defer the conversion while the artifact's current content has no verdict and its scan is still to run;
    fail it, with the reason, when that scan gave up."""
    from registry.models import ArtifactScan, JobState
    from registry.pipeline import jobs
    from registry.pipeline.scan.services import scan_enqueue

    if ArtifactScan.objects.filter(artifact=artifact, blob_id=artifact.blob_id).exists():
        return
    scan = scan_enqueue(artifact)  # the scan of this content (queued now if, somehow, it never was)
    if scan.state == JobState.FAILED:
        raise ConversionFailed(f"the scan of {artifact.path} failed ({scan.error or 'no reason recorded'}); "
                               "an unscanned file is never loaded")
    if scan.state == JobState.SUCCEEDED:  # it finished between the two reads: its verdict is there now
        if ArtifactScan.objects.filter(artifact=artifact, blob_id=artifact.blob_id).exists():
            return
        raise ConversionFailed(f"the scan of {artifact.path} recorded no verdict; an unscanned file is never loaded")
    raise jobs.Deferred(f"the scan of {artifact.path} has not finished", countdown=5)


def artifact_convert_run(job: Any) -> dict[str, Any]:
    """Perform a conversion job: sandboxed load and convert, then store the ONNX file, report and lineage."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from registry import services
    from registry.artifacts.storage import spool_stream, work_dir
    from registry.lineage import services as lineage
    from registry.lineage.models import EdgeKind, NodeKind
    from registry.locking import model_lock
    from registry.models import Artifact
    from registry.pipeline import jobs
    from registry.pipeline.loader import run_sandboxed
    from registry.pipeline.scan.trust import artifact_trust

    artifact = Artifact.objects.select_related("blob", "version__model").filter(pk=job.artifact_id).first()
    if artifact is None or artifact.blob_id != job.params.get("sha256"):
        return {"superseded": True}
    if artifact.format not in ("pickle", "joblib"):
        raise ConversionFailed(f"{artifact.path} is {artifact.format}, not a scikit-learn pickle or joblib file")
    _wait_for_scan(artifact)
    if not artifact_trust(artifact).servable:
        raise ConversionFailed(f"{artifact.path} is quarantined (it has not scanned clean and no four-eyes release "
                               "covers it); it is never loaded")
    actor = get_user_model().objects.filter(pk=job.params.get("actor")).first() or artifact.version.creator
    version = artifact.version
    with work_dir("convert") as workdir:
        sample = _sample_file(version, workdir)
        result = run_sandboxed(
            "convert", inputs={"model": _local_copy(artifact, workdir), **({"sample.npy": sample} if sample else {})},
            args=[artifact.format, str(len((version.signature or {}).get("inputs") or []))],
            outputs=["model.onnx"], output_dir=workdir,
            cpu_seconds=settings.STRATUM_LOAD_CPU_SECONDS, memory_bytes=settings.STRATUM_LOAD_MEMORY_BYTES,
            file_bytes=settings.STRATUM_LOAD_FILE_BYTES, timeout=settings.STRATUM_LOAD_WALL_SECONDS)
        if not result.ok:
            raise ConversionFailed(f"{result.error} [sandbox: {result.confinement or 'did not start'}]")
        out = result.outputs["model.onnx"]
        jobs.job_progress(job, 70)
        stem = artifact.path.rsplit(".", 1)[0] if "." in artifact.path.rsplit("/", 1)[-1] else artifact.path
        onnx_path, report_path = f"{stem}.onnx", f"{stem}.onnx.parity.json"
        report = {**result.data, "source": artifact.path, "source_sha256": artifact.blob_id}
        spooled = []
        try:  # every failure (a full disk, a refused path, a database error) removes what was spooled
            with open(out, "rb") as fh:
                spooled.append(spool_stream(fh))
            spooled.append(spool_stream(io.BytesIO(json.dumps(report, indent=2).encode())))
            onnx_upload, report_upload = spooled
            with transaction.atomic():
                # The lock order of registry/locking.py: the model, then the lineage graph's lock, before any event.
                model_lock(version.model_id)
                lineage.graph_lock()
                onnx_artifact = services.artifact_add(version=version, actor=actor, path=onnx_path,
                                                      upload=onnx_upload)
                services.artifact_add(version=version, actor=actor, path=report_path, upload=report_upload)
                version_node, _ = lineage.version_node_ensure(version)
                node = lineage.node_create(actor=actor, kind=NodeKind.CONVERTED_ARTIFACT, model=version.model,
                                           name=f"{version.model.name}/{onnx_path}", version=str(version.number),
                                           digest=f"sha256:{onnx_artifact.blob_id}").obj
                if node.properties != {"parity": report, "path": onnx_path}:
                    node.properties = {"parity": report, "path": onnx_path}
                    node.save(update_fields=["properties"])
                lineage.edge_create(actor=actor, upstream=version_node, downstream=node,
                                    kind=EdgeKind.CONVERTED_FROM)
        finally:
            for upload in spooled:
                upload.discard()  # harmless for what the store already took
    return {"onnx": onnx_path, "sha256": onnx_artifact.blob_id, "lineage_node": node.pk, "parity": report,
            "sandbox": result.confinement}


def convert_enqueue(*, artifact: Any, actor: Any) -> Any:
    """Queue the conversion of an artifact to ONNX (contributors); a repeated request reuses the job."""
    from registry import permissions
    from registry.errors import Forbidden, InvalidInput
    from registry.models import JobKind
    from registry.pipeline import jobs

    if not permissions.can_contribute(actor, artifact.version.model):
        raise Forbidden(f"You do not have permission to convert files of model {artifact.version.model.name!r}.")
    if artifact.format not in ("pickle", "joblib"):
        raise InvalidInput(f"{artifact.path} is {artifact.format}; only pickle and joblib files convert to ONNX.")
    from registry.pipeline.scan.trust import TrustState, artifact_trust, ensure_servable

    if artifact_trust(artifact).state == TrustState.QUARANTINED:  # one still being scanned waits for its verdict
        ensure_servable(artifact)
    return jobs.job_enqueue(kind=JobKind.CONVERT, key=f"convert:{artifact.pk}:{artifact.blob_id}",
                            version=artifact.version, artifact=artifact, label=artifact.path,
                            params={"sha256": artifact.blob_id, "actor": getattr(actor, "pk", None)}, rerun=True)
