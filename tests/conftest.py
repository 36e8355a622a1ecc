"""Shared fixtures. The canonical tenancy fixture: Alice administers org A, Annie annotates in org A, and Oscar
is the outsider who administers org B (after healthchecks' Alice/Bob/Charlie)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from labeling.models import Organization, Project, Role, Task
from tests import factories


@dataclass
class Tenancy:
    org_a: Organization
    org_b: Organization
    admin_a: Any
    manager_a: Any
    annotator_a: Any
    outsider_b: Any
    project_a: Project
    project_b: Project
    task_a: Task
    task_b: Task


@pytest.fixture
def tenancy(db: Any) -> Tenancy:
    org_a = factories.make_org("Org A")
    org_b = factories.make_org("Org B")
    project_a = factories.make_project(org_a, name="Alpha prefs")
    project_b = factories.make_project(org_b, name="Beta prefs")
    return Tenancy(
        org_a=org_a,
        org_b=org_b,
        admin_a=factories.make_member(org_a, Role.ADMIN, "alice@a.example"),
        manager_a=factories.make_member(org_a, Role.MANAGER, "mary@a.example"),
        annotator_a=factories.make_member(org_a, Role.ANNOTATOR, "annie@a.example"),
        outsider_b=factories.make_member(org_b, Role.ADMIN, "oscar@b.example"),
        project_a=project_a,
        project_b=project_b,
        task_a=factories.make_task(project_a, "a-1"),
        task_b=factories.make_task(project_b, "b-1"),
    )


@pytest.fixture(autouse=True)
def _no_sign_in_failures_carried_over() -> None:
    """Sign-in failure counts live in the cache (Redis under CI, kept across runs): start each test without the
    test client's. Accounts are counted by name; tests that fail sign-ins use names of their own."""
    from django.core.cache import cache

    cache.delete_many([f"login-failures:address:{address}" for address in ("127.0.0.1", "unknown")])


@pytest.fixture(autouse=True)
def _quality_recompute_off(settings: Any) -> None:
    """Judgments don't recompute quality in-process during tests; tests of that trigger turn it back on."""
    settings.QUALITY_RECOMPUTE_ON_COMMIT = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under CI the suite must run on the real services: no test may be skipped for want of them."""
    import os

    from django.conf import settings

    if not os.environ.get("CI"):
        return
    missing = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        missing.append("DATABASE_URL=postgres://…")
    if settings.REDIS_URL is None:
        missing.append("REDIS_URL=redis://…")
    if not os.path.exists("/usr/bin/chromium"):
        missing.append("Chromium for the browser tests (apt-get install -y chromium)")
    if missing:
        raise pytest.UsageError(f"CI is set but the suite cannot run in full; missing: {' and '.join(missing)}")
