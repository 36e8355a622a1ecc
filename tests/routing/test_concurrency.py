"""Many annotators at once on PostgreSQL: threads with their own connections hammer next_task / submit.

While they run, a monitor checks in single statements (one snapshot each) that no task ever holds more
judgments + live leases than it may; afterwards every normal task is complete, nobody judged a task twice, and the
rows equal the acknowledged submits.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from labeling.models import Judgment, Project, Task, TaskStatus
from routing.models import Lease
from routing.services import judgment_submit, lease_skip, next_task
from tests import factories
from tests.conftest import Tenancy
from tests.routing.helpers import annotators, overjudged, overlap_violations
from tests.services import needs_postgres

THREADS = 24
DEADLINE_SECONDS = 120


class Run:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.acked: set[int] = set()
        self.errors: list[str] = []
        self.violations: list[list[int]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def annotate(self, annotator: Any, seed: int) -> None:
        rng = random.Random(seed)
        try:
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not self.done.is_set() and time.monotonic() < deadline:
                lease = next_task(annotator=annotator, project=self.project)
                if lease is None:
                    time.sleep(0.02)  # work may reappear: a disagreement asks for one more judgment
                    continue
                roll = rng.random()
                if roll < 0.05:
                    lease_skip(lease=lease, actor=annotator, reason="not for me")
                    continue
                if roll < 0.08:  # walks away: time passes on this lease until it expires
                    Lease.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
                    continue
                label = rng.choice(["a", "b", "tie"]) if lease.task_id % 3 == 0 else "a"
                client_id = f"{annotator.pk}-{lease.pk}"
                first = judgment_submit(lease=lease, label=label, client_id=client_id, seconds=1, actor=annotator)
                if roll < 0.2:  # a double click or a retry after a timeout
                    again = judgment_submit(lease=lease, label=label, client_id=client_id, seconds=1, actor=annotator)
                    assert again.pk == first.pk
                with self.lock:
                    self.acked.add(first.pk)
        except Exception as error:  # reported to the main thread
            with self.lock:
                self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    def monitor(self) -> None:
        try:
            while not self.done.is_set():
                violations = overlap_violations(self.project)
                if violations:
                    self.violations.append(violations)
                if not Task.objects.filter(project=self.project, gold_label__isnull=True, status="open").exists():
                    self.done.set()
                time.sleep(0.05)
        finally:
            connection.close()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_annotators_never_exceed_overlap() -> None:
    org = factories.make_org("Busy")
    project = factories.make_project(org, min_judgments=3, max_judgments=5, consensus_threshold=0.7, gold_rate=0.1)
    for n in range(90):
        factories.make_task(project, f"t-{n}")
    for n in range(8):
        factories.make_task(project, f"gold-{n}", gold_label="a")
    people = annotators(org, THREADS)
    run = Run(project)
    threads = [threading.Thread(target=run.annotate, args=(person, n)) for n, person in enumerate(people)]
    monitor = threading.Thread(target=run.monitor)
    for thread in [*threads, monitor]:
        thread.start()
    for thread in threads:
        thread.join()
    run.done.set()
    monitor.join()

    assert run.errors == []
    assert run.violations == []
    assert overlap_violations(project) == []
    assert overjudged(project) == []
    normal = Task.objects.filter(project=project, gold_label__isnull=True)
    assert not normal.exclude(status=TaskStatus.COMPLETE).exists(), "every normal task reached completion"
    annotations = Judgment.objects.filter(project=project)
    assert annotations.count() == len(run.acked)
    assert set(annotations.values_list("pk", flat=True)) == run.acked
    pairs = Counter(annotations.values_list("task_id", "annotator_id"))
    assert max(pairs.values()) == 1
    counted = dict(annotations.values_list("task_id").annotate(n=Count("pk")).values_list("task_id", "n"))
    assert all(task.judgment_count == counted.get(task.pk, 0) for task in Task.objects.filter(project=project))
    # Some disagreement extended tasks, and gold was served and judged.
    assert normal.filter(extra_judgments__gt=0).exists()
    assert annotations.filter(task__gold_label__isnull=False).exists()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_being_leased_is_skipped_by_a_concurrent_picker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic interleaving: A holds the last slot's row lock mid-lease; B, at that moment, must not take it."""
    from routing.services import leases

    org = factories.make_org("Race")
    project = factories.make_project(org, min_judgments=1, max_judgments=1, gold_rate=0)
    task = factories.make_task(project, "only")
    first, second = annotators(org, 2)
    a_has_picked, b_is_done = threading.Event(), threading.Event()
    real_lease = leases._lease
    results: dict[str, Any] = {}

    def paused_lease(*args: Any, **kwargs: Any) -> Lease:
        if threading.current_thread().name == "A":
            a_has_picked.set()
            b_is_done.wait(timeout=30)
        return real_lease(*args, **kwargs)

    monkeypatch.setattr(leases, "_lease", paused_lease)

    def pick(name: str, annotator: Any) -> None:
        try:
            results[name] = next_task(annotator=annotator, project=project)
        finally:
            connection.close()

    a = threading.Thread(target=pick, args=("A", first), name="A")
    a.start()
    assert a_has_picked.wait(timeout=30)
    b = threading.Thread(target=pick, args=("B", second), name="B")
    b.start()
    b.join(timeout=30)
    b_is_done.set()
    a.join(timeout=30)
    assert results["B"] is None, "B must skip the task A holds locked"
    assert results["A"].task_id == task.pk
    assert Lease.objects.filter(task=task).count() == 1


@needs_postgres
def test_router_statements_are_prepared_and_orm_statements_are_not_counted(tenancy: Tenancy) -> None:
    """Only the router's statements are prepared (explicitly); the ORM's big statements are not kept in psycopg's
    preparation cache, which holds each counted statement's full text (an import's INSERTs are megabytes)."""
    factories.make_task(tenancy.project_a)
    next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    raw = connection.connection
    assert raw.prepare_threshold is None
    prepared = raw._prepared  # psycopg's cache: statements prepared (names) and candidates (counts)
    assert prepared._names, "the router's pick runs as a prepared statement"
    Task.objects.filter(external_id="x" * 10_000).exists()
    assert not any(b"x" * 10_000 in key[0] for key in prepared._counts), "an ORM statement was counted"
