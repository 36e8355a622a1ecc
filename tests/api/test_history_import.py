"""Judgments import (history from another tool) and predictions import."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from exchange import judgment_import
from labeling.models import Judgment, Membership, Project, Role, Task
from quality.consensus import task_progress_refresh, tasks_settle
from quality.models import AnnotatorScore, ProjectQuality
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.services import needs_postgres


def jsonl(rows: list[Any]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def post(
    client: KeyClient, project: Project, what: str, body: str, content_type: str = "application/x-ndjson", **params: str
) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        f"/api/v1/projects/{project.pk}/{what}/import" + (f"?{query}" if query else ""), body, content_type=content_type
    )


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="History", sampling_strategy="margin")
    for n in range(3):
        factories.make_task(project, f"h{n}")
    return project


def judgment(external_id: str, annotator: str, label: str = "a", **extra: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "annotator": annotator,
        "label": label,
        "a_left": True,
        "seconds": 12.5,
        **extra,
    }


def test_judgments_import_creates_annotators_and_settles_tasks(
    api_a: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    rows = [judgment("h0", f"rater{n}@old.example", created_at="2025-01-02T03:04:05Z") for n in range(3)]
    rows.append(judgment("h1", "LS-User-42", "tie"))
    response = post(api_a, project, "annotations", jsonl(rows), create_annotators="1")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 4
    task = Task.objects.get(project=project, external_id="h0")
    assert task.status == "complete" and task.judgment_count == 3 and task.consensus_label == "a"
    stored = Judgment.objects.filter(task=task).first()
    assert stored.created_at.isoformat().startswith("2025-01-02T03:04:05") and stored.seconds_on_task == 12.5
    again = post(api_a, project, "annotations", jsonl(rows), create_annotators="1").json()
    assert (again["created"], again["unchanged"]) == (0, 4)
    assert Judgment.objects.filter(project=project).count() == 4


def test_unknown_annotators_become_the_organizations_own_pseudonymous_records(
    api_a: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    rows = [judgment("h0", "rater0@old.example"), judgment("h1", "LS-User-42", "tie")]
    assert post(api_a, project, "annotations", jsonl(rows), create_annotators="1").status_code == 200
    members = Membership.objects.filter(organization=tenancy.org_a, user__username__startswith="imported-")
    assert sorted(member.user.first_name for member in members) == ["ls-user-42", "rater0@old.example"]
    for member in members:
        user = member.user
        assert member.role == Role.ANNOTATOR and user.username.startswith(f"imported-{tenancy.org_a.pk}-")
        assert user.email == "" and not user.has_usable_password() and not user.is_active
        assert not user.is_staff and not user.is_superuser
    assert not get_user_model().objects.filter(email__in=["rater0@old.example", "ls-user-42@external.invalid"])


def test_an_existing_account_is_never_attached_changed_or_revealed(
    api_a: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    # Oscar administers organization B. Organization A imports judgments "by" his address: before, his account
    # became an annotator of A (an account takeover: his identity in A, judgments in his name).
    victim = tenancy.outsider_b
    before = get_user_model().objects.values().get(pk=victim.pk)
    response = post(api_a, project, "annotations", jsonl([judgment("h0", victim.email)]), create_annotators="1")
    assert response.status_code == 200, response.content
    assert not Membership.objects.filter(organization=tenancy.org_a, user=victim).exists()
    assert get_user_model().objects.values().get(pk=victim.pk) == before
    assert list(Membership.objects.filter(user=victim).values_list("organization_id", flat=True)) == [tenancy.org_b.pk]
    imported = Judgment.objects.get(project=project)
    assert imported.annotator_id != victim.pk and imported.annotator.first_name == victim.email


@pytest.mark.parametrize("create", ["0", "1"])
def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(
    api_a: KeyClient, project: Project, tenancy: Tenancy, create: str
) -> None:
    address = "somebody@elsewhere.example"
    body = jsonl([judgment("h0", address), judgment("h1", address, "b")])

    def answer(account: bool) -> tuple[int, bytes, int]:
        with transaction.atomic():  # a savepoint: each world is rolled back
            if account:
                other = factories.make_org("Elsewhere")
                factories.make_member(other, Role.ADMIN, address)
            response = post(api_a, project, "annotations", body, create_annotators=create)
            users = get_user_model().objects.count() - account
            transaction.set_rollback(True)
        return response.status_code, response.content, users

    with_account, without_account = answer(True), answer(False)
    assert with_account == without_account
    assert with_account[0] == (200 if create == "1" else 400)


def test_two_organizations_importing_one_address_get_two_unrelated_records(
    api_a: KeyClient, api_b: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    factories.make_task(tenancy.project_b, "h0")
    rows = jsonl([judgment("h0", "shared@elsewhere.example")])
    assert post(api_a, project, "annotations", rows, create_annotators="1").status_code == 200
    assert post(api_b, tenancy.project_b, "annotations", rows, create_annotators="1").status_code == 200
    a, b = (Judgment.objects.get(project=p).annotator for p in (project, tenancy.project_b))
    assert a.pk != b.pk and a.first_name == b.first_name == "shared@elsewhere.example"
    assert [m.organization_id for m in a.memberships.all()] == [tenancy.org_a.pk]
    assert [m.organization_id for m in b.memberships.all()] == [tenancy.org_b.pk]


def test_members_are_found_by_address_and_by_the_id_earlier_imports_gave_them(
    api_a: KeyClient, project: Project, tenancy: Tenancy
) -> None:
    legacy = factories.make_member(tenancy.org_a, Role.ANNOTATOR, "ls-user-7@external.invalid")
    rows = [judgment("h0", "ANNIE@a.example"), judgment("h1", "ls-user-7")]
    assert post(api_a, project, "annotations", jsonl(rows)).status_code == 200
    judges = dict(Judgment.objects.filter(project=project).values_list("task__external_id", "annotator_id"))
    assert judges == {"h0": tenancy.annotator_a.pk, "h1": legacy.pk}


def test_one_external_id_in_two_projects_judged_by_one_annotator(api_a: KeyClient, tenancy: Tenancy) -> None:
    # External ids are unique per project; the judgment's client id ignored the project, so the second import hit
    # the unique (organization, annotator, client id) key: a 500.
    projects = [factories.make_project(tenancy.org_a, name=f"Twin {n}") for n in range(2)]
    for twin in projects:
        factories.make_task(twin, "same-id")
        response = post(api_a, twin, "annotations", jsonl([judgment("same-id", "annie@a.example")]))
        assert response.status_code == 200, response.content
    assert Judgment.objects.filter(annotator=tenancy.annotator_a, task__external_id="same-id").count() == 2


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        (judgment("nope", "x@a.example"), "external_id", "no such task"),
        (judgment("h0", "x@a.example", "maybe"), "label", "not one of this project's labels"),
        ({**judgment("h0", "x@a.example"), "a_left": None}, "a_left", "is required"),
        (judgment("h0", "x@a.example", created_at="yesterday"), "created_at", "ISO 8601"),
        (judgment("h0", "x@a.example", created_at="2999-01-01T00:00:00Z"), "created_at", "in the future"),
        (judgment("h0", "x@a.example", seconds=-1), "seconds", "from 0"),
        (judgment("h0", "not an email!"), "annotator", "e-mail address"),
        (judgment("h0", "x@a.example", strength=2), "strength", "strength scale"),
        (judgment("h0", "x@a.example", mood="good"), "mood", "not a field"),
        (judgment("h0", "annie@a.example", "b"), "annotator", "second time in this file"),
    ],
)
def test_bad_judgment_rows_write_nothing(
    api_a: KeyClient, project: Project, bad: dict[str, Any], field: str, message: str
) -> None:
    rows = [judgment("h0", "annie@a.example"), bad]
    response = post(api_a, project, "annotations", jsonl(rows))
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e["row"] == 2 and e["field"] == field and message in e["message"] for e in errors), errors
    assert not Judgment.objects.filter(project=project).exists()


def test_unknown_annotators_need_the_flag(api_a: KeyClient, project: Project) -> None:
    response = post(api_a, project, "annotations", jsonl([judgment("h0", "stranger@else.example")]))
    assert response.status_code == 400 and "create_annotators" in response.json()["errors"][0]["message"]
    assert not Membership.objects.filter(user__email="stranger@else.example").exists()


def test_judgments_csv(api_a: KeyClient, project: Project) -> None:
    body = "external_id,annotator,label,a_left,seconds\r\nh2,annie@a.example,b,false,3\r\n"
    response = post(api_a, project, "annotations", body, "text/csv")
    assert response.status_code == 200, response.content
    judgment = Judgment.objects.get(project=project)
    assert judgment.a_left is False and judgment.label == "b" and judgment.seconds_on_task == 3


def test_predictions_import_reranks(api_a: KeyClient, project: Project) -> None:
    rows = [{"external_id": "h0", "predictions": 0.95}, {"external_id": "h1", "predictions": {"a": 0.5}}]
    response = post(api_a, project, "predictions", jsonl(rows))
    assert response.status_code == 200 and response.json()["updated"] == 2, response.content
    tasks = {t.external_id: t for t in Task.objects.filter(project=project)}
    assert tasks["h0"].predictions["a"] == 0.95 and tasks["h1"].rank < tasks["h0"].rank  # 0.5 is the least sure
    again = post(api_a, project, "predictions", jsonl(rows)).json()
    assert (again["updated"], again["unchanged"]) == (0, 2)
    csv_body = "external_id,predictions\r\nh2,0.3\r\n"
    assert post(api_a, project, "predictions", csv_body, "text/csv").json()["updated"] == 1


def test_bad_predictions_write_nothing(api_a: KeyClient, project: Project) -> None:
    rows = [
        {"external_id": "h0", "predictions": 0.9},
        {"external_id": "h9", "predictions": 0.1},
        {"external_id": "h1", "predictions": 7},
    ]
    response = post(api_a, project, "predictions", jsonl(rows))
    assert response.status_code == 400
    assert {(e["row"], e["field"]) for e in response.json()["errors"]} == {(2, "external_id"), (3, "predictions")}
    assert Task.objects.get(project=project, external_id="h0").predictions is None


@pytest.mark.parametrize("what", ["annotations", "predictions"])
def test_history_imports_cross_no_organization(
    api_b: KeyClient, api_read_only: KeyClient, project: Project, what: str
) -> None:
    body = jsonl(
        [judgment("h0", "annie@a.example")] if what == "annotations" else [{"external_id": "h0", "predictions": 0.2}]
    )
    foreign = post(api_b, project, what, body)
    missing = api_b.post(
        f"/api/v1/projects/{project.pk + 1000}/{what}/import", body, content_type="application/x-ndjson"
    )
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    assert post(api_read_only, project, what, body).status_code == 403
    assert post(api_b.__class__(None), project, what, body).status_code == 401
    assert post(KeyClient(api_read_only.key), project, what, body, mode="upsert").status_code in (400, 403)
    assert not Judgment.objects.filter(project=project).exists()
    assert Task.objects.get(project=project, external_id="h0").predictions is None


LABELS = ["a", "b", "tie", "both_bad"]
TASK_STATE = ("status", "resolution", "consensus_label", "extra_judgments", "judgment_count", "completed_at")


def _random_confusion(rng: random.Random) -> list[list[float]]:
    rows = []
    for truth in range(4):
        weights = [rng.random() + (3 if given == truth else 0) for given in range(4)]
        rows.append([weight / sum(weights) for weight in weights])
    return rows


def _random_history(rng: random.Random, org: Any) -> tuple[Project, list[Task]]:
    """A project with random settings and tasks in every state: gold or not, 0 to max judgments with random labels,
    some judged by annotators the quality engine scored (the Dawid-Skene posterior), some complete already."""
    low = rng.randint(1, 3)
    project = factories.make_project(
        org, min_judgments=low, max_judgments=low + rng.randint(0, 3), consensus_threshold=rng.choice([0.5, 0.6, 0.7])
    )
    judges = [factories.make_member(org) for _ in range(6)]
    now = timezone.now()
    if rng.random() < 0.8:
        weights = [rng.random() + 0.1 for _ in LABELS]
        priors = {label: weight / sum(weights) for label, weight in zip(LABELS, weights, strict=True)}
        ProjectQuality.objects.create(
            organization=org, project=project, n_judgments=0, last_annotation_id=0, n_tasks=0, n_complete=0,
            n_annotators=0, priors=priors, computed_at=now,
        )  # fmt: skip
    for judge in judges:
        if rng.random() < 0.6:
            AnnotatorScore.objects.create(
                organization=org, project=project, annotator=judge, confusion=_random_confusion(rng), computed_at=now
            )
    tasks = []
    for n in range(60):
        gold = rng.choice(LABELS) if rng.random() < 0.15 else None
        task = factories.make_task(project, f"r{n}", gold_label=gold)
        for judge in rng.sample(judges, rng.randint(0, project.max_judgments)):
            # A dominant label most of the time, so that tasks reach consensus as well as not.
            label = rng.choice(LABELS[:1] * 3 + LABELS)
            Judgment.objects.create(
                organization=org, project=project, task=task, annotator=judge, label=label, a_left=rng.random() < 0.5,
                client_id=f"r-{n}-{judge.pk}",
            )  # fmt: skip
        if rng.random() < 0.3:  # complete before: kept complete with its time, or reopened
            Task.objects.filter(pk=task.pk).update(
                status="complete", completed_at=now - timedelta(days=rng.randint(1, 9))
            )
        tasks.append(task)
    return project, tasks


@pytest.mark.parametrize("seed", range(6))
def test_the_batched_settle_equals_a_settle_per_task_on_random_data(
    tenancy: Tenancy, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    project, tasks = _random_history(rng, tenancy.org_a)
    rows = Task.objects.filter(project=project).order_by("id")
    before = list(rows.values("id", *TASK_STATE))
    fixed = timezone.now() + timedelta(minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: fixed)

    tasks_settle(project=project, task_ids=[task.pk for task in tasks])
    batched = list(rows.values("id", *TASK_STATE))
    for state in before:
        Task.objects.filter(pk=state["id"]).update(**{name: state[name] for name in TASK_STATE})
    for task in tasks:
        task_progress_refresh(task=task, project=project)
    one_by_one = list(rows.values("id", *TASK_STATE))

    assert batched == one_by_one
    outcomes = {(state["status"], state["resolution"]) for state in batched}
    assert {("open", ""), ("complete", "consensus")} <= outcomes  # the data reaches more than one outcome
    assert any(state["completed_at"] == fixed for state in batched)  # some completed now ...
    assert any(state["completed_at"] not in (None, fixed) for state in batched)  # ... some kept their time


@pytest.mark.parametrize("seed", range(4))
def test_an_import_settles_its_tasks_as_reading_their_judgments_back_would(
    tenancy: Tenancy, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The import settles with the judgments it read before writing plus its own (not read back): on random
    # histories, in batches so small that a task's rows span several, the outcome equals a settle from the rows.
    rng = random.Random(seed)
    project, tasks = _random_history(rng, tenancy.org_a)
    now = timezone.now()
    judges = [factories.make_member(tenancy.org_a) for _ in range(5)]
    for judge in judges[:3]:
        AnnotatorScore.objects.create(
            organization=tenancy.org_a, project=project, annotator=judge, confusion=_random_confusion(rng),
            computed_at=now,
        )  # fmt: skip
    rows = [
        judgment(task.external_id, judge.email, rng.choice(LABELS[:1] * 3 + LABELS))
        for task in tasks
        for judge in rng.sample(judges, rng.randint(0, 3))
    ]
    monkeypatch.setattr(judgment_import, "JUDGMENT_BATCH", 7)
    report = judgment_import.judgments_import(project=project, stream=io.BytesIO(jsonl(rows).encode()), fmt="jsonl")
    assert (report.created, report.error_count) == (len(rows), 0)
    touched = [task for task in tasks if any(row["external_id"] == task.external_id for row in rows)]
    states = Task.objects.filter(pk__in=[task.pk for task in touched]).order_by("id")
    imported = list(states.values("id", *TASK_STATE))
    for task in touched:
        task_progress_refresh(task=task, project=project)
    assert list(states.values("id", *TASK_STATE)) == imported
    assert {state["status"] for state in imported} == {"open", "complete"}


def test_the_batched_settle_uses_the_posterior_once_every_judge_is_scored(tenancy: Tenancy) -> None:
    # Two skilled judges say "a" against three careless "b": the vote share says b, the posterior says a.
    project = factories.make_project(tenancy.org_a, min_judgments=5, max_judgments=5, consensus_threshold=0.9)
    task = factories.make_task(project, "p")
    now = timezone.now()
    ProjectQuality.objects.create(
        organization=tenancy.org_a, project=project, n_judgments=0, last_annotation_id=0, n_tasks=0, n_complete=0,
        n_annotators=0, priors=dict(zip(LABELS, [0.45, 0.45, 0.05, 0.05], strict=True)), computed_at=now,
    )  # fmt: skip
    for accuracy, label in [(0.97, "a"), (0.97, "a"), (0.26, "b"), (0.26, "b"), (0.26, "b")]:
        judge = factories.make_member(tenancy.org_a)
        off = (1 - accuracy) / 3
        confusion = [[accuracy if i == j else off for j in range(4)] for i in range(4)]
        AnnotatorScore.objects.create(
            organization=tenancy.org_a, project=project, annotator=judge, confusion=confusion, computed_at=now
        )
        Judgment.objects.create(
            organization=tenancy.org_a, project=project, task=task, annotator=judge, label=label, a_left=True,
            client_id=f"p-{judge.pk}",
        )  # fmt: skip
    tasks_settle(project=project, task_ids=[task.pk])
    task.refresh_from_db()
    assert (task.status, task.resolution, task.consensus_label) == ("complete", "consensus", "a")


# A whole project (or organization) read through an index condition on it alone, to find a few keys.
PROJECT_WIDE = re.compile(r"(Index|Recheck) Cond: \((\(organization_id = \d+\) AND )?\(?project_id = \d+\)?\)$", re.M)


@needs_postgres
@pytest.mark.parametrize("what", ["annotations", "predictions", "tasks"])
def test_history_imports_find_rows_by_their_keys_whatever_the_statistics(
    api_a: KeyClient, tenancy: Tenancy, what: str
) -> None:
    # Statistics taken before the project existed say its id is too rare to matter: the lookup of a batch's tasks
    # by external id walked the project's (project, id) index for every key (a predictions import of 50,000 rows
    # ran for half an hour), and a list of task ids ANDed the project's whole index in for every batch.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE labeling_task")
        cursor.execute("ANALYZE labeling_annotation")
    project = factories.make_project(tenancy.org_a, name="After the statistics")
    tasks = [{"external_id": f"k{i}", "prompt": "Q", "response_a": "A", "response_b": "B"} for i in range(2000)]
    assert post(api_a, project, "tasks", jsonl(tasks)).status_code == 200
    if what == "annotations":
        rows = [judgment(f"k{i}", f"r{(i + k) % 40}@old.example") for i in range(2000) for k in range(2)]
    elif what == "tasks":  # imported again: every row is looked up (and left as it is)
        rows = [{**task, "prompt": "Q2"} if i % 2 else task for i, task in enumerate(tasks)]
    else:
        rows = [{"external_id": f"k{i}", "predictions": (i % 89) / 89} for i in range(2000)]
    statements: list[tuple[str, Any]] = []

    def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        # Every SELECT of tasks or judgments but the task import's one read of the project's external ids (its
        # filter of the ids it has seen, by design once per import).
        bloom = sql.startswith('SELECT "labeling_task"."external_id" AS "external_id" FROM')
        tables = re.search(r"labeling_(task|annotation)\b", sql)
        if not many and not bloom and tables and sql.lstrip().startswith("SELECT"):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        options = {"annotations": {"create_annotators": "1"}, "tasks": {"mode": "upsert"}}.get(what, {})
        response = post(api_a, project, what, jsonl(rows), **options)
    assert response.status_code == 200, response.content
    assert len(statements) >= 2
    for sql, params in statements:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert not PROJECT_WIDE.search(plan) and "BitmapAnd" not in plan, (sql[:300], plan)


MISSING = object()
FIELD_VALUES: dict[str, list[Any]] = {
    "external_id": ["h0", "  h1 ", " ", "", 7, True, None, "x" * 300],
    "annotator": ["a@b.co", " Ann@B.CO ", "ls-user-1", "bad id!", "", "  ", 5, "x" * 150 + "@a.b", None],
    "label": ["a", "b", "tie", "positive", "nope", 1, None],
    "a_left": [True, False, None, "true", 1, MISSING],
    "strength": [None, 1, 3, 5, True, "2", MISSING],
    "seconds": [0, 3.5, -1, 7 * 86400, 7 * 86400 - 0.5, float("nan"), True, "3", None, MISSING],
    "created_at": [MISSING, None, "", "2025-01-02T03:04:05Z", "2025-01-02 03:04:05", "2025-03-01T12:61:00Z",
                   "2999-01-01T00:00:00Z", "2025-01-02T03:04:05+02:00", 5],
    "mood": [MISSING] * 6 + ["good"],
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "scale"), [("pairwise", False), ("pairwise", True), ("categorical", False)], ids=["plain", "scale", "cat"]
)
def test_the_quick_judgment_check_accepts_exactly_what_the_full_check_accepts(
    tenancy: Tenancy, kind: str, scale: bool
) -> None:
    from exchange.judgment_import import _clean_judgment_fully, _JudgmentRules, _quick_judgment
    from exchange.reading import ImportReport
    from labeling.selectors import project_label_values

    project = factories.make_project(tenancy.org_a, kind=kind, strength_scale=scale)
    rules = _JudgmentRules(project, project_label_values(project=project), timezone.now())
    rng = random.Random(7)
    good = {"label": "positive" if kind == "categorical" else "a", "a_left": MISSING if kind == "categorical" else True}
    good["strength"] = MISSING
    if scale:  # decisive judgments there carry a strength, which the quick check leaves to the full one
        good["label"] = "tie"
    quick_ones = 0
    for _ in range(4000):
        # Mostly good values, so that both paths run often, with every odd value in some rows.
        record = {
            name: good.get(name, values[0]) if rng.random() < 0.8 else rng.choice(values)
            for name, values in FIELD_VALUES.items()
        }
        record = {name: value for name, value in record.items() if value is not MISSING}
        quick = _quick_judgment(1, record, rules)
        full = _clean_judgment_fully(1, record, rules, ImportReport(), False)
        if quick is not None:
            quick_ones += 1
            assert quick == full, record
    assert quick_ones > 20  # the quick path is exercised, not only the full one
