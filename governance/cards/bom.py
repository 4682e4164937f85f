"""A version's AI-BOM: a CycloneDX 1.7 ML-BOM (model, model card, files with SHA-256, datasets, requirements,
signature), built with cyclonedx-python-lib, validated against the official schema, covered by the signature.

cyclonedx-python-lib has no model for `modelCard` or `data` yet (both are TODO in its Component), so the document
is built with the library, serialised, and those two objects are added to the JSON before it is validated against
the official CycloneDX 1.7 JSON schema that the library bundles. The signing job lays the document into the signed
tree as `.stratum/bom.cdx.json` (registry/pipeline/signing.py's plug point), so verification fails if it changes.
"""

from __future__ import annotations

import json
import re
import uuid
import warnings
from typing import Any

from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot7
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from django.urls import reverse
from packageurl import PackageURL

from registry.models import Artifact, ModelVersion

SCHEMA_VERSION = SchemaVersion.V1_7
MEDIA_TYPE = "application/vnd.cyclonedx+json"
SIGNED_NAME = "bom.cdx.json"
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:==\s*([^\s;,]+))?")
_NAMESPACE = uuid.UUID("5a7c2f0e-3b1d-4c8e-9f2a-6d0b1e4c7a93")


class BomInvalid(RuntimeError):
    """The document does not validate against the official schema (a bug here, never the user's input)."""


def _requirements(environment: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for line in environment or []:
        match = _REQUIREMENT.match(str(line))
        if match and not str(line).lstrip().startswith(("#", "-")):
            out.append((match.group(1), match.group(2) or "", str(line).strip()))
    return out


def _model_card(version: ModelVersion, card_content: dict[str, Any] | None) -> dict[str, Any]:
    """Map the registry's facts and the Stratum card onto CycloneDX's modelCard."""
    content = card_content or {}
    parameters: dict[str, Any] = {}
    datasets = [{"ref": f"dataset-{d.pk}"} for d in version.datasets.all()]
    if datasets:
        parameters["datasets"] = datasets
    inputs = [{"format": str(i.get("type") or i.get("name") or "tensor")[:200]}
              for i in (version.signature or {}).get("inputs") or [] if isinstance(i, dict)]
    outputs = [{"format": str(o.get("type") or o.get("name") or "tensor")[:200]}
               for o in (version.signature or {}).get("outputs") or [] if isinstance(o, dict)]
    if inputs:
        parameters["inputs"] = inputs
    if outputs:
        parameters["outputs"] = outputs
    card: dict[str, Any] = {"bom-ref": "model-card"}
    if parameters:
        card["modelParameters"] = parameters
    metrics = [{"type": str(name), "value": str(value)} for name, value in sorted((version.metrics or {}).items())]
    for measure in (content.get("metrics") or {}).get("performance_measures") or []:
        row: dict[str, Any] = {"type": str(measure.get("name", "")), "value": str(measure.get("value", ""))}
        if measure.get("slice"):
            row["slice"] = str(measure["slice"])
        if measure.get("ci_lower") is not None and measure.get("ci_upper") is not None:
            row["confidenceInterval"] = {"lowerBound": str(measure["ci_lower"]),
                                         "upperBound": str(measure["ci_upper"])}
        metrics.append(row)
    if metrics:
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations: dict[str, Any] = {}
    intended = content.get("intended_use") or {}
    ethics = content.get("ethical_considerations") or {}
    caveats = content.get("caveats_recommendations") or {}
    for key, value in (("users", intended.get("primary_users")), ("useCases", intended.get("primary_uses")),
                       ("technicalLimitations", caveats.get("limitations"))):
        if value:
            considerations[key] = [str(value)]
    if ethics.get("risks_and_harms"):
        considerations["ethicalConsiderations"] = [{"name": str(ethics["risks_and_harms"]),
                                                    **({"mitigationStrategy": str(ethics["mitigations"])}
                                                       if ethics.get("mitigations") else {})}]
    if considerations:
        card["considerations"] = considerations
    properties = [{"name": f"stratum:card:{section}.{field}", "value": str(value)}
                  for section, fields in sorted(content.items()) if isinstance(fields, dict)
                  for field, value in sorted(fields.items()) if isinstance(value, str) and value]
    if properties:
        card["properties"] = properties[:200]
    return card


def bom_build(version: ModelVersion, *, files: dict[str, str] | None = None,
              card_content: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the CycloneDX 1.7 ML-BOM of `version` as a dict (validated); `files` (path -> sha256) defaults to
    the version's current tree, `card_content` to its model card."""
    if files is None:
        files = dict(Artifact.objects.filter(version=version).order_by("path").values_list("path", "blob_id"))
    if card_content is None:
        from governance.cards.selectors import card_for_version

        card = card_for_version(version=version)
        card_content = card.content if card else {}
    model = version.model
    name, ref = model.name, str(version.number)
    bundle_url = reverse("api-signature-bundle", kwargs={"name": name, "ref": ref})
    card_url = reverse("api-card", kwargs={"name": name, "ref": ref})
    main = Component(type=ComponentType.MACHINE_LEARNING_MODEL, name=name, version=version.semver or ref,
                     bom_ref="model", description=(version.description or model.description or "")[:5000] or None,
                     external_references=[
                         ExternalReference(type=ExternalReferenceType.DIGITAL_SIGNATURE, url=XsUri(bundle_url),
                                           comment="OpenSSF model-signing (Sigstore) bundle over the version's "
                                                   "files and this BOM, EC P-256"),
                         ExternalReference(type=ExternalReferenceType.MODEL_CARD, url=XsUri(card_url))],
                     properties=[Property(name="stratum:version", value=ref),
                                 Property(name="stratum:stage", value=str(version.stage or "None"))])
    if version.code_repository:
        main.external_references.add(ExternalReference(
            type=ExternalReferenceType.VCS, url=XsUri(version.code_repository),
            comment=f"commit {version.code_commit}" if version.code_commit else None))
    bom = Bom()
    bom.serial_number = uuid.uuid5(_NAMESPACE, f"{model.pk}:{version.pk}:" + json.dumps(files, sort_keys=True))
    bom.metadata.timestamp = version.created_at
    bom.metadata.component = main
    file_components = [Component(type=ComponentType.FILE, name=path, bom_ref=f"file:{path}",
                                 hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha)])
                       for path, sha in sorted(files.items())]
    dataset_rows = list(version.datasets.all())
    data_components = []
    for d in dataset_rows:
        component = Component(type=ComponentType.DATA, name=d.name, bom_ref=f"dataset-{d.pk}",
                              properties=[Property(name="stratum:dataset:role", value=str(d.role))])
        if d.uri:
            component.external_references.add(ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                                                url=XsUri(d.uri)))
        data_components.append(component)
    libraries = []
    for pkg, pinned, line in _requirements(version.environment):
        purl = PackageURL(type="pypi", name=pkg.lower().replace("_", "-"), version=pinned or None)
        libraries.append(Component(type=ComponentType.LIBRARY, name=pkg, version=pinned or None, purl=purl,
                                   bom_ref=f"requirement:{line}", properties=[Property(name="stratum:requirement",
                                                                                       value=line)]))
    for component in [*file_components, *data_components, *libraries]:
        bom.components.add(component)
    bom.register_dependency(main, [*libraries, *data_components])
    with warnings.catch_warnings():  # a version with no requirements or datasets has no dependencies: that is true
        warnings.simplefilter("ignore", UserWarning)
        doc = json.loads(JsonV1Dot7(bom).output_as_string())
    doc["metadata"]["component"]["modelCard"] = _model_card(version, card_content)
    for component in doc.get("components", []):
        if component.get("type") == "data":
            row = next(d for d in dataset_rows if f"dataset-{d.pk}" == component["bom-ref"])
            data: dict[str, Any] = {"type": "dataset", "name": row.name,
                                    "description": f"{row.get_role_display()} data"}
            if row.uri:
                data["contents"] = {"url": row.uri}
            if row.digest:
                data["contents"] = {**data.get("contents", {}), "attachment": {"content": row.digest,
                                                                                 "contentType": "text/plain"}}
            component["data"] = [data]
    bom_validate(doc)
    return doc


def bom_validate(doc: dict[str, Any]) -> None:
    """Raise BomInvalid unless `doc` validates against the official CycloneDX 1.7 JSON schema."""
    error = JsonStrictValidator(SCHEMA_VERSION).validate_str(json.dumps(doc))
    if error is not None:
        raise BomInvalid(str(error)[:2000])


def bom_bytes(doc: dict[str, Any]) -> bytes:
    """Serialise a BOM canonically (the bytes that are signed)."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode()


def bom_for_signing(version: ModelVersion, files: dict[str, str]) -> bytes:
    """The signing plug point: the BOM of exactly the tree being signed."""
    return bom_bytes(bom_build(version, files=files))


def bom_get(*, version: ModelVersion) -> tuple[bytes, bool]:
    """Return (bytes, signed): the BOM covered by the latest signature, else one built now from the current tree."""
    from registry.pipeline import services as pipeline

    signature = version.signatures.first()
    if signature is not None:
        stored = pipeline.signed_document(signature, f"{pipeline.SIGNED_DOCUMENT_DIR}/{SIGNED_NAME}")
        if stored is not None:
            return stored, True
    return bom_bytes(bom_build(version)), False


def bom_summary(data: bytes) -> dict[str, Any]:
    """Return what the PDF card shows of a BOM: counts, rows by kind, and its SHA-256."""
    import hashlib

    doc = json.loads(data)
    rows = [{"kind": c.get("type", ""), "name": c.get("name", ""), "version": c.get("version", ""),
             "sha256": next((h["content"] for h in c.get("hashes", []) if h.get("alg") == "SHA-256"), "")}
            for c in doc.get("components", [])]
    return {"sha256": hashlib.sha256(data).hexdigest(), "spec": doc.get("specVersion", ""),
            "serial": doc.get("serialNumber", ""), "rows": rows,
            "counts": {kind: sum(1 for r in rows if r["kind"] == kind) for kind in ("file", "data", "library")}}
