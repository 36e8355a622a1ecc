"""Large imports run by a Celery worker: the API spools the body to ``IMPORT_DIR`` and answers 202 at once;
``import_job_run`` imports it with the same code as a direct import, reporting progress through the cache (the
import's own transaction is invisible to other connections until it commits).

A job is safe to run twice: the import is one transaction, so a worker killed mid-way leaves nothing behind and
the redelivered job starts over; a job already done or failed is not run again. ``IMPORT_DIR`` must be shared by
the web and worker machines (a volume), like a media directory.

Outages. A job that cannot be queued (the broker is down) is not kept: its row and file are removed and the API
answers 503 with ``Retry-After``, so nothing waits forever for a message that was never sent.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from labeling.imports.history import annotations_import, predictions_import
from labeling.imports.reading import READ_CHUNK, ImportReport, check_options
from labeling.imports.tasks import tasks_import
from labeling.jobs import job_enqueue, job_queue_known_down
from labeling.models import ImportJob, ImportStatus, Project
from labeling.outages import JobQueueUnavailable

KINDS: Final = ("tasks", "annotations", "predictions")
MAX_ATTEMPTS: Final = 3
_IMPORT_LOCK: Final = 0x1A9B  # advisory lock namespace: one running import per job id


def _progress_key(job_id: int) -> str:
    return f"concord:import-job:{job_id}"


def import_job_create(*, project: Project, kind: str, stream: IO[bytes], options: dict[str, Any]) -> ImportJob:
    """Spool ``stream`` to a file and queue its import (after the transaction commits). Raises
    ``JobQueueUnavailable`` when the broker is down, with nothing left behind (no job, no file)."""
    from labeling.tasks import run_import_job_task

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
        if not job_enqueue(run_import_job_task, (job_id,)):
            # Never sent: nothing would ever run it. Forget it (the client is told to send the file again).
            path.unlink(missing_ok=True)
            ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).delete()
            raise JobQueueUnavailable("the import could not be queued")

    transaction.on_commit(enqueue)
    return job


class _Counting:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.position += len(data)
        return data


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


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run the import of job ``job_id`` (the Celery task's body); ``None`` when the job is gone.

    A second delivery while a worker still runs the job (Redis hands an unacknowledged message out again after the
    visibility timeout, shorter than an import may take) leaves it to that worker: on PostgreSQL the running job
    holds a lock on its id for as long as its connection lives, so a killed worker's job can be run again.
    """
    with _running_alone(job_id) as alone:
        if not alone:
            return ImportJob.objects.filter(pk=job_id).first()
        return _run(job_id)


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


def _run(job_id: int) -> ImportJob | None:
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
            counting = _Counting(handle)

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
                report = annotations_import(**common, create_annotators=bool(options.get("create_annotators")))
            else:
                report = predictions_import(**common)
            job.bytes_read, job.rows = counting.position, report.rows
    except FileNotFoundError:
        return _finish(job, ImportStatus.FAILED, error="the uploaded file is gone (IMPORT_DIR must be shared)")
    except Exception as error:  # the import rolled back; the job records why
        _finish(job, ImportStatus.FAILED, error=repr(error)[:2000])
        raise
    return _finish(job, ImportStatus.DONE, report=report.as_dict())


def _finish(job: ImportJob, status: str, *, report: dict[str, Any] | None = None, error: str = "") -> ImportJob:
    job.status, job.report, job.error, job.finished_at = status, report, error, timezone.now()
    job.save(update_fields=["status", "report", "error", "finished_at", "bytes_read", "rows", "attempts"])
    cache.delete(_progress_key(job.pk))
    Path(job.path).unlink(missing_ok=True)
    return job
