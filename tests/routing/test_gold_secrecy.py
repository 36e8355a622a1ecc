"""Nothing an annotator sees tells them which of their tasks were gold (issue 15, item 4).

The regression test plays an annotator who submits, skips and abandons a mix of gold and normal tasks and fetches
``/work/`` before opening the labeling page, after opening it and after acting; a classifier that only looks at how
the page changed (every number's change, any other text that changed) must find the same change after a gold task
as after a normal one. The gold accuracy shown there counts only judgments made before the current UTC day, so it
changes at midnight for a whole day's work at once.
"""

from __future__ import annotations

import difflib
import itertools
import random
import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling.models import Judgment, Project
from routing.models import Lease
from routing.selectors import GOLD_SHOWN_FROM
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import expire, judge

GOLD, NORMAL = "gold", "normal"
ACTIONS = ("submit", "submit-by-script", "skip", "abandon")


@pytest.fixture(autouse=True)
def seeded_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("routing.services.leases._rng", random.Random(15))


def _serve(project: Project, kind: str) -> None:
    """The next lease is gold (while gold is left for the annotator) or normal: the project's gold rate, which no
    annotator page shows, decides it."""
    project.gold_rate = 1.0 if kind == GOLD else 0.0
    project.save(update_fields=["gold_rate"])


def _figures(html: str) -> tuple[str, tuple[int, ...]]:
    """The page's main content as text with every number taken out, and the numbers in order."""
    main = html[html.index("<main") : html.index("</main>")]
    main = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", main)
    return re.sub(r"\d+", "#", main), tuple(int(n) for n in re.findall(r"\d+", main))


def _change(before: tuple[str, tuple[int, ...]], after: tuple[str, tuple[int, ...]]) -> tuple[Any, ...]:
    """What a classifier watching the page can see: the text that changed, else each number's change."""
    (text_before, numbers_before), (text_after, numbers_after) = before, after
    if text_before != text_after or len(numbers_before) != len(numbers_after):
        lines = difflib.unified_diff(text_before.splitlines(), text_after.splitlines(), lineterm="", n=0)
        return ("text", tuple(line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")))
    return ("numbers", tuple(a - b for a, b in zip(numbers_after, numbers_before, strict=True)))


def _work_page(client: Client) -> tuple[str, tuple[int, ...]]:
    response = client.get(reverse("work"))
    assert response.status_code == 200
    return _figures(response.text)


def _act(client: Client, project: Project, page: Any, action: str) -> tuple[Any, ...]:
    """Do ``action`` on the leased page; the answer the annotator got, as they see it."""
    lease = page.context["lease"]
    if action == "abandon":
        expire(lease)  # walks away until the lease runs out
        return ()
    name, data = "annotate-submit", {"choice": "first", "client_id": page.context["client_id"]}
    if action == "skip":
        name, data = "annotate-skip", {"reason": "unclear"}
    headers = {"X-Requested-With": "fetch"} if action == "submit-by-script" else {}
    response = client.post(reverse(name, args=[project.pk, lease.pk]), data, headers=headers)
    body = tuple(sorted(response.json().items())) if action == "submit-by-script" else None
    return response.status_code, response.get("Location"), body


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="Secret gold", min_judgments=3, max_judgments=3)
    for n in range(40):
        factories.make_task(project, f"normal-{n}")
    for n in range(24):
        factories.make_task(project, f"gold-{n}", gold_label="a")
    return project


def _history_before_today(annotator: Any, project: Project) -> int:
    """Gold and normal judgments made yesterday, so the page shows a gold accuracy; returns the gold count."""
    for kind, label in itertools.islice(itertools.cycle([(GOLD, "a"), (NORMAL, "a"), (GOLD, "b")]), 9):
        _serve(project, kind)
        judge(annotator, project, label)
    Judgment.objects.filter(annotator=annotator).update(created_at=timezone.now() - timedelta(days=1))
    return Judgment.objects.filter(annotator=annotator, task__gold_label__isnull=False).count()


def test_the_work_page_changes_the_same_way_after_gold_and_normal_tasks(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    annotator = tenancy.annotator_a
    assert _history_before_today(annotator, project) >= GOLD_SHOWN_FROM
    client.force_login(annotator)
    assert "% of 6" in client.get(reverse("work")).text  # the gold accuracy is on the page, so it is watched too

    steps = [(action, kind) for action in ACTIONS for kind in (GOLD, NORMAL)] * 3
    random.Random(4).shuffle(steps)
    seen: dict[tuple[str, str], set[tuple[Any, ...]]] = defaultdict(set)
    for action, kind in steps:
        _serve(project, kind)
        before_opening = _work_page(client)
        page = client.get(reverse("annotate", args=[project.pk]))
        assert page.context["lease"].is_gold == (kind == GOLD)
        opened = _work_page(client)
        answer = _act(client, project, page, action)
        after = _work_page(client)
        seen[(action, kind)].add((_change(before_opening, opened), _change(opened, after), answer))

    for action in ACTIONS:
        assert seen[(action, GOLD)] == seen[(action, NORMAL)], action
        assert len(seen[(action, GOLD)]) == 1, (action, seen[(action, GOLD)])  # one change whatever the state
    # The classifier had something to look at: the figures do move.
    ((opening, submitted, _),) = seen[("submit", NORMAL)]
    assert opening == ("numbers", (0,) * len(opening[1])) and any(submitted[1])


def test_gold_accuracy_counts_only_judgments_made_before_today_utc(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    annotator = tenancy.annotator_a
    gold_before_today = _history_before_today(annotator, project)
    client.force_login(annotator)
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%-d %b")
    row = next(row for row in client.get(reverse("work")).context["rows"] if row.project.pk == project.pk)
    assert (row.gold_judged, row.gold_correct) == (gold_before_today, gold_before_today // 2)
    shown = client.get(reverse("work")).text
    assert f'50% of {gold_before_today} <span class="muted">to {yesterday}</span>' in shown
    for label in ["b", "b", "b"]:  # wrong answers to gold today move nothing until tomorrow
        _serve(project, GOLD)
        assert judge(annotator, project, label).task.is_gold
    assert client.get(reverse("work")).text.count(f"50% of {gold_before_today}") == 1


def test_gold_accuracy_is_hidden_until_enough_gold_is_in_before_today(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    annotator = tenancy.annotator_a
    for _ in range(GOLD_SHOWN_FROM):  # all of them today
        _serve(project, GOLD)
        judge(annotator, project, "a")
    client.force_login(annotator)
    row = next(row for row in client.get(reverse("work")).context["rows"] if row.project.pk == project.pk)
    assert row.gold_accuracy is None and row.gold_judged == 0


def test_left_counts_gold_like_any_task_until_no_normal_task_is_left(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    annotator = tenancy.annotator_a
    client.force_login(annotator)

    def left() -> int:
        rows = client.get(reverse("work")).context["rows"]
        return next(row.left for row in rows if row.project.pk == project.pk)

    assert left() == 64
    _serve(project, GOLD)
    judge(annotator, project)
    _serve(project, NORMAL)
    judge(annotator, project)
    assert left() == 62
    for _ in range(39):
        judge(annotator, project)
    assert not Lease.objects.filter(annotator=annotator, task__gold_label__isnull=True, state="active").exists()
    assert left() == 0  # 23 gold are still unseen, but gold is never served alone
    assert "Nothing left" in client.get(reverse("work")).text
