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
