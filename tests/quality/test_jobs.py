"""Quality jobs: triggered after judgments (coalesced), swept when stale, visible when failed, run by a real worker."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction

from labeling.models import Project
from quality.jobs import refresh_project_stats_job
from quality.models import ProjectQuality, QualityJob, RecomputeStatus
from quality.selectors import stale_project_ids
from quality.services import QUALITY_DELAY_SECONDS, project_quality_recompute, quality_request_recompute, quality_sweep
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.services import celery_worker, needs_postgres, needs_redis, wait_for


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    cache.clear()
    monkeypatch.setattr("labeling.queueing._known_eta", {})
    queued: list[int] = []
    monkeypatch.setattr(
        "quality.jobs.recompute_project_quality_job.apply_async", lambda args, **options: queued.append(args[0])
    )
    return queued


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_a_thousand_requests_queues_one_run(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    queued = _capture(monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr("labeling.queueing._clock", lambda: clock[0])
    for _ in range(1000):
        with transaction.atomic():
            quality_request_recompute(project_ids=[tenancy.project_a.pk])
    assert queued == [tenancy.project_a.pk]
    # The run starts: it clears the mark before reading, so the next request queues the next run.
    clock[0] += QUALITY_DELAY_SECONDS
    from quality.jobs import recompute_project_quality_job

    recompute_project_quality_job(tenancy.project_a.pk)
    with transaction.atomic():
        quality_request_recompute(project_ids=[tenancy.project_a.pk])
    assert queued == [tenancy.project_a.pk, tenancy.project_a.pk]


@pytest.mark.django_db(transaction=True)
def test_the_stats_job_asks_for_a_quality_recompute_and_a_rollback_asks_nothing(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    queued = _capture(monkeypatch)
    with pytest.raises(RuntimeError), transaction.atomic():
        quality_request_recompute(project_ids=[tenancy.project_a.pk])
        raise RuntimeError("rolled back")
    assert queued == []
    refresh_project_stats_job.run(tenancy.project_a.pk)
    assert queued == [tenancy.project_a.pk]


def test_the_sweep_finds_projects_with_judgments_newer_than_their_snapshot(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    queued = _capture(monkeypatch)
    judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id="s1", a_left=True)
    assert stale_project_ids() == [tenancy.project_a.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert quality_sweep() == [tenancy.project_a.pk]
    assert queued == [tenancy.project_a.pk]
    project_quality_recompute(project_id=tenancy.project_a.pk)
    assert stale_project_ids() == []
    assert ProjectQuality.objects.filter(project=tenancy.project_a, n_judgments=1).exists()


def test_a_failed_recompute_is_visible_and_writes_nothing(tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch) -> None:
    project: Project = tenancy.project_a
    judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id="f1", a_left=True)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("numbers went wrong")

    monkeypatch.setattr("quality.services.compute._annotator_figures", broken)
    with pytest.raises(RuntimeError):
        project_quality_recompute(project_id=project.pk)
    job = QualityJob.objects.get(project=project)
    assert job.status == RecomputeStatus.FAILED and "numbers went wrong" in job.error
    assert not ProjectQuality.objects.filter(project=project).exists()


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_recomputes_quality_after_a_judgment(tenancy: Tenancy) -> None:
    """End to end: a judgment's commit queues the stats job on Redis; the worker runs it, which queues the quality
    recompute; the worker runs that too and PostgreSQL holds the snapshot."""
    cache.clear()
    with celery_worker():
        judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id="w1", a_left=True)
        snapshot = wait_for(
            lambda: ProjectQuality.objects.filter(project=tenancy.project_a, n_judgments=1).first(),
            what="the worker to recompute the project's quality",
        )
    assert snapshot.n_annotators == 1
    assert QualityJob.objects.get(project=tenancy.project_a).status == RecomputeStatus.DONE
    factories.make_task(tenancy.project_a)  # the project stays usable afterwards


def test_requests_inside_one_transaction_register_once(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """An import or the demo seed asks a thousand times in one transaction: one request reaches the commit, even
    with jobs running in-process (no broker, no cache mark to coalesce on)."""
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    queued = _capture(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for _ in range(1000):
            quality_request_recompute(project_ids=[tenancy.project_a.pk, tenancy.project_b.pk])
    assert len(callbacks) == 2
    assert sorted(queued) == sorted([tenancy.project_a.pk, tenancy.project_b.pk])
