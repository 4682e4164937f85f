"""manage.py create_token USER [--name N] [--days D]: issue a personal access token and print it once."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from registry import access
from registry.errors import DomainError


class Command(BaseCommand):
    help = "Create a personal API token for USER and print it (it is never shown again)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--days", type=int, default=None, help="Expire after this many days (default: never).")

    def handle(self, *args, username: str, name: str, days: int | None, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        expires = timezone.now() + timedelta(days=days) if days else None
        try:
            _, raw = access.token_create(user=user, actor=user, name=name, expires_at=expires)
        except DomainError as exc:
            raise CommandError(exc.message)
        self.stdout.write(raw)
