"""API authentication: keys (hashed, prefixed, revocable, read-only, last used), sessions with CSRF, throttling."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.debug import SafeExceptionReporterFilter

from labeling.apikeys import api_key_authenticate, api_key_revoke
from labeling.models import ApiKey, Membership, Role
from labeling.tenancy import SESSION_ORGANIZATION_KEY
from tests.api.conftest import KeyClient, Keys
from tests.conftest import Tenancy
from tests.factories import PASSWORD

PROJECTS = "/api/v1/projects/"


def test_no_credentials_is_401_with_the_bearer_challenge(keys: Keys) -> None:
    response = Client().get(PROJECTS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer a b",
        "Bearer cnc_nope",
        "Bearer cnc_aaaaaaaaaaaa_" + "A" * 43,
        "Bearer \u00e9t\u00e9",
    ],
)
def test_bad_keys_are_401(keys: Keys, header: str) -> None:
    response = Client().get(PROJECTS, headers={"Authorization": header})
    assert response.status_code == 401, response.content


def test_a_right_prefix_with_a_wrong_secret_is_401(keys: Keys) -> None:
    forged = keys.full_a[:-4] + ("AAAA" if not keys.full_a.endswith("AAAA") else "BBBB")
    assert KeyClient(forged).get(PROJECTS).status_code == 401


def test_keys_are_stored_hashed_and_shown_by_prefix(keys: Keys, tenancy: Tenancy) -> None:
    row = ApiKey.objects.get(name="pipeline")
    assert keys.full_a.startswith(f"cnc_{row.prefix}_")
    assert keys.full_a not in str(list(ApiKey.objects.values()))
    assert row.key_hash != keys.full_a and len(row.key_hash) == 64
    assert str(row) == f"pipeline (cnc_{row.prefix}_…)"
    assert row.created_by == tenancy.admin_a and row.organization == tenancy.org_a


def test_a_key_in_the_query_string_is_never_accepted(keys: Keys) -> None:
    for name in ("key", "api_key", "token", "access_token"):
        assert Client().get(PROJECTS, {name: keys.full_a}).status_code == 401


def test_keys_never_reach_the_logs_or_an_error_report(
    keys: Keys, tenancy: Tenancy, caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger at DEBUG through a success, a 404, a 400, a rejected key and a throttled key; and the report a
    500 would produce (the debug page and the admins' e-mail share Django's filter) masks the header."""
    forged = keys.full_b[:-4] + ("AAAA" if not keys.full_b.endswith("AAAA") else "BBBB")
    with caplog.at_level(logging.DEBUG):
        assert KeyClient(keys.full_a).get(PROJECTS).status_code == 200
        assert KeyClient(keys.full_a).get(f"{PROJECTS}999999/").status_code == 404
        import_url = f"{PROJECTS}{tenancy.project_a.pk}/tasks/import"
        assert KeyClient(keys.full_a).post(import_url, b"{", content_type="application/json").status_code == 400
        assert KeyClient(forged).get(PROJECTS).status_code == 401
        assert Client().get(PROJECTS, {"key": keys.full_b}).status_code == 401
    # What a handler writes: the message with its arguments (the console handler's format; gunicorn's access log
    # is off unless configured, and then shows what a reverse proxy would).
    logged = caplog.text + " ".join(f"{record.getMessage()} {record.args!r}" for record in caplog.records)
    assert caplog.records, "the requests above log something (the 404 and 401 at least)"
    for secret in (keys.full_a, keys.full_b, forged, keys.full_a.rsplit("_", 1)[1]):
        assert secret not in logged

    request = RequestFactory().get(PROJECTS, headers={"Authorization": f"Bearer {keys.full_a}"})
    meta = SafeExceptionReporterFilter().get_safe_request_meta(request)
    assert keys.full_a not in repr(meta) and meta["HTTP_AUTHORIZATION"] == "********************"


def test_a_revoked_key_stops_working_on_the_next_request(keys: Keys, api_a: KeyClient) -> None:
    assert api_a.get(PROJECTS).status_code == 200
    api_key_revoke(api_key=ApiKey.objects.get(name="pipeline"))
    assert api_a.get(PROJECTS).status_code == 401
    assert api_key_authenticate(key=keys.full_a) is None


def test_last_used_is_recorded_at_most_once_a_minute(
    keys: Keys, api_a: KeyClient, django_assert_num_queries: Any
) -> None:
    row = ApiKey.objects.get(name="pipeline")
    assert row.last_used_at is None
    api_a.get(PROJECTS)
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    api_a.get(PROJECTS)
    row.refresh_from_db()
    assert row.last_used_at == first


def test_a_read_only_key_reads_but_cannot_write(api_read_only: KeyClient, tenancy: Tenancy) -> None:
    assert api_read_only.get(PROJECTS).status_code == 200
    response = api_read_only.post(PROJECTS, {"name": "X", "kind": "pairwise"}, content_type="application/json")
    assert response.status_code == 403 and "read-only" in response.json()["detail"]
    url = f"{PROJECTS}{tenancy.project_a.pk}/"
    assert api_read_only.patch(url, {"name": "Y"}, content_type="application/json").status_code == 403
    tenancy.project_a.refresh_from_db()
    assert tenancy.project_a.name == "Alpha prefs"


def test_sessions_of_admins_and_managers_work_with_csrf_annotators_get_403(tenancy: Tenancy, keys: Keys) -> None:
    for user in (tenancy.admin_a, tenancy.manager_a):
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        assert client.get(PROJECTS).status_code == 200
        # A write without the CSRF token is refused; with it, it goes through.
        body = {"name": f"Made by {user.pk}", "kind": "pairwise"}
        assert client.post(PROJECTS, body, content_type="application/json").status_code == 403
        token = "k" * 32  # a CSRF secret in the cookie, echoed in the header as a page's script would
        client.cookies["csrftoken"] = token
        response = client.post(PROJECTS, body, content_type="application/json", headers={"X-CSRFToken": token})
        assert response.status_code == 201, response.content
    annotator = Client()
    annotator.force_login(tenancy.annotator_a)
    assert annotator.get(PROJECTS).status_code == 403


def test_throttled_per_key(settings: Any, keys: Keys, api_a: KeyClient, api_b: KeyClient) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "3/min"}}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        cache.clear()
        assert [api_a.get(PROJECTS).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert api_b.get(PROJECTS).status_code == 200  # another key has its own budget
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"api": "6000/min"}}
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        cache.clear()


def test_create_api_key_command_prints_the_key_once(tenancy: Tenancy, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("create_api_key", "--org", tenancy.org_a.slug, "--name", "etl", "--read-only")
    captured = capsys.readouterr()
    key = captured.out.strip()
    row = ApiKey.objects.get(name="etl")
    assert row.read_only and key.startswith(f"cnc_{row.prefix}_") and "cannot be shown again" in captured.err
    assert KeyClient(key).get(PROJECTS).status_code == 200
    with pytest.raises(CommandError, match="No organization"):
        call_command("create_api_key", "--org", "nope", "--name", "etl")
    with pytest.raises(CommandError, match="name"):
        call_command("create_api_key", "--org", tenancy.org_a.slug, "--name", "  ")


def test_org_admins_create_keys_in_the_admin_and_see_them_once(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    url = reverse("admin:labeling_apikey_add")
    page = client.post(url, {"name": "from the admin", "read_only": "on"})
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    key = page.context["key"]
    row = ApiKey.objects.get(name="from the admin")
    assert row.organization == tenancy.org_a and row.read_only and row.created_by == tenancy.admin_a
    assert key in page.text and KeyClient(key).get(PROJECTS).status_code == 200
    # Never shown again: not on the change page, not in the list.
    change = client.get(reverse("admin:labeling_apikey_change", args=[row.pk]))
    assert key not in change.text and f"cnc_{row.prefix}_" in change.text
    # Revoked from the list: the key stops working.
    client.post(reverse("admin:labeling_apikey_changelist"), {"action": "revoke", "_selected_action": [row.pk]})
    assert KeyClient(key).get(PROJECTS).status_code == 401
    # Managers and annotators do not manage keys.
    for user in (tenancy.manager_a, tenancy.annotator_a):
        client.force_login(user)
        assert client.get(url).status_code in (302, 403)


def test_a_session_acts_for_its_recorded_organization_only(tenancy: Tenancy, keys: Keys) -> None:
    """An organization the person joined after signing in never becomes the API's organization for that session;
    a session with no current organization reaches no organization's API."""
    oscar = Client()
    assert oscar.post("/accounts/login/", {"username": "oscar@b.example", "password": PASSWORD}).status_code == 302
    Membership.objects.create(organization=tenancy.org_a, user=tenancy.outsider_b, role=Role.ADMIN)  # joined A
    listed = oscar.get(PROJECTS)
    assert listed.status_code == 200
    assert [row["name"] for row in listed.json()["results"]] == [tenancy.project_b.name]
    session = oscar.session
    session[SESSION_ORGANIZATION_KEY] = None  # no current organization (e.g. left the recorded one)
    session.save()
    refused = oscar.get(PROJECTS)
    assert refused.status_code == 403 and tenancy.project_a.name not in refused.content.decode()
