"""The one lock order every write follows, so no mix of concurrent writes can deadlock; and the lock it starts with.

Every audited write takes, in this order and only in this order:

1. **The model's row**, through `model_lock` (several models: `models_lock`, in ascending primary key), before any
   other lock, insert, update or delete that concerns the model or anything under it: versions, aliases, tags,
   roles, artifacts, endpoints and deployments, retraining rules, cards, protected targets, promotion requests,
   scans, signatures. A write that creates a row pointing at a model (an endpoint, a rule, a card) locks that model
   too, although it changes nothing in the model's row: see "why" below.
2. **Rows under that model**, parents before children (version, then artifact; endpoint, then deployment; card;
   promotion request; rule), and rows that belong to no model (environment, experiment, run, logged model, erasure
   request, manifest) for the writes that change them. Every row lock is `select_for_update(no_key=True)`
   (`FOR NO KEY UPDATE`), never a plain `select_for_update()` (`FOR UPDATE`). Django's `update_or_create` takes
   `FOR UPDATE` on the row it replaces (a tag, an alias, a role, an artifact); that is safe under the model's lock,
   since whoever refers to those rows locked the model first.
   An upload claims its blob's row (`artifacts.storage.blob_claim`, FOR NO KEY UPDATE, before its event) so garbage
   collection, which locks the blobs it deletes FOR UPDATE SKIP LOCKED and so never waits for a row, passes it by;
   collection audits each batch only after that batch has committed, so it never waits for the audit chain while it
   holds blob rows.
3. **Advisory locks, last**: the lineage graph's (registry/lineage/services.py) before the audit chain's
   (governance/audit.py `lock_chain`). `events.emit` takes the audit chain's lock, so the first event a write emits
   ends the order: after it, a write touches only rows under the models it locked in step 1 (locking one again
   waits for nobody) and rows it created itself. Deleting rows, or changing a model's name (a unique key), comes
   after the event wherever the event can be written first.

Why this order holds on PostgreSQL. The audit chain's lock is one lock for the whole database, held to commit: a
deadlock needs a transaction that holds it while waiting for a row that a second transaction holds while waiting
for the chain. The waits after the chain's lock are of two kinds. The explicit ones (step 3's "only rows under the
models it locked") can only wait for a holder of the same model's lock, and there is none: both lock the model
first, so the second waits at step 1 without having taken anything. The implicit ones are PostgreSQL's foreign-key
checks: Django creates foreign keys `DEFERRABLE INITIALLY DEFERRED`, so inserting an endpoint checks its model at
COMMIT, after the chain's lock, taking `FOR KEY SHARE` on the model's row. `FOR NO KEY UPDATE` does not conflict with
`FOR KEY SHARE`; only `FOR UPDATE`, a DELETE and an UPDATE of a unique column do, which is why step 2 never takes
the first and step 3 puts the others after the event, where the chain's lock is already held (a transaction that
holds the chain's lock is never waiting for it). Step 1 covers what remains (a delete that must come before its
event, a rename that fails on the unique name): whoever refers to the model locked it first and waits there.

On SQLite writers take turns (write transactions open IMMEDIATE), so none of this can deadlock there; the same
code runs, and `select_for_update` is a no-op.

A deadlock or a lock timeout that still happens (a write outside this order, an operator's session) reaches API
clients as 503 with Retry-After (DATABASE_BUSY; MLflow's TEMPORARILY_UNAVAILABLE), never as a 500.
tests/integration/test_lock_order.py races mixed writes on one model and records, for every audited write, the
locks it takes, to keep this order true.
"""

from __future__ import annotations

from collections.abc import Iterable

from registry.models import RegisteredModel


def model_lock(model: RegisteredModel | int) -> RegisteredModel:
    """Return the model as it is now, its row locked (FOR NO KEY UPDATE) to the end of the transaction: step 1 of
    the lock order, so writers of one model queue here, before any other lock."""
    pk = model if isinstance(model, int) else model.pk
    return RegisteredModel.objects.select_for_update(no_key=True).get(pk=pk)


def models_lock(models: Iterable[RegisteredModel | int | None]) -> dict[int, RegisteredModel]:
    """Lock several models (None skipped) in ascending primary key, the order every writer uses; return them by pk."""
    pks = sorted({m if isinstance(m, int) else m.pk for m in models if m is not None})
    return {pk: model_lock(pk) for pk in pks}
