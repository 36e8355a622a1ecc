"""Every page a person meets, on a phone-sized screen (375 and 320 px wide) in Chromium: nothing sticks out
sideways, so nothing needs a horizontal scroll of the whole page (wide tables scroll inside themselves).

Skipped without Chromium; under CI ``.ci/run`` installs it and ``tests/conftest.py`` refuses to skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

from labeling.invitations import invitation_token
from labeling.models import Membership, Role
from tests import factories

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Chromium: apt-get install -y chromium"),
    pytest.mark.browser,
]
WIDTHS = (375, 320)
LONG = "a-very-long-unbroken-word-" * 12


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls between browser steps, inside Playwright's loop
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            yield chromium
            chromium.close()
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _overflow(page: Any) -> list[str]:
    """Elements reaching past the right edge of the viewport, outside any box that scrolls them itself."""
    return page.evaluate(
        """() => {
        const width = document.documentElement.clientWidth;
        const scrolls = (el) => { for (let p = el.parentElement; p; p = p.parentElement) {
            const s = getComputedStyle(p); if (/(auto|scroll|hidden)/.test(s.overflowX)) return true; } return false; };
        return [...document.body.querySelectorAll('*')]
          .filter((el) => el.getBoundingClientRect().right > width + 1 && !scrolls(el))
          .map((el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '') + ' ' +
                        Math.round(el.getBoundingClientRect().right));
    }"""
    )


@pytest.mark.django_db(transaction=True)
def test_no_page_sticks_out_sideways_on_a_phone(live_server: Any, browser: Any) -> None:
    org = factories.make_org("Organization with a rather long name for a phone")
    other = factories.make_org("Second organization")
    pairwise = factories.make_project(org, name=f"Helpfulness {LONG[:40]}")
    factories.make_task(
        pairwise,
        "long-1",
        payload={"prompt": f"Explain {LONG}", "response_a": f"```\n{LONG}\n```", "response_b": LONG},
    )
    annotator = factories.make_member(org, Role.ANNOTATOR, "annotator-with-a-long-address@example.com")
    Membership.objects.create(organization=other, user=annotator, role=Role.ANNOTATOR)  # the switcher shows
    manager = factories.make_member(org, Role.MANAGER, "manager@example.com")
    invitation = factories.make_invitation(org, "newcomer@example.com")
    token = invitation_token(invitation)

    pages: list[tuple[str | None, Callable[[], str]]] = [
        (None, lambda: "/accounts/login/"),
        (None, lambda: "/accounts/password/reset/"),
        (None, lambda: f"/invitations/{token}/"),
        (None, lambda: "/no-such-page/"),
        (annotator.username, lambda: "/work/"),
        (annotator.username, lambda: f"/projects/{pairwise.pk}/annotate/"),
        (annotator.username, lambda: "/work/sensitive-content"),
        (annotator.username, lambda: f"/projects/{pairwise.pk}/quality/"),  # the 403 page
        (manager.username, lambda: f"/projects/{pairwise.pk}/quality/"),
    ]
    problems: list[str] = []
    for width in WIDTHS:
        for username, path in pages:
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            if username:
                page.goto(f"{live_server.url}/accounts/login/")
                page.fill("#id_username", username)
                page.fill("#id_password", factories.PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state()
            page.goto(live_server.url + path())
            problems += [f"{width}px {path()} as {username}: {element}" for element in _overflow(page)]
            context.close()

    assert problems == [], "\n".join(problems)
