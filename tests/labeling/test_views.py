"""Pages outside the admin: home, health check and the organization switcher."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from labeling.models import Membership, Role
from labeling.tenancy import SESSION_ORGANIZATION_KEY
from tests.conftest import Tenancy


def test_home_invites_anonymous_visitors_to_sign_in(client: Client, db: None) -> None:
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Sign in" in response.text


def test_home_links_managers_to_the_admin(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    response = client.get(reverse("home"))
    assert reverse("admin:index") in response.text
    client.force_login(tenancy.annotator_a)
    assert reverse("admin:index") not in client.get(reverse("home")).text


def test_healthz_reports_database_reachable(client: Client, db: None) -> None:
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["checks"]["database"] == {"status": "ok"}


def test_switcher_changes_organization_for_a_member(client: Client, tenancy: Tenancy) -> None:
    Membership.objects.create(organization=tenancy.org_b, user=tenancy.admin_a, role=Role.ANNOTATOR)
    client.force_login(tenancy.admin_a)
    response = client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk, "next": "/admin/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_b.pk


def test_switcher_answers_404_for_an_organization_you_do_not_belong_to(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    for value in (tenancy.org_b.pk, 999_999, "not-a-number"):
        response = client.post(reverse("organization-switch"), {"organization": value})
        assert response.status_code == 404
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_a.pk  # as recorded at sign-in: unchanged


def test_switcher_never_redirects_off_site(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(reverse("organization-switch"), {"organization": tenancy.org_a.pk, "next": target})
        assert response["Location"] == reverse("home")


def test_switcher_needs_sign_in_and_post(client: Client, tenancy: Tenancy) -> None:
    assert client.post(reverse("organization-switch"), {"organization": tenancy.org_a.pk}).status_code == 302
    client.force_login(tenancy.admin_a)
    assert client.get(reverse("organization-switch")).status_code == 405
