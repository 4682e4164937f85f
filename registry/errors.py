"""Domain errors raised by services; the API and page layers translate them in one place each."""

from __future__ import annotations

import errno
import sqlite3
from typing import Any

from django.db import InterfaceError, OperationalError


class DomainError(Exception):
    """A client-caused failure with a stable code and HTTP status."""

    code = "INVALID_PARAMETER_VALUE"
    status = 400

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    """The request is malformed or breaks a rule."""


class NotFound(DomainError):
    """The named resource does not exist (or the actor may not see it)."""

    code = "RESOURCE_DOES_NOT_EXIST"
    status = 404


class AlreadyExists(DomainError):
    """A unique name is taken."""

    code = "RESOURCE_ALREADY_EXISTS"
    status = 409


class Forbidden(DomainError):
    """The actor lacks the role this action needs."""

    code = "PERMISSION_DENIED"
    status = 403


class ProtectedMove(Forbidden):
    """A move onto a protected stage or alias that needs an approved promotion request; `details["request_url"]`
    (when a plug-in gives it) is the page where a person opens that request."""


class InvalidState(DomainError):
    """The object is not in a state that allows this action."""

    code = "INVALID_STATE"
    status = 409


class Quarantined(DomainError):
    """A file's bytes are withheld: its scan quarantined it (and no four-eyes release covers it) or, for a
    pickle-family file, no scan has passed it yet."""

    code = "QUARANTINED"
    status = 409


class UploadTooLarge(DomainError):
    """An upload exceeded STRATUM_MAX_UPLOAD_BYTES."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class InsufficientStorage(DomainError):
    """The artifact disk (or the spool beside it) is full or over quota; nothing of the upload was kept."""

    code = "INSUFFICIENT_STORAGE"
    status = 507


class StorageUnavailable(DomainError):
    """The object store did not answer (stopped, unreachable, failing); nothing was kept; a retry may succeed."""

    code = "STORAGE_UNAVAILABLE"
    status = 503


def store_unreachable(exc: BaseException) -> bool:
    """Whether `exc` is an object store that failed to answer: botocore's connection, timeout and transport errors,
    boto3's failed transfer, or a 5xx answer (the store is there but cannot serve). 4xx answers are not."""
    try:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no S3 client installed: no object store to be unreachable
        return False
    if isinstance(exc, BotoCoreError | S3UploadFailedError):
        return True
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0) >= 500
    return False


def out_of_space(exc: BaseException) -> bool:
    """Whether `exc` is a full disk (ENOSPC) or an exhausted quota (EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


# PostgreSQL SQLSTATEs of a transaction that failed only because others were busy: lock_not_available (lock_timeout),
# query_canceled (statement_timeout), deadlock_detected, serialization_failure; or because the server went away or
# is full: too_many_connections, admin/crash shutdown, cannot_connect_now, and class 08 (connection exception).
# SQLite's BUSY and LOCKED the same.
BUSY_SQLSTATES = frozenset({"55P03", "57014", "40P01", "40001", "53300", "57P01", "57P02", "57P03"})
CONNECTION_SQLSTATE_CLASS = "08"
BUSY_SQLITE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
RETRY_AFTER_SECONDS = 2
BUSY_MESSAGE = ("The database is busy with other work or out of reach, and this request gave up on it; nothing was "
                "changed; retry in a moment.")


def database_busy(exc: BaseException) -> bool:
    """Whether `exc` is a database error that a retry may not meet: a lock or statement timeout, a deadlock, a
    serialization failure, a lost or refused connection (PostgreSQL), or a locked database (SQLite)."""
    if isinstance(exc, InterfaceError):  # the connection was closed under the request
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__  # the driver's own error, which Django's wraps
    if hasattr(cause, "sqlstate"):  # psycopg 3; no SQLSTATE at all when the server closed the connection
        sqlstate = cause.sqlstate
        return sqlstate is None or sqlstate in BUSY_SQLSTATES or sqlstate.startswith(CONNECTION_SQLSTATE_CLASS)
    code = getattr(cause, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in BUSY_SQLITE_CODES  # extended codes keep the primary in the low byte
