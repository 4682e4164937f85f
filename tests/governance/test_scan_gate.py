"""The "artifacts scanned clean" promotion gate reads the registry's scan verdicts."""

from __future__ import annotations

import pickle

import pytest

from governance import gates, services
from tests.registry.pickle_corpus import MALICIOUS, benign_models

pytestmark = pytest.mark.django_db


def scan_gate(version, policy):
    return next(g for g in gates.evaluate_for(version, policy) if g["key"] == "artifact_scan")


def test_scan_gate_passes_clean_fails_quarantined_and_waits_for_pending(registered_model, owner, make_version,
                                                                       django_capture_on_commit_callbacks):
    policy = services.protected_target_set(model=registered_model, actor=owner, kind="alias", name="champion",
                                           approvals_required=1, required_gates=None)
    with django_capture_on_commit_callbacks(execute=True):
        clean = make_version(registered_model, files={"model.pkl": pickle.dumps(benign_models()["ridge"])})
        evil = make_version(registered_model, files={"model.pkl": MALICIOUS["builtins.eval"][0]})
    pending = make_version(registered_model, files={"model.pkl": b"\x80\x04N."})  # not committed: never scanned
    assert scan_gate(clean, policy)["status"] == "passed"
    result = scan_gate(evil, policy)
    assert result["status"] == "failed" and result["blocking"] and "model.pkl" in result["detail"]
    result = scan_gate(pending, policy)
    assert result["status"] == "not_available" and result["blocking"]
