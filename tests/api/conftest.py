"""API fixtures: organization A's full and read-only keys, organization B's key, and clients that send them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from labeling.apikeys import api_key_create
from tests.conftest import Tenancy


@dataclass
class Keys:
    full_a: str
    read_only_a: str
    full_b: str


@pytest.fixture
def keys(tenancy: Tenancy) -> Keys:
    cache.clear()  # throttle counters
    return Keys(
        full_a=api_key_create(organization=tenancy.org_a, name="pipeline", created_by=tenancy.admin_a)[1],
        read_only_a=api_key_create(organization=tenancy.org_a, name="reader", read_only=True)[1],
        full_b=api_key_create(organization=tenancy.org_b, name="other org")[1],
    )


class KeyClient(Client):
    """A test client that sends ``Authorization: Bearer <key>`` on every request."""

    def __init__(self, key: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key

    def generic(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if self.key is not None:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault("Authorization", f"Bearer {self.key}")
            kwargs["headers"] = headers
        return super().generic(method, path, *args, **kwargs)


@pytest.fixture
def api_a(keys: Keys) -> KeyClient:
    return KeyClient(keys.full_a)


@pytest.fixture
def api_read_only(keys: Keys) -> KeyClient:
    return KeyClient(keys.read_only_a)


@pytest.fixture
def api_b(keys: Keys) -> KeyClient:
    return KeyClient(keys.full_b)
