"""The organization a session acts in: recorded at sign-in, then changed only by the person's own choice.

Issue 15: an organization that gained a membership of someone's account moved that person's open session into it
on their next request (the session fell back to the first organization by name), and a project they then created
was stored in the other organization. Joining now takes an accepted invitation; and even then the session stays
where it was until the person switches.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Membership, Organization, Project, Role
from labeling.tenancy import SESSION_ORGANIZATION_KEY
from tests import factories
from tests.labeling.test_admin_tenancy import admin_url, form_data

pytestmark = pytest.mark.django_db


def _signed_in(user: Any) -> Client:
    client = Client()
    assert client.post(reverse("login"), {"username": user.username, "password": factories.PASSWORD}).status_code == 302
    return client


def _victim_and_attacker() -> tuple[Any, Organization, Organization]:
    """The victim administers "Zeta Labs"; the attacker's organization sorts first by name."""
    own = factories.make_org("Zeta Labs")
    attacker = factories.make_org("Aardvark AI")
    victim = factories.make_member(own, Role.ADMIN, "victim@zeta.example")
    return victim, own, attacker


def test_a_membership_gained_later_never_moves_the_open_session() -> None:
    victim, own, attacker = _victim_and_attacker()
    client = _signed_in(victim)
    # Another organization gains a membership of the victim's account (today only by the victim accepting an
    # invitation; the admin form did it without asking).
    Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
    # The victim's next request creates a project: it is stored in their own organization.
    data = form_data(client.get(admin_url(Project, "add"))) | {"name": "Victim's secret project", "kind": "pairwise"}
    assert client.post(admin_url(Project, "add"), data).status_code == 302
    assert Project.objects.get(name="Victim's secret project").organization == own
    assert client.session[SESSION_ORGANIZATION_KEY] == own.pk
    assert client.get(reverse("home")).context["current_organization"] == own


def test_sign_in_records_the_only_organization_or_the_first_by_name() -> None:
    victim, own, attacker = _victim_and_attacker()
    assert _signed_in(victim).session[SESSION_ORGANIZATION_KEY] == own.pk
    Membership.objects.create(organization=attacker, user=victim, role=Role.ANNOTATOR)
    assert _signed_in(victim).session[SESSION_ORGANIZATION_KEY] == attacker.pk  # at sign-in: first by name
    loner = factories.make_user("loner@example.com")
    assert _signed_in(loner).session[SESSION_ORGANIZATION_KEY] is None


def test_only_the_switcher_changes_the_organization() -> None:
    victim, own, attacker = _victim_and_attacker()
    client = _signed_in(victim)
    Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
    page = client.get(reverse("work"))
    assert 'id="org-switch-select"' in page.text and page.context["current_organization"] == own
    response = client.post(reverse("organization-switch"), {"organization": attacker.pk, "next": "/admin/"})
    assert response.status_code == 302
    assert client.session[SESSION_ORGANIZATION_KEY] == attacker.pk


def test_a_person_without_an_organization_who_joins_one_chooses_it() -> None:
    org = factories.make_org("Only Org")
    person = factories.make_user("newcomer@example.com")
    client = _signed_in(person)
    Membership.objects.create(organization=org, user=person, role=Role.ANNOTATOR)
    page = client.get(reverse("work"))
    assert page.context["current_organization"] is None
    assert "Choose the organization to work in" in page.text and "Choose…" in page.text
    client.post(reverse("organization-switch"), {"organization": org.pk})
    assert client.get(reverse("work")).context["current_organization"] == org


def test_a_recorded_organization_one_left_gives_none_until_chosen() -> None:
    victim, _own, attacker = _victim_and_attacker()
    Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
    client = _signed_in(victim)
    assert client.session[SESSION_ORGANIZATION_KEY] == attacker.pk
    Membership.objects.filter(organization=attacker, user=victim).delete()
    assert client.get(reverse("work")).context["current_organization"] is None
    assert client.get(reverse("admin:index")).status_code == 302  # no organization: no admin, nothing shown
    assert client.get("/api/v1/projects/").status_code == 403


@pytest.mark.parametrize("memberships", [1, 2])
def test_a_session_from_before_the_organization_was_recorded(memberships: int) -> None:
    """Sessions signed in before this change have no entry: one membership is their organization (and is recorded
    then); with several, none until the person chooses."""
    victim, own, attacker = _victim_and_attacker()
    if memberships == 2:
        Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
    client = _signed_in(victim)
    session = client.session
    del session[SESSION_ORGANIZATION_KEY]
    session.save()
    current = client.get(reverse("home")).context["current_organization"]
    if memberships == 1:
        assert current == own and client.session[SESSION_ORGANIZATION_KEY] == own.pk
        Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
        assert client.get(reverse("home")).context["current_organization"] == own
    else:
        assert current is None
        assert client.get(reverse("admin:index")).status_code == 302


def test_an_admin_without_a_current_organization_can_choose_one_from_the_admin() -> None:
    victim, own, attacker = _victim_and_attacker()
    Membership.objects.create(organization=attacker, user=victim, role=Role.ADMIN)
    client = _signed_in(victim)
    session = client.session
    session[SESSION_ORGANIZATION_KEY] = None
    session.save()
    page = client.get(reverse("admin:index"), follow=True)
    assert page.status_code == 200 and 'id="org-switch-select"' in page.text  # on the admin's sign-in page
    client.post(reverse("organization-switch"), {"organization": own.pk, "next": "/admin/"})
    assert client.get(reverse("admin:index")).status_code == 200
