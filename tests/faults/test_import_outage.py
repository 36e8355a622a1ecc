"""Background imports through outages (issue 15, item 8): a run that meets a transient error (the database or Redis
unavailable) is retried by its worker after a back-off that doubles, the job back in the ``queued`` state with its
file in between; the last failure, or a permanent error at once, ends it ``failed`` with its file removed.

With a real Celery worker: Redis killed under a running import does not fail it (its progress goes to the cache's
per-process fallback) and the worker carries on when Redis is back; a database connection terminated mid-import
puts the job back in the queue and a retry completes it, once; a connection that keeps dropping ends the job
``failed`` after its retries, its file removed. (An import that cannot even be queued is refused with 503:
``test_redis_outage.py``.)
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection

from exchange import import_jobs
from exchange.import_jobs import import_job_create, import_job_run, import_retry_delay
from exchange.jobs import run_import_job
from labeling.models import ImportJob, ImportStatus, Task
from tests.conftest import Tenancy
from tests.faults.processes import needs_redis_server, private_redis, publish
from tests.services import celery_worker, needs_postgres, needs_redis, wait_for
from tests.services import test_database_url as database_url

# --- Import retries (in-process; a real worker below) ---------------------------------------------------------------
ROW = b'{"external_id": "r1", "prompt": "Q", "response_a": "A", "response_b": "B"}\n'


def _queued_job(tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ImportJob:
    settings.IMPORT_DIR = tmp_path
    monkeypatch.setattr(run_import_job, "delay", lambda job_id: None)  # run below, by the test
    return import_job_create(
        project=tenancy.project_a, kind="tasks", stream=io.BytesIO(ROW), options={"format": "jsonl"}
    )


def _failing(times: int, error: Exception, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``tasks_import`` raises ``error`` on its first ``times`` calls, then imports for real."""
    real, calls = import_jobs.tasks_import, []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(import_jobs, "tasks_import", flaky)
    return calls


def test_an_import_retries_a_transient_error_with_back_off_its_job_queued_with_its_file(
    tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _queued_job(tenancy, settings, tmp_path, monkeypatch)
    _failing(2, OperationalError("server closed the connection unexpectedly"), monkeypatch)
    waits: list[tuple[float, str, bool, str]] = []

    def sleep(seconds: float) -> None:
        row = ImportJob.objects.get(pk=job.pk)
        waits.append((seconds, row.status, Path(row.path).exists(), row.error))

    done = import_job_run(job_id=job.pk, max_retries=3, backoff=4.0, sleep=sleep)
    assert done is not None and done.status == ImportStatus.DONE and done.error == "" and done.attempts == 1
    assert [(status, kept) for _, status, kept, _ in waits] == [(ImportStatus.QUEUED, True)] * 2
    assert 2.0 <= waits[0][0] <= 4.0 and 4.0 <= waits[1][0] <= 8.0  # doubling, the second half random
    assert waits[0][3].startswith("retry 1 of 3 in") and "OperationalError" in waits[0][3]
    assert not Path(job.path).exists() and Task.objects.filter(project=tenancy.project_a, external_id="r1").count() == 1


def test_an_import_whose_transient_error_persists_fails_and_its_file_is_removed(
    tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _queued_job(tenancy, settings, tmp_path, monkeypatch)
    calls = _failing(99, OperationalError("could not connect to server"), monkeypatch)
    waits: list[float] = []
    with pytest.raises(OperationalError):
        import_job_run(job_id=job.pk, max_retries=2, backoff=1.0, sleep=waits.append)
    job.refresh_from_db()
    assert len(calls) == 3 and len(waits) == 2
    assert job.status == ImportStatus.FAILED and "could not connect to server" in job.error
    assert not Path(job.path).exists() and not Task.objects.filter(external_id="r1").exists()


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("format")])
def test_an_import_with_a_permanent_error_fails_at_once_and_its_file_is_removed(
    tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    job = _queued_job(tenancy, settings, tmp_path, monkeypatch)
    calls = _failing(99, error, monkeypatch)
    waits: list[float] = []
    with pytest.raises(type(error)):
        import_job_run(job_id=job.pk, max_retries=5, backoff=1.0, sleep=waits.append)
    job.refresh_from_db()
    assert len(calls) == 1 and waits == []
    assert job.status == ImportStatus.FAILED and type(error).__name__ in job.error and not Path(job.path).exists()


def test_the_retry_delay_doubles_with_jitter_in_its_second_half() -> None:
    for retry in range(6):
        delays = [import_retry_delay(retry, backoff=5) for _ in range(200)]
        ceiling = 5 * 2**retry
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(set(delays)) > 150


def test_the_worker_task_retries_and_in_process_jobs_do_not(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("exchange.jobs.import_job_run", lambda **kwargs: seen.append(kwargs))
    settings.CELERY_TASK_ALWAYS_EAGER, settings.IMPORT_RETRY_MAX, settings.IMPORT_RETRY_BACKOFF = False, 4, 3
    run_import_job.run(7)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # a request must not sleep
    run_import_job.run(8)
    assert seen == [
        {"job_id": 7, "max_retries": 4, "backoff": 3},
        {"job_id": 8, "max_retries": 0, "backoff": 3},
    ]


# --- Imports in a real worker -------------------------------------------------------------------------------------
def _rows(n: int, prefix: str) -> bytes:
    line = '{"external_id": "%s%d", "prompt": "Question %d", "response_a": "An answer", "response_b": "Another"}\n'
    return "".join(line % (prefix, i, i) for i in range(n)).encode()


def _spooled(tenancy: Tenancy, data: bytes, monkeypatch: pytest.MonkeyPatch) -> ImportJob:
    """An import job with its file, not queued: the test delivers it."""
    monkeypatch.setattr(run_import_job, "delay", lambda job_id: None)
    return import_job_create(
        project=tenancy.project_a, kind="tasks", stream=io.BytesIO(data), options={"format": "jsonl"}
    )


def _status(job: ImportJob) -> str:
    return ImportJob.objects.get(pk=job.pk).status


def _import_backend(job: ImportJob) -> int | None:
    """The database session running ``job``: the one holding its advisory lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND granted",
            [import_jobs._IMPORT_LOCK, job.pk],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _terminate(pid: int) -> None:
    with psycopg.connect(database_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])


@needs_postgres
@needs_redis
@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_an_import_running_while_redis_dies_completes_and_the_worker_carries_on(
    tenancy: Tenancy, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import reports progress to the cache as it reads: Redis dying under it failed the job within a second."""
    settings.IMPORT_DIR = tmp_path / "imports"
    rows = 60_000
    job = _spooled(tenancy, _rows(rows, "big-"), monkeypatch)
    with (
        private_redis(tmp_path) as server,
        celery_worker(env={"REDIS_URL": server.url, "IMPORT_DIR": str(settings.IMPORT_DIR)}),
    ):
        wait_for(server.consumers, what="the worker to connect to the private Redis")
        publish(server.url, run_import_job, job.pk)
        wait_for(lambda: server.client().keys("*import-job*"), timeout=60, what="the import to report progress")
        server.kill()
        killed_at = time.time()
        done = wait_for(
            lambda: (
                (row := ImportJob.objects.get(pk=job.pk)).status in (ImportStatus.DONE, ImportStatus.FAILED) and row
            ),
            timeout=180,
            what="the import to finish",
        )
        assert (done.status, done.error) == (ImportStatus.DONE, ""), done.error
        assert done.finished_at.timestamp() > killed_at, "the import finished before Redis was killed"
        assert done.report["created"] == rows and not Path(done.path).exists()
        # Redis back (empty): the worker reconnects and runs the next import.
        server.start()
        wait_for(server.consumers, what="the worker to reconnect")
        second = _spooled(tenancy, _rows(3, "next-"), monkeypatch)
        publish(server.url, run_import_job, second.pk)
        wait_for(lambda: _status(second) == ImportStatus.DONE, what="the worker to run the next import")
    assert Task.objects.filter(project=tenancy.project_a, external_id__startswith="big-").count() == rows


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_an_import_whose_database_connection_drops_is_queued_again_and_completes(
    tenancy: Tenancy, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_DIR = Path(settings.VAR_DIR) / "imports"  # shared with the worker process (its default)
    rows = 40_000
    job = _spooled(tenancy, _rows(rows, "drop-"), monkeypatch)
    with celery_worker(env={"IMPORT_RETRY_BACKOFF": "2"}):
        publish(settings.REDIS_URL, run_import_job, job.pk)
        backend = wait_for(lambda: _import_backend(job), what="the worker to start the import")
        _terminate(backend)  # a failover, a restart, an operator: the import's transaction is gone
        queued = wait_for(
            lambda: (
                (row := ImportJob.objects.get(pk=job.pk)).status == ImportStatus.QUEUED
                and row.error.startswith("retry 1 of 5")
                and row
            ),
            what="the job to be queued again for its retry",
        )
        assert Path(queued.path).exists() and "OperationalError" in queued.error
        done = wait_for(
            lambda: (
                (row := ImportJob.objects.get(pk=job.pk)).status in (ImportStatus.DONE, ImportStatus.FAILED) and row
            ),
            timeout=180,
            what="the retry to finish the import",
        )
    assert (done.status, done.error, done.attempts) == (ImportStatus.DONE, "", 1)
    assert done.report["created"] == rows and not Path(done.path).exists()
    assert Task.objects.filter(project=tenancy.project_a, external_id__startswith="drop-").count() == rows


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_an_import_whose_connection_keeps_dropping_ends_failed_and_its_file_is_removed(
    tenancy: Tenancy, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_DIR = Path(settings.VAR_DIR) / "imports"
    job = _spooled(tenancy, _rows(40_000, "lost-"), monkeypatch)
    with celery_worker(env={"IMPORT_RETRY_BACKOFF": "1", "IMPORT_RETRY_MAX": "2"}):
        publish(settings.REDIS_URL, run_import_job, job.pk)
        killed: set[int] = set()
        for attempt in range(3):  # the first run and its two retries
            backend = wait_for(
                lambda: (pid := _import_backend(job)) not in killed and pid, what=f"attempt {attempt + 1} to start"
            )
            _terminate(backend)
            killed.add(backend)
        failed = wait_for(lambda: _status(job) == ImportStatus.FAILED, what="the job to fail")
    job.refresh_from_db()
    assert failed and "OperationalError" in job.error and not Path(job.path).exists()
    assert not Task.objects.filter(external_id__startswith="lost-").exists()


def test_a_lost_connection_is_named_as_one_whichever_driver_class_raised_it() -> None:
    """psycopg raises ``AdminShutdown`` when the server ends the session (as ``pg_terminate_backend`` does); the
    job's error still says it was an ``OperationalError``, as Django's wrapper would."""
    import psycopg.errors

    assert import_jobs._describe(psycopg.errors.AdminShutdown("terminating connection")).startswith(
        "OperationalError (AdminShutdown): "
    )
    assert import_jobs._describe(OperationalError("server closed the connection")).startswith("OperationalError: ")
