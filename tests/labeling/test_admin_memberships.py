"""Who may enter the customer admin, and what an organization's admin may do with its members.

Access comes from the membership role of the organization the person acts under, never from ``is_staff``; a
customer admin invites people (who join by accepting), manages members and their roles, but cannot add an account
without its consent, create superusers, grant Django permissions, reach Django's user and group admins, or leave
the organization without an admin.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.invitations import invitation_accept
from labeling.models import Invitation, InvitationStatus, Membership, Organization, Project, Role, Task
from labeling.tenancy import SESSION_ORGANIZATION_KEY
from tests import factories
from tests.conftest import Tenancy
from tests.labeling.test_admin_tenancy import (
    SUPERUSER_ONLY_MODELS,
    TENANT_ADMIN_MODELS,
    admin_url,
    form_data,
    make_superuser,
    results,
    seed_annotations,
    snapshot,
)
from tests.mail import jobs_in_process  # noqa: F401  (fixture)

User = get_user_model()
NEW_PASSWORD = "a-fresh-initial-passphrase-42"


def _membership(user: Any, organization: Organization | None = None) -> Membership:
    memberships = Membership.objects.filter(user=user)
    return memberships.get(organization=organization) if organization else memberships.get()


def _admin_index_apps(client: Client) -> dict[str, set[str]]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return {app["app_label"]: {m["object_name"] for m in app["models"]} for app in response.context["app_list"]}


# --- Joining takes the person's consent (issue 15, item 1) ------------------------------------------------------
def _invite_data(client: Client, **fields: Any) -> dict[str, Any]:
    data = form_data(client.get(admin_url(Invitation, "add")))
    return data | {"email": "newbie@example.com", "role": Role.ANNOTATOR} | fields


@pytest.mark.parametrize("who", ["admin_a", "superuser"])
def test_no_one_adds_an_existing_account_as_a_member(client: Client, tenancy: Tenancy, who: str) -> None:
    """The admin's "add member" attached any account by its e-mail, and the person's open session then acted in
    the other organization. Memberships are no longer added here, by anyone."""
    client.force_login(make_superuser() if who == "superuser" else tenancy.admin_a)
    before = snapshot()
    assert client.get(admin_url(Membership, "add")).status_code == 403
    data = {"email": "oscar@b.example", "role": Role.ADMIN, "password": NEW_PASSWORD, "organization": tenancy.org_a.pk}
    assert client.post(admin_url(Membership, "add"), data).status_code == 403
    assert not Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()
    assert snapshot() == before


@pytest.mark.usefixtures("jobs_in_process")
def test_an_invitation_answers_alike_whether_or_not_the_address_has_an_account(
    client: Client, tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(tenancy.admin_a)
    answers = []
    for email in ("oscar@b.example", "nobody@nowhere.example"):
        data = _invite_data(client, email=email, role=Role.MANAGER)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(admin_url(Invitation, "add"), data, follow=True)
        assert response.status_code == 200
        page = re.sub(r"/invitation/\d+/|csrfmiddlewaretoken\" value=\"[^\"]+", "", response.text)
        answers.append((response.redirect_chain, page.replace(email, "{email}").replace("oscar", "{email}")))
    assert answers[0][0] == answers[1][0] == [(admin_url(Invitation, "changelist"), 302)]
    assert "Invitation sent to {email}" in answers[0][1]
    invitations = Invitation.objects.for_org(tenancy.org_a).order_by("created_at")
    assert [(i.email, i.role, i.invited_by) for i in invitations] == [
        ("oscar@b.example", Role.MANAGER, tenancy.admin_a),
        ("nobody@nowhere.example", Role.MANAGER, tenancy.admin_a),
    ]
    assert sorted(mail.to[0] for mail in mailoutbox) == ["nobody@nowhere.example", "oscar@b.example"]
    assert not Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()


def test_the_invitation_form_asks_only_for_an_address_and_a_role(client: Client, tenancy: Tenancy) -> None:
    permission = Permission.objects.get(codename="change_user")
    client.force_login(tenancy.admin_a)
    form = client.get(admin_url(Invitation, "add")).context["adminform"].form
    assert set(form.fields) == {"email", "role"}
    data = _invite_data(
        client,
        password=NEW_PASSWORD,
        is_superuser="on",
        user_permissions=[permission.pk],
        organization=tenancy.org_b.pk,
        user=tenancy.outsider_b.pk,
        invited_by=tenancy.outsider_b.pk,
        accepted_at="2020-01-01 00:00",
        nonce="chosen",
    )
    assert client.post(admin_url(Invitation, "add"), data).status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.organization, invitation.invited_by, invitation.accepted_at) == (
        tenancy.org_a,
        tenancy.admin_a,
        None,
    )
    assert invitation.nonce != "chosen"
    assert not User.objects.filter(username="newbie@example.com").exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "Annie@A.example"}, "email", "already a member of your organization"),
        ({"email": "pending@example.com"}, "email", "resend or revoke"),
        ({"email": "not-an-address"}, "email", "valid e-mail"),
        ({"role": "owner"}, "role", "Select a valid choice"),
    ],
    ids=["already-member", "pending", "bad-email", "bad-role"],
)
def test_the_invitation_form_is_validated(
    client: Client, tenancy: Tenancy, fields: dict[str, str], field: str | None, message: str
) -> None:
    factories.make_invitation(tenancy.org_a, "pending@example.com")
    client.force_login(tenancy.admin_a)
    before = snapshot(), Invitation.objects.count()
    response = client.post(admin_url(Invitation, "add"), _invite_data(client, **fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in error for error in errors[field]), errors
    assert (snapshot(), Invitation.objects.count()) == before


@pytest.mark.usefixtures("jobs_in_process")
def test_admin_resends_and_revokes_invitations(
    client: Client, tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    invitation = factories.make_invitation(tenancy.org_a, "later@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(last_sent_at=timezone.now() - timedelta(hours=1))
    nonce = invitation.nonce
    client.force_login(tenancy.admin_a)
    changelist = admin_url(Invitation, "changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "resend", "_selected_action": [invitation.pk]}, follow=True)
    assert "Resent 1 invitation(s)" in response.text
    invitation.refresh_from_db()
    assert (invitation.send_count, invitation.nonce != nonce) == (2, True)
    assert [mail.to for mail in mailoutbox] == [["later@example.com"]]
    response = client.post(changelist, {"action": "revoke", "_selected_action": [invitation.pk]}, follow=True)
    assert "Revoked 1 invitation(s)" in response.text
    invitation.refresh_from_db()
    assert invitation.status_at(timezone.now()) == InvitationStatus.REVOKED
    response = client.post(changelist, {"action": "resend", "_selected_action": [invitation.pk]}, follow=True)
    assert "Not resent: later@example.com: This invitation is revoked" in response.text
    rows = results(client.get(changelist, {"status": "revoked"}))
    assert rows == [invitation]
    assert results(client.get(changelist, {"status": "pending"})) == []


def test_manager_sees_invitations_but_cannot_invite_resend_or_revoke(client: Client, tenancy: Tenancy) -> None:
    invitation = factories.make_invitation(tenancy.org_a, "later@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(last_sent_at=timezone.now() - timedelta(hours=1))
    client.force_login(tenancy.manager_a)
    assert results(client.get(admin_url(Invitation, "changelist"))) == [invitation]
    assert client.get(admin_url(invitation, "change")).status_code == 200
    before = list(Invitation.objects.values())
    assert client.get(admin_url(Invitation, "add")).status_code == 403
    assert client.post(admin_url(Invitation, "add"), {"email": "x@example.com", "role": "admin"}).status_code == 403
    for action in ("resend", "revoke", "delete_selected"):
        client.post(admin_url(Invitation, "changelist"), {"action": action, "_selected_action": [invitation.pk]})
    assert client.post(admin_url(invitation, "delete"), {"post": "yes"}).status_code == 403
    assert list(Invitation.objects.values()) == before


@pytest.mark.usefixtures("jobs_in_process")
def test_superuser_invites_into_the_organization_they_choose(client: Client, tenancy: Tenancy) -> None:
    client.force_login(make_superuser())
    data = _invite_data(client, organization=tenancy.org_b.pk, email="ops@example.com")
    assert client.post(admin_url(Invitation, "add"), data).status_code == 302
    assert Invitation.objects.get().organization == tenancy.org_b


def test_the_member_list_shows_the_person_only_once_they_accepted(client: Client, tenancy: Tenancy) -> None:
    """Nothing another organization set (the name org B's admin gave Oscar's account) shows in org A before Oscar
    accepts; afterwards org A sees his account as it is, because he chose to join."""
    User.objects.filter(pk=tenancy.outsider_b.pk).update(first_name="Oscar", last_name="Set-By-Org-B")
    invitation = factories.make_invitation(tenancy.org_a, "oscar@b.example", Role.ANNOTATOR)
    client.force_login(tenancy.admin_a)
    for url in (
        admin_url(Membership, "changelist"),
        admin_url(Invitation, "changelist"),
        admin_url(invitation, "change"),
    ):
        page = client.get(url).text
        assert "Set-By-Org-B" not in page and "Org B" not in page, url
    invitation_accept(invitation=invitation, user=tenancy.outsider_b)
    members = results(client.get(admin_url(Membership, "changelist")))
    assert tenancy.outsider_b in {member.user for member in members}
    assert "Oscar Set-By-Org-B" in client.get(admin_url(Membership, "changelist")).text
    assert Membership.objects.get(organization=tenancy.org_a, user=tenancy.outsider_b).role == Role.ANNOTATOR


# --- Django's own admins are out of reach ---------------------------------------------------------------------
@pytest.mark.parametrize("user_attr", ["admin_a", "manager_a"])
def test_customer_admins_cannot_reach_user_group_and_organization_admins(
    client: Client, tenancy: Tenancy, user_attr: str
) -> None:
    group = Group.objects.create(name="Staff")
    user = getattr(tenancy, user_attr)
    client.force_login(user)
    apps = _admin_index_apps(client)
    assert "auth" not in apps
    assert set(apps) == {"labeling", "quality", "routing"}
    role = Membership.objects.get(user=user, organization=tenancy.org_a).role
    visible = {
        model.__name__
        for model in TENANT_ADMIN_MODELS
        if role in admin.site._registry[model].view_roles + admin.site._registry[model].edit_roles
    }
    assert apps["labeling"] | apps["routing"] | apps["quality"] == visible
    assert ("ApiKey" in visible) == (role == Role.ADMIN)  # keys are the organization admins' alone
    before = snapshot()
    objects = {User: user, Group: group, Organization: tenancy.org_a}
    for model in SUPERUSER_ONLY_MODELS:
        for url in (admin_url(model, "changelist"), admin_url(model, "add")):
            assert client.get(url).status_code == 403, url
            assert client.post(url, {"username": "x", "name": "x", "slug": "x"}).status_code == 403, url
        for view in ("change", "delete", "history"):
            url = admin_url(objects[model], view)
            assert client.get(url).status_code == 403, url
            assert client.post(url, {"is_superuser": "on", "post": "yes"}).status_code == 403, url
    password_url = reverse("admin:auth_user_password_change", args=[tenancy.annotator_a.pk])
    assert client.get(password_url).status_code == 403
    assert client.post(password_url, {"password1": "x-y-z-12345678", "password2": "x-y-z-12345678"}).status_code == 403
    assert snapshot() == before
    assert User.objects.get(pk=user.pk).is_superuser is False
    assert Group.objects.get(pk=group.pk).name == "Staff"


def test_admin_changing_own_membership_cannot_become_superuser(client: Client, tenancy: Tenancy) -> None:
    permission = Permission.objects.get(codename="delete_user")
    own = _membership(tenancy.admin_a)
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(own, "change"))
    assert set(response.context["adminform"].form.fields) == {"role", "paused_at", "pause_reason"}
    data = form_data(response) | {
        "is_superuser": "on",
        "is_staff": "on",
        "user_permissions": [permission.pk],
        "user": tenancy.outsider_b.pk,
        "_save": "Save",
    }
    assert client.post(admin_url(own, "change"), data).status_code == 302
    tenancy.admin_a.refresh_from_db()
    assert (tenancy.admin_a.is_superuser, tenancy.admin_a.is_staff) == (False, False)
    assert not tenancy.admin_a.user_permissions.exists()
    own.refresh_from_db()
    assert (own.user, own.organization, own.role) == (tenancy.admin_a, tenancy.org_a, Role.ADMIN)


def test_admin_changes_an_annotators_role(client: Client, tenancy: Tenancy) -> None:
    membership = _membership(tenancy.annotator_a)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(membership, "change"))) | {"role": Role.MANAGER, "_save": "Save"}
    assert client.post(admin_url(membership, "change"), data).status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.MANAGER
    client.force_login(tenancy.annotator_a)
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_removes_a_member(client: Client, tenancy: Tenancy) -> None:
    membership = _membership(tenancy.annotator_a)
    client.force_login(tenancy.admin_a)
    assert client.post(admin_url(membership, "delete"), {"post": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert User.objects.filter(pk=tenancy.annotator_a.pk).exists()  # the account itself stays


# --- The organization keeps an admin -------------------------------------------------------------------------
def test_last_admin_cannot_demote_themselves(client: Client, tenancy: Tenancy) -> None:
    own = _membership(tenancy.admin_a)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(own, "change"))) | {"role": Role.MANAGER, "_save": "Save"}
    response = client.post(admin_url(own, "change"), data)
    assert response.status_code == 200
    assert "only admin" in str(response.context["adminform"].form.errors["role"])
    own.refresh_from_db()
    assert own.role == Role.ADMIN


def test_last_admin_cannot_be_deleted(client: Client, tenancy: Tenancy) -> None:
    own = _membership(tenancy.admin_a)
    client.force_login(tenancy.admin_a)
    assert client.get(admin_url(own, "delete")).status_code == 403
    assert client.post(admin_url(own, "delete"), {"post": "yes"}).status_code == 403
    response = client.post(
        admin_url(Membership, "changelist"),
        {"action": "delete_selected", "_selected_action": [own.pk], "post": "yes"},
    )
    assert response.status_code in (200, 403)
    assert Membership.objects.filter(pk=own.pk).exists()
    # Not even a superuser can leave the organization without an admin.
    client.force_login(make_superuser())
    assert client.post(admin_url(own, "delete"), {"post": "yes"}).status_code == 403
    assert Membership.objects.filter(pk=own.pk).exists()


def test_deleting_all_admins_at_once_is_refused(client: Client, tenancy: Tenancy) -> None:
    second = factories.make_member(tenancy.org_a, Role.ADMIN, "adam@a.example")
    admins = [_membership(tenancy.admin_a), _membership(second)]
    client.force_login(tenancy.admin_a)
    response = client.post(
        admin_url(Membership, "changelist"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in admins], "post": "yes"},
    )
    assert response.status_code in (200, 403)
    assert Membership.objects.filter(organization=tenancy.org_a, role=Role.ADMIN).count() == 2
    # With another admin left, one admin may go.
    response = client.post(
        admin_url(Membership, "changelist"),
        {"action": "delete_selected", "_selected_action": [admins[1].pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(Membership.objects.filter(organization=tenancy.org_a, role=Role.ADMIN)) == [admins[0]]


def test_an_admin_can_step_down_when_another_admin_remains(client: Client, tenancy: Tenancy) -> None:
    factories.make_member(tenancy.org_a, Role.ADMIN, "adam@a.example")
    own = _membership(tenancy.admin_a)
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(own, "change"))) | {"role": Role.MANAGER, "_save": "Save"}
    assert client.post(admin_url(own, "change"), data).status_code == 302
    own.refresh_from_db()
    assert own.role == Role.MANAGER
    # Now a manager: memberships are view-only.
    assert client.get(admin_url(Membership, "add")).status_code == 403


# --- Managers and annotators ---------------------------------------------------------------------------------
def test_manager_views_memberships_but_cannot_change_them(client: Client, tenancy: Tenancy) -> None:
    annie = _membership(tenancy.annotator_a)
    own = _membership(tenancy.manager_a)
    client.force_login(tenancy.manager_a)
    members = results(client.get(admin_url(Membership, "changelist")))
    assert {m.user for m in members} == {tenancy.admin_a, tenancy.manager_a, tenancy.annotator_a}
    assert client.get(admin_url(annie, "change")).status_code == 200  # read-only view
    before = snapshot()
    assert client.get(admin_url(Membership, "add")).status_code == 403
    assert (
        client.post(admin_url(Membership, "add"), {"email": "x@a.example", "password": NEW_PASSWORD}).status_code == 403
    )
    for membership in (annie, own):
        assert client.post(admin_url(membership, "change"), {"role": Role.ADMIN, "_save": "Save"}).status_code == 403
        assert client.get(admin_url(membership, "delete")).status_code == 403
        assert client.post(admin_url(membership, "delete"), {"post": "yes"}).status_code == 403
    response = client.post(
        admin_url(Membership, "changelist"),
        {"action": "delete_selected", "_selected_action": [annie.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert snapshot() == before


def test_annotator_cannot_enter_the_admin(client: Client, tenancy: Tenancy) -> None:
    judgment_a, _ = seed_annotations(tenancy)
    client.force_login(tenancy.annotator_a)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    for url in (
        admin_url(Project, "changelist"),
        admin_url(tenancy.project_a, "change"),
        admin_url(tenancy.task_a, "change"),
        admin_url(judgment_a, "change"),
        admin_url(Membership, "add"),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    before = snapshot()
    assert client.post(admin_url(tenancy.task_a, "delete"), {"post": "yes"}).status_code == 302
    assert snapshot() == before


def test_annotator_cannot_sign_in_to_the_admin(client: Client, tenancy: Tenancy) -> None:
    response = client.post(reverse("admin:login"), {"username": "annie@a.example", "password": factories.PASSWORD})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session
    # The same form admits a manager.
    response = client.post(reverse("admin:login"), {"username": "mary@a.example", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_inactive_or_staff_flag_alone_gives_no_admin(client: Client, tenancy: Tenancy) -> None:
    staff_only = factories.make_user("staff@x.example", is_staff=True)
    client.force_login(staff_only)
    assert client.get(reverse("admin:index")).status_code == 302
    tenancy.admin_a.is_active = False
    tenancy.admin_a.save()
    client.force_login(tenancy.admin_a)
    assert client.get(reverse("admin:index")).status_code == 302


# --- Acting under one organization at a time -----------------------------------------------------------------
def test_admin_access_follows_the_organization_acted_under(client: Client, tenancy: Tenancy) -> None:
    Membership.objects.create(organization=tenancy.org_b, user=tenancy.manager_a, role=Role.ANNOTATOR)
    client.force_login(tenancy.manager_a)
    # Acting under org A (the first by name): org A's data only.
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_a]
    assert results(client.get(admin_url(Task, "changelist"))) == [tenancy.task_a]
    assert client.get(admin_url(tenancy.project_b, "change")).status_code == 404
    # Switching to org B, where they only annotate: no admin at all.
    response = client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk, "next": "/admin/"})
    assert response.status_code == 302
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_b.pk
    for url in (reverse("admin:index"), admin_url(Project, "changelist"), admin_url(tenancy.project_b, "change")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    before = snapshot()
    assert client.post(admin_url(tenancy.project_a, "delete"), {"post": "yes"}).status_code == 302
    assert snapshot() == before
    # Back under org A.
    client.post(reverse("organization-switch"), {"organization": tenancy.org_a.pk})
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_a]


def test_admin_of_two_organizations_sees_one_at_a_time(client: Client, tenancy: Tenancy) -> None:
    Membership.objects.create(organization=tenancy.org_b, user=tenancy.admin_a, role=Role.ADMIN)
    client.force_login(tenancy.admin_a)
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_a]
    assert client.get(admin_url(tenancy.project_b, "change")).status_code == 404
    client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk})
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_b]
    assert client.get(admin_url(tenancy.project_a, "change")).status_code == 404
    assert client.get(admin_url(tenancy.project_b, "change")).status_code == 200
    # A project added now belongs to org B, the organization acted under.
    data = form_data(client.get(admin_url(Project, "add"))) | {"name": "Made in B", "kind": "pairwise"}
    assert client.post(admin_url(Project, "add"), data).status_code == 302
    assert Project.objects.get(name="Made in B").organization == tenancy.org_b


def test_switching_to_an_organization_you_do_not_belong_to_is_404(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    response = client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk, "next": "/admin/"})
    assert response.status_code == 404
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_a.pk  # as recorded at sign-in: unchanged
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_a]


def test_a_forged_session_organization_gives_no_organization(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    session = client.session
    session[SESSION_ORGANIZATION_KEY] = tenancy.org_b.pk
    session.save()
    for url in (admin_url(Project, "changelist"), admin_url(tenancy.project_b, "change")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    # Choosing again (the switcher) restores it.
    client.post(reverse("organization-switch"), {"organization": tenancy.org_a.pk})
    assert results(client.get(admin_url(Project, "changelist"))) == [tenancy.project_a]
