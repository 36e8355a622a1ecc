"""A real browser (Playwright driving Debian's Chromium) against a live server: an admin invites two addresses in
the admin; the e-mailed links are accepted by an existing account (signing in from the link, then switching to the
new organization only when they choose) and by a new person who creates their account through it.

Skipped without Chromium, like ``tests/routing/test_browser.py`` (whose fixture this module uses).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from labeling.models import Invitation, Membership, Role
from tests import factories
from tests.mail import jobs_in_process  # noqa: F401  (fixture)
from tests.routing.test_browser import SCREENSHOTS, browser_page, needs_chromium  # noqa: F401  (fixture)

pytestmark = [needs_chromium, pytest.mark.browser, pytest.mark.usefixtures("jobs_in_process")]
NEW_PASSWORD = "a-fresh-passphrase-for-me-42"


def _link(address: str, live_server: Any) -> str:
    (message,) = [message for message in mail.outbox if message.to == [address]]
    match = re.search(rf"{re.escape(live_server.url)}(/invitations/[^/\s]+/)", message.body)
    assert match, message.body
    return live_server.url + match.group(1)


def _sign_in(page: Any, username: str) -> None:
    """On the site's sign-in page or the admin's."""
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    with page.expect_navigation():
        page.click("#login-form [type=submit], main form.stack [type=submit]")


@pytest.mark.django_db(transaction=True)
def test_invite_in_the_admin_and_accept_as_an_existing_and_a_new_account(
    live_server: Any,
    browser_page: Any,  # noqa: F811  (the fixture imported above)
    settings: Any,
) -> None:
    settings.SITE_URL = live_server.url
    mail.outbox = []
    acme = factories.make_org("Acme AI")
    globex = factories.make_org("Globex Research")
    admin = factories.make_member(acme, Role.ADMIN, "admin@acme.example")
    grace = factories.make_member(globex, Role.ADMIN, "grace@globex.example")
    page = browser_page

    # The admin invites an existing account (of another organization) and a new address, alike.
    page.goto(f"{live_server.url}/admin/login/?next=/admin/labeling/invitation/add/")
    _sign_in(page, admin.username)
    for address, role in (("grace@globex.example", "manager"), ("newbie@example.com", "annotator")):
        page.goto(f"{live_server.url}/admin/labeling/invitation/add/")
        page.fill("#id_email", address)
        page.select_option("#id_role", role)
        with page.expect_navigation():
            page.click("input[name=_save]")
        assert f"Invitation sent to {address}" in page.inner_text(".messagelist")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "invitations-admin.png"), full_page=True)
    assert not Membership.objects.filter(organization=acme, user=grace).exists()
    page.context.clear_cookies()

    # Grace opens her link, signs in from it, accepts; her session stays in Globex until she switches.
    page.goto(_link("grace@globex.example", live_server))
    assert "Join Acme AI" in page.inner_text("h1")
    with page.expect_navigation():
        page.click("text=Sign in to accept")
    _sign_in(page, grace.username)
    assert "Join Acme AI" in page.inner_text("h1")
    with page.expect_navigation():
        page.click("text=Accept and join Acme AI")
    assert "You joined Acme AI" in page.inner_text("h1")
    page.screenshot(path=str(SCREENSHOTS / "invitation-joined.png"), full_page=True)
    assert Membership.objects.get(organization=acme, user=grace).role == Role.MANAGER
    assert page.inner_text(".org-switch option[selected]").startswith("Globex Research")
    with page.expect_navigation():
        page.click("text=Switch to Acme AI")
    assert page.inner_text(".org-switch option[selected]").startswith("Acme AI")
    page.context.clear_cookies()

    # A new person creates their account through their link and lands in the organization.
    page.goto(_link("newbie@example.com", live_server))
    page.fill("#id_name", "New Bie")
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    with page.expect_navigation():
        page.click("text=Create my account and join")
    assert page.url == f"{live_server.url}/work/"
    assert "newbie@example.com" in page.inner_text(".who")
    newbie = Membership.objects.get(organization=acme, user__email="newbie@example.com")
    assert newbie.role == Role.ANNOTATOR
    assert Invitation.objects.filter(accepted_at__isnull=False).count() == 2
    assert page.inner_text(".org-name") == "Acme AI"  # their only organization, current from the start
    assert page.dialogs == []
