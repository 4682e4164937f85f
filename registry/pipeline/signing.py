"""Sign a version's file tree with OpenSSF model-signing (EC P-256 key) and verify it against the current tree.

The tree is materialised from the content-addressed store (hard links when the store is local disk), so the bytes
model-signing hashes are the stored bytes. The Sigstore bundle is kept as a blob beside the version, never inside
its tree. Verification names every changed, added or removed file and is audited.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from django.db import transaction

from registry import events, permissions
from registry.artifacts.storage import artifact_storage, blob_open, blob_put, spool_stream, work_dir
from registry.errors import InvalidState
from registry.locking import model_lock
from registry.models import Artifact, Job, JobKind, ModelVersion, SignatureVerification, VersionSignature
from registry.pipeline import jobs
from registry.pipeline.keys import key_fingerprint, private_key, public_key_pem
from registry.pipeline.scan.trust import ensure_version_servable

# Documents that other apps derive from a version and want covered by its signature (governance's CycloneDX
# AI-BOM): built when the version is signed, laid into the signed tree under this folder, stored as blobs, and laid
# in again, from those blobs, when the signature is verified, so a changed document fails verification.
SIGNED_DOCUMENT_DIR = ".stratum"
_SIGNED_DOCUMENTS: dict[str, Callable[[ModelVersion, dict[str, str]], bytes]] = {}


def register_signed_document(name: str, build: Callable[[ModelVersion, dict[str, str]], bytes]) -> str:
    """Have every signature cover `build(version, files)` (files: path -> sha256) as `.stratum/<name>`."""
    path = f"{SIGNED_DOCUMENT_DIR}/{name}"
    _SIGNED_DOCUMENTS[path] = build
    return path


def signed_document_digests(digests: set[str]) -> set[str]:
    """The digests among `digests` that a signature holds as one of its signed documents (the AI-BOM): blob
    collection keeps them, since only the signature's manifest refers to them. One query per document kind."""
    from django.db.models import CharField
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast

    found: set[str] = set()
    for path in _SIGNED_DOCUMENTS:  # the key's text as a plain string, so `in` compares strings, not JSON
        found.update(VersionSignature.objects.annotate(doc=Cast(KT(f"manifest__{path}"), CharField()))
                     .filter(doc__in=digests).values_list("doc", flat=True))
    return found


def signed_document(signature: VersionSignature, path: str) -> bytes | None:
    """Return the bytes of a document a signature covers, as signed, or None when it covers none at `path`."""
    from registry.models import Blob

    sha = (signature.manifest or {}).get(path)
    blob = Blob.objects.filter(pk=sha).first() if sha and path in _SIGNED_DOCUMENTS else None
    if blob is None:
        return None
    with blob_open(blob) as fh:
        return fh.read()


def _lay_signed_documents(root: str, documents: dict[str, str]) -> dict[str, str]:
    """Write the stored signed documents (path -> blob sha256) into the tree; return those that exist."""
    from registry.models import Blob

    laid: dict[str, str] = {}
    for path, sha in documents.items():
        blob = Blob.objects.filter(pk=sha).first()
        if blob is None:
            continue
        dest = os.path.join(root, *path.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with blob_open(blob) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        laid[path] = sha
    return laid


def _write_key_files(workdir: str) -> tuple[str, str]:
    priv = os.path.join(workdir, "key.pem")
    fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    pub = os.path.join(workdir, "pub.pem")
    Path(pub).write_text(public_key_pem())
    return priv, pub


def materialise_tree(version: ModelVersion, root: str) -> dict[str, str]:
    """Lay a version's current files out under `root` (hard links into a local store); return path -> sha256."""
    storage = artifact_storage()
    manifest: dict[str, str] = {}
    for artifact in Artifact.objects.filter(version=version).select_related("blob").order_by("path"):
        dest = os.path.join(root, *artifact.path.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.link(storage.path(artifact.blob.storage_name), dest)
        except (NotImplementedError, OSError):
            with blob_open(artifact.blob) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
        manifest[artifact.path] = artifact.blob_id
    return manifest


def sign_enqueue(*, version: ModelVersion, actor: Any) -> Job:
    """Queue the signing of a version's current tree (maintainers)."""
    permissions.require(permissions.can_maintain, actor, version.model, action="sign versions")
    if not Artifact.objects.filter(version=version).exists():
        raise InvalidState(f"Version {version.number} has no files to sign.")
    ensure_version_servable(version)  # a signature vouches for the bytes: never over quarantined or unscanned ones
    tree = ",".join(f"{p}={s}" for p, s in Artifact.objects.filter(version=version).order_by("path")
                    .values_list("path", "blob_id"))
    digest = hashlib.sha256(tree.encode()).hexdigest()[:32]
    return jobs.job_enqueue(kind=JobKind.SIGN, key=f"sign:{version.pk}:{digest}", version=version,
                            label=f"v{version.number} file tree", params={"actor": actor.pk}, rerun=True)


def verify_enqueue(*, version: ModelVersion, actor: Any, reason: str = "on demand") -> Job:
    """Queue a verification of a version's latest signature against its current tree (contributors)."""
    permissions.require(permissions.can_contribute, actor, version.model, action="verify signatures")
    return _verify_job(version=version, actor=actor, reason=reason)


def _verify_job(*, version: ModelVersion, actor: Any, reason: str) -> Job:
    from django.utils import timezone

    return jobs.job_enqueue(kind=JobKind.VERIFY, key=f"verify:{version.pk}:{timezone.now().timestamp()}",
                            version=version, label=f"v{version.number} signature ({reason})",
                            params={"actor": getattr(actor, "pk", None), "reason": reason})


def version_sign_run(job: Job) -> dict[str, Any]:
    """Perform a signing job: materialise the tree, sign it, store the bundle blob and record the signature."""
    import model_signing
    from django.contrib.auth import get_user_model

    version = ModelVersion.objects.select_related("model").get(pk=job.version_id)
    actor = get_user_model().objects.filter(pk=job.params.get("actor")).first()
    ensure_version_servable(version)  # quarantined since it was queued: the job fails, naming why
    with work_dir("sign") as workdir:
        root = os.path.join(workdir, "tree")
        os.makedirs(root)
        manifest = materialise_tree(version, root)
        clash = sorted(p for p in manifest if p.split("/")[0] == SIGNED_DOCUMENT_DIR)
        if clash:
            raise InvalidState(f"{', '.join(clash)}: the folder {SIGNED_DOCUMENT_DIR}/ holds the documents a "
                               "signature covers; rename these files to sign the version.")
        files = dict(manifest)
        for path, build in sorted(_SIGNED_DOCUMENTS.items()):
            manifest[path] = blob_put(spool_stream(io.BytesIO(build(version, files)))).sha256
        _lay_signed_documents(root, {p: manifest[p] for p in _SIGNED_DOCUMENTS})
        priv, _ = _write_key_files(workdir)
        bundle_path = os.path.join(workdir, "model.sig")
        model_signing.signing.Config().use_elliptic_key_signer(private_key=priv).set_hashing_config(
            model_signing.hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
        ).sign(root, bundle_path)
        with open(bundle_path, "rb") as fh:
            bundle = blob_put(spool_stream(fh))
    with transaction.atomic():
        model_lock(version.model_id)  # the lock order of registry/locking.py: the model first
        signature = VersionSignature.objects.create(version=version, bundle=bundle, manifest=manifest,
                                                    key_fingerprint=key_fingerprint(), signer=actor)
        SignatureVerification.objects.create(signature=signature, ok=True, detail="Verified when signed.")
        events.emit("model_version.signed", actor=actor, target=version, data={
            "files": len(manifest), "bundle_sha256": bundle.sha256, "key_fingerprint": signature.key_fingerprint})
    return {"signature": signature.pk, "files": len(manifest), "bundle_sha256": bundle.sha256}


_MISMATCH = re.compile(r"Hash mismatch for '([^']+)'")
_EXTRA = re.compile(r"Extra files found in model '[^']*': (.+)$")
_MISSING = re.compile(r"Missing files in model '[^']*': (.+)$")


def _messages(text: str) -> list[str]:
    """Split model-signing's "Signature mismatch: [...]" error into its messages."""
    import ast

    head, _, rest = text.partition(": ")
    if head == "Signature mismatch" and rest.startswith("["):
        try:
            items = ast.literal_eval(rest)
        except (ValueError, SyntaxError):
            return [text]
        return [str(item) for item in items]
    return [text]


def _names(pattern: re.Pattern[str], text: str) -> set[str]:
    out: set[str] = set()
    for message in _messages(text):
        match = pattern.match(message)
        if match:
            out.update(name.strip() for name in match.group(1).split(","))
    return {n for n in out if n}


def signature_verify(*, version: ModelVersion, actor: Any = None) -> SignatureVerification:
    """Verify the latest signature of a version against its current stored tree; audit and return the result."""
    import model_signing

    signature = VersionSignature.objects.filter(version=version).select_related("bundle").first()
    if signature is None:
        raise InvalidState(f"Version {version.number} has not been signed.")
    with work_dir("verify") as workdir:
        root = os.path.join(workdir, "tree")
        os.makedirs(root)
        current = materialise_tree(version, root)
        current.update(_lay_signed_documents(root, {p: sha for p, sha in signature.manifest.items()
                                                    if p.split("/")[0] == SIGNED_DOCUMENT_DIR}))
        _, pub = _write_key_files(workdir)
        bundle_path = os.path.join(workdir, "model.sig")
        with blob_open(signature.bundle) as src, open(bundle_path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        try:
            model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).set_hashing_config(
                model_signing.hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False)
            ).verify(root, bundle_path)
            error = ""
        except Exception as exc:  # model-signing raises ValueError naming the files; anything else fails too
            error = str(exc) or exc.__class__.__name__
    signed = signature.manifest
    changed = sorted({p for p in signed if p in current and signed[p] != current[p]} | _names(_MISMATCH, error))
    added = sorted(({p for p in current if p not in signed} | _names(_EXTRA, error)) - set(changed))
    removed = sorted(({p for p in signed if p not in current} | _names(_MISSING, error)) - set(changed))
    ok = not error and not (changed or added or removed)
    parts = [f"{label}: {', '.join(files)}" for label, files in
             (("changed", changed), ("added", added), ("removed", removed)) if files]
    detail = "Signature verified." if ok else ("; ".join(parts) or error)[:5000]
    with transaction.atomic():
        model_lock(version.model_id)  # the lock order of registry/locking.py: the model first
        result = SignatureVerification.objects.create(signature=signature, ok=ok, changed=changed, added=added,
                                                      removed=removed, detail=detail)
        events.emit("model_version.signature_verified" if ok else "model_version.signature_verification_failed",
                    actor=actor, target=version, data={"signature": signature.pk, "ok": ok, "changed": changed,
                                                       "added": added, "removed": removed})
    return result


def version_verify_run(job: Job) -> dict[str, Any]:
    """Perform a verification job."""
    from django.contrib.auth import get_user_model

    version = ModelVersion.objects.select_related("model").get(pk=job.version_id)
    actor = get_user_model().objects.filter(pk=job.params.get("actor")).first()
    result = signature_verify(version=version, actor=actor)
    return {"ok": result.ok, "changed": result.changed, "added": result.added, "removed": result.removed}


def signatures_verify_all() -> int:
    """Queue a verification of every signed version (the periodic check); return how many."""
    ids = VersionSignature.objects.values_list("version_id", flat=True).distinct()
    count = 0
    for version in ModelVersion.objects.filter(pk__in=list(ids)).select_related("model"):
        _verify_job(version=version, actor=None, reason="periodic")
        count += 1
    return count


def bundle_bytes(signature: VersionSignature) -> io.BytesIO:
    """Return the bundle's bytes for download."""
    with blob_open(signature.bundle) as fh:
        return io.BytesIO(fh.read())


jobs.register_handler(JobKind.SIGN, version_sign_run)
jobs.register_handler(JobKind.VERIFY, version_verify_run)
