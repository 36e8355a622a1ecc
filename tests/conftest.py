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


def build_tenancy(
    *,
    a: str = "a",
    b: str = "b",
    orgs: tuple[str, str] = ("Org A", "Org B"),
    project_a: str = "Alpha prefs",
    task_a: str = "a-1",
) -> Tenancy:
    """The two organizations and their people (e-mails at ``<a>.example`` / ``<b>.example``), a project and a task
    in each."""
    org_a = factories.make_org(orgs[0])
    org_b = factories.make_org(orgs[1])
    project_of_a = factories.make_project(org_a, name=project_a)
    project_of_b = factories.make_project(org_b, name="Beta prefs")
    return Tenancy(
        org_a=org_a,
        org_b=org_b,
        admin_a=factories.make_member(org_a, Role.ADMIN, f"alice@{a}.example"),
        manager_a=factories.make_member(org_a, Role.MANAGER, f"mary@{a}.example"),
        annotator_a=factories.make_member(org_a, Role.ANNOTATOR, f"annie@{a}.example"),
        outsider_b=factories.make_member(org_b, Role.ADMIN, f"oscar@{b}.example"),
        project_a=project_of_a,
        project_b=project_of_b,
        task_a=factories.make_task(project_of_a, task_a),
        task_b=factories.make_task(project_of_b, "b-1"),
    )


@pytest.fixture
def tenancy(db: Any) -> Tenancy:
    return build_tenancy()


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
