"""Invitations: the only way into an organization is the person's own acceptance.

An organization's admin (in the admin, or with a full API key) invites an e-mail address with a role; the address
receives a signed, single-use, expiring link (``/invitations/<token>/``) by e-mail, sent by a job on commit. The
person joins by accepting it while signed in to the account with that address, or by creating their account
through it. Resend rotates the link (older links stop working) and renews its expiry; revoke ends it.

What the inviter sees never depends on whether the address has an account anywhere: inviting reads no account
(only this organization's own members, to refuse inviting one of them), and the answer is the same invitation
either way. Nothing of the person's other organizations is shown to the inviter, and accepting never moves the
person's open session into the new organization (``labeling.tenancy``).

The token is ``django.core.signing`` (salted) over the invitation's id and nonce; it is the invitee's capability, so
the accept page looks the invitation up by it across organizations. A bad, expired, used or revoked link gets
one answer: the link is not valid.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from labeling.accounts import LinkEmailMessage, email_normalise, email_of_account
from labeling.models import Invitation, InvitationStatus, Membership, Organization, Role
from labeling.queueing import job_enqueue_on_commit

TOKEN_SALT = "concord.invitation"
#: A resend within this many seconds of the last e-mail is refused (an admin's double click, or an inbox flooded).
RESEND_MIN_SECONDS = 60
INVITATION_SUBJECT = "invitations/email_subject.txt"
INVITATION_EMAIL = "invitations/email.txt"


def _max_age() -> timedelta:
    return timedelta(days=settings.INVITATION_MAX_AGE_DAYS)


def _new_nonce() -> str:
    return secrets.token_urlsafe(16)


def invitation_token(invitation: Invitation) -> str:
    """The secret part of the link: the invitation's id and current nonce, signed (and timestamped)."""
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt=TOKEN_SALT, compress=False)


def invitation_url(*, invitation: Invitation, base_url: str) -> str:
    return base_url.rstrip("/") + reverse("invitation", args=[invitation_token(invitation)])


def invitation_from_token(token: str) -> Invitation | None:
    """The invitation the token names, or ``None`` when the token is forged, older than the maximum age, or its
    nonce is not the invitation's current one (a resent link). Looked up across organizations: the signed token
    is the invitee's capability, and the invitee is not (yet) a member. Status is the caller's to check."""
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=_max_age())
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(data.get("n"), str):
        return None
    return Invitation.objects.select_related("organization").filter(pk=data["i"], nonce=data["n"]).first()


def invitation_open(invitation: Invitation | None) -> bool:
    """A link that may still be used: pending and not expired."""
    return invitation is not None and invitation.status_at(timezone.now()) == InvitationStatus.PENDING


# --- Inviting ------------------------------------------------------------------------------------------------
def invitation_email_clean(email: Any) -> str:
    """The normalised address, or ``ValidationError`` naming ``email``."""
    if not isinstance(email, str) or not email.strip():
        raise ValidationError({"email": "An e-mail address is required."})
    normalised = email_normalise(email)
    try:
        validate_email(normalised)
    except ValidationError:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from None
    if len(normalised) > Invitation._meta.get_field("email").max_length:
        raise ValidationError({"email": "The address is too long."})
    return normalised


def _is_member(*, organization: Organization | int, email: str) -> bool:
    """Whether one of the organization's own members has this (normalised) address. Reads only the organization's
    members, so the answer says nothing about accounts elsewhere."""
    field = get_user_model().get_email_field_name()
    members = Membership.objects.for_org(organization).order_by().values_list(f"user__{field}", flat=True)
    return any(email_normalise(address or "") == email for address in members)


def invitation_errors(*, organization: Organization | int, email: str, role: Any) -> dict[str, str]:
    """What keeps ``organization`` from inviting the normalised ``email`` with ``role`` (only its own data)."""
    errors: dict[str, str] = {}
    if role not in Role.values:
        errors["role"] = f"{role!r} is not a role (admin, manager or annotator)."
    if _is_member(organization=organization, email=email):
        errors["email"] = "This person is already a member of your organization."
    elif Invitation.objects.for_org(organization).filter(email=email, accepted_at=None, revoked_at=None).exists():
        errors["email"] = "This address already has an invitation that is not accepted: resend or revoke it."
    return errors


def _send_on_commit(invitation: Invitation, base_url: str) -> None:
    # A broker that is down leaves the invitation saved and unsent (logged): resending it sends it.
    if_lost = "the invitation is saved but its e-mail is not sent: resend it"
    job_enqueue_on_commit("labeling.jobs.send_invitation_job", (invitation.pk, base_url), if_lost=if_lost)


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: Any = None, base_url: str
) -> Invitation:
    """Invite ``email`` to ``organization`` with ``role``; the e-mail goes out when the transaction commits."""
    normalised = invitation_email_clean(email)
    if errors := invitation_errors(organization=organization, email=normalised, role=role):
        raise ValidationError(errors)
    now = timezone.now()
    invitation = Invitation(
        organization=organization,
        email=normalised,
        role=role,
        invited_by=invited_by if getattr(invited_by, "pk", None) is not None else None,
        expires_at=now + _max_age(),
        nonce=_new_nonce(),
        last_sent_at=now,
        send_count=1,
    )
    try:
        with transaction.atomic():
            invitation.save()
    except IntegrityError:  # a concurrent invitation of the same address won
        raise ValidationError(
            {"email": "This address already has an invitation that is not accepted: resend or revoke it."}
        ) from None
    _send_on_commit(invitation, base_url)
    return invitation


def _locked(invitation: Invitation) -> Invitation:
    return Invitation.objects.for_org(invitation.organization_id).select_for_update().get(pk=invitation.pk)


@transaction.atomic
def invitation_resend(*, invitation: Invitation, base_url: str) -> Invitation:
    """A new link (older ones stop working) valid for the full period again, e-mailed on commit."""
    invitation = _locked(invitation)
    now = timezone.now()
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise ValidationError({"invitation": f"This invitation is {invitation.status_at(now)}: it cannot be resent."})
    if invitation.last_sent_at is not None and (now - invitation.last_sent_at).total_seconds() < RESEND_MIN_SECONDS:
        raise ValidationError({"invitation": f"It was sent less than {RESEND_MIN_SECONDS} seconds ago."})
    invitation.nonce = _new_nonce()
    invitation.expires_at = now + _max_age()
    invitation.last_sent_at = now
    invitation.send_count += 1
    invitation.save(update_fields=["nonce", "expires_at", "last_sent_at", "send_count"])
    _send_on_commit(invitation, base_url)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """End the invitation: its link stops working at once. Revoking twice is a no-op; an accepted one cannot be."""
    invitation = _locked(invitation)
    if invitation.accepted_at is not None:
        raise ValidationError({"invitation": "This invitation is accepted: remove the membership instead."})
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_send(*, invitation_id: int, base_url: str) -> bool:
    """E-mail the invitation's current link, if it is still open (a job may run after a revoke or a resend: the
    resend's own job sends the new link). Whether a message was sent."""
    invitation = Invitation.objects.select_related("organization").filter(pk=invitation_id).first()
    if not invitation_open(invitation):
        return False
    assert invitation is not None
    context = {
        "organization": invitation.organization.name,
        "role": invitation.get_role_display(),
        "url": invitation_url(invitation=invitation, base_url=base_url),
        "expires_at": invitation.expires_at,
    }
    subject = "".join(render_to_string(INVITATION_SUBJECT, context).splitlines())
    body = render_to_string(INVITATION_EMAIL, context)
    LinkEmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [invitation.email]).send()
    return True


# --- Accepting -----------------------------------------------------------------------------------------------
INVALID_LINK = "This invitation link is not valid."


def _open_locked(invitation: Invitation) -> Invitation:
    """The invitation, locked, if it is still open and its link unchanged; else ``ValidationError``."""
    locked = Invitation.objects.for_org(invitation.organization_id).select_for_update().filter(pk=invitation.pk)
    current = locked.filter(nonce=invitation.nonce).first()
    if not invitation_open(current):
        raise ValidationError(INVALID_LINK, code="invalid_link")
    assert current is not None
    return current


def invitation_matches(*, invitation: Invitation, user: Any) -> bool:
    """Whether ``user``'s e-mail is the invited address (both normalised)."""
    return bool(email_of_account(user)) and email_of_account(user) == invitation.email


def _accept(invitation: Invitation, user: Any) -> Membership:
    membership, _ = Membership.objects.get_or_create(
        organization_id=invitation.organization_id, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: Any) -> Membership:
    """``user`` joins the organization with the invited role, if their e-mail is the invited one. One use only.
    The session's organization is not changed (the person switches when they choose)."""
    invitation = _open_locked(invitation)
    if not invitation_matches(invitation=invitation, user=user):
        raise ValidationError("This invitation was sent to another e-mail address.", code="other_address")
    return _accept(invitation, user)


@dataclass(frozen=True)
class NewAccount:
    name: str
    password: str


def account_exists(*, email: str) -> bool:
    User = get_user_model()
    field = User.get_email_field_name()
    return User._default_manager.filter(
        Q(**{f"{User.USERNAME_FIELD}__iexact": email}) | Q(**{f"{field}__iexact": email})
    ).exists()


def account_errors(*, invitation: Invitation, account: NewAccount) -> dict[str, list[str]]:
    """What keeps the invitee from creating an account with these details (the password validators included)."""
    errors: dict[str, list[str]] = {}
    User = get_user_model()
    first, _, last = account.name.strip().partition(" ")
    if not account.name.strip():
        errors["name"] = ["Your name is required."]
    elif len(first) > 150 or len(last) > 150:
        errors["name"] = ["The name is too long."]
    try:
        validate_password(account.password, User(username=invitation.email, email=invitation.email, first_name=first))
    except ValidationError as error:
        errors["password1"] = list(error.messages)
    return errors


@transaction.atomic
def account_create_from_invitation(*, invitation: Invitation, account: NewAccount) -> Any:
    """Create the invitee's account (username and e-mail: the invited address) and their membership, and use the
    invitation, in one transaction. Refused when an account with that address exists: its owner signs in to
    accept (only the invitee sees this answer)."""
    invitation = _open_locked(invitation)
    if errors := account_errors(invitation=invitation, account=account):
        raise ValidationError(errors)
    if account_exists(email=invitation.email):
        raise ValidationError(
            "An account with this e-mail address already exists: sign in to accept the invitation.",
            code="account_exists",
        )
    User = get_user_model()
    first, _, last = account.name.strip().partition(" ")
    user = User(username=invitation.email, first_name=first, last_name=last)
    setattr(user, User.get_email_field_name(), invitation.email)
    user.set_password(account.password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # created concurrently under the same username
        raise ValidationError(
            "An account with this e-mail address already exists: sign in to accept the invitation.",
            code="account_exists",
        ) from None
    _accept(invitation, user)
    return user
