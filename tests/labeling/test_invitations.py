"""Invitations: joining an organization takes the person's consent (issue 15, item 1).

An admin invites an address with a role; the address receives a signed, single-use, expiring link; the person joins
by accepting it while signed in with that address, or by creating their account through it. Resend rotates the
link, revoke ends it; a bad, expired, used, resent or revoked link gets one answer. Accepting never moves the
person's open session.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from labeling.invitations import (
    RESEND_MIN_SECONDS,
    TOKEN_SALT,
    NewAccount,
    account_create_from_invitation,
    invitation_accept,
    invitation_create,
    invitation_from_token,
    invitation_resend,
    invitation_revoke,
    invitation_token,
)
from labeling.models import Invitation, InvitationStatus, Membership, Role
from labeling.tenancy import SESSION_ORGANIZATION_KEY
from tests import factories
from tests.conftest import Tenancy
from tests.mail import jobs_in_process  # noqa: F401  (fixture)

User = get_user_model()
NEW_PASSWORD = "a-fresh-passphrase-for-me-42"
pytestmark = pytest.mark.usefixtures("jobs_in_process")
LINK_RE = re.compile(r"http://testserver(/invitations/[^/\s]+/)")


def _invite(tenancy: Tenancy, email: str, role: str = Role.ANNOTATOR, capture: Any = None) -> Invitation:
    return invitation_create(
        organization=tenancy.org_a, email=email, role=role, invited_by=tenancy.admin_a, base_url="http://testserver"
    )


def _link(mail: Any) -> str:
    match = LINK_RE.search(mail.body)
    assert match, mail.body
    return match.group(1)


def _sent_link(tenancy: Tenancy, email: str, mailoutbox: list, capture: Any, role: str = Role.ANNOTATOR) -> str:
    with capture(execute=True):
        _invite(tenancy, email, role)
    assert [mail.to for mail in mailoutbox] == [[email.strip().lower()]]
    return _link(mailoutbox[-1])


def _signed_in(user: Any) -> Client:
    client = Client()
    assert client.post(reverse("login"), {"username": user.username, "password": factories.PASSWORD}).status_code == 302
    return client


def _invalid(response: Any) -> bool:
    return response.status_code == 404 and "This invitation link is not valid" in response.text


# --- Inviting ---------------------------------------------------------------------------------------------------
def test_an_invitation_is_emailed_on_commit_with_a_link_naming_the_organization_and_role(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        invitation = _invite(tenancy, "newbie@example.com", Role.MANAGER)
    assert mailoutbox == []  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()
    (mail,) = mailoutbox
    assert mail.to == ["newbie@example.com"] and "Org A" in mail.subject
    assert "Org A" in mail.body and "as manager" in mail.body
    token = _link(mail).removeprefix("/invitations/").rstrip("/")
    assert invitation_from_token(token) == invitation
    assert (invitation.send_count, invitation.status_at(timezone.now())) == (1, InvitationStatus.PENDING)
    assert abs(invitation.expires_at - invitation.created_at - timedelta(days=7)) < timedelta(seconds=1)
    assert not Membership.objects.filter(organization=tenancy.org_a, user__email="newbie@example.com").exists()


def test_addresses_are_normalised_nfkc_and_casefolded(tenancy: Tenancy) -> None:
    invitation = _invite(tenancy, "  \uff2e\uff25\uff37\uff22\uff29\uff25\uff20Example.COM ")
    assert invitation.email == "newbie@example.com"
    with pytest.raises(ValidationError) as refused:
        _invite(tenancy, "NewBie@example.com")
    assert "resend or revoke" in str(refused.value.message_dict["email"])


@pytest.mark.parametrize(
    ("email", "role", "field", "message"),
    [
        ("annie@a.example", Role.ANNOTATOR, "email", "already a member"),
        ("ANNIE@A.EXAMPLE", Role.ANNOTATOR, "email", "already a member"),
        ("not-an-address", Role.ANNOTATOR, "email", "valid e-mail"),
        ("", Role.ANNOTATOR, "email", "required"),
        ("x@example.com", "owner", "role", "not a role"),
    ],
)
def test_inviting_is_validated(tenancy: Tenancy, email: str, role: str, field: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        _invite(tenancy, email, role)
    assert message in " ".join(refused.value.message_dict[field])
    assert not Invitation.objects.exists()


def test_inviting_reads_no_account_outside_the_organization(tenancy: Tenancy) -> None:
    """The same statements (the organization's members, its open invitations, the insert) whether or not the
    address has an account elsewhere: nothing in the answer or its timing can tell."""
    statements = []
    for email in ("oscar@b.example", "nobody@nowhere.example"):
        with CaptureQueriesContext(connection) as queries:
            invitation = _invite(tenancy, email)
        assert (invitation.email, invitation.organization) == (email, tenancy.org_a)
        masked = [re.sub(r"s\d+_x\d+|\d{4}-\d\d-\d\d[ T][\d:.+]+", "…", q["sql"]) for q in queries.captured_queries]
        statements.append([sql.replace(email, "{email}").replace(invitation.nonce, "{nonce}") for sql in masked])
    assert statements[0] == statements[1]
    assert not any("auth_user" in sql and "labeling_membership" not in sql for sql in statements[0])


# --- Accepting while signed in ---------------------------------------------------------------------------------
def test_the_invitee_accepts_while_signed_in_and_the_session_stays_where_it_was(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    oscar = tenancy.outsider_b  # admin of org B, invited to org A
    link = _sent_link(tenancy, "oscar@b.example", mailoutbox, django_capture_on_commit_callbacks, Role.MANAGER)
    client = _signed_in(oscar)
    page = client.get(link)
    assert page.status_code == 200 and "Join Org A" in page.text and "as\n<strong>manager</strong>" in page.text
    response = client.post(link, {"action": "accept"})
    assert response.status_code == 302 and response["Location"] == link
    membership = Membership.objects.get(organization=tenancy.org_a, user=oscar)
    assert membership.role == Role.MANAGER
    invitation = Invitation.objects.get()
    assert (invitation.accepted_by, invitation.status_at(timezone.now())) == (oscar, InvitationStatus.ACCEPTED)
    # The session still acts in org B; the page offers the switch.
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_b.pk
    joined = client.get(link)
    assert joined.status_code == 200 and "You joined Org A" in joined.text and "Switch to Org A" in joined.text
    assert joined.context["current_organization"] == tenancy.org_b
    # Used: the link is dead for everyone else, and a second accept writes nothing.
    assert _invalid(Client().get(link))
    assert _invalid(client.post(link, {"action": "accept"}))
    assert Membership.objects.filter(user=oscar).count() == 2


def test_signing_in_from_the_link_comes_back_to_it(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    link = _sent_link(tenancy, "oscar@b.example", mailoutbox, django_capture_on_commit_callbacks)
    page = Client().get(link)
    assert f'href="/accounts/login/?next={link.replace(":", "%3A")}"' in page.text
    client = Client()
    response = client.post(
        reverse("login"), {"username": "oscar@b.example", "password": factories.PASSWORD, "next": link}
    )
    assert response["Location"] == link
    assert client.post(link, {"action": "accept"}).status_code == 302
    assert Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()


def test_another_account_cannot_accept(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    link = _sent_link(tenancy, "oscar@b.example", mailoutbox, django_capture_on_commit_callbacks)
    client = _signed_in(tenancy.annotator_a)
    page = client.get(link)
    assert "sent to another e-mail address" in page.text and 'action="/accounts/logout/"' in page.text
    assert 'name="action" value="accept"' not in page.text
    refused = client.post(link, {"action": "accept"})
    assert refused.status_code == 403 and "sent to another e-mail address" in refused.text
    assert Invitation.objects.get().accepted_at is None
    assert not Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()


def test_accepting_needs_the_csrf_token(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    link = _sent_link(tenancy, "oscar@b.example", mailoutbox, django_capture_on_commit_callbacks)
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenancy.outsider_b)
    assert client.post(link, {"action": "accept"}).status_code == 403
    assert Invitation.objects.get().accepted_at is None


def test_an_address_matches_whatever_its_spelling(tenancy: Tenancy) -> None:
    person = factories.make_user("Mixed.Case@Example.com")
    invitation = _invite(tenancy, "mixed.case@example.com")
    membership = invitation_accept(invitation=invitation, user=person)
    assert membership.organization == tenancy.org_a


# --- Creating an account through the link -----------------------------------------------------------------------
def test_a_new_person_creates_their_account_through_the_link(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    link = _sent_link(tenancy, "Newbie@Example.com", mailoutbox, django_capture_on_commit_callbacks)
    client = Client()
    response = client.post(
        link, {"action": "create", "name": "New Bie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == reverse("work")
    user = User.objects.get(username="newbie@example.com")
    assert (user.email, user.first_name, user.last_name, user.check_password(NEW_PASSWORD)) == (
        "newbie@example.com",
        "New",
        "Bie",
        True,
    )
    assert (user.is_superuser, user.is_staff) == (False, False)
    assert Membership.objects.get(user=user).organization == tenancy.org_a
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session[SESSION_ORGANIZATION_KEY] == tenancy.org_a.pk
    assert _invalid(Client().get(link))


def test_creating_an_account_that_exists_tells_the_invitee_to_sign_in(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    link = _sent_link(tenancy, "OSCAR@b.example", mailoutbox, django_capture_on_commit_callbacks)
    before = User.objects.get(pk=tenancy.outsider_b.pk).password
    response = Client().post(
        link, {"action": "create", "name": "Mallory", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 200 and "already exists: sign in to accept" in response.text
    assert User.objects.get(pk=tenancy.outsider_b.pk).password == before
    assert not Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"password1": "123", "password2": "123"}, "password1", "too short"),
        ({"password1": "newbie@example.com", "password2": "newbie@example.com"}, "password1", "too similar"),
        ({"password2": "something-else-entirely-9"}, "password2", "differ"),
        ({"name": "  "}, "name", "required"),
    ],
)
def test_account_creation_is_validated(tenancy: Tenancy, fields: dict[str, str], field: str, message: str) -> None:
    invitation = _invite(tenancy, "newbie@example.com")
    link = reverse("invitation", args=[invitation_token(invitation)])
    data = {"action": "create", "name": "New Bie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD} | fields
    response = Client().post(link, data)
    assert response.status_code == 200
    assert any(message in error for error in response.context["form"].errors[field]), response.context["form"].errors
    assert not User.objects.filter(username="newbie@example.com").exists()


def test_the_services_refuse_a_weak_password_too(tenancy: Tenancy) -> None:
    invitation = _invite(tenancy, "newbie@example.com")
    with pytest.raises(ValidationError) as refused:
        account_create_from_invitation(invitation=invitation, account=NewAccount(name="New Bie", password="abc"))
    assert "password1" in refused.value.message_dict
    assert not User.objects.filter(username="newbie@example.com").exists()


# --- Links that cannot be used ---------------------------------------------------------------------------------
def _fingerprint(response: Any) -> tuple[int, str]:
    return response.status_code, re.sub(r'(name="csrfmiddlewaretoken" value|nonce)="[^"]*"', "", response.text)


def test_every_unusable_link_gets_the_same_answer(tenancy: Tenancy, settings: Any) -> None:
    used = _invite(tenancy, "used@example.com")
    used_link = reverse("invitation", args=[invitation_token(used)])
    invitation_accept(invitation=used, user=factories.make_user("used@example.com"))
    revoked = _invite(tenancy, "revoked@example.com")
    revoked_link = reverse("invitation", args=[invitation_token(revoked)])
    invitation_revoke(invitation=revoked)
    resent = _invite(tenancy, "resent@example.com")
    old_link = reverse("invitation", args=[invitation_token(resent)])
    Invitation.objects.filter(pk=resent.pk).update(last_sent_at=timezone.now() - timedelta(hours=1))
    invitation_resend(invitation=resent, base_url="http://testserver")
    expired = _invite(tenancy, "expired@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired_link = reverse("invitation", args=[invitation_token(expired)])
    token = invitation_token(_invite(tenancy, "forged@example.com"))
    links = {
        "used": used_link,
        "revoked": revoked_link,
        "resent (old link)": old_link,
        "expired": expired_link,
        "forged signature": reverse("invitation", args=[token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")]),
        "unsigned": reverse("invitation", args=["eyJpIjoxLCJuIjoieCJ9"]),
        "wrong salt": reverse("invitation", args=[signing.dumps({"i": expired.pk, "n": expired.nonce})]),
        "missing id": reverse("invitation", args=[signing.dumps({"i": 10**9, "n": "x"}, salt=TOKEN_SALT)]),
        "not a dict": reverse("invitation", args=[signing.dumps([1, 2], salt=TOKEN_SALT)]),
    }
    answers = {}
    for reason, link in links.items():
        for method, data in (("get", None), ("post", {"action": "accept"})):
            client = _signed_in(tenancy.outsider_b)
            response = getattr(client, method)(link, data) if data else client.get(link)
            assert _invalid(response), (reason, method)
            answers[(reason, method)] = _fingerprint(response)
    assert len(set(answers.values())) == 1, "every unusable link must answer alike"
    # A link older than the maximum age is refused by its signature too.
    settings.INVITATION_MAX_AGE_DAYS = 1
    fresh = _invite(tenancy, "fresh@example.com")
    token = invitation_token(fresh)
    assert invitation_from_token(token) is not None
    later = timezone.now() + timedelta(days=1, seconds=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.core.signing.time.time", lambda: later.timestamp())
        assert invitation_from_token(token) is None


def test_a_resend_rotates_the_link_and_renews_it(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        invitation = _invite(tenancy, "resent@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(
        last_sent_at=timezone.now() - timedelta(hours=1), expires_at=timezone.now() - timedelta(seconds=1)
    )
    invitation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        resent = invitation_resend(invitation=invitation, base_url="http://testserver")
    assert resent.send_count == 2 and resent.status_at(timezone.now()) == InvitationStatus.PENDING
    old, new = _link(mailoutbox[0]), _link(mailoutbox[1])
    assert old != new
    assert _invalid(Client().get(old)) and Client().get(new).status_code == 200
    with pytest.raises(ValidationError, match=f"less than {RESEND_MIN_SECONDS} seconds"):
        invitation_resend(invitation=resent, base_url="http://testserver")


def test_a_revoked_invitation_is_not_sent_and_cannot_be_resent(
    tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        invitation = _invite(tenancy, "gone@example.com")
        invitation_revoke(invitation=invitation)
    for callback in callbacks:  # the job runs after the revoke: it sends nothing
        callback()
    assert mailoutbox == []
    Invitation.objects.filter(pk=invitation.pk).update(last_sent_at=timezone.now() - timedelta(hours=1))
    with pytest.raises(ValidationError, match="revoked"):
        invitation_resend(invitation=invitation, base_url="http://testserver")
    assert invitation_revoke(invitation=invitation).revoked_at is not None  # twice: no change, no error
    # Revoked, the address may be invited again.
    assert _invite(tenancy, "gone@example.com").pk != invitation.pk


def test_an_accepted_invitation_cannot_be_revoked(tenancy: Tenancy) -> None:
    invitation = _invite(tenancy, "oscar@b.example")
    invitation_accept(invitation=invitation, user=tenancy.outsider_b)
    with pytest.raises(ValidationError, match="accepted"):
        invitation_revoke(invitation=invitation)


def test_a_broker_outage_keeps_the_invitation_and_says_to_resend(
    tenancy: Tenancy,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("labeling.queueing.job_enqueue", lambda task, args, **options: False)  # the broker is down
    with django_capture_on_commit_callbacks(execute=True):
        invitation = _invite(tenancy, "later@example.com")
    assert Invitation.objects.get() == invitation and mailoutbox == []
    assert "its e-mail is not sent: resend it" in caplog.text
