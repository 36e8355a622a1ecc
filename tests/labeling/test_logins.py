"""Sign-in: repeated failures are throttled (429, logged) per account and per address, on the site's and the
admin's form; the session is rotated on sign-in and ended on sign-out."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from tests import factories
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _name() -> str:
    return f"throttle-{uuid.uuid4().hex[:12]}@example.com"


def _sign_in(client: Client, username: str, password: str, path: str = "/accounts/login/", **extra: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, **extra)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_repeated_failures_for_an_account_are_refused_with_429(
    path: str, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    user = factories.make_user(_name(), is_staff=True)
    client = Client()
    for _ in range(3):
        response = _sign_in(client, user.username, "wrong", path)
        assert response.status_code == 200  # the form again, with its error
    with caplog.at_level(logging.WARNING, logger="concord.security"):
        refused = _sign_in(client, user.username, PASSWORD, path)  # even the right password waits
    assert refused.status_code == 429 and int(refused["Retry-After"]) == settings.LOGIN_FAILURE_WINDOW
    assert b"Too many sign-in attempts" in refused.content
    assert "_auth_user_id" not in client.session
    assert any("throttled" in record.getMessage() and user.username in record.getMessage() for record in caplog.records)
    assert PASSWORD not in caplog.text
    other = factories.make_user(_name())
    assert _sign_in(Client(), other.username, PASSWORD).status_code == 302  # another account signs in


def test_failures_spread_over_accounts_are_limited_per_address(settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    address = "10.9.9.7"
    cache.delete(f"login-failures:address:{address}")
    client = Client(REMOTE_ADDR=address)
    for _ in range(4):
        assert _sign_in(client, _name(), "wrong").status_code == 200
    user = factories.make_user(_name())
    assert _sign_in(client, user.username, PASSWORD).status_code == 429
    assert _sign_in(Client(), user.username, PASSWORD).status_code == 302  # from another address


def test_a_successful_sign_in_clears_the_account_count(settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    user = factories.make_user(_name())
    client = Client()
    for _ in range(2):
        _sign_in(client, user.username, "wrong")
    assert _sign_in(client, user.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _sign_in(client, user.username, "wrong")
    assert _sign_in(client, user.username, PASSWORD).status_code == 302  # 2 + 2 failures, never 3 in a row


def test_sign_in_rotates_the_session_and_sign_out_ends_it() -> None:
    user = factories.make_user(_name())
    client = Client()
    client.get("/accounts/login/")
    session = client.session
    session["before"] = "x"
    session.save()
    before = session.session_key
    assert _sign_in(client, user.username, PASSWORD).status_code == 302
    after = client.session.session_key
    assert after and after != before  # a session fixed before sign-in is worth nothing after it
    stolen = Client()
    stolen.cookies["sessionid"] = after
    assert stolen.get("/").status_code == 200 and "_auth_user_id" in stolen.session
    assert client.post("/accounts/logout/").status_code in (200, 302)
    stolen = Client()
    stolen.cookies["sessionid"] = after
    response = stolen.get("/")
    assert "_auth_user_id" not in stolen.session
    assert response.status_code in (200, 302)


def test_behind_a_trusted_proxy_the_client_address_is_the_one_the_proxy_saw(settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    settings.TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    attacker, other = "203.0.113.7", "203.0.113.8"
    cache.delete_many([f"login-failures:address:{address}" for address in (attacker, other, "10.0.0.1")])
    for n in range(2):  # the forged left-hand entry changes each time; the proxy's entry does not
        _sign_in(Client(), _name(), "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {attacker}", **proxy)
    user = factories.make_user(_name())
    assert _sign_in(Client(), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=attacker, **proxy).status_code == 429
    assert _sign_in(Client(), user.username, PASSWORD, HTTP_X_FORWARDED_FOR=other, **proxy).status_code == 302


# --- Every spelling of one account shares its counter (issue 15, item 2) -------------------------------------------
def _fullwidth(text: str) -> str:
    """``text`` in fullwidth letters, digits and ``@`` (what NFKC maps back to ASCII)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c not in ".-" else c for c in text)


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_fullwidth_spelling_is_throttled_with_the_account(path: str, settings: Any) -> None:
    """After the limit, ``annotator2@acme.example`` typed in fullwidth letters (the issue's spelling) is the same
    account to the sign-in form: refused before its password is checked, like the plain spelling."""
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    name = _name()
    user = factories.make_user(name, is_staff=True)
    client = Client()
    for _ in range(5):
        assert _sign_in(client, user.username, "wrong", path).status_code == 200
    fullwidth = _fullwidth(name)
    assert fullwidth != name and fullwidth.startswith("\uff54")  # fullwidth t, as in "throttle-…"
    refused = _sign_in(Client(), fullwidth, PASSWORD, path)
    assert refused.status_code == 429 and refused["Retry-After"]
    assert "_auth_user_id" not in Client().session


def test_failures_in_any_spelling_count_against_one_account(settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = 4
    name = _name()
    user = factories.make_user(name)
    spellings = [_fullwidth(name), f"  {name} ", _fullwidth(name[:5]) + name[5:], name]
    for spelling in spellings:
        assert _sign_in(Client(), spelling, "wrong").status_code == 200
    assert _sign_in(Client(), user.username, PASSWORD).status_code == 429  # 4 failures, one account


def test_a_fullwidth_spelling_signs_in_to_the_account_it_names() -> None:
    """The counter follows what authentication does: NFKC makes the fullwidth spelling the account's own name."""
    name = _name()
    user = factories.make_user(name)
    client = Client()
    assert _sign_in(client, _fullwidth(name), PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_names_without_an_account_are_counted_casefolded(settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = 2
    name = _name()
    _sign_in(Client(), name.upper(), "wrong")
    _sign_in(Client(), _fullwidth(name.title()), "wrong")
    user = factories.make_user(name.upper())  # an account named exactly as the first attempt
    assert _sign_in(Client(), name, PASSWORD).status_code == 429
    assert _sign_in(Client(), user.username, PASSWORD).status_code == 302  # its own counter: no failure yet


# --- A sign-in POST always authenticates, from a fresh session (issue 15, item 3) ----------------------------------
def _planted(user: Any) -> Client:
    """A browser holding a session cookie of ``user``'s (planted by an attacker)."""
    attacker = Client()
    attacker.force_login(user)
    victim = Client()
    victim.cookies["sessionid"] = attacker.cookies["sessionid"].value
    return victim


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_sign_in_over_a_planted_session_checks_the_credentials(path: str) -> None:
    attacker = factories.make_user(_name(), is_superuser=True)  # admits to both forms
    victim = factories.make_user(_name(), is_superuser=True)
    client = _planted(attacker)
    planted = client.cookies["sessionid"].value
    response = _sign_in(client, victim.username, "not-the-password", path)
    assert response.status_code == 200  # the form again, with its error: nothing was redirected
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session  # and the planted session is over
    replay = Client()
    replay.cookies["sessionid"] = planted
    assert "_auth_user_id" not in replay.session
    assert replay.get("/work/").status_code == 302  # to the sign-in page


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_sign_in_over_another_session_starts_a_fresh_one_for_the_account(path: str) -> None:
    attacker = factories.make_user(_name(), is_superuser=True)
    victim = factories.make_user(_name(), is_superuser=True)
    client = _planted(attacker)
    planted = client.cookies["sessionid"].value
    assert _sign_in(client, victim.username, PASSWORD, path).status_code == 302
    assert client.cookies["sessionid"].value != planted
    assert client.session["_auth_user_id"] == str(victim.pk)
    replay = Client()
    replay.cookies["sessionid"] = planted
    assert "_auth_user_id" not in replay.session


def test_signing_in_again_as_the_same_person_rotates_the_session() -> None:
    user = factories.make_user(_name())
    client = Client()
    assert _sign_in(client, user.username, PASSWORD).status_code == 302
    first = client.cookies["sessionid"].value
    assert _sign_in(client, user.username, PASSWORD).status_code == 302
    assert client.cookies["sessionid"].value != first


def test_a_signed_in_get_of_the_sign_in_page_still_redirects() -> None:
    user = factories.make_user(_name())
    client = Client()
    client.force_login(user)
    response = client.get("/accounts/login/")
    assert response.status_code == 302 and response["Location"] == "/work/"
    assert "_auth_user_id" in client.session


def test_a_cross_site_sign_in_post_ends_no_session() -> None:
    """The session ends after the CSRF check: another site cannot sign anyone out (or use up their attempts)."""
    user = factories.make_user(_name())
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/accounts/login/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 403
    assert client.session["_auth_user_id"] == str(user.pk)
