"""Password reset through Django's views (``/accounts/password/reset/…``): the same answer, as fast, for any
address; mail only to active accounts with a usable password, sent by a job; throttled per address asked for and
per client address like sign-in (429, ``Retry-After``); a link that cannot be used answers 404."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tests import factories
from tests.mail import jobs_in_process  # noqa: F401  (fixture)

User = get_user_model()
RESET = "/accounts/password/reset/"
NEW_PASSWORD = "a-brand-new-passphrase-77"
LINK_RE = re.compile(r"http://testserver(/accounts/password/reset/[^/\s]+/[^/\s]+/)")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("jobs_in_process")]


@pytest.fixture(autouse=True)
def _no_reset_counts_carried_over() -> None:
    """Reset counters live in the cache (Redis under CI, kept across runs), keyed by the addresses these tests use."""
    cache.clear()


def _ask(client: Client, email: str, capture: Any) -> Any:
    with capture(execute=True):
        return client.post(RESET, {"email": email})


def _fingerprint(response: Any) -> tuple[int, str, str]:
    text = re.sub(r'(name="csrfmiddlewaretoken" value|nonce)="[^"]*"', "", response.content.decode())
    return response.status_code, response.get("Location", ""), text


def test_the_sign_in_page_links_to_the_reset() -> None:
    page = Client().get(reverse("login"))
    assert 'href="/accounts/password/reset/"' in page.text and "Forgot your password?" in page.text


def test_a_reset_link_sets_a_new_password_and_ends_other_sessions(
    mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    user = factories.make_user("reset-me@example.com")
    other_session = Client()
    other_session.force_login(user)
    response = _ask(Client(), "Reset-Me@Example.com", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    (mail,) = mailoutbox
    assert mail.to == ["reset-me@example.com"] and mail.subject == "Reset your Concord password"
    link = LINK_RE.search(mail.body).group(1)  # type: ignore[union-attr]
    client = Client()
    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.text
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert "_auth_user_id" not in other_session.session or other_session.get("/work/").status_code == 302
    used = Client().get(link)
    assert used.status_code == 404 and "This link is not valid" in used.text


def test_the_answer_is_the_same_for_any_address_and_only_real_accounts_get_mail(
    mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    factories.make_user("active@example.com")
    factories.make_user("inactive@example.com", is_active=False)
    unusable = factories.make_user("unusable@example.com")
    unusable.set_unusable_password()
    unusable.save()
    answers = {}
    statements = {}
    for email in ("active@example.com", "inactive@example.com", "unusable@example.com", "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            response = Client().post(RESET, {"email": email})
        answers[email] = _fingerprint(response)
        statements[email] = [query["sql"] for query in queries.captured_queries]
    assert len(set(answers.values())) == 1, "every address gets the same answer"
    assert statements["active@example.com"] == statements["nobody@example.com"] == []  # the job looks up, not the page
    for email in answers:
        _ask(Client(), email, django_capture_on_commit_callbacks)
    assert [mail.to for mail in mailoutbox] == [["active@example.com"]]


def test_resets_for_one_address_are_throttled_in_any_spelling(
    settings: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PASSWORD_RESETS_PER_ACCOUNT = 2
    factories.make_user("target@example.com")
    for n, spelling in enumerate(["target@example.com", " TARGET@Example.COM"]):
        response = _ask(Client(REMOTE_ADDR=f"10.1.2.{3 + n}"), spelling, django_capture_on_commit_callbacks)
        assert response.status_code == 302
    fullwidth = "\uff34\uff21\uff32\uff27\uff25\uff34@example.com"  # TARGET in fullwidth letters
    refused = _ask(Client(REMOTE_ADDR="10.1.2.3"), fullwidth, django_capture_on_commit_callbacks)
    assert refused.status_code == 429 and int(refused["Retry-After"]) == settings.LOGIN_FAILURE_WINDOW
    assert "Too many password reset requests" in refused.text
    assert len(mailoutbox) == 2
    # Unknown addresses are throttled alike: the 429 says nothing about accounts.
    for _ in range(2):
        _ask(Client(), "ghost@example.com", django_capture_on_commit_callbacks)
    assert _ask(Client(), "ghost@example.com", django_capture_on_commit_callbacks).status_code == 429


def test_resets_from_one_client_address_are_throttled(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.PASSWORD_RESETS_PER_ADDRESS = 3
    client = Client(REMOTE_ADDR="10.1.2.3")
    for n in range(3):
        assert _ask(client, f"someone{n}@example.com", django_capture_on_commit_callbacks).status_code == 302
    assert _ask(client, "someone-else@example.com", django_capture_on_commit_callbacks).status_code == 429
    assert (
        _ask(Client(REMOTE_ADDR="10.1.2.4"), "someone-else@example.com", django_capture_on_commit_callbacks).status_code
        == 302
    )


def test_a_bad_address_is_a_form_error_and_not_counted(settings: Any) -> None:
    settings.PASSWORD_RESETS_PER_ADDRESS = 1
    for value in ("not-an-address", "a\x00@example.com", ""):
        response = Client().post(RESET, {"email": value})
        assert response.status_code == 200 and response.context["form"].errors["email"]
    assert Client().post(RESET, {"email": "fine@example.com"}).status_code == 302


@pytest.mark.parametrize("uid", ["MQ", "bm90LWEtbnVtYmVy", "AAAAAAAA", "%00"])
def test_a_link_that_cannot_be_used_answers_404(uid: str) -> None:
    user = factories.make_user("someone@example.com")
    real_uid = urlsafe_base64_encode(force_bytes(user.pk))
    answers = {_fingerprint(Client().get(f"{RESET}{value}/bad-token/")) for value in (uid, real_uid)}
    (answer,) = answers
    assert answer[0] == 404 and "This link is not valid" in answer[2]


def test_a_broker_outage_answers_alike_and_logs_no_address(
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    factories.make_user("reset-me@example.com")
    monkeypatch.setattr("pages.forms.job_enqueue", lambda task, args, **options: False)  # the broker is down
    response = _ask(Client(), "reset-me@example.com", django_capture_on_commit_callbacks)
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert mailoutbox == []
    assert "password-reset e-mail was not queued" in caplog.text and "reset-me" not in caplog.text
