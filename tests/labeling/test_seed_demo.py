"""``manage.py seed_demo``: idempotent, the promised shape, and refused (writing nothing) when DEBUG is off."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from demo import data as demo_data
from demo.management.commands.seed_demo import (
    DEFAULT_BASE_URL,
    DEMO_PASSWORD,
    MULTI_EMAIL,
    ORGANIZATIONS,
    RANKING_QUESTIONS,
    categorical_project_name,
    pairwise_project_name,
    ranking_project_name,
)
from labeling.models import (
    PAIRWISE_LABELS,
    Judgment,
    Label,
    Membership,
    Organization,
    Project,
    ProjectKind,
    ProjectStats,
    Role,
    Task,
)
from labeling.validation import payload_errors

User = get_user_model()
COUNTED_MODELS = (Organization, User, Membership, Project, Label, Task, Judgment, ProjectStats)
TICKET_LABEL_VALUES = {value for value, _ in demo_data.TICKET_LABELS}


def _seed(**options: Any) -> str:
    out = io.StringIO()
    call_command("seed_demo", force=True, stdout=out, **options)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED_MODELS}


def _created_numbers(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"(\d+) created", output)]


@pytest.mark.django_db
def test_second_run_creates_nothing() -> None:
    first = _seed()
    after_first = _counts()
    second = _seed()

    assert _counts() == after_first
    assert "tasks: 510 created, 0 already present" in first
    assert "tasks: 0 created, 510 already present" in second
    assert "judgments: 0 created, 360 already present" in second
    assert _created_numbers(second) and set(_created_numbers(second)) == {0}
    assert after_first["Organization"] == 2
    assert after_first["User"] == 13  # 2 x 6 people + the person in both organizations


@pytest.mark.django_db
def test_rerun_restores_only_what_is_missing() -> None:
    _seed()
    Task.objects.filter(project__organization__slug="acme", external_id="pair-0300").delete()

    output = _seed()

    assert "tasks: 1 created, 509 already present" in output
    assert Task.objects.filter(project__organization__slug="acme").count() == 510


@pytest.mark.django_db
def test_organizations_people_and_roles() -> None:
    _seed()

    assert set(Organization.objects.values_list("slug", "name")) == {("acme", "Acme AI"), ("globex", "Globex Research")}
    for slug in ("acme", "globex"):
        roles = {
            m.user.username: m.role for m in Membership.objects.filter(organization__slug=slug).select_related("user")
        }
        assert roles[f"admin@{slug}.example"] == Role.ADMIN
        assert roles[f"manager@{slug}.example"] == Role.MANAGER
        for n in range(1, 5):
            assert roles[f"annotator{n}@{slug}.example"] == Role.ANNOTATOR
        assert len(roles) == 7
    multi = {m.organization.slug: m.role for m in Membership.objects.filter(user__username=MULTI_EMAIL)}
    assert multi == {"acme": Role.MANAGER, "globex": Role.ANNOTATOR}
    for user in User.objects.all():
        assert user.email == user.username
        assert user.first_name and user.last_name
        assert user.check_password(DEMO_PASSWORD)


@pytest.mark.django_db
def test_projects_tasks_gold_and_judgments() -> None:
    _seed()

    for spec in ORGANIZATIONS:
        organization = Organization.objects.get(slug=spec.slug)
        pairwise = Project.objects.get(organization=organization, name=pairwise_project_name(spec.name))
        triage = Project.objects.get(organization=organization, name=categorical_project_name(spec.name))
        assert (pairwise.kind, pairwise.min_judgments, pairwise.max_judgments) == (ProjectKind.PAIRWISE, 3, 5)
        assert pairwise.gold_rate == pytest.approx(0.05)
        assert "##" in pairwise.instructions
        assert triage.kind == ProjectKind.CATEGORICAL
        assert set(triage.labels.values_list("value", "title")) == set(demo_data.TICKET_LABELS)
        assert set(pairwise.labels.values_list("value", flat=True)) == {value for value, _, _ in PAIRWISE_LABELS}

        for project, expected, gold_values in ((pairwise, 300, {"a", "b"}), (triage, 150, TICKET_LABEL_VALUES)):
            tasks = list(Task.objects.filter(project=project))
            assert len(tasks) == expected
            assert all(task.organization_id == organization.pk for task in tasks)
            assert all(payload_errors(project.kind, task.payload) == {} for task in tasks)
            assert all(task.meta["source"] == "seed_demo" for task in tasks)
            gold = [task for task in tasks if task.is_gold]
            assert 0.03 * expected <= len(gold) <= 0.07 * expected
            assert {task.gold_label for task in gold} <= gold_values

        pairs = Task.objects.filter(project=pairwise)
        assert all(t.payload["response_a"] != t.payload["response_b"] for t in pairs)
        assert {t.payload["model_a"] for t in pairs} | {t.payload["model_b"] for t in pairs} <= set(demo_data.MODELS)
        assert all(t.payload["model_a"] != t.payload["model_b"] for t in pairs)
        assert {t.external_id for t in pairs} == {f"pair-{n:04d}" for n in range(1, 301)}

        judgments = Judgment.objects.filter(project=pairwise)
        assert judgments.count() == 40 * 3
        per_task = judgments.values("task").annotate(n=Count("id"))
        assert {row["n"] for row in per_task} == {3}
        assert set(judgments.values_list("task__external_id", flat=True)) == {f"pair-{n:04d}" for n in range(1, 41)}
        assert {j.label for j in judgments} <= {value for value, _, _ in PAIRWISE_LABELS}
        assert all(j.a_left is not None and j.seconds_on_task > 0 for j in judgments)
        annotators = set(judgments.values_list("annotator__username", flat=True))
        assert annotators == {f"annotator{n}@{spec.slug}.example" for n in range(1, 5)}
        assert not Judgment.objects.filter(project=triage).exists()

        stats = ProjectStats.objects.get(project=pairwise)
        assert (stats.tasks, stats.judgments, stats.annotators) == (300, 120, 4)
        assert ProjectStats.objects.get(project=triage).tasks == 150


@pytest.mark.django_db
def test_judgments_mostly_agree_with_the_better_response() -> None:
    _seed()
    better = {item.external_id: item.better for item in demo_data.pairwise_items(300, seed="acme")}

    judgments = Judgment.objects.filter(project__organization__slug="acme", project__kind="pairwise")
    judgments = judgments.select_related("task")
    agreeing = sum(j.label == better[j.task.external_id] for j in judgments)

    assert 0.65 * judgments.count() <= agreeing < judgments.count()  # mostly, with some noise


@pytest.mark.django_db
def test_the_ranking_project_has_its_form_and_judgments_that_mostly_find_the_best() -> None:
    _seed()
    for spec in ORGANIZATIONS:
        ranking = Project.objects.get(organization__slug=spec.slug, name=ranking_project_name(spec.name))
        assert ranking.kind == ProjectKind.RANKING and ranking.questions.count() == len(RANKING_QUESTIONS)
        tasks = Task.objects.filter(project=ranking)
        assert tasks.count() == 60 and all(payload_errors("ranking", task.payload) == {} for task in tasks)
    items = {item.external_id: item for item in demo_data.ranking_items(60, seed="acme")}
    judgments = list(Judgment.objects.filter(project__organization__slug="acme", project__kind="ranking"))
    assert len(judgments) == 60
    best = sum(j.answers["rank"][0] == items[j.task.external_id].best_first[0] for j in judgments)
    assert 0.6 * len(judgments) <= best < len(judgments)
    assert all(j.label == str(j.answers["rank"][0]) for j in judgments)


@pytest.mark.django_db
def test_refuses_without_force_when_debug_is_off() -> None:
    assert settings.DEBUG is False

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo", stdout=io.StringIO())

    assert set(_counts().values()) == {0}


@pytest.mark.django_db
def test_runs_without_force_when_debug_is_on(settings: Any) -> None:
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())
    assert Task.objects.count() == 1020


@pytest.mark.django_db
def test_nobody_is_staff_and_output_lists_the_logins() -> None:
    output = _seed()

    assert not User.objects.filter(is_superuser=True).exists()
    assert not User.objects.filter(is_staff=True).exists()
    assert f"{DEFAULT_BASE_URL}accounts/login/" in output
    assert f"{DEFAULT_BASE_URL}admin/" in output
    for spec in ORGANIZATIONS:
        assert spec.name in output
        for person in spec.people:
            assert re.search(rf"{re.escape(person.email)}\s+/ {DEMO_PASSWORD} / {person.role}", output)


@pytest.mark.django_db
def test_output_links_to_the_address_it_is_served_on() -> None:
    """``make demo PORT=8011`` passes its address: the printed links must not name another port."""
    output = io.StringIO()
    call_command("seed_demo", "--force", "--base-url", "http://127.0.0.1:8011/", stdout=output)

    assert "http://127.0.0.1:8011/admin/" in output.getvalue()
    assert "http://127.0.0.1:8011/accounts/login/" in output.getvalue()
    assert ":8000" not in output.getvalue()


def test_demo_content_is_deterministic_and_valid() -> None:
    pairs = demo_data.pairwise_items(300, seed="acme")
    tickets = demo_data.ticket_items(150, seed="acme")

    assert pairs == demo_data.pairwise_items(300, seed="acme")
    assert tickets == demo_data.ticket_items(150, seed="acme")
    assert pairs != demo_data.pairwise_items(300, seed="globex")
    assert len({p.prompt for p in pairs}) > 250  # varied, not a handful of prompts repeated
    assert {p.topic for p in pairs} >= {"coding", "math", "cooking", "travel", "writing", "science", "summarising"}
    assert any("```python" in p.prompt + p.response_a + p.response_b for p in pairs)
    # Gold only where the weaker answer is plainly wrong, and the gold answer is the better response.
    assert all(p.weaker_style == "wrong" and p.gold_label == p.better for p in pairs if p.gold_label)
    assert all(not t.ambiguous and t.gold_label == t.label for t in tickets if t.gold_label)
    assert {t.label for t in tickets} == TICKET_LABEL_VALUES


@pytest.mark.django_db
def test_coding_pairs_go_only_to_the_annotators_who_read_code() -> None:
    from routing.models import Lease
    from routing.services import next_task

    _seed()
    project = Project.objects.get(organization__slug="acme", kind=ProjectKind.PAIRWISE)
    coding = Task.objects.filter(project=project, meta__topic="coding")
    assert coding.exists() and all(task.is_restricted for task in coding)
    assert not Task.objects.filter(project=project, is_restricted=True).exclude(meta__topic="coding").exists()
    holder, other = (User.objects.get(username=f"annotator{n}@acme.example") for n in (1, 4))
    Project.objects.filter(pk=project.pk).update(min_judgments=5, max_judgments=5)  # leave room for both
    project.refresh_from_db()
    for annotator in (holder, other):
        for _ in range(40):
            lease = next_task(annotator=annotator, project=project)
            Lease.objects.filter(pk=lease.pk).update(state="skipped")
    leased = Lease.objects.filter(project=project, task__meta__topic="coding")
    assert leased.filter(annotator=holder).exists()
    assert not leased.filter(annotator=other).exists()
