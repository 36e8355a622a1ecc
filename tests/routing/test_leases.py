"""Leases: next task, submit, skip, expiry, overlap and dynamic consensus (single-threaded; see test_concurrency)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from labeling.models import Judgment, Project, Role, SamplingStrategy, TaskResolution, TaskStatus
from labeling.ranking import predictions_attach, project_ranks_refresh
from quality.consensus import consensus_outcome
from routing.models import Lease, LeaseState
from routing.services import (
    LeaseError,
    LeaseExpired,
    judgment_record,
    judgment_submit,
    lease_skip,
    leases_expire,
    next_task,
)
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import annotators, expire, judge, overlap_violations, tasks


@pytest.fixture(autouse=True)
def seeded_rng(monkeypatch: pytest.MonkeyPatch) -> random.Random:
    rng = random.Random(20261125)
    monkeypatch.setattr("routing.services.leases._rng", rng)
    return rng


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return factories.make_project(tenancy.org_a, min_judgments=3, max_judgments=5, gold_rate=0, consensus_threshold=0.7)


def _submit(lease: Lease, annotator: Any, label: str = "a", client_id: str = "c-1") -> Judgment:
    return judgment_submit(lease=lease, label=label, client_id=client_id, seconds=2.5, actor=annotator)


def test_reload_resumes_the_same_lease_with_the_same_order(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 3)
    first = next_task(annotator=tenancy.annotator_a, project=project)
    again = next_task(annotator=tenancy.annotator_a, project=project)
    assert first is not None and again is not None
    assert again.pk == first.pk
    assert again.a_left == first.a_left is not None
    assert Lease.objects.count() == 1


def test_a_task_is_never_leased_beyond_its_overlap(tenancy: Tenancy, project: Project) -> None:
    (task,) = tasks(project, 1)
    people = annotators(tenancy.org_a, 4)
    leases = [next_task(annotator=person, project=project) for person in people]
    assert [lease.task_id if lease else None for lease in leases] == [task.pk, task.pk, task.pk, None]
    assert overlap_violations(project) == []


def test_no_annotator_gets_the_same_task_twice(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 2)
    seen = [judge(tenancy.annotator_a, project).task_id for _ in range(2)]
    assert len(set(seen)) == 2
    assert next_task(annotator=tenancy.annotator_a, project=project) is None


def test_an_expired_lease_frees_its_slot_at_once_and_a_late_submit_is_refused(
    tenancy: Tenancy, project: Project
) -> None:
    (task,) = tasks(project, 1)
    first, second, third, fourth = annotators(tenancy.org_a, 4)
    abandoned = next_task(annotator=first, project=project)
    next_task(annotator=second, project=project)
    next_task(annotator=third, project=project)
    assert next_task(annotator=fourth, project=project) is None
    expire(abandoned)  # no sweeper has run: the row still says "active"
    handed_on = next_task(annotator=fourth, project=project)
    assert handed_on is not None and handed_on.task_id == task.pk
    with pytest.raises(LeaseExpired, match="ran out"):
        _submit(abandoned, first)
    assert not Judgment.objects.filter(annotator=first).exists()
    assert overlap_violations(project) == []


def test_the_expiry_job_records_expired_leases(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 2)
    stale = next_task(annotator=tenancy.annotator_a, project=project)
    fresh = next_task(annotator=tenancy.admin_a, project=project)
    expire(stale)
    assert leases_expire() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert (stale.state, stale.finished_at) == (LeaseState.EXPIRED, stale.expires_at)
    assert fresh.state == LeaseState.ACTIVE
    assert leases_expire() == 0


def test_returning_after_expiry_gets_a_new_lease(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 1)
    old = next_task(annotator=tenancy.annotator_a, project=project)
    expire(old)
    new = next_task(annotator=tenancy.annotator_a, project=project)
    assert new is not None and new.pk != old.pk and new.task_id == old.task_id
    old.refresh_from_db()
    assert old.state == LeaseState.EXPIRED


def test_a_task_whose_lease_ran_out_may_come_back_but_never_after_a_judgment_or_a_skip(
    tenancy: Tenancy, project: Project
) -> None:
    """README, Routing: "not judged or skipped by them"; a lease that ran out stored nothing, so the task stays
    theirs to do (small teams would otherwise strand it). Gold differs: see test_qualifications_and_gold."""
    annotator = tenancy.annotator_a
    ran_out, judged, skipped = tasks(project, 3)
    lease = next_task(annotator=annotator, project=project)
    assert lease.task_id == ran_out.pk
    expire(lease)
    lease = next_task(annotator=annotator, project=project)
    assert lease.task_id == ran_out.pk  # the same task, a new lease
    lease_skip(lease=lease, actor=annotator)  # skipped after it came back: never again
    lease = next_task(annotator=annotator, project=project)
    assert lease.task_id == judged.pk
    _submit(lease, annotator)
    lease = next_task(annotator=annotator, project=project)
    assert lease.task_id == skipped.pk
    lease_skip(lease=lease, actor=annotator)
    assert next_task(annotator=annotator, project=project) is None
    states = sorted(Lease.objects.filter(annotator=annotator).values_list("task_id", "state"))
    assert states == sorted(
        [
            (ran_out.pk, LeaseState.EXPIRED),
            (ran_out.pk, LeaseState.SKIPPED),
            (judged.pk, LeaseState.SUBMITTED),
            (skipped.pk, LeaseState.SKIPPED),
        ]
    )


def test_skip_releases_the_task_and_never_offers_it_again(tenancy: Tenancy, project: Project) -> None:
    skipped_task, other = tasks(project, 2)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease.task_id == skipped_task.pk
    lease_skip(lease=lease, actor=tenancy.annotator_a, reason="  I can't read this language ")
    lease.refresh_from_db()
    assert (lease.state, lease.skip_reason) == (LeaseState.SKIPPED, "I can't read this language")
    lease_skip(lease=lease, actor=tenancy.annotator_a)  # twice is harmless
    assert next_task(annotator=tenancy.annotator_a, project=project).task_id == other.pk
    with pytest.raises(LeaseError, match="skipped"):
        _submit(lease, tenancy.annotator_a)


def test_retried_submit_returns_the_first_judgment(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 2)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    first = _submit(lease, tenancy.annotator_a, "b", client_id="page-42")
    again = _submit(lease, tenancy.annotator_a, "a", client_id="page-42")
    assert again.pk == first.pk and again.label == "b"
    assert Judgment.objects.count() == 1
    assert first.a_left == lease.a_left
    with pytest.raises(LeaseError, match="already submitted"):
        _submit(lease, tenancy.annotator_a, client_id="page-43")


def test_a_bad_submit_writes_nothing_and_keeps_the_lease(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 1)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    with pytest.raises(ValidationError) as error:
        _submit(lease, tenancy.annotator_a, "maybe")
    assert "label" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        judgment_submit(lease=lease, label="a", client_id="c", seconds=-1, actor=tenancy.annotator_a)
    assert "seconds_on_task" in error.value.message_dict
    with pytest.raises(LeaseError, match="someone else"):
        _submit(lease, tenancy.admin_a)
    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE
    assert not Judgment.objects.exists()
    _submit(lease, tenancy.annotator_a, "tie")
    assert Judgment.objects.get().label == "tie"


def test_agreeing_judgments_complete_the_task_at_min(tenancy: Tenancy, project: Project) -> None:
    (task,) = tasks(project, 1)
    for person in annotators(tenancy.org_a, 3):
        judge(person, project, "a")
    task.refresh_from_db()
    assert (task.status, task.resolution, task.consensus_label, task.judgment_count) == (
        TaskStatus.COMPLETE,
        TaskResolution.CONSENSUS,
        "a",
        3,
    )
    assert next_task(annotator=factories.make_member(tenancy.org_a), project=project) is None


def test_disagreement_asks_for_one_more_until_max_then_no_consensus(tenancy: Tenancy, project: Project) -> None:
    (task,) = tasks(project, 1)
    people = annotators(tenancy.org_a, 6)
    for person, label in zip(people[:3], ["a", "b", "a"], strict=True):  # 2/3 < 0.7
        judge(person, project, label)
    task.refresh_from_db()
    assert (task.status, task.extra_judgments) == (TaskStatus.OPEN, 1)
    # Only one more slot opens: a second newcomer gets nothing while the first holds it.
    assert next_task(annotator=people[3], project=project).task_id == task.pk
    assert next_task(annotator=people[4], project=project) is None
    judge(people[3], project, "b")  # a/b 2-2: a tied lead is never consensus
    task.refresh_from_db()
    assert (task.status, task.extra_judgments) == (TaskStatus.OPEN, 2)
    judge(people[4], project, "tie")  # 2-2-1 at max
    task.refresh_from_db()
    assert (task.status, task.resolution, task.consensus_label, task.judgment_count) == (
        TaskStatus.COMPLETE,
        TaskResolution.NO_CONSENSUS,
        None,
        5,
    )
    assert next_task(annotator=people[5], project=project) is None


def test_disagreement_resolved_by_an_extra_judgment(tenancy: Tenancy, project: Project) -> None:
    (task,) = tasks(project, 1)
    for person, label in zip(annotators(tenancy.org_a, 4), ["a", "b", "a", "a"], strict=True):
        judge(person, project, label)
    task.refresh_from_db()
    assert (task.status, task.consensus_label, task.judgment_count) == (TaskStatus.COMPLETE, "a", 4)  # 3/4 >= 0.7


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"a": 2}, ("open", "", None, 0)),
        ({"a": 3}, ("complete", "consensus", "a", 0)),
        ({"a": 2, "b": 1}, ("open", "", None, 1)),
        ({"a": 2, "b": 2}, ("open", "", None, 2)),
        ({"a": 3, "b": 1}, ("complete", "consensus", "a", 1)),
        ({"a": 2, "b": 2, "tie": 1}, ("complete", "no_consensus", None, 2)),
    ],
)
def test_consensus_outcome(counts: dict[str, int], expected: tuple) -> None:
    assert consensus_outcome(counts, min_judgments=3, max_judgments=5, threshold=0.7) == expected


def test_threshold_one_half_still_needs_a_unique_leader() -> None:
    assert consensus_outcome({"a": 2, "b": 2}, min_judgments=4, max_judgments=4, threshold=0.5)[1] == "no_consensus"
    assert consensus_outcome({"a": 2, "b": 1, "c": 1}, min_judgments=4, max_judgments=4, threshold=0.5)[2] == "a"


def test_started_tasks_are_finished_before_fresh_ones(tenancy: Tenancy, project: Project) -> None:
    first, second = tasks(project, 2)
    people = annotators(tenancy.org_a, 4)
    judge(people[0], project)
    assert next_task(annotator=people[1], project=project).task_id == first.pk
    assert next_task(annotator=people[2], project=project).task_id == first.pk
    assert next_task(annotator=people[3], project=project).task_id == second.pk


def test_random_strategy_follows_the_shuffle_keys(tenancy: Tenancy) -> None:
    project = factories.make_project(
        tenancy.org_a, sampling_strategy=SamplingStrategy.RANDOM, gold_rate=0, min_judgments=1, max_judgments=1
    )
    created = tasks(project, 12)
    order = [judge(tenancy.annotator_a, project).task_id for _ in range(12)]
    assert order == [t.pk for t in sorted(created, key=lambda t: t.shuffle)]
    assert order != sorted(order)  # 12! orders: import order by chance is out of the question


@pytest.mark.parametrize(
    ("strategy", "expected_first"),
    [
        (SamplingStrategy.LEAST_CONFIDENCE, "flat"),
        (SamplingStrategy.ENTROPY, "flat"),
        (SamplingStrategy.MARGIN, "close-two"),
        (SamplingStrategy.SEQUENTIAL, "sure"),
    ],
)
def test_uncertainty_strategies_serve_the_most_informative_task_first(
    tenancy: Tenancy, strategy: str, expected_first: str
) -> None:
    project = factories.make_project(tenancy.org_a, "categorical", min_judgments=1, max_judgments=1, gold_rate=0)
    for external_id in ["sure", "unpredicted", "flat", "close-two"]:
        factories.make_task(project, external_id)
    predictions_attach(
        project=project,
        predictions={
            "sure": {"positive": 0.98, "negative": 0.01, "neutral": 0.01},
            "flat": {"positive": 0.4, "negative": 0.3, "neutral": 0.3},
            "close-two": {"positive": 0.5, "negative": 0.49, "neutral": 0.01},
        },
    )
    project.sampling_strategy = strategy
    project.save()
    project_ranks_refresh(project=project)
    annotator = factories.make_member(tenancy.org_a)
    served = [judge(annotator, project, "positive").task.external_id for _ in range(4)]
    assert served[0] == expected_first
    if strategy != SamplingStrategy.SEQUENTIAL:
        assert served[-1] == "unpredicted"  # tasks without predictions come last


def test_pairwise_uncertainty_prefers_predictions_near_one_half(tenancy: Tenancy) -> None:
    project = factories.make_project(
        tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=0, sampling_strategy=SamplingStrategy.MARGIN
    )
    for external_id, p in [("clear", 0.95), ("close", 0.52), ("mid", 0.7)]:
        factories.make_task(project, external_id, predictions=p)
    annotator = factories.make_member(tenancy.org_a)
    assert [judge(annotator, project).task.external_id for _ in range(3)] == ["close", "mid", "clear"]


def test_bad_predictions_are_refused_naming_the_item(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, "categorical")
    factories.make_task(project, "t1")
    with pytest.raises(ValidationError) as error:
        predictions_attach(project=project, predictions={"t1": {"positive": 0.9, "sad": 0.1}, "nope": 0.5})
    messages = error.value.message_dict["predictions"]
    assert any(m.startswith("t1:") and "'sad'" in m for m in messages)
    assert any(m.startswith("nope:") for m in messages)
    assert project.tasks.get().predictions is None


def test_outsiders_and_paused_annotators_get_no_tasks(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 2)
    with pytest.raises(ValidationError):
        next_task(annotator=tenancy.outsider_b, project=project)
    membership = tenancy.annotator_a.memberships.get()
    membership.paused_at = membership.created_at
    membership.save()
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
    membership.paused_at = None
    membership.save()
    assert next_task(annotator=tenancy.annotator_a, project=project) is not None


def test_managers_may_annotate_too(tenancy: Tenancy, project: Project) -> None:
    tasks(project, 1)
    assert judge(factories.make_member(tenancy.org_a, Role.MANAGER), project) is not None


def test_imported_judgments_count_toward_overlap_and_consensus(tenancy: Tenancy, project: Project) -> None:
    """Judgments stored without a lease (imports) settle the task like submits do."""
    settled, half = tasks(project, 2)
    people = annotators(tenancy.org_a, 5)
    for n, person in enumerate(people[:3]):
        judgment_record(task=settled, annotator=person, label="b", client_id=f"import-{n}", a_left=True)
    for n, person in enumerate(people[:2]):
        judgment_record(task=half, annotator=person, label="a", client_id=f"import-half-{n}", a_left=False)
    settled.refresh_from_db()
    half.refresh_from_db()
    assert (settled.status, settled.consensus_label, settled.judgment_count) == (TaskStatus.COMPLETE, "b", 3)
    assert (half.status, half.judgment_count) == (TaskStatus.OPEN, 2)
    assert next_task(annotator=people[3], project=project).task_id == half.pk
    assert next_task(annotator=people[4], project=project) is None
    assert overlap_violations(project) == []
