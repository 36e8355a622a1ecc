"""API keys: create (the key is returned once), authenticate, revoke. Services for the admin, the API and the
``create_api_key`` command.

Keys carry 256 random bits, so a plain SHA-256 of the whole key is a safe verifier (a slow password hash guards
low-entropy secrets; it would only slow every request here). The lookup goes by the public prefix and the hash is
compared in constant time. ``last_used_at`` is written at most once a minute per key, not on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import ApiKey, Organization

KEY_RE = re.compile(r"^cnc_([a-z0-9]{12})_([A-Za-z0-9_\-]{43})$")
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_GRANULARITY = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, read_only: bool = False, created_by: Any = None
) -> tuple[ApiKey, str]:
    """A new key for ``organization``: the stored row and the key itself, which is not stored and cannot be shown
    again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "is required"})
    if len(name) > 100:
        raise ValidationError({"name": "must be at most 100 characters"})
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(12))
    key = f"cnc_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        key_hash=_hash(key),
        read_only=read_only,
        created_by=created_by if getattr(created_by, "pk", None) else None,
    )
    return row, key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The active key matching ``key``, or ``None`` (malformed, unknown, wrong secret or revoked: all alike)."""
    match = KEY_RE.match(key or "")
    if match is None:
        return None
    row = ApiKey.objects.select_related("organization").filter(prefix=match.group(1)).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(key)) or row.revoked_at is not None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key: the next request with it is refused. Revoking twice keeps the first time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=api_key.revoked_at)
    return api_key
