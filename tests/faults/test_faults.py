"""Faults, with real processes: a worker killed mid-recompute, Redis restarted under a worker, the database
connection dropped during a submit.

- A prefork child killed with ``kill -9`` mid-recompute: ``reject_on_worker_lost`` puts the job back and the same
  worker runs it again; the whole worker killed mid-recompute: its unacknowledged job goes back to the queue after
  the visibility timeout and a new worker runs it. Either way nothing half-written is left, and the stored results
  equal a from-scratch recompute.
- Redis killed and started again (empty) while a worker holds queued jobs: the worker reconnects, the queued jobs
  are gone, and the quality sweep finds the stale projects and recomputes them.
- The request's database connection terminated by the server in the middle of a submit: 503 with ``Retry-After``
  (an HTML page for the form post, JSON for the page's script and the API); the client's retry with the same
  client id stores exactly one judgment, and a second retry stores nothing more.
- Bounded: quality and import jobs have time limits and fail visibly over them; a recompute whose deliveries keep
  killing their worker gives up (FAILED) after ``MAX_LOST_RUNS``; a second delivery of a running import (the
  visibility timeout passed) leaves it to the worker running it.

The Redis test runs its own ``redis-server`` on a free port: the shared one is never restarted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from api import base as api_base
from exchange.import_jobs import import_job_create, import_job_run
from labeling.apikeys import api_key_create
from labeling.middleware import OUTAGE_MESSAGE, RETRY_AFTER_SECONDS
from labeling.models import ImportJob, ImportStatus, Judgment, Organization, Project, Task
from labeling.queueing import delivery_start
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob, RecomputeStatus, TaskConsensus
from quality.selectors import stale_project_ids
from quality.services import progress_key, project_quality_recompute
from routing import sql
from routing.models import Lease, LeaseState
from routing.services import judgment_record
from tests import factories
from tests.conftest import Tenancy
from tests.faults.processes import needs_redis_server, private_redis, publish
from tests.services import celery_worker, needs_postgres, needs_redis, wait_for
from tests.services import test_database_url as database_url

# --- Helpers ----------------------------------------------------------------------------------------------------


def _big_project(organization: Organization, *, tasks: int, annotators: int = 60) -> Project:
    """A pairwise project of ``tasks`` tasks judged three times each (10% gold, eight models), written by PostgreSQL
    itself (``generate_series``, a few seconds): big enough that the recompute's writes take a while to catch."""
    project = factories.make_project(organization, min_judgments=3, max_judgments=5)
    people = [factories.make_member(organization).pk for _ in range(annotators)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.25)")
        cursor.execute(
            """
            INSERT INTO labeling_task (organization_id, project_id, external_id, payload, meta, gold_label, status,
                created_at, updated_at, extra_judgments, is_restricted, is_sensitive, is_started, judgment_count,
                rank, resolution, shuffle)
            SELECT %(org)s, %(project)s, 'big-' || n,
                jsonb_build_object('prompt', 'Question ' || n, 'response_a', repeat('a', 20 + n %% 300),
                    'response_b', repeat('b', 20 + n * 7 %% 300), 'model_a', 'model-' || n %% 8,
                    'model_b', 'model-' || (n + 1 + n %% 7) %% 8),
                jsonb_build_object('truth', truth), CASE WHEN n %% 10 = 0 THEN truth END, 'complete', now(), now(),
                0, false, false, true, 3, 0, '', random()
            FROM generate_series(1, %(tasks)s) n, LATERAL (SELECT CASE WHEN n %% 5 < 3 THEN 'a' ELSE 'b' END) t(truth)
            """,
            {"org": organization.pk, "project": project.pk, "tasks": tasks},
        )
        # Three distinct annotators per task (ids 7 apart in the list); good ones agree with the truth 80% of
        # the time, every seventh annotator clicks at random.
        cursor.execute(
            """
            INSERT INTO labeling_annotation (organization_id, project_id, task_id, annotator_id, label, a_left,
                seconds_on_task, client_id, created_at)
            SELECT organization_id, project_id, id, who,
                CASE WHEN who_index %% 7 = 0 THEN (ARRAY['a', 'b', 'tie', 'both_bad'])[1 + floor(r * 4)::int]
                     WHEN r < 0.8 THEN truth WHEN r < 0.9 THEN CASE truth WHEN 'a' THEN 'b' ELSE 'a' END
                     WHEN r < 0.97 THEN 'tie' ELSE 'both_bad' END,
                random() < 0.5, 5 + random() * 30, 'big-' || id || '-' || k, now()
            FROM (
                SELECT t.organization_id, t.project_id, t.id, k, t.meta ->> 'truth' AS truth, random() AS r,
                    (t.id + 7 * k) %% %(n)s AS who_index, (%(people)s::bigint[])[1 + (t.id + 7 * k) %% %(n)s] AS who
                FROM labeling_task t, generate_series(0, 2) k
                WHERE t.project_id = %(project)s
            ) judged
            """,
            {"project": project.pk, "people": people, "n": annotators},
        )
        cursor.execute("ANALYZE labeling_task")
        cursor.execute("ANALYZE labeling_annotation")
    return project


TASKS = 20_000  # 60,000 judgments: the writes of the recompute take a good fraction of a second
_VOLATILE = {"id", "computed_at", "seconds"}  # when and how fast, not what


def _stored(project: Project) -> dict[str, list[str]]:
    """Everything the recompute stores about ``project``, without ids and timings, in a stable order."""

    def rows(model: type[Model]) -> list[str]:
        values = model.objects.filter(project=project).values()  # type: ignore[attr-defined]
        return sorted(repr(sorted((k, v) for k, v in row.items() if k not in _VOLATILE)) for row in values)

    return {model.__name__: rows(model) for model in (TaskConsensus, AnnotatorScore, ModelRanking, ProjectQuality)}


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _kill(*pids: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _job(project: Project) -> QualityJob | None:
    return QualityJob.objects.filter(project=project).first()


def _running(project: Project, run: int) -> Callable[[], bool]:
    """Run number ``run`` of the project's recompute has started and not finished."""

    def probe() -> bool:
        job = _job(project)
        return job is not None and job.runs == run and job.status == RecomputeStatus.RUNNING

    return probe


# --- 1. A worker killed mid-recompute ---------------------------------------------------------------------------
QUALITY_LOCK = (0x51A7, "the advisory lock key quality.services.recompute._lock takes per project")


def _waiting_for_the_lock() -> set[int]:
    """Backends inside a recompute's transaction, waiting for the project's lock (held by the test). A killed
    worker's backend keeps waiting until it gets the lock and finds its client gone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory'"
        )
        return {row[0] for row in cursor.fetchall()}


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] > 0


def _new_waiters(known: set[int]) -> Callable[[], set[int]]:
    return lambda: _waiting_for_the_lock() - known


def _until_saving(project: Project, *, timeout: float = 30.0) -> None:
    """Poll the job's progress (the cache) closely: it says "saving" just before the writes start."""
    deadline = time.monotonic() + timeout
    while (cache.get(progress_key(project.pk)) or {}).get("step") != "saving":
        assert time.monotonic() < deadline, "the recompute never reached its writes"
        time.sleep(0.005)


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_recompute_is_redelivered_and_stores_a_from_scratch_result() -> None:
    """Kill 1: the prefork child running the job, inside its transaction (held at the project's lock by the test).
    Kill 2: the whole worker, in the middle of the job's writes. A new worker finishes it; nothing half-written is
    ever visible, and the result equals a recompute from scratch."""
    from quality.jobs import recompute_project_quality_job

    project = _big_project(factories.make_org(), tasks=TASKS)
    cache.delete(progress_key(project.pk))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [QUALITY_LOCK[0], project.pk])
    with celery_worker(concurrency=2) as worker:
        recompute_project_quality_job.delay(project.pk)
        wait_for(_running(project, 1), what="the worker to start the recompute")
        first = wait_for(_waiting_for_the_lock, what="the recompute to wait for the project's lock")
        _kill(*_children(worker.pid))  # the parent sees its child lost and puts the job back (reject_on_worker_lost)
        wait_for(_running(project, 2), what="the job to be redelivered after its child was killed")
        wait_for(_new_waiters(first), what="the redelivered recompute to wait for the lock")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [QUALITY_LOCK[0], project.pk])
        _until_saving(project)
        _kill(worker.pid, *_children(worker.pid))  # a machine lost: the job stays unacknowledged on Redis
        worker.wait()
    assert not TaskConsensus.objects.filter(project=project).exists(), "the kill came after the commit"
    assert not ProjectQuality.objects.filter(project=project).exists()
    # A new worker (the visibility timeout shortened for the test) takes the abandoned job and finishes it.
    with celery_worker(env={"CELERY_VISIBILITY_TIMEOUT": "1"}):
        wait_for(
            lambda: (job := _job(project)) is not None and job.status == RecomputeStatus.DONE,
            what="a new worker to finish the abandoned recompute",
        )
    job = _job(project)
    assert job is not None and job.runs == 3 and job.error == ""
    stored = _stored(project)
    assert len(stored["TaskConsensus"]) == TASKS and len(stored["ProjectQuality"]) == 1
    project_quality_recompute(project_id=project.pk)
    assert _stored(project) == stored


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_recompute_that_keeps_killing_its_worker_gives_up_visibly(tenancy: Tenancy) -> None:
    """Each delivery dies mid-job (held at the lock, its child killed): after ``MAX_LOST_RUNS`` the next delivery
    records the job as failed instead of running it, and the message is acknowledged."""
    from quality.jobs import MAX_LOST_RUNS, recompute_project_quality_job

    project = tenancy.project_a
    judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id="p1", a_left=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [QUALITY_LOCK[0], project.pk])
    try:
        with celery_worker(concurrency=2) as worker:
            recompute_project_quality_job.delay(project.pk)
            seen: set[int] = set()
            for run in range(1, MAX_LOST_RUNS + 1):
                wait_for(_running(project, run), what=f"delivery {run} to start")
                seen |= wait_for(_new_waiters(seen), what=f"delivery {run} to wait for the lock")
                _kill(*_children(worker.pid))
            job = wait_for(
                lambda: QualityJob.objects.filter(project=project, status=RecomputeStatus.FAILED).first(),
                what="the job to give up",
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [QUALITY_LOCK[0], project.pk])
    assert job.runs == MAX_LOST_RUNS and f"gave up after {MAX_LOST_RUNS} runs" in job.error
    assert not ProjectQuality.objects.filter(project=project).exists()


# --- 2. Redis restarted under a worker --------------------------------------------------------------------------
@needs_postgres
@needs_redis
@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_after_a_redis_restart_the_worker_reconnects_and_the_sweep_recomputes_stale_projects(
    tenancy: Tenancy, tmp_path: Path
) -> None:
    from quality.jobs import recompute_project_quality_job, sweep_quality_job

    projects = sorted([tenancy.project_a.pk, tenancy.project_b.pk])
    for task, annotator in ((tenancy.task_a, tenancy.annotator_a), (tenancy.task_b, tenancy.outsider_b)):
        judgment_record(task=task, annotator=annotator, label="a", client_id=f"r-{task.pk}", a_left=True)
    assert stale_project_ids() == projects
    with private_redis(tmp_path) as server, celery_worker(env={"REDIS_URL": server.url}) as worker:

        def connected() -> int:
            assert worker.poll() is None, "the worker exited: see var/test-celery-worker.log"
            return server.consumers()

        wait_for(connected, what="the worker to connect to the private Redis")
        # Each project's recompute is queued with a delay, as judgments queue it: the worker holds the messages
        # (unacknowledged) until then. A restart of a Redis without persistence loses both, and the cache's marks.
        for project_id in projects:
            publish(server.url, recompute_project_quality_job, project_id, countdown=600)
        wait_for(lambda: server.client().hlen("unacked") == 2, what="the worker to hold the queued jobs")
        server.kill()
        server.start()
        assert server.client().hlen("unacked") == 0  # the held jobs went with the old Redis
        wait_for(connected, what="the worker to reconnect after the restart")
        publish(server.url, sweep_quality_job)  # what beat sends every few minutes
        wait_for(lambda: not stale_project_ids(), what="the sweep to recompute the stale projects")
    for project_id in projects:
        assert ProjectQuality.objects.get(project_id=project_id).n_judgments == 1
        job = QualityJob.objects.get(project_id=project_id)
        assert job.status == RecomputeStatus.DONE and job.runs == 1  # the sweep's run, not the lost one


# --- 3. The database connection dropped during a submit ---------------------------------------------------------


def _dropping(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, *, after: bool) -> list[int]:
    """Wrap ``target.name`` so that, once, the server terminates this request's database connection (as a failover
    or an operator's ``pg_terminate_backend`` does) just before or just after the real call."""
    real = getattr(target, name)
    killed: list[int] = []

    def drop() -> None:
        if killed:
            return
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with psycopg.connect(database_url(), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])
        killed.append(pid)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not after:
            drop()
        result = real(*args, **kwargs)
        if after:
            drop()
        return result

    monkeypatch.setattr(target, name, wrapper)
    return killed


def _finished(response: Any) -> Any:
    """What Django does after every response in production (``request_finished``) and its test client skips:
    close a connection that errored and no longer works, so the next request opens a new one."""
    close_old_connections()
    return response


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("from_script", [False, True], ids=["form-post", "fetch-post"])
def test_a_submit_whose_connection_drops_answers_503_and_its_retries_store_one_judgment(
    client: Client,
    tenancy: Tenancy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    from_script: bool,
) -> None:
    url, data = factories.leased_submit(client, tenancy.annotator_a, tenancy.project_a)
    headers = {"X-Requested-With": "fetch"} if from_script else {}
    # The judgment is written, then the connection dies before the lease is marked and the transaction commits.
    killed = _dropping(monkeypatch, sql, "insert_judgment", after=True)
    with caplog.at_level(logging.WARNING, logger="concord.outage"):
        dropped = _finished(client.post(url, data, headers=headers))
    assert killed, "the connection was not dropped"
    assert dropped.status_code == 503 and dropped["Retry-After"] == str(RETRY_AFTER_SECONDS)
    if from_script:
        assert dropped.json() == {"error": OUTAGE_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}
    else:
        assert dropped["Content-Type"].startswith("text/html") and OUTAGE_MESSAGE in dropped.content.decode()
    assert "database unavailable" in caplog.text and url in caplog.text
    assert not Judgment.objects.filter(task=tenancy.task_a).exists()  # rolled back with the connection
    for _ in range(2):  # the client's retry with the same client id, then one more
        retry = _finished(client.post(url, data, headers=headers))
        assert retry.status_code == (200 if from_script else 302)
        stored = Judgment.objects.filter(task=tenancy.task_a)
        assert [a.client_id for a in stored] == [data["client_id"]]
    assert Lease.objects.get(task=tenancy.task_a).state == LeaseState.SUBMITTED


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_api_call_whose_connection_drops_answers_503_json(
    client: Client, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = api_key_create(organization=tenancy.org_a, name="pipeline")
    url = reverse("api-project", args=[tenancy.project_a.pk])
    headers = {"Authorization": f"Bearer {key}"}
    killed = _dropping(monkeypatch, api_base, "access_project", after=False)
    dropped = _finished(client.get(url, headers=headers))
    assert killed and dropped.status_code == 503 and dropped["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert dropped.json() == {"detail": OUTAGE_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}
    assert _finished(client.get(url, headers=headers)).status_code == 200


# --- The 503 itself, on any database (the error simulated) ------------------------------------------------------


def _broken(error: Exception) -> Callable[..., Any]:
    def raise_it(*args: Any, **kwargs: Any) -> Any:
        raise error

    return raise_it


@pytest.mark.parametrize("error", [OperationalError("server closed the connection"), InterfaceError("closed")])
def test_a_database_error_in_a_page_answers_a_503_page(
    client: Client, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    url, data = factories.leased_submit(client, tenancy.annotator_a, tenancy.project_a)
    monkeypatch.setattr("pages.work.judgment_submit", _broken(error))
    page = client.post(url, data)
    assert page.status_code == 503 and page["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "Briefly unavailable" in page.content.decode()
    script = client.post(url, data, headers={"X-Requested-With": "fetch"})
    assert script.status_code == 503 and script.json()["retry_after"] == RETRY_AFTER_SECONDS


def test_a_database_error_in_the_api_answers_503_json(
    client: Client, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = api_key_create(organization=tenancy.org_a, name="pipeline")
    monkeypatch.setattr(api_base, "access_project", _broken(OperationalError("the database system is starting up")))
    response = client.get(
        reverse("api-project", args=[tenancy.project_a.pk]), headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 503 and response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json()["detail"] == OUTAGE_MESSAGE


def test_a_database_error_in_a_middleware_answers_503_too(tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session is saved by its middleware on the way out, after the view: an outage there is a 503 as well."""
    client = Client(raise_request_exception=False)
    client.force_login(tenancy.admin_a)
    store = import_module(settings.SESSION_ENGINE).SessionStore
    monkeypatch.setattr(store, "save", _broken(OperationalError("server closed the connection unexpectedly")))
    switch = {"organization": tenancy.org_a.pk, "next": "/work/"}
    page = client.post(reverse("organization-switch"), switch)
    assert page.status_code == 503 and page["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert "Briefly unavailable" in page.content.decode()
    monkeypatch.setattr(store, "save", _broken(RuntimeError("a bug")))
    assert client.post(reverse("organization-switch"), switch).status_code == 500


def test_other_errors_are_not_turned_into_503(
    client: Client, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, data = factories.leased_submit(client, tenancy.annotator_a, tenancy.project_a)
    monkeypatch.setattr("pages.work.judgment_submit", _broken(RuntimeError("a bug")))
    with pytest.raises(RuntimeError):
        client.post(url, data)


# --- Bounded: time limits, runs that never finish, a second delivery --------------------------------------------


def test_quality_and_import_jobs_have_time_limits() -> None:
    from exchange.jobs import run_import_job
    from quality.jobs import recompute_project_quality_job

    for task in (recompute_project_quality_job, run_import_job):
        assert 0 < task.soft_time_limit < task.time_limit, task.name
        assert task.acks_late and task.reject_on_worker_lost, task.name


def test_a_recompute_over_its_soft_time_limit_fails_visibly(tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch) -> None:
    from quality.jobs import recompute_project_quality_job

    judgment_record(task=tenancy.task_a, annotator=tenancy.annotator_a, label="a", client_id="t1", a_left=True)
    monkeypatch.setattr("quality.services.compute._compute", _broken(SoftTimeLimitExceeded()))
    with pytest.raises(SoftTimeLimitExceeded):
        recompute_project_quality_job.apply((tenancy.project_a.pk,), task_id="over-time", throw=True)
    job = QualityJob.objects.get(project=tenancy.project_a)
    assert job.status == RecomputeStatus.FAILED and "SoftTimeLimitExceeded" in job.error
    assert not ProjectQuality.objects.filter(project=tenancy.project_a).exists()


def test_a_recompute_whose_earlier_runs_never_finished_gives_up(tenancy: Tenancy) -> None:
    from quality.jobs import MAX_LOST_RUNS, recompute_project_quality_job

    for _ in range(MAX_LOST_RUNS):
        delivery_start("lost-runs")  # deliveries whose worker died: they never reached delivery_finish
    recompute_project_quality_job.apply((tenancy.project_a.pk,), task_id="lost-runs", throw=True)
    job = QualityJob.objects.get(project=tenancy.project_a)
    assert job.status == RecomputeStatus.FAILED and "gave up" in job.error
    # The count went with the message: the next request's run (a new message) recomputes.
    recompute_project_quality_job.apply((tenancy.project_a.pk,), task_id="next", throw=True)
    assert QualityJob.objects.get(project=tenancy.project_a).status == RecomputeStatus.DONE


def test_an_import_over_its_soft_time_limit_fails_visibly(
    tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    settings.IMPORT_DIR = tmp_path
    job = import_job_create(
        project=tenancy.project_a, kind="tasks", stream=io.BytesIO(b"{}"), options={"format": "jsonl"}
    )
    monkeypatch.setattr("exchange.import_jobs.tasks_import", _broken(SoftTimeLimitExceeded()))
    with pytest.raises(SoftTimeLimitExceeded):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "SoftTimeLimitExceeded" in job.error
    assert import_job_run(job_id=job.pk).status == ImportStatus.FAILED  # a redelivery does not run it again


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_delivery_of_a_running_import_leaves_it_to_the_running_worker(
    tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis hands an unacknowledged message out again after the visibility timeout, shorter than an import may
    run: the second delivery must neither import the file again nor overwrite the running job's state."""
    from exchange.import_jobs import _IMPORT_LOCK
    from exchange.jobs import run_import_job

    settings.IMPORT_DIR = tmp_path
    monkeypatch.setattr(run_import_job, "delay", lambda job_id: None)  # this test delivers it
    row = b'{"external_id": "d1", "prompt": "Q", "response_a": "A", "response_b": "B"}\n'
    job = import_job_create(
        project=tenancy.project_a, kind="tasks", stream=io.BytesIO(row), options={"format": "jsonl"}
    )
    with psycopg.connect(database_url(), autocommit=True) as running:  # the worker running the first delivery
        running.execute("SELECT pg_advisory_lock(%s, %s)", [_IMPORT_LOCK, job.pk])
        first_worker = running.info.backend_pid
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, attempts=1)
        second = import_job_run(job_id=job.pk)
        assert second is not None and (second.status, second.attempts) == (ImportStatus.RUNNING, 1)
        assert Path(job.path).exists() and not Task.objects.filter(external_id="d1").exists()
    wait_for(lambda: not _backend_alive(first_worker), what="the first worker's session to end")
    # That worker died, and its connection with it: a delivery now runs the job.
    done = import_job_run(job_id=job.pk)
    assert done is not None and done.status == ImportStatus.DONE and done.attempts == 2
    assert Task.objects.filter(project=tenancy.project_a, external_id="d1").count() == 1


def test_a_closed_broker_connection_raises_a_connection_error_not_a_crash() -> None:
    """config/celery.py's guard: closing a Redis channel whose connection was already collected (the broker went
    away while the worker held unacknowledged messages) raises what ``ignore_errors`` ignores."""
    from kombu.transport import redis as kombu_redis

    channel = kombu_redis.Channel.__new__(kombu_redis.Channel)
    channel.connection = type("Collected", (), {"client": None})()
    with pytest.raises(redis.ConnectionError):
        channel._connparams()
