"""Jobs: enqueued on commit through the app's own services and run by Celery."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction

from labeling.models import ProjectStats
from labeling.services import project_stats_refresh
from quality.jobs import refresh_project_stats_job
from quality.services import STATS_REFRESH_DELAY_SECONDS, stats_refresh_mark
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.services import celery_worker, needs_postgres, needs_redis, wait_for


def _judge(tenancy: Tenancy, client_id: str = "c-1") -> None:
    judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id=client_id, a_left=False)


def test_stats_are_recounted_from_rows(tenancy: Tenancy) -> None:
    factories.make_task(tenancy.project_a, "gold-1", gold_label="b")
    _judge(tenancy)
    stats = project_stats_refresh(project_id=tenancy.project_a.pk)
    assert stats is not None
    assert (stats.tasks, stats.open_tasks, stats.gold_tasks, stats.judgments, stats.annotators) == (2, 2, 1, 1, 1)
    # Running it again (a redelivered job) gives the same single row.
    project_stats_refresh(project_id=tenancy.project_a.pk)
    assert ProjectStats.objects.filter(project=tenancy.project_a).count() == 1


def test_refresh_of_a_deleted_project_is_a_no_op(tenancy: Tenancy) -> None:
    project_id = tenancy.project_b.pk
    tenancy.project_b.delete()
    assert project_stats_refresh(project_id=project_id) is None


@pytest.mark.django_db(transaction=True)
def test_rolled_back_submission_enqueues_nothing(tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _capture_enqueues(monkeypatch)
    with pytest.raises(RuntimeError), transaction.atomic():
        _judge(tenancy)
        raise RuntimeError("the request failed after the write")
    assert sent == []
    _judge(tenancy, "c-2")
    assert sent == [tenancy.project_a.pk]


def _capture_enqueues(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    cache.clear()
    monkeypatch.setattr("labeling.queueing._known_eta", {})
    sent: list[int] = []
    monkeypatch.setattr(
        "quality.jobs.refresh_project_stats_job.apply_async", lambda args, **options: sent.append(args[0])
    )
    # The stats job asks for a quality recompute: not the subject here.
    monkeypatch.setattr("quality.jobs.recompute_project_quality_job.apply_async", lambda args, **options: None)
    return sent


@pytest.mark.django_db(transaction=True)
def test_refreshes_are_coalesced_per_project(tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """A burst of judgments queues one refresh per project; after its ETA the next judgment queues another."""
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: the job runs later, on a worker
    sent = _capture_enqueues(monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr("labeling.queueing._clock", lambda: clock[0])
    other = factories.make_task(tenancy.project_a, "a-2")
    for n in range(5):
        judgment_record(
            task=other, annotator=factories.make_member(tenancy.org_a), label="b", client_id=f"x{n}", a_left=True
        )
    judgment_record(task=tenancy.task_b, annotator=tenancy.outsider_b, label="a", client_id="b-1", a_left=True)
    assert sent == [tenancy.project_a.pk, tenancy.project_b.pk]
    assert cache.get(stats_refresh_mark(tenancy.project_a.pk)) == 1000.0 + STATS_REFRESH_DELAY_SECONDS
    clock[0] += STATS_REFRESH_DELAY_SECONDS  # the queued job's ETA comes...
    refresh_project_stats_job.run(tenancy.project_a.pk)  # ...it runs, clearing the mark before it counts
    _judge(tenancy, "c-3")
    assert sent == [tenancy.project_a.pk, tenancy.project_b.pk, tenancy.project_a.pk]


@pytest.mark.django_db(transaction=True)
def test_another_process_learns_the_queued_jobs_eta(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A process that finds the mark set remembers its ETA and skips the cache until then, never past it."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent = _capture_enqueues(monkeypatch)
    clock = [50.0]
    monkeypatch.setattr("labeling.queueing._clock", lambda: clock[0])
    cache.add(stats_refresh_mark(tenancy.project_a.pk), 51.0, timeout=60)  # queued elsewhere, ETA 51
    calls: list[str] = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda *a, **k: calls.append("add") or real_add(*a, **k))
    _judge(tenancy, "c-1")
    judgment_record(
        task=factories.make_task(tenancy.project_a),
        annotator=tenancy.annotator_a,
        label="a",
        client_id="c-2",
        a_left=True,
    )
    assert (sent, calls) == ([], ["add"])  # the second judgment did not even ask the cache
    clock[0] = 50.8  # within the margin of the ETA: ask again
    cache.delete(stats_refresh_mark(tenancy.project_a.pk))  # the job ran
    judgment_record(
        task=factories.make_task(tenancy.project_a),
        annotator=tenancy.annotator_a,
        label="a",
        client_id="c-3",
        a_left=True,
    )
    assert sent == [tenancy.project_a.pk]


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_the_job_enqueued_on_commit(tenancy: Tenancy) -> None:
    """End to end: a judgment is stored, its commit enqueues a job on Redis, a worker process updates PostgreSQL."""
    with celery_worker():
        _judge(tenancy)
        stats = wait_for(
            lambda: ProjectStats.objects.filter(project=tenancy.project_a, judgments=1).first(),
            what="the worker to refresh the project's stats",
        )
    assert stats.tasks == 1
    assert stats.annotators == 1
