"""The labeling page of a project with a form: what it shows, what its submit accepts, and the one-request submit
(the answer carries the next task)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from labeling.models import Judgment, Project, ProjectKind
from routing.models import Lease, LeaseState
from routing.services import next_task
from tests import factories
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_answers, rich_task

INLINE = {"X-Requested-With": "fetch", "X-Next-Task": "inline"}


def _rich_project(tenancy: Tenancy, n_tasks: int = 2) -> Project:
    project = factories.make_project(
        tenancy.org_a, kind=ProjectKind.RANKING, name="Rich", questions=RICH_QUESTIONS, min_judgments=1,
        max_judgments=1, gold_rate=0,
    )  # fmt: skip
    for n in range(n_tasks):
        row = rich_task(n)
        factories.make_task(project, row["external_id"], payload={k: row[k] for k in ("messages", "responses")})
    return project


def _page(client: Client, project: Project) -> Any:
    response = client.get(reverse("annotate", args=[project.pk]))
    assert response.status_code == 200
    return response


def _submit(client: Client, page: Any, answers: Any, **headers: str) -> Any:
    lease = page.context["lease"]
    return client.post(
        reverse("annotate-submit", args=[lease.project_id, lease.pk]),
        {
            "answers": answers if isinstance(answers, str) else json.dumps(answers),
            "client_id": page.context["client_id"],
        },
        headers=headers,
    )


def test_the_form_page_shows_the_conversation_the_responses_in_the_lease_order_and_every_question(
    client: Client, tenancy: Tenancy
) -> None:
    project = _rich_project(tenancy, 1)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    html = page.content.decode()
    lease = page.context["lease"]
    order = [i for i in lease.response_order if i < 4]
    assert json.loads(re.search(r'data-order="([^"]+)"', html).group(1).replace("&quot;", '"')) == order
    # Response n on screen is the task's response order[n-1].
    shown = re.findall(r"<p>Answer (\d) to 0", html)
    assert [int(x) for x in shown] == order
    for role in ("System", "User", "Assistant"):
        assert f'<h3 class="role">{role}</h3>' in html
    for question in RICH_QUESTIONS:
        assert f'data-question="{question["key"]}"' in html
    assert "<code>reversed(xs)</code>" in html and '<pre><code class="language-python">' in html
    assert "m0" not in html  # model names are never shown
    assert re.findall(r"<script[^>]*>", html) == [re.search(r"<script[^>]*annotate\.js[^>]*>", html).group(0)]
    assert page.context["progress"].left == 1 and page.context["progress"].done == 0


def test_a_submit_stores_the_answers_and_names_a_bad_question(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    bad = rich_answers([0, 1, 2, 3]) | {"why": "short"}
    response = _submit(client, page, bad, **INLINE)
    assert response.status_code == 400
    body = response.json()
    assert "Why is the best one best? (answers.why)" in body["error"] and set(body["questions"]) == {"why"}
    assert not Judgment.objects.exists()
    for junk in ("not json", "[1, 2]", ""):
        response = _submit(client, page, junk, **INLINE)
        assert response.status_code == 400 and "answers" in response.json()["error"]
    # Without the script: the page again, 400, with the message.
    response = _submit(client, page, bad)
    assert response.status_code == 400 and b"answers.why" in response.content
    good = rich_answers([2, 0, 3, 1])
    response = _submit(client, page, good)
    assert response.status_code == 302
    judgment = Judgment.objects.get()
    assert judgment.answers == good and judgment.label == "2"
    assert judgment.response_order == [i for i in page.context["lease"].response_order if i < 4]


def test_the_one_request_submit_returns_the_next_task_and_a_retry_stores_one_judgment(
    client: Client, tenancy: Tenancy
) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    first = page.context["lease"]
    response = _submit(client, page, rich_answers([0, 1, 2, 3]), **INLINE)
    assert response.status_code == 200
    body = response.json()
    second = Lease.objects.get(annotator=tenancy.annotator_a, state=LeaseState.ACTIVE)
    assert body["saved"] is True and body["lease"] == second.pk != first.pk
    assert body["next"] == reverse("annotate", args=[project.pk])
    assert f'data-lease="{second.pk}"' in body["html"] and 'data-question="rank"' in body["html"]
    assert "<html" not in body["html"] and "topbar" not in body["html"]  # the task part only
    assert f"/annotate/{second.pk}/submit" in body["html"]
    # The same post again (the answer was lost on the way): one judgment, and the same next task.
    again = _submit(client, page, rich_answers([0, 1, 2, 3]), **INLINE).json()
    assert again["lease"] == second.pk
    assert Judgment.objects.filter(annotator=tenancy.annotator_a).count() == 1
    # The last task: nothing left, the script loads the page that says so.
    last = client.get(reverse("annotate", args=[project.pk]))
    done = _submit(client, last, rich_answers([3, 2, 1, 0]), **INLINE).json()
    assert done == {"next": reverse("annotate", args=[project.pk]), "saved": True}


def test_a_skip_by_script_returns_the_next_task(client: Client, tenancy: Tenancy) -> None:
    project = _rich_project(tenancy)
    client.force_login(tenancy.annotator_a)
    lease = _page(client, project).context["lease"]
    response = client.post(reverse("annotate-skip", args=[project.pk, lease.pk]), {"reason": "unclear"}, headers=INLINE)
    body = response.json()
    lease.refresh_from_db()
    assert lease.state == LeaseState.SKIPPED and lease.skip_reason == "unclear"
    assert body["saved"] is False and body["lease"] != lease.pk and "data-question" in body["html"]


def test_plain_pairwise_submit_by_script_returns_the_next_task(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Plain", min_judgments=1, max_judgments=1, gold_rate=0)
    for n in range(2):
        factories.make_task(project, f"p-{n}")
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    lease = page.context["lease"]
    response = client.post(
        reverse("annotate-submit", args=[project.pk, lease.pk]),
        {"choice": "first", "client_id": page.context["client_id"]},
        headers=INLINE,
    )
    body = response.json()
    assert body["saved"] is True and 'class="choices"' in body["html"]
    assert Judgment.objects.get().label == ("a" if lease.a_left else "b")
    assert Judgment.objects.get().answers is None


def test_a_pairwise_question_in_a_form_maps_the_side_shown_back_to_a_or_b(client: Client, tenancy: Tenancy) -> None:
    questions = [
        {"key": "preference", "kind": "pairwise", "title": "Which is better?", "primary": True},
        {"key": "topic", "kind": "choice", "title": "Topic", "options": ["code", "prose"]},
        {"key": "flags", "kind": "multi_choice", "title": "Problems", "options": ["wrong", "rude"], "required": False},
        {"key": "overall", "kind": "rating", "title": "Overall", "min": 0, "max": 10},
    ]
    project = factories.make_project(
        tenancy.org_a, name="Pairwise form", questions=questions, min_judgments=1, max_judgments=1, gold_rate=0
    )
    messages = [{"role": "user", "content": "Hello **there**"}]
    factories.make_task(project, "m-1", payload={"messages": messages, "response_a": "A text", "response_b": "B text"})
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    html = page.content.decode()
    assert '<h3 class="role">User</h3><p>Hello <strong>there</strong></p>' in html
    assert 'data-number min="0" max="10"' in html  # 11 values: typed, not one key each
    lease = page.context["lease"]
    answers = {"preference": "first", "topic": "code", "flags": ["rude"], "overall": 7}
    assert _submit(client, page, answers).status_code == 302
    judgment = Judgment.objects.get()
    assert judgment.label == ("a" if lease.a_left else "b")
    assert judgment.answers == answers | {"preference": judgment.label}


def test_a_plain_categorical_page_shows_a_conversation(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, min_judgments=1, gold_rate=0)
    messages = [{"role": "user", "content": "Hi <script>alert(1)</script>"}, {"role": "assistant", "content": "Hey"}]
    factories.make_task(project, "c-1", payload={"messages": messages})
    client.force_login(tenancy.annotator_a)
    html = _page(client, project).content.decode()
    assert '<h3 class="role">Assistant</h3><p>Hey</p>' in html and "<script>alert" not in html


@pytest.mark.parametrize("who", ["outsider", "other annotator"])
def test_another_organizations_or_annotators_lease_is_a_404(client: Client, tenancy: Tenancy, who: str) -> None:
    project = _rich_project(tenancy)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease is not None
    if who == "outsider":
        client.force_login(tenancy.outsider_b)
    else:
        client.force_login(factories.make_member(tenancy.org_a))
    url = reverse("annotate-submit", args=[project.pk, lease.pk])
    response = client.post(url, {"answers": json.dumps(rich_answers([0, 1, 2, 3])), "client_id": "x"}, headers=INLINE)
    assert response.status_code == 404
    assert not Judgment.objects.exists()


def test_the_form_page_query_count_is_bounded(
    client: Client, tenancy: Tenancy, django_assert_max_num_queries: Any
) -> None:
    project = _rich_project(tenancy, 3)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    with django_assert_max_num_queries(30):
        _submit(client, page, rich_answers([0, 1, 2, 3]), **INLINE)
    with django_assert_max_num_queries(18):
        _page(client, project)
