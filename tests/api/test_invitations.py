"""``/api/v1/invitations/``: a full key (or an admin's session) invites, resends and revokes; read-only keys and
managers list and read. The answer never depends on whether the address has an account anywhere, and never holds
the link."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from django.test import Client
from django.utils import timezone

from labeling.models import Invitation, InvitationStatus, Membership, Role
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.mail import jobs_in_process  # noqa: F401  (fixture)

URL = "/api/v1/invitations/"


def _post(client: Client, url: str, body: Any = None) -> Any:
    return client.post(url, json.dumps(body) if body is not None else "", content_type="application/json")


def _masked(response: Any, email: str) -> str:
    text = response.content.decode().replace(email, "{email}")
    return re.sub(r'"(id|created_at|expires_at|last_sent_at)":("[^"]*"|\d+)', r'"\1":…', text)


@pytest.mark.usefixtures("jobs_in_process")
def test_a_full_key_invites_and_the_answer_is_the_same_for_any_address(
    api_a: KeyClient, tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    answers = []
    for email in ("oscar@b.example", "nobody@nowhere.example"):
        with django_capture_on_commit_callbacks(execute=True):
            response = _post(api_a, URL, {"email": email, "role": "manager"})
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["email"], body["role"], body["status"], body["send_count"]) == (email, "manager", "pending", 1)
        assert "token" not in response.content.decode() and "/invitations/" not in response.content.decode()
        answers.append(_masked(response, email))
    assert answers[0] == answers[1]
    assert sorted(mail.to[0] for mail in mailoutbox) == ["nobody@nowhere.example", "oscar@b.example"]
    assert all(i.invited_by is None for i in Invitation.objects.all())  # a key is no person
    assert not Membership.objects.filter(organization=tenancy.org_a, user=tenancy.outsider_b).exists()


def test_list_and_retrieve(api_a: KeyClient, api_read_only: KeyClient, tenancy: Tenancy) -> None:
    first = factories.make_invitation(tenancy.org_a, "first@example.com")
    second = factories.make_invitation(tenancy.org_a, "second@example.com", Role.ADMIN)
    factories.make_invitation(tenancy.org_b, "other-org@example.com")
    for client in (api_a, api_read_only):
        listed = client.get(URL)
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["results"]] == [second.pk, first.pk]
        assert "other-org" not in listed.content.decode()
        one = client.get(f"{URL}{first.pk}/")
        assert one.status_code == 200 and one.json()["email"] == "first@example.com"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "annie@a.example"}, "email"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "x@example.com", "role": "owner"}, "role"),
        ({"role": "annotator"}, "email"),
        ({"email": "x@example.com", "organization": 1}, "organization"),
        ({"email": "x\u0000@example.com"}, "email"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(api_a: KeyClient, body: dict[str, Any], field: str) -> None:
    response = _post(api_a, URL, body)
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Invitation.objects.exists()


def test_a_pending_address_is_refused_until_revoked(api_a: KeyClient, tenancy: Tenancy) -> None:
    assert _post(api_a, URL, {"email": "dup@example.com"}).status_code == 201
    refused = _post(api_a, URL, {"email": "DUP@example.com"})
    assert refused.status_code == 400 and "resend or revoke" in refused.json()["email"][0]
    invitation = Invitation.objects.get()
    revoked = _post(api_a, f"{URL}{invitation.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == InvitationStatus.REVOKED
    assert _post(api_a, URL, {"email": "dup@example.com"}).status_code == 201


@pytest.mark.usefixtures("jobs_in_process")
def test_resend_rotates_the_link(
    api_a: KeyClient, tenancy: Tenancy, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    invitation = factories.make_invitation(tenancy.org_a, "later@example.com")
    too_soon = _post(api_a, f"{URL}{invitation.pk}/resend")
    assert too_soon.status_code == 400 and "less than 60 seconds" in too_soon.json()["invitation"][0]
    Invitation.objects.filter(pk=invitation.pk).update(last_sent_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(api_a, f"{URL}{invitation.pk}/resend")
    assert response.status_code == 200 and response.json()["send_count"] == 2
    assert Invitation.objects.get().nonce != invitation.nonce
    assert [mail.to for mail in mailoutbox] == [["later@example.com"]]


def test_read_only_keys_and_managers_cannot_invite_resend_or_revoke(api_read_only: KeyClient, tenancy: Tenancy) -> None:
    invitation = factories.make_invitation(tenancy.org_a, "later@example.com")
    manager = Client()
    manager.force_login(tenancy.manager_a)
    admin = Client()
    admin.force_login(tenancy.admin_a)
    before = list(Invitation.objects.values())
    for client in (api_read_only, manager):
        assert client.get(URL).status_code == 200
        for url in (URL, f"{URL}{invitation.pk}/resend", f"{URL}{invitation.pk}/revoke"):
            assert _post(client, url, {"email": "x@example.com"} if url == URL else None).status_code == 403, url
    assert list(Invitation.objects.values()) == before
    # An admin's session invites (with the CSRF token, as any session write).
    assert _post(admin, URL, {"email": "by-session@example.com"}).status_code == 201
    assert Invitation.objects.get(email="by-session@example.com").invited_by == tenancy.admin_a
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(tenancy.admin_a)
    assert _post(strict, URL, {"email": "no-csrf@example.com"}).status_code == 403


def test_another_organizations_invitation_answers_like_a_missing_one(api_b: KeyClient, tenancy: Tenancy) -> None:
    invitation = factories.make_invitation(tenancy.org_a, "secret-invitee@example.com")
    before = list(Invitation.objects.values())
    for suffix, method in (("", "get"), ("resend", "post"), ("revoke", "post")):
        foreign = getattr(api_b, method)(f"{URL}{invitation.pk}/{suffix}")
        missing = getattr(api_b, method)(f"{URL}{invitation.pk + 10_000}/{suffix}")
        assert foreign.status_code == missing.status_code == 404
        assert foreign.content == missing.content
    assert "secret-invitee" not in api_b.get(URL).content.decode()
    assert list(Invitation.objects.values()) == before


def test_the_schema_documents_the_invitation_endpoints(api_a: KeyClient) -> None:
    paths = yaml.safe_load(api_a.get("/api/schema/").content)["paths"]
    assert set(paths[URL]) == {"get", "post"}
    assert set(paths[URL + "{invitation_id}/resend"]) == {"post"}
    create = paths[URL]["post"]
    assert {"201", "400", "401", "403", "413", "429", "503"} <= set(create["responses"])


@pytest.mark.parametrize("path", ["invitations/{id}/", "invitations/{id}/resend", "projects/{id}/"])
def test_an_id_no_route_matches_answers_like_a_missing_one(api_b: KeyClient, path: str) -> None:
    """A negative id matches no route (Django's handler404 answers); a large one reaches the view: same bytes.
    Found by tests/api/test_fuzz.py against the invitation endpoints."""
    method = api_b.post if path.endswith("resend") else api_b.get
    no_route = method("/api/v1/" + path.format(id=-5))
    missing = method("/api/v1/" + path.format(id=2**31 - 1))
    assert no_route.status_code == missing.status_code == 404
    assert no_route.content == missing.content
