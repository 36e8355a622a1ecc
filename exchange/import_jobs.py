"""Large imports run by a Celery worker: the API spools the body to ``IMPORT_DIR`` and answers 202 at once;
``import_job_run`` imports it with the same code as a direct import, reporting progress through the cache (the
import's own transaction is invisible to other connections until it commits).

A job is safe to run twice: the import is one transaction, so a worker killed mid-way leaves nothing behind and
the redelivered job starts over; a job already done or failed is not run again. ``IMPORT_DIR`` must be shared by
the web and worker machines (a volume), like a media directory.

Outages. A job that cannot be queued (the broker is down) is not kept: its row and file are removed and the API
answers 503 with ``Retry-After``, so nothing waits forever for a message that was never sent. A run that meets a
transient error (the database or Redis unavailable, ``labeling.outages``) is retried by the same worker after a
back-off that doubles each time (with jitter), ``IMPORT_RETRY_MAX`` times: between attempts the job is ``queued``
again, with its file and the reason in ``error``. The retry is in the worker, not a new message, because the
failing dependency may be the broker itself: Celery's ``retry`` publishes a message, and a publish that fails
drops the job. The last failure, or any other error (a bug, a file that cannot be read), marks the job ``failed``
with the error and removes its file.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from exchange.judgment_import import judgments_import, predictions_import
from exchange.reading import READ_CHUNK, CountingReader, ImportReport, check_options
from exchange.task_import import tasks_import
from labeling.models import ImportJob, ImportStatus, Project
from labeling.outages import BROKER_ERRORS, DATABASE_ERRORS, JobQueueUnavailable, outage_reason
from labeling.queueing import job_enqueue, job_queue_known_down

logger = logging.getLogger("concord.imports")

KINDS: Final = ("tasks", "annotations", "predictions")
# Runs that started and never finished (their worker was killed) before the job gives up. A run that ended in a
# transient error and was retried does not count: ``IMPORT_RETRY_MAX`` bounds those.
MAX_ATTEMPTS: Final = 3
TRANSIENT_ERRORS: Final = (*DATABASE_ERRORS, *BROKER_ERRORS)
_IMPORT_LOCK: Final = 0x1A9B  # advisory lock namespace: one running import per job id


def _progress_key(job_id: int) -> str:
    return f"concord:import-job:{job_id}"


def import_job_create(*, project: Project, kind: str, stream: IO[bytes], options: dict[str, Any]) -> ImportJob:
    """Spool ``stream`` to a file and queue its import (after the transaction commits). Raises
    ``JobQueueUnavailable`` when the broker is down, with nothing left behind (no job, no file)."""
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    check_options(options["format"], options.get("mode", "create"), options.get("on_error", "abort"))
    if job_queue_known_down():
        raise JobQueueUnavailable("the broker is unavailable")
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.upload"
    size = 0
    with path.open("wb") as handle:
        while chunk := stream.read(READ_CHUNK):
            size += len(chunk)
            if size > settings.IMPORT_MAX_BYTES:
                handle.close()
                path.unlink(missing_ok=True)
                raise OverflowError("the file is larger than IMPORT_MAX_BYTES")
            handle.write(chunk)
    try:
        job = ImportJob.objects.create(
            organization_id=project.organization_id,
            project=project,
            kind=kind,
            options=options,
            path=str(path),
            size=size,
        )
    except BaseException:
        path.unlink(missing_ok=True)  # the database refused the job: its file must not stay behind
        raise
    job_id = job.pk

    def enqueue() -> None:
        if not job_enqueue("exchange.jobs.run_import_job", (job_id,)):
            # Never sent: nothing would ever run it. Forget it (the client is told to send the file again).
            path.unlink(missing_ok=True)
            ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).delete()
            raise JobQueueUnavailable("the import could not be queued")

    transaction.on_commit(enqueue)
    return job


def import_job_progress(job: ImportJob) -> dict[str, Any]:
    """What to show about ``job``: its state, and while it runs the rows and bytes read so far."""
    live = (cache.get(_progress_key(job.pk)) or {}) if job.status == ImportStatus.RUNNING else {}
    bytes_read = live.get("bytes_read", job.bytes_read)
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "size": job.size,
        "bytes_read": bytes_read,
        "rows": live.get("rows", job.rows),
        "progress": round(bytes_read / job.size, 4) if job.size else 1.0,
        "report": job.report,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def import_retry_delay(retry: int, *, backoff: float) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): ``backoff`` doubled each time, the second half of
    each wait random, so that workers that failed together do not all come back at the same instant."""
    ceiling = backoff * 2**retry
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def import_job_run(
    *, job_id: int, max_retries: int = 0, backoff: float = 2.0, sleep: Callable[[float], None] = time.sleep
) -> ImportJob | None:
    """Run the import of job ``job_id`` (the Celery task's body); ``None`` when the job is gone.

    A transient error is retried up to ``max_retries`` times after :func:`import_retry_delay`, the job ``queued``
    in between with its file; called directly (``max_retries=0``) the first error fails the job.

    A second delivery while a worker still runs the job (Redis hands an unacknowledged message out again after the
    visibility timeout, shorter than an import may take) leaves it to that worker: on PostgreSQL the running job
    holds a lock on its id for as long as its connection lives, so a killed worker's job can be run again.
    """
    retry = 0
    while True:
        last = retry >= max_retries
        try:
            _usable_connection()
            with _running_alone(job_id) as alone:
                if not alone:
                    return ImportJob.objects.filter(pk=job_id).first()
                return _run(job_id, last_attempt=last)
        except _RetryLater as pending:
            reason = pending.reason
        except TRANSIENT_ERRORS as error:  # before or after the import itself: the job's row, its lock
            if last:
                raise
            reason = _describe(error)
        delay = import_retry_delay(retry, backoff=backoff)
        retry += 1
        logger.warning("import job %s: %s; retry %d of %d in %.1f s", job_id, reason, retry, max_retries, delay)
        _job_note(job_id, f"retry {retry} of {max_retries} in {delay:.0f} s after: {reason}")
        sleep(delay)


class _RetryLater(Exception):
    """A run met a transient error and its job is back in the queue state: run it again after a back-off."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(error: BaseException) -> str:
    """The error's kind and a safe reason. A lost connection is named by its DB-API class whichever driver class
    raised it (psycopg's ``AdminShutdown`` when the server ended the session, Django's wrapper elsewhere)."""
    name = type(error).__name__
    for kind in ("OperationalError", "InterfaceError"):
        if name != kind and any(base.__name__ == kind for base in type(error).__mro__):
            name = f"{kind} ({name})"
            break
    return f"{name}: {outage_reason(error)}"


def _usable_connection() -> None:
    """After a database error the connection may be dead (psycopg's own errors do not even mark it): replace it
    before the job's state is written. Never inside a transaction, where the import's own work is."""
    if connection.in_atomic_block or connection.connection is None:
        return
    if connection.errors_occurred or not connection.is_usable():
        connection.close()


def _job_note(job_id: int, note: str) -> None:
    """Say on a queued job why it waits (best effort: the database may still be away, and the retry comes anyway)."""
    try:
        _usable_connection()
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(error=note[:2000])
    except DATABASE_ERRORS as error:
        logger.warning("import job %s: could not record its retry (%s)", job_id, outage_reason(error))


@contextmanager
def _running_alone(job_id: int) -> Iterator[bool]:
    if connection.vendor != "postgresql":
        yield True  # SQLite: one writer at a time, and no broker to deliver a job twice
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_IMPORT_LOCK, job_id])
        alone = bool(cursor.fetchone()[0])
    try:
        yield alone
    finally:
        if alone:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:  # a dead connection freed it
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_LOCK, job_id])


def _run(job_id: int, *, last_attempt: bool) -> ImportJob | None:
    job = ImportJob.objects.select_related("project").filter(pk=job_id).first()
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    job.attempts += 1
    if job.attempts > MAX_ATTEMPTS:
        return _finish(job, ImportStatus.FAILED, error=f"gave up after {MAX_ATTEMPTS} attempts (the worker stopped)")
    job.status, job.started_at = ImportStatus.RUNNING, timezone.now()
    job.save(update_fields=["status", "started_at", "attempts"])
    options = job.options
    try:
        with Path(job.path).open("rb") as handle:
            counting = CountingReader(handle)

            def progress(rows: int) -> None:
                cache.set(_progress_key(job.pk), {"rows": rows, "bytes_read": counting.position}, timeout=86_400)

            common: dict[str, Any] = {
                "project": job.project,
                "stream": counting,
                "fmt": options["format"],
                "on_error": options.get("on_error", "abort"),
                "progress": progress,
            }
            report: ImportReport
            if job.kind == "tasks":
                report = tasks_import(**common, mode=options.get("mode", "create"))
            elif job.kind == "annotations":
                report = judgments_import(**common, create_annotators=bool(options.get("create_annotators")))
            else:
                report = predictions_import(**common)
            job.bytes_read, job.rows = counting.position, report.rows
    except FileNotFoundError:
        return _finish(job, ImportStatus.FAILED, error="the uploaded file is gone (IMPORT_DIR must be shared)")
    except TRANSIENT_ERRORS as error:  # the import rolled back; another attempt may well succeed
        if not last_attempt:
            _requeue(job)
            raise _RetryLater(_describe(error)) from error
        _finish(job, ImportStatus.FAILED, error=repr(error)[:2000])
        raise
    except Exception as error:  # the import rolled back; the job records why
        _finish(job, ImportStatus.FAILED, error=repr(error)[:2000])
        raise
    return _finish(job, ImportStatus.DONE, report=report.as_dict())


def _requeue(job: ImportJob) -> None:
    """Back to ``queued`` with its file, for the retry. The run is not counted as a lost one (``MAX_ATTEMPTS``): it
    ended, in an error a retry may cure."""
    job.status, job.attempts, job.bytes_read, job.rows = ImportStatus.QUEUED, job.attempts - 1, 0, 0
    try:
        _usable_connection()
        job.save(update_fields=["status", "attempts", "bytes_read", "rows"])
    except DATABASE_ERRORS as error:  # the retry re-reads the job, whatever state it is left in
        logger.warning("import job %s: could not put it back in the queue state (%s)", job.pk, outage_reason(error))
    cache.delete(_progress_key(job.pk))


def _finish(job: ImportJob, status: str, *, report: dict[str, Any] | None = None, error: str = "") -> ImportJob:
    """Record the end of the job and remove its file. A failure removes the file even when the database cannot
    record it (logged); a success that cannot be recorded keeps it, for the retry to find (the import is idempotent:
    its rows are there, and the retry reports them unchanged)."""
    job.status, job.report, job.error, job.finished_at = status, report, error, timezone.now()
    recorded = False
    try:
        _usable_connection()
        job.save(update_fields=["status", "report", "error", "finished_at", "bytes_read", "rows", "attempts"])
        recorded = True
    except DATABASE_ERRORS as failure:
        logger.error("import job %s ended %s but could not be recorded (%s)", job.pk, status, outage_reason(failure))
        raise
    finally:
        cache.delete(_progress_key(job.pk))
        if recorded or status == ImportStatus.FAILED:
            Path(job.path).unlink(missing_ok=True)
    return job
