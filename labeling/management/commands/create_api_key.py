"""``manage.py create_api_key --org SLUG --name NAME [--read-only]``: print a new API key once."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.apikeys import api_key_create
from labeling.models import Organization


class Command(BaseCommand):
    help = "Create an API key for an organization and print it (it is stored hashed and cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, metavar="SLUG", help="The organization's slug.")
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument("--read-only", action="store_true", help="The key can read and export, never write.")

    def handle(self, *args: Any, org: str, name: str, read_only: bool, **options: Any) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org!r}.")
        try:
            row, key = api_key_create(organization=organization, name=name, read_only=read_only)
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        kind = "read-only" if read_only else "read-write"
        self.stderr.write(f"Created {kind} key {row.name!r} (prefix {row.prefix}) for {organization.name}.")
        self.stderr.write("Store it now: it cannot be shown again.")
        self.stdout.write(key)
