"""The project form's questions in the admin, in Chromium on a phone-sized screen (390 px): an admin adds rows with
the inline's "Add another" button, types a ranking and a per-response rating, and saves a ranking project; the page
never sticks out sideways. Skipped without Chromium, like the other browser tests."""

from __future__ import annotations

from typing import Any

import pytest

from labeling.models import Project, ProjectKind, Role
from labeling.selectors import project_stored_questions
from tests import factories
from tests.config.test_narrow_screens import _overflow, browser  # noqa: F401  (fixture)
from tests.routing.test_browser import SCREENSHOTS, needs_chromium

pytestmark = [needs_chromium, pytest.mark.browser]
WIDTH = 390


@pytest.mark.django_db(transaction=True)
def test_an_admin_builds_a_ranking_form_on_a_phone(live_server: Any, browser: Any) -> None:  # noqa: F811
    org = factories.make_org("Acme AI")
    admin = factories.make_member(org, Role.ADMIN, "admin@acme.example")
    context = browser.new_context(viewport={"width": WIDTH, "height": 800})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/labeling/project/add/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", factories.PASSWORD)
    with page.expect_navigation():
        page.click("#login-form [type=submit]")
    page.fill("#id_name", "Phone ranking")
    page.select_option("#id_kind", "")
    for _ in range(2):
        page.click("#questions-group .add-row a")
    page.fill("#id_questions-0-key", "rank")
    page.select_option("#id_questions-0-kind", "ranking")
    page.fill("#id_questions-0-title", "Rank the responses, best first")
    page.check("#id_questions-0-primary")
    page.fill("#id_questions-1-key", "helpful")
    page.select_option("#id_questions-1-kind", "rating")
    page.fill("#id_questions-1-title", "Helpfulness of each response")
    page.fill("#id_questions-1-position", "1")
    page.fill("#id_questions-1-min_value", "1")
    page.fill("#id_questions-1-max_value", "5")
    page.check("#id_questions-1-per_response")
    page.fill("#id_questions-1-anchors", "1 | Useless\n5 | Perfect")
    overflow = _overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#questions-group").screenshot(path=str(SCREENSHOTS / "admin-questions-390.png"))
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "was added successfully" in page.inner_text(".messagelist"), page.inner_text("#content")
    project = Project.objects.get(name="Phone ranking")
    assert (project.organization, project.kind) == (org, ProjectKind.RANKING)
    rank, helpful = project_stored_questions(project=project)
    assert (rank.kind, rank.primary, helpful.min, helpful.max, helpful.per_response) == ("ranking", True, 1, 5, True)
    assert helpful.anchors == {"1": "Useless", "5": "Perfect"}
    overflow += _overflow(page)  # the change page, with the saved form
    page.screenshot(path=str(SCREENSHOTS / "admin-questions-390-saved.png"), full_page=True)
    context.close()
    assert overflow == [], "\n".join(overflow)
