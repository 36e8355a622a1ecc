"""A real browser (Playwright driving Debian's Chromium) labels the rich form of issue 17 by keyboard alone: a
ranking by pressing response numbers, per-response ratings by digits, a typed rationale, Ctrl+Enter; a reload
mid-form brings the answers back; the next task arrives with the submit's answer (no page load)."""

from __future__ import annotations

from typing import Any

import pytest

from labeling.models import Judgment, ProjectKind, Role
from routing.models import Lease, LeaseState
from tests import factories
from tests.config.test_narrow_screens import LONG, _overflow
from tests.forms.rich import RICH_QUESTIONS, rich_task
from tests.routing.test_browser import SCREENSHOTS, needs_chromium

pytestmark = [needs_chromium, pytest.mark.browser]


def _sign_in(page: Any, live_server: Any, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", factories.PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-annotate][data-ready]")


def _lease(page: Any) -> int:
    return int(page.get_attribute("[data-task]", "data-lease"))


def _order(page: Any) -> list[int]:
    return page.evaluate("JSON.parse(document.querySelector('[data-form]').dataset.order)")


@pytest.mark.django_db(transaction=True)
def test_the_rich_form_is_labeled_by_keyboard_alone(live_server: Any, browser_page: Any) -> None:
    org = factories.make_org("Form browser org")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project = factories.make_project(
        org, ProjectKind.RANKING, name="Rich form", questions=RICH_QUESTIONS, min_judgments=1, max_judgments=1,
        gold_rate=0,
    )  # fmt: skip
    for n in range(3):
        row = rich_task(n)
        factories.make_task(project, row["external_id"], payload={k: row[k] for k in ("messages", "responses")})
    page = browser_page
    _sign_in(page, live_server, annotator.username, f"/projects/{project.pk}/annotate/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "form-page.png"), full_page=True)
    first_lease, order = _lease(page), _order(page)
    page.wait_for_function("document.activeElement.dataset.question === 'rank'")  # the first question has the focus

    # The help lists this form's keys.
    page.keyboard.press("?")
    help_text = page.inner_text("#help")
    assert "Rank the responses" in help_text and "Ctrl" in help_text and "Backspace" in help_text
    page.keyboard.press("Escape")

    # Ranking: press 3, 1, a slip (4) taken back with Backspace, then 4, 2: the screen's Response 3 is best.
    for key in ["3", "1", "4", "Backspace", "4", "2"]:
        page.keyboard.press(key)
    assert page.evaluate("document.activeElement.dataset.question") == "helpfulness"  # moved on by itself
    # Three per-response ratings: a digit per response on screen, each question moves on when all are rated.
    for ratings in ("7531", "6421", "7777"):
        for key in ratings:
            page.keyboard.press(key)
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"  # the text question
    page.keyboard.type("Response 3 is right")
    page.keyboard.press("Enter")  # a new line, not a submit
    page.keyboard.type("and shows 2 ways.")

    # Reload mid-form: the lease comes back with every answer so far.
    page.reload()
    page.wait_for_selector("[data-annotate][data-ready]")
    assert _lease(page) == first_lease
    assert "Your unsaved answers" in page.inner_text("#status")
    assert "Response 3 · 2. Response 1 · 3. Response 4 · 4. Response 2" in page.inner_text("[data-ranking]")
    assert page.input_value("[data-question=why] textarea") == "Response 3 is right\nand shows 2 ways."

    # The optional rewrite: Tab to it, start from Response 3 (its text prefilled), edit, Ctrl+Enter.
    page.focus("[data-question=why] textarea")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.question") == "better"
    page.keyboard.press("3")
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    page.keyboard.press("End")
    page.keyboard.type(" Also xs.reverse().")
    assert not Judgment.objects.exists()
    with page.expect_navigation():  # the URL is updated after the next task is swapped in
        page.keyboard.press("Control+Enter")
    page.wait_for_selector("#status.ok")
    assert "Saved" in page.inner_text("#status")
    assert _lease(page) != first_lease
    assert page.inner_text("[data-count=done]") == "1" and page.inner_text("[data-count=left]") == "2"

    judgment = Judgment.objects.get()
    screen = [order[p - 1] for p in (3, 1, 4, 2)]
    assert judgment.answers["rank"] == screen and judgment.label == str(screen[0])
    for key, digits in (("helpfulness", "7531"), ("honesty", "6421"), ("harmlessness", "7777")):
        expected = [0] * 4
        for place, digit in enumerate(digits):
            expected[order[place]] = int(digit)
        assert judgment.answers[key] == expected
    assert judgment.answers["why"] == "Response 3 is right\nand shows 2 ways."
    source = order[2]
    assert judgment.answers["better"]["source"] == source
    assert judgment.answers["better"]["text"].startswith(f"Answer {source} to ")
    assert judgment.answers["better"]["text"].endswith(" Also xs.reverse().")
    assert judgment.response_order == order
    assert judgment.active_seconds is not None
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('concord-draft-'))") == []

    # Ctrl+Enter with questions unanswered sends nothing and says what is missing.
    second_lease = _lease(page)
    page.keyboard.press("Control+Enter")
    assert "Answer “Rank the responses, best first” first." in page.inner_text("#status")
    # The next skip reason by r, a skip by s: the next task is swapped in.
    page.keyboard.press("r")
    with page.expect_navigation():
        page.keyboard.press("s")
    page.wait_for_function(f"document.querySelector('[data-task]').dataset.lease != '{second_lease}'")
    skipped = Lease.objects.get(pk=second_lease)
    assert skipped.state == LeaseState.SKIPPED and skipped.skip_reason == "unclear"
    assert Judgment.objects.count() == 1 and page.dialogs == []


@pytest.mark.django_db(transaction=True)
def test_the_rich_form_fits_a_390_px_phone(live_server: Any, browser_page: Any) -> None:
    org = factories.make_org("Organization with a rather long name for a phone")
    annotator = factories.make_member(org, Role.ANNOTATOR, "annotator-with-a-long-address@example.com")
    project = factories.make_project(
        org, ProjectKind.RANKING, name=f"Rich {LONG[:40]}", questions=RICH_QUESTIONS, gold_rate=0
    )
    row = rich_task(0)
    row["responses"][0]["text"] = f"```\n{LONG}\n```"
    row["messages"][1]["content"] = LONG
    factories.make_task(project, "long", payload={k: row[k] for k in ("messages", "responses")})
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 800})
    _sign_in(page, live_server, annotator.username, f"/projects/{project.pk}/annotate/")
    page.screenshot(path=str(SCREENSHOTS / "form-page-390.png"), full_page=True)
    assert _overflow(page) == []


@pytest.mark.django_db(transaction=True)
def test_u_takes_the_judgment_back_with_its_answers(live_server: Any, browser_page: Any) -> None:
    org = factories.make_org("Undo org")
    annotator = factories.make_member(org, Role.ANNOTATOR)
    project = factories.make_project(
        org, ProjectKind.RANKING, name="Undo form", questions=RICH_QUESTIONS, min_judgments=2, gold_rate=0
    )
    for n in range(2):
        row = rich_task(n)
        factories.make_task(project, row["external_id"], payload={k: row[k] for k in ("messages", "responses")})
    page = browser_page
    _sign_in(page, live_server, annotator.username, f"/projects/{project.pk}/annotate/")
    page.wait_for_function("document.activeElement.dataset.question === 'rank'")
    first = _lease(page)
    for key in "4321" + "7654" * 3:
        page.keyboard.press(key)
    page.keyboard.type("Four is the best one.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    page.wait_for_selector("#status.ok")
    assert "Press u within" in page.inner_text("#status") and Judgment.objects.count() == 1
    with page.expect_navigation():
        page.keyboard.press("u")
    page.wait_for_function(f"document.querySelector('[data-task]').dataset.lease === '{first}'")
    assert "Undone" in page.inner_text("#status")
    assert not Judgment.objects.exists()
    assert "1. Response 4" in page.inner_text("[data-ranking]")
    assert page.input_value("[data-question=why] textarea") == "Four is the best one."
    assert page.inner_text("[data-count=done]") == "0"
