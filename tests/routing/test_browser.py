"""A real browser (Playwright driving Debian's Chromium) against a live server: an annotator works by keyboard.

Without Chromium (a laptop without ``apt-get install chromium``) these tests are skipped with that reason; under
CI ``.ci/run`` installs it, and ``tests/conftest.py`` refuses to skip.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from labeling.models import Judgment, Project, Role
from routing.models import Lease, LeaseState
from tests import factories

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM), reason="needs Chromium for browser tests: apt-get install -y chromium"
)
pytestmark = [needs_chromium, pytest.mark.browser]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made here between browser steps
    # are ordinary blocking calls, which Django would otherwise refuse inside a running loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.dialogs = dialogs  # type: ignore[attr-defined]
            yield page
            browser.close()
            # Inside Playwright's loop the ORM used connections of its own context: close them, or they would
            # outlive the test and block dropping the test database.
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _sign_in(page: Any, live_server: Any, username: str, next_url: str = "") -> None:
    page.goto(f"{live_server.url}/accounts/login/" + (f"?next={next_url}" if next_url else ""))
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _lease_shown(page: Any) -> int:
    action = page.get_attribute("form.choices", "action")
    return int(action.rstrip("/").split("/")[-2])


def _press(page: Any, key: str) -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


@pytest.mark.django_db(transaction=True)
def test_an_annotator_labels_by_keyboard_only(
    live_server: Any, browser_page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A seeded draw under which the first five leases already show both left/right orders.
    monkeypatch.setattr("routing.services.leases._rng", random.Random(0))
    org = factories.make_org("Browser org")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project: Project = factories.make_project(
        org, name="Browser prefs", min_judgments=1, max_judgments=1, gold_rate=0, instructions="Pick the **better**."
    )
    hostile = {
        "prompt": "Say hi <script>alert('prompt')</script>",
        "response_a": "<img src=x onerror=\"alert('img')\"> [link](javascript:alert('link'))",
        "response_b": "</script><script>alert('close')</script>",
    }
    factories.make_task(project, "hostile", payload=hostile)
    for n in range(8):
        factories.make_task(project, f"pair-{n}")
    page = browser_page

    _sign_in(page, live_server, annotator.username)
    page.click(f"a[href='/projects/{project.pk}/annotate/']")
    page.wait_for_selector("[data-annotate][data-ready]")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "labeling-page.png"), full_page=True)
    assert page.inner_text(".response >> nth=0").startswith("Response 1")

    # Five judgments with the keys 1-4, nothing but the keyboard.
    for key in ["1", "2", "3", "4", "1"]:
        _press(page, key)
    assert Judgment.objects.filter(annotator=annotator).count() == 5

    # Skip one with "s".
    skipped = _lease_shown(page)
    _press(page, "s")
    assert Lease.objects.get(pk=skipped).state == LeaseState.SKIPPED

    # Reload mid-task: the same lease comes back.
    before = _lease_shown(page)
    page.reload()
    assert _lease_shown(page) == before

    # A double key press stores one judgment.
    with page.expect_navigation():
        page.keyboard.press("2")
        page.keyboard.press("2")
    assert Judgment.objects.filter(annotator=annotator, task__leases__pk=before).count() == 1
    assert Judgment.objects.filter(annotator=annotator).count() == 6

    # Both display orders were drawn and recorded; no payload script ran.
    orders = set(Lease.objects.filter(annotator=annotator).values_list("a_left", flat=True))
    assert orders == {True, False}
    assert set(Judgment.objects.filter(annotator=annotator).values_list("a_left", flat=True)) == {True, False}
    assert page.dialogs == []


@pytest.mark.django_db(transaction=True)
def test_help_overlay_and_signed_out_annotator_returns_to_the_same_task(live_server: Any, browser_page: Any) -> None:
    org = factories.make_org("Browser org 2")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project = factories.make_project(org, name="Browser prefs 2", min_judgments=1, max_judgments=1, gold_rate=0)
    factories.make_task(project)
    factories.make_task(project)
    page = browser_page
    url = f"/projects/{project.pk}/annotate/"
    page.goto(live_server.url + url)
    assert "/accounts/login/" in page.url
    page.fill("#id_username", annotator.username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-annotate][data-ready]")
    assert page.url == live_server.url + url
    assert not page.is_visible("#help")
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    page.keyboard.press("Enter")  # Enter never submits
    page.wait_for_timeout(300)
    assert not Judgment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_request_keeps_the_choice_and_the_next_press_stores_it_once(
    live_server: Any, browser_page: Any
) -> None:
    org = factories.make_org("Browser org 3")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project = factories.make_project(org, name="Browser prefs 3", min_judgments=1, max_judgments=1, gold_rate=0)
    first_task = factories.make_task(project)
    factories.make_task(project)
    page = browser_page
    _sign_in(page, live_server, annotator.username, f"/projects/{project.pk}/annotate/")
    page.wait_for_selector("[data-annotate][data-ready]")
    failures = {"left": 1}

    def flaky(route: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            route.abort("connectionrefused")  # the server is unreachable once
        else:
            route.continue_()

    page.route("**/submit", flaky)
    page.keyboard.press("3")
    page.wait_for_selector("#status.error")
    assert "press the key again" in page.inner_text("#status")
    assert page.get_attribute("button[data-key='3']", "aria-pressed") == "true"
    assert not Judgment.objects.exists()
    _press(page, "3")
    judgment = Judgment.objects.get()
    assert (judgment.task_id, judgment.label) == (first_task.pk, "tie")
    assert judgment.active_seconds is not None and judgment.active_seconds >= 0


@pytest.mark.django_db(transaction=True)
def test_the_strength_scale_is_keyboard_first_in_either_order(live_server: Any, browser_page: Any) -> None:
    org = factories.make_org("Browser org 4")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project = factories.make_project(
        org, name="Scaled prefs", min_judgments=1, max_judgments=1, gold_rate=0, strength_scale=True
    )
    for n in range(3):
        factories.make_task(project, f"scaled-{n}")
    page = browser_page
    _sign_in(page, live_server, annotator.username, f"/projects/{project.pk}/annotate/")
    page.wait_for_selector("[data-annotate][data-ready] fieldset.strength")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "labeling-page-strength.png"), full_page=True)

    # Choice first: "1" waits for the strength and asks for it; "x" sends both.
    page.keyboard.press("1")
    page.wait_for_timeout(200)
    assert "How much better" in page.inner_text("#status")
    assert not Judgment.objects.exists()
    _press(page, "x")
    # Strength first: "c" only marks it; "2" sends.
    page.keyboard.press("c")
    assert page.is_checked("input[name=strength][value='3']")
    _press(page, "2")
    # A tie needs no strength.
    _press(page, "3")
    stored = list(Judgment.objects.order_by("pk").values_list("label", "a_left", "strength"))
    # Response 1 is A when A was shown on the left; Response 2 is then B.
    assert stored[0] == ("a" if stored[0][1] else "b", stored[0][1], 2)
    assert stored[1] == ("b" if stored[1][1] else "a", stored[1][1], 3)
    assert (stored[2][0], stored[2][2]) == ("tie", None)
    assert page.dialogs == []
