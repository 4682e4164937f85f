"""Cached hot reads (a model by name, a version by alias), retired by the domain events that change them.

Every cached read of a model is stored under that model's generation: a random token that each committed
domain event on the model replaces. A reader that comes after a change has committed reads the new token and
so can never find a row cached before the change. Tokens are never reused (a counter would be, once the cache
evicts it and someone starts it again at zero). A second generation, shared by every read, is replaced when a
user is saved or deleted, since cached rows carry their creator's and owner's usernames.

Reads inside a transaction skip the cache: a transaction may see its own uncommitted writes, which must never
be cached, and a write must not act on a cached row. Permission checks are never cached: callers check the
actor against what a read returns, on every request.

The generations live in the default cache, which every serving process shares (Redis when REDIS_URL is set,
the file-based cache when several processes serve the embedded default: stratum/settings.py), so a change made
through one process retires the reads of all. The reads themselves live in each process's own memory (the
`local` cache): an entry is stored under the generation tokens it was read with, which no retirement ever
brings back, so a retired entry is never asked for again and simply ages out. One shared lookup per read, and
no shared write but the retirements.

When the cache does not answer, reads go to the database (and a process does not try the cache again for
CACHE_RETRY_SECONDS); the outage is logged once. Retirements made meanwhile are lost, so a process that saw the
cache fail retires every cached read before it uses the cache again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache, caches
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from redis import RedisError

from registry import events
from registry.lineage.models import LineageEdge, LineageNode
from registry.models import ModelVersion, RegisteredModel

T = TypeVar("T")

READ_SECONDS = 300  # how long a process keeps a read it no longer asks for: events, not age, retire reads
EVERY_MODEL = ""  # the name of the generation that every read also depends on
# The generation of reads that depend on the whole lineage graph (a root's impact); no model can take this name,
# since model names hold no control characters.
LINEAGE_GRAPH = "\x00lineage-graph"
_MISSING = object()
# What a shared cache raises when it cannot be reached: redis-py's errors (refused, timed out), OSError (file cache).
CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
CACHE_RETRY_SECONDS = 5.0
log = logging.getLogger(__name__)


class _Outage:
    """This process's view of the cache: when to try it again after a failure, and whether it failed since it
    last answered (then every cached read is retired first: retirements made meanwhile were lost)."""

    retry_at = 0.0
    down = False


def _failed(exc: Exception) -> None:
    """Note that the cache did not answer: log it when an outage starts, and skip the cache for a while."""
    _Outage.retry_at = time.monotonic() + CACHE_RETRY_SECONDS
    if not _Outage.down:
        _Outage.down = True
        log.warning("registry reads go to the database: the cache does not answer (%s: %s)",
                    exc.__class__.__name__, exc)


def _usable() -> bool:
    """Whether to use the cache now; after an outage, first retire every cached read (False if that fails)."""
    if not _Outage.down:
        return True
    if time.monotonic() < _Outage.retry_at:
        return False
    try:
        cache.set(_key("gen", EVERY_MODEL), uuid.uuid4().hex, timeout=None)
    except CACHE_ERRORS as exc:
        _failed(exc)
        return False
    _Outage.down = False
    log.warning("registry reads use the cache again (every read cached before the outage is retired)")
    return True


def claim_once(name: str, seconds: float) -> bool:
    """Whether this caller is the first, across every process sharing the cache, to claim `name` in the last
    `seconds` (an atomic add). Without a working cache every caller may go ahead: the claim only saves writes."""
    if not _usable():
        return True
    try:
        return bool(cache.add(_key("claim", name), 1, timeout=seconds))
    except CACHE_ERRORS as exc:
        _failed(exc)
        return True


def forget_outage() -> None:
    """Forget that the cache failed, without retiring anything (tests that restore a working cache)."""
    _Outage.retry_at, _Outage.down = 0.0, False


def _key(kind: str, *parts: str) -> str:
    """A cache key for `parts` (any text) in this database: fixed length and safe for every cache backend."""
    raw = "\x1f".join((str(connection.settings_dict["NAME"]), *parts))
    return f"registry:{kind}:{hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()}"


def _generations(model_name: str) -> tuple[str, str]:
    """The current generation tokens of `model_name` and of every model, starting any that is missing."""
    keys = [_key("gen", model_name), _key("gen", EVERY_MODEL)]
    found = cache.get_many(keys)
    tokens = []
    for key in keys:
        token = found.get(key)
        if token is None:
            token = uuid.uuid4().hex
            if not cache.add(key, token, timeout=None):  # another reader (or a retirement) set it first
                token = cache.get(key) or token
        tokens.append(token)
    return tokens[0], tokens[1]


def read(model_name: str, what: tuple[str, ...], query: Callable[[], T]) -> T:
    """Return `query()`, the read `what` about the model named `model_name`, from the cache while no committed
    event on that model (and no saved user) has retired it. None results are cached too (a missing alias stays
    missing until an event on the model says otherwise). Without a cache that answers, from the database."""
    if connection.in_atomic_block or not _usable():
        return query()
    try:
        model_generation, every_generation = _generations(model_name)
    except CACHE_ERRORS as exc:
        _failed(exc)
        return query()
    key = _key("read", model_name, model_generation, every_generation, *what)
    local = caches["local"]
    found = local.get(key, _MISSING)
    if found is _MISSING:
        found = query()
        local.set(key, found, READ_SECONDS)
    return found


def read_shared(name: str, what: tuple[str, ...], query: Callable[[], T]) -> T:
    """Return `query()` like read(), for large reads that are costly to make: kept in the shared cache, so one
    process's read serves every process, and one entry per `what`, stored with the generation tokens it was read
    under and replaced once they changed (retired entries do not pile up until they age out)."""
    if connection.in_atomic_block or not _usable():
        return query()
    try:
        tokens = _generations(name)
        key = _key("shared", name, *what)
        found = cache.get(key)
    except CACHE_ERRORS as exc:
        _failed(exc)
        return query()
    if found is not None and found[0] == tokens:
        return found[1]
    value = query()
    try:
        cache.set(key, (tokens, value), READ_SECONDS)
    except CACHE_ERRORS as exc:
        _failed(exc)
    return value


def retire(model_names: Iterable[str]) -> None:
    """Retire every cached read of these models now (EVERY_MODEL retires all of them); if the cache does not
    answer, every read is retired once it does (see _usable)."""
    if not _usable():
        return
    try:
        cache.set_many({_key("gen", name): uuid.uuid4().hex for name in set(model_names)}, timeout=None)
    except CACHE_ERRORS as exc:
        _failed(exc)


def retire_on_commit(model_names: Iterable[str]) -> None:
    """Retire the cached reads of these models once the current transaction commits (at once outside one).

    Retired any earlier, a reader could cache the old row again under the new generation before the commit."""
    names = set(model_names)
    if names:
        transaction.on_commit(partial(retire, names))


# Events whose changes no cached read holds: a new version has no alias yet, and cached reads leave out the
# model's counter and last-update time (registry.selectors.MODEL_VOLATILE).
CHANGES_NO_CACHED_READ = frozenset({"model_version.created"})


def event_model_names(event: events.DomainEvent) -> set[str]:
    """The names of the models whose cached reads `event` may change: its own model (under both names for a
    rename) and, for a deletion, the models whose rows point at what is deleted as a successor (the database
    clears those pointers without an event of theirs)."""
    instance = event.instance
    if event.action in CHANGES_NO_CACHED_READ:
        return set()
    if isinstance(instance, RegisteredModel):
        names = {instance.name}
        if event.action == "registered_model.renamed" and isinstance(event.data.get("before"), str):
            names.add(event.data["before"])
        if event.action == "registered_model.deleted":
            names.update(RegisteredModel.objects.filter(successor=instance).values_list("name", flat=True))
            names.update(ModelVersion.objects.filter(successor__model=instance).values_list("model__name",
                                                                                          flat=True))
        return names
    if isinstance(instance, ModelVersion):
        names = {instance.model.name}  # the services hand the version over with its model loaded
        if event.action == "model_version.deleted":
            names.update(ModelVersion.objects.filter(successor=instance).values_list("model__name", flat=True))
        return names
    return set()


@receiver(events.domain_event, dispatch_uid="registry.caching.on_domain_event")
def _retire_on_event(sender: Any, event: events.DomainEvent, **kwargs: Any) -> None:
    """Any event on a model or one of its versions (aliases, tags, stages, roles, renames, deletions) but a
    registration retires the model's cached reads once its transaction commits."""
    retire_on_commit(event_model_names(event))


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="registry.caching.user_saved")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="registry.caching.user_deleted")
def _retire_on_user_change(sender: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
    """A renamed or deleted user retires every cached read (rows carry creators' and owners' usernames); a
    login, which saves only last_login, does not."""
    if update_fields is None or "username" in update_fields:
        retire_on_commit([EVERY_MODEL])


class _LineageWrites(threading.local):
    """Lineage writes of this thread's connection not yet answered by a retirement: a transaction that deletes a
    model may delete thousands of nodes, and one retirement after its commit answers them all."""

    pending = 0


_lineage_writes = _LineageWrites()


def _retire_lineage_once() -> None:
    """Retire the lineage reads, unless a retirement after the same commit already did (see _LineageWrites)."""
    if _lineage_writes.pending:
        _lineage_writes.pending = 0
        retire([LINEAGE_GRAPH])


def retire_lineage_on_commit() -> None:
    """Retire every read of the lineage graph once the current transaction commits, however many writes it made.
    A rolled-back write leaves its count behind, which only makes the next commit's retirement certain."""
    _lineage_writes.pending += 1
    transaction.on_commit(_retire_lineage_once)


@receiver(post_save, sender=LineageEdge, dispatch_uid="registry.caching.lineage_edge_saved")
@receiver(post_delete, sender=LineageNode, dispatch_uid="registry.caching.lineage_node_deleted")
def _retire_on_lineage_write(sender: Any, **kwargs: Any) -> None:
    """A written lineage edge (an audited one or one filled from a version) or a deleted node (with its edges, as
    a version or model goes) retires every read of the lineage graph once its transaction commits.

    Not a delete signal on edges: it would stop Django deleting a deleted node's edges in one statement. The
    services that delete edges alone call retire_lineage_on_commit. Prediction batches, bulk-inserted without
    signals, are new leaves: they change no cached read (impact summaries count versions and deployments)."""
    retire_lineage_on_commit()
