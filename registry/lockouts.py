"""Sign-in throttling with django-axes: who counts as whom, what a locked-out caller sees, and the audit event.

django-axes counts failed password checks per account and per client address (settings AXES_*); these are the
hooks it calls. Every password check (the login page, the admin, HTTP basic on both APIs) goes through
`django.contrib.auth.authenticate` with the request, so one lockout covers every route; personal access tokens
never do, so a locked-out account's tokens keep working.
"""

from __future__ import annotations

import math
from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions

from registry import events

USERNAME_MAX = 150  # Django's username length: longer names are no account, and keep stored values bounded


def client_ip(request: HttpRequest) -> str | None:
    """Return the address whose failures count: the peer, or behind a trusted proxy the address it forwarded.

    The right-most X-Forwarded-For entry is the one the proxy appended; entries to its left come from the
    client and could be rotated at will to dodge the per-address limit.
    """
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return request.META.get("REMOTE_ADDR") or None


def client_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """Return the username the attempt names, bounded (an API caller may send any length).

    Only the credentials are read, never the body: an API request's body is not parsed for a failed sign-in.
    """
    username = (credentials or {}).get("username")
    if username is None:
        return None
    return str(username).replace("\x00", "")[:USERNAME_MAX]


def cool_off_seconds(request: HttpRequest | None = None) -> int:
    """Return how long a lockout lasts, in whole seconds (at least 1)."""
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 1


def lockout_message(request: HttpRequest | None = None) -> str:
    """Return what a locked-out caller reads."""
    seconds = cool_off_seconds(request)
    wait = f"{math.ceil(seconds / 60)} minutes" if seconds >= 120 else f"{seconds} seconds"
    return (f"Too many failed sign-in attempts for this account or from this address. "
            f"Sign-in is locked; try again in {wait}.")


class LockedOut(exceptions.Throttled):
    """A password check refused because the account or the address is locked out (429 with Retry-After)."""

    default_code = "locked_out"

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(wait=cool_off_seconds(request), detail=lockout_message(request))


def is_locked_out(request: Any) -> bool:
    """True when django-axes refused (or just locked) the password check made with `request`."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict[str, Any] | None = None) -> HttpResponse:
    """Answer a locked-out sign-in (AXES_LOCKOUT_CALLABLE): JSON in the route's error shape, else a page."""
    message = lockout_message(request)
    path = request.path
    if path.startswith(("/api/2.0/", "/api/3.0/")):
        response: HttpResponse = JsonResponse({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message},
                                              status=429)
    elif path.startswith("/api/"):
        response = JsonResponse({"error": {"code": "REQUEST_LIMIT_EXCEEDED", "message": message, "details": None}},
                                status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(cool_off_seconds(request))
    return response


def on_user_locked_out(sender: Any, request: HttpRequest, username: str | None, ip_address: str | None,
                       **kwargs: Any) -> None:
    """Record "account.locked_out" once, when a failure reaches the limit (not on every refused try after it).

    django-axes sends `user_locked_out` for the failure that crosses the limit (its count is then set on the
    request) and again for every try refused while locked (count unset): auditing those would let an attacker
    flood the audit trail.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None or failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return
    # An unknown name (someone guessing) gets an unsaved account of that name as its target: no row, no id.
    user = get_user_model().objects.filter(username=username).first() if username else None
    user = user or get_user_model()(username=username or "")
    data = {"username": username or "", "ip_address": ip_address or "", "path": request.path[:255],
            "failures": failures, "cool_off_seconds": cool_off_seconds(request)}
    with transaction.atomic():
        events.emit("account.locked_out", actor=None, target=user, data=data)
