"""Domain errors raised by services; the API and page layers translate them in one place each."""

from __future__ import annotations

import errno
from typing import Any


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


class InvalidState(DomainError):
    """The object is not in a state that allows this action."""

    code = "INVALID_STATE"
    status = 409


class UploadTooLarge(DomainError):
    """An upload exceeded STRATUM_MAX_UPLOAD_BYTES."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class InsufficientStorage(DomainError):
    """The artifact disk (or the spool beside it) is full or over quota; nothing of the upload was kept."""

    code = "INSUFFICIENT_STORAGE"
    status = 507


def out_of_space(exc: BaseException) -> bool:
    """Whether `exc` is a full disk (ENOSPC) or an exhausted quota (EDQUOT)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
