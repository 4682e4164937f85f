"""The code's boundaries hold: no module imports another module's private names, no Django internals are used.

The app-to-app boundaries (registry imports no other app, governance does not import deployments, the other apps
reach the registry only through its public modules) are import-linter contracts in pyproject.toml, run by `make test`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stratum", "registry", "governance", "deployments")
FIRST_PARTY = re.compile(r"^(stratum|registry|governance|deployments|tests)(\.|$)")
# Django's and DRF's private machinery that a speed layer once used; a Django upgrade could break it unnoticed.
DJANGO_INTERNALS = re.compile(
    r"\b(_iterable_class|klass_info|get_related_populators|_prepare_related_fields_for_save|_start_transaction_under_"
    r"autocommit|_result_cache|_prefetched_objects_cache|get_compiler)\b")


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_sources_are_found():
    assert len(_sources()) > 100


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_from_another_module(path: Path):
    here = _module_name(path)
    offences = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and FIRST_PARTY.match(node.module):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and node.module != here:
                    offences.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    assert not offences, f"{here} imports private names; make them public where they are shared: {offences}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_django_internals_and_no_backend_subclass(path: Path):
    text = path.read_text()
    assert not DJANGO_INTERNALS.findall(text), f"{path.name} uses Django internals: {DJANGO_INTERNALS.findall(text)}"
    assert "DatabaseWrapper" not in text, f"{path.name} subclasses or names a database backend wrapper"
