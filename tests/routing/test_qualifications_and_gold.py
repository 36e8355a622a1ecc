"""Who may see what (qualification matrix, sensitive content) and how gold is injected."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from labeling.models import Project, Task, TaskStatus
from routing.models import Lease, LeaseState, Qualification, QualificationKind
from routing.services import (
    judgment_submit,
    lease_skip,
    next_task,
    project_requirements_set,
    qualification_create,
    qualification_grant,
    qualification_opt_in,
    task_requirements_set,
)
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import annotators, expire, judge


@pytest.fixture(autouse=True)
def seeded_rng(monkeypatch: pytest.MonkeyPatch) -> random.Random:
    rng = random.Random(5)
    monkeypatch.setattr("routing.services.leases._rng", rng)
    return rng


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return factories.make_project(tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=0)


def _restricted_task(project: Project, *codes: str, level: int = 1) -> Task:
    task = factories.make_task(project)
    qualifications = [Qualification.objects.get(organization=project.organization, code=code) for code in codes]
    task_requirements_set(task=task, requirements=[(q, level) for q in qualifications])
    return task


def _qualify(tenancy: Tenancy, code: str, **grant: Any) -> Any:
    q = Qualification.objects.get(organization=tenancy.org_a, code=code)
    return qualification_grant(qualification=q, annotator=tenancy.annotator_a, **grant)


@pytest.fixture
def qualifications(tenancy: Tenancy) -> dict[str, Qualification]:
    codes = ["medical", "lang:de", "lang:fr", "sensitive:self-harm"]
    return {code: qualification_create(organization=tenancy.org_a, code=code) for code in codes}


def test_codes_name_their_kind(qualifications: dict[str, Qualification]) -> None:
    kinds = {code: q.kind for code, q in qualifications.items()}
    assert kinds == {
        "medical": QualificationKind.SKILL,
        "lang:de": QualificationKind.LANGUAGE,
        "lang:fr": QualificationKind.LANGUAGE,
        "sensitive:self-harm": QualificationKind.SENSITIVITY,
    }


def test_bad_codes_are_refused(tenancy: Tenancy) -> None:
    for code in ["Medical!", "lang:", "a:b:c", ""]:
        with pytest.raises(ValidationError):
            qualification_create(organization=tenancy.org_a, code=code)


LATER = timedelta(days=30)


@pytest.mark.parametrize(
    ("requires", "grants", "eligible"),
    [
        pytest.param(["medical"], [], False, id="missing"),
        pytest.param(["medical"], [("medical", {})], True, id="held"),
        pytest.param(["medical"], [("medical", {"expires_at": -LATER})], False, id="expired"),
        pytest.param(["medical"], [("medical", {"expires_at": LATER})], True, id="not-yet-expired"),
        pytest.param(["lang:de"], [("lang:fr", {})], False, id="wrong-language"),
        pytest.param(["lang:de", "medical"], [("lang:de", {})], False, id="one-of-two"),
        pytest.param(["lang:de", "medical"], [("lang:de", {}), ("medical", {})], True, id="both"),
        pytest.param(["medical@2"], [("medical", {"level": 1})], False, id="level-too-low"),
        pytest.param(["medical@2"], [("medical", {"level": 3})], True, id="level-enough"),
        pytest.param(["sensitive:self-harm"], [("sensitive:self-harm", {})], False, id="sensitive-no-opt-in"),
        pytest.param(["sensitive:self-harm"], [("sensitive:self-harm", {"opted_in": True})], True, id="opted-in"),
    ],
)
def test_qualification_matrix(
    tenancy: Tenancy,
    project: Project,
    qualifications: dict[str, Qualification],
    requires: list[str],
    grants: list[tuple[str, dict]],
    eligible: bool,
) -> None:
    level = 2 if any(r.endswith("@2") for r in requires) else 1
    task = _restricted_task(project, *(r.removesuffix("@2") for r in requires), level=level)
    for code, options in grants:
        if "expires_at" in options:
            options = {**options, "expires_at": timezone.now() + options["expires_at"]}
        _qualify(tenancy, code, **options)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert (lease is not None and lease.task_id == task.pk) is eligible


def test_unrestricted_tasks_stay_open_to_everyone(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    _restricted_task(project, "medical")
    plain = factories.make_task(project)
    assert next_task(annotator=tenancy.annotator_a, project=project).task_id == plain.pk


def test_opting_out_withdraws_sensitive_tasks(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    _restricted_task(project, "sensitive:self-harm")
    grant = _qualify(tenancy, "sensitive:self-harm", opted_in=True)
    qualification_opt_in(grant=grant, opted_in=False)
    assert next_task(annotator=tenancy.annotator_a, project=project) is None


def test_opting_out_while_a_sensitive_task_is_on_screen_takes_it_away_on_reload(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    """Consent is the annotator's alone: once they opt out, the task they hold is released, not handed back."""
    sensitive = _restricted_task(project, "sensitive:self-harm")
    plain = factories.make_task(project)
    grant = _qualify(tenancy, "sensitive:self-harm", opted_in=True)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease.task_id == sensitive.pk
    qualification_opt_in(grant=grant, opted_in=False)
    reloaded = next_task(annotator=tenancy.annotator_a, project=project)
    assert reloaded is not None and reloaded.task_id == plain.pk
    lease.refresh_from_db()
    assert lease.state == LeaseState.EXPIRED and lease.finished_at < lease.expires_at


def test_a_lost_project_qualification_releases_the_lease_held(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    project_requirements_set(project=project, requirements=[(qualifications["lang:de"], 1)])
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
    lease.refresh_from_db()
    assert lease.state == LeaseState.EXPIRED


def test_project_requirements_gate_the_whole_project(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    factories.make_task(project)
    project_requirements_set(project=project, requirements=[(qualifications["lang:de"], 1)])
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
    _qualify(tenancy, "lang:de")
    assert next_task(annotator=tenancy.annotator_a, project=project) is not None


def test_daily_cap_on_sensitive_tasks(tenancy: Tenancy, qualifications: dict[str, Qualification]) -> None:
    project = factories.make_project(
        tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=0, sensitive_daily_cap=2
    )
    sensitive = [_restricted_task(project, "sensitive:self-harm") for _ in range(3)]
    plain = factories.make_task(project)
    _qualify(tenancy, "sensitive:self-harm", opted_in=True)
    first = next_task(annotator=tenancy.annotator_a, project=project)
    lease_skip(lease=first, actor=tenancy.annotator_a)  # seen is seen: a skip still counts
    second = judge(tenancy.annotator_a, project)
    assert {first.task_id, second.task_id} <= {t.pk for t in sensitive}
    assert next_task(annotator=tenancy.annotator_a, project=project).task_id == plain.pk
    # A day later the cap allows more.
    Lease.objects.update(leased_at=timezone.now() - timedelta(hours=25), expires_at=timezone.now())
    judge(tenancy.annotator_a, project)
    assert next_task(annotator=tenancy.annotator_a, project=project).task_id == sensitive[2].pk


def test_a_qualification_of_another_organization_is_refused(
    tenancy: Tenancy, project: Project, qualifications: dict[str, Qualification]
) -> None:
    foreign = qualification_create(organization=tenancy.org_b, code="medical")
    with pytest.raises(ValidationError, match="not a qualification of this organization"):
        task_requirements_set(task=factories.make_task(project), requirements=[(foreign, 1)])
    with pytest.raises(ValidationError, match="not a member"):
        qualification_grant(qualification=qualifications["medical"], annotator=tenancy.outsider_b)


# --- Gold --------------------------------------------------------------------------------------------------------


def _gold_project(tenancy: Tenancy, *, normal: int, gold: int, rate: float) -> Project:
    project = factories.make_project(tenancy.org_a, min_judgments=5, max_judgments=5, gold_rate=rate)
    Task.objects.bulk_create(
        Task(
            organization=tenancy.org_a,
            project=project,
            external_id=f"{'g' if n < gold else 'n'}-{n}",
            payload=factories.pairwise_payload(n),
            gold_label="a" if n < gold else None,
        )
        for n in range(normal + gold)
    )
    return project


def test_gold_rate_over_a_thousand_leases_and_never_the_same_gold_twice(tenancy: Tenancy) -> None:
    rate = 0.05
    project = _gold_project(tenancy, normal=220, gold=60, rate=rate)
    people = annotators(tenancy.org_a, 5)
    leases: list[Lease] = []
    for person in people:
        for _ in range(200):
            lease = next_task(annotator=person, project=project)
            leases.append(lease)
            lease_skip(lease=lease, actor=person)
    gold = [lease for lease in leases if lease.is_gold]
    n = len(leases)
    assert n == 1000
    # Binomial(1000, 0.05): mean 50, sd 6.9; the seeded draw must sit within 4 sd.
    assert abs(len(gold) - rate * n) <= 4 * math.sqrt(n * rate * (1 - rate))
    pairs = Counter((lease.annotator_id, lease.task_id) for lease in gold)
    assert max(pairs.values()) == 1
    assert all(lease.task.is_gold == lease.is_gold for lease in leases)


def test_gold_runs_out_per_annotator_without_repeats(tenancy: Tenancy) -> None:
    project = _gold_project(tenancy, normal=30, gold=3, rate=1.0)
    served = [judge(tenancy.annotator_a, project) for _ in range(6)]
    gold = [a.task_id for a in served if a.task.is_gold]
    assert len(gold) == 3 == len(set(gold))
    assert all(not a.task.is_gold for a in served[3:])


def test_gold_judgments_never_count_toward_overlap_and_gold_stays_open(tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=1.0)
    gold = factories.make_task(project, "gold", gold_label="b")
    normal = factories.make_task(project, "normal")
    people = annotators(tenancy.org_a, 4)
    for person in people:
        assert judge(person, project, "a").task_id == gold.pk  # any number of people judge the gold
    gold.refresh_from_db()
    normal.refresh_from_db()
    assert (gold.status, gold.judgment_count) == (TaskStatus.OPEN, 4)
    assert (normal.status, normal.judgment_count) == (TaskStatus.OPEN, 0)
    assert judge(people[0], project).task_id == normal.pk  # gold exhausted for them: normal work


@pytest.mark.parametrize("ending", ["expired", "skipped", "judged"])
def test_gold_never_comes_back_to_the_same_annotator_in_any_state(tenancy: Tenancy, ending: str) -> None:
    project = factories.make_project(tenancy.org_a, min_judgments=3, max_judgments=3, gold_rate=1.0)
    gold = factories.make_task(project, "gold", gold_label="a")
    normal = factories.make_task(project, "normal")
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    assert lease.task_id == gold.pk
    if ending == "expired":
        expire(lease)
    elif ending == "skipped":
        lease_skip(lease=lease, actor=tenancy.annotator_a)
    else:
        judgment_submit(lease=lease, label="a", client_id="g-1", seconds=1.0, actor=tenancy.annotator_a)
    served = []
    while (lease := next_task(annotator=tenancy.annotator_a, project=project)) is not None:
        served.append(lease.task_id)
        expire(lease)  # a normal task whose lease ran out may come back, so stop after it was served twice
        if served.count(normal.pk) == 2:
            break
    assert served == [normal.pk, normal.pk]


def test_no_normal_work_means_no_gold_either(tenancy: Tenancy) -> None:
    """Gold is mixed into real work; it is never served on its own (it would be recognisable as gold)."""
    project = factories.make_project(tenancy.org_a, min_judgments=1, max_judgments=1, gold_rate=0.5)
    factories.make_task(project, "gold", gold_label="b")
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
