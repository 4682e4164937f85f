"""Template context every page gets from governance: the count behind the Reviews badge in the navigation."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.http import HttpRequest


class ReviewBadge:
    """The number of requests and cards waiting for the signed-in user, counted once per request and only when a
    template asks."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request

    @cached_property
    def count(self) -> int:
        """Count what waits for the user (one query; none for anonymous users)."""
        from governance.selectors import review_waiting_count

        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated:
            return 0
        return review_waiting_count(actor=user)


def review_badge(request: HttpRequest) -> dict[str, Any]:
    """Give templates `review_badge.count`, computed lazily and at most once for the request."""
    badge = getattr(request, "_stratum_review_badge", None)
    if badge is None:
        badge = ReviewBadge(request)
        request._stratum_review_badge = badge
    return {"review_badge": badge}
