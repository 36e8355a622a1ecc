"""Large imports as background jobs: 202 with the job's URL, progress, the final report, redelivery, and a real
Celery worker on Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from exchange.import_jobs import MAX_ATTEMPTS, import_job_run
from labeling.models import ImportJob, ImportStatus, Project, Task
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.services import celery_worker, needs_postgres, needs_redis, wait_for


def body(n: int, prefix: str = "j") -> str:
    rows = [{"external_id": f"{prefix}{i}", "prompt": "Q", "response_a": "A", "response_b": "B"} for i in range(n)]
    return "\n".join(json.dumps(row) for row in rows)


def post(client: KeyClient, project: Project, data: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    url = f"/api/v1/projects/{project.pk}/tasks/import" + (f"?{query}" if query else "")
    return client.post(url, data, content_type="application/x-ndjson")


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Path) -> None:
    settings.IMPORT_DIR = tmp_path / "imports"


@pytest.fixture
def inline_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued jobs run at once in this process (what the worker would do), with or without a broker."""
    from exchange.jobs import run_import_job

    monkeypatch.setattr(run_import_job, "delay", lambda job_id: import_job_run(job_id=job_id))


@pytest.mark.usefixtures("inline_jobs")
def test_async_import_answers_202_and_the_job_reports(
    api_a: KeyClient, tenancy: Tenancy, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_a, tenancy.project_a, body(50), **{"async": "1"})
    assert response.status_code == 202, response.content
    accepted = response.json()
    assert accepted["status"] == "queued" and accepted["job"].endswith(f"/api/v1/import-jobs/{accepted['id']}")
    job = api_a.get(f"/api/v1/import-jobs/{accepted['id']}").json()
    assert job["status"] == "done" and job["progress"] == 1.0 and job["rows"] == 50
    assert job["report"]["committed"] and job["report"]["created"] == 50
    assert Task.objects.filter(project=tenancy.project_a, external_id__startswith="j").count() == 50
    assert not list(Path(ImportJob.objects.get().path).parent.iterdir())  # the file is deleted


@pytest.mark.usefixtures("inline_jobs")
def test_large_bodies_go_to_a_job_and_bad_rows_are_in_its_report(
    api_a: KeyClient, tenancy: Tenancy, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_ASYNC_BYTES = 1000
    data = body(30) + '\n{"external_id": "bad"}\n'
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api_a, tenancy.project_a, data)
    assert response.status_code == 202
    job = ImportJob.objects.get()
    assert (
        job.status == ImportStatus.DONE and not job.report["committed"] and job.report["error_count"] == 3
    )  # response_a, response_b and prompt are missing
    assert not Task.objects.filter(external_id__startswith="j").exists()


def test_a_redelivered_job_starts_over_and_gives_up_after_the_limit(api_a: KeyClient, tenancy: Tenancy) -> None:
    response = post(api_a, tenancy.project_a, body(5), **{"async": "1"})  # queued; its commit hook never ran
    job = ImportJob.objects.get(pk=response.json()["id"])
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, attempts=1)  # a worker died mid-way
    assert import_job_run(job_id=job.pk).status == ImportStatus.DONE
    assert import_job_run(job_id=job.pk).report["created"] == 5  # done: not run again
    assert Task.objects.filter(external_id__startswith="j").count() == 5
    stuck = ImportJob.objects.get(pk=post(api_a, tenancy.project_a, body(2, "k"), **{"async": "1"}).json()["id"])
    ImportJob.objects.filter(pk=stuck.pk).update(status=ImportStatus.RUNNING, attempts=MAX_ATTEMPTS)
    failed = import_job_run(job_id=stuck.pk)
    assert failed.status == ImportStatus.FAILED and "gave up" in failed.error
    gone = ImportJob.objects.get(pk=post(api_a, tenancy.project_a, body(2, "m"), **{"async": "1"}).json()["id"])
    Path(gone.path).unlink()
    assert "file is gone" in import_job_run(job_id=gone.pk).error


def test_jobs_cross_no_organization(api_a: KeyClient, api_b: KeyClient, tenancy: Tenancy) -> None:
    job_id = post(api_a, tenancy.project_a, body(1), **{"async": "1"}).json()["id"]
    foreign = api_b.get(f"/api/v1/import-jobs/{job_id}")
    missing = api_b.get(f"/api/v1/import-jobs/{job_id + 1000}")
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    assert Client().get(f"/api/v1/import-jobs/{job_id}").status_code == 401
    assert api_a.get(f"/api/v1/import-jobs/{job_id}", {"verbose": "1"}).status_code == 400
    assert post(api_a, tenancy.project_a, body(1), **{"async": "maybe"}).status_code == 400


@needs_postgres
@needs_redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_large_import(tenancy: Tenancy, settings: Any, keys: Any) -> None:
    settings.IMPORT_ASYNC_BYTES = 1000
    settings.IMPORT_DIR = Path(settings.VAR_DIR) / "imports"  # shared with the worker process (its default)
    client = KeyClient(keys.full_a)
    with celery_worker():
        response = post(client, tenancy.project_a, body(3000, "w"))
        assert response.status_code == 202
        job = wait_for(
            lambda: ImportJob.objects.filter(pk=response.json()["id"], status=ImportStatus.DONE).first(),
            what="the worker to run the import",
        )
    assert job.report["created"] == 3000 and job.bytes_read == job.size
    assert Task.objects.filter(project=tenancy.project_a, external_id__startswith="w").count() == 3000
