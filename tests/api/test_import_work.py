"""Request or background job, by the work an import holds (not its bytes alone), and a client that always gets an
answer: an import in the request that runs past ``IMPORT_SYNC_MAX_SECONDS`` stops, writes nothing and says to send
it with ``?async=1`` (the web server's timeout would otherwise cut the connection with no answer)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from exchange.import_jobs import import_job_run
from exchange.reading import import_seconds_estimate
from labeling.models import ImportJob, ImportStatus, Judgment, Project, Task
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


@pytest.fixture(autouse=True)
def _import_dir(settings: Any, tmp_path: Path) -> None:
    settings.IMPORT_DIR = tmp_path / "imports"


@pytest.fixture
def judged(tenancy: Tenancy) -> Project:
    project = factories.make_project(tenancy.org_a, name="Work")
    for n in range(3):
        factories.make_task(project, f"w{n}")
    return project


def judgments(n: int, project_tasks: int = 3) -> str:
    rows = [
        {"external_id": f"w{i % project_tasks}", "annotator": f"r{i}@old.example", "label": "a", "a_left": True}
        for i in range(n)
    ]
    return "\n".join(json.dumps(row) for row in rows) + "\n"


def post(client: KeyClient, project: Project, body: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"create_annotators": "1", **params}.items())
    url = f"/api/v1/projects/{project.pk}/annotations/import?{query}"
    return client.post(url, body, content_type="application/x-ndjson")


def test_the_estimate_follows_the_work_of_each_kind() -> None:
    # The same bytes hold ten times more judgment rows than task rows, each dearer to import.
    size = 6_800_000  # 60,000 judgment rows
    assert import_seconds_estimate(kind="annotations", size=size) > 2 * import_seconds_estimate(kind="tasks", size=size)
    assert 1 < import_seconds_estimate(kind="annotations", size=size) < 10


def test_an_import_with_more_work_than_a_request_holds_goes_to_a_job_whatever_its_bytes(
    api_a: KeyClient, judged: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.jobs import run_import_job

    monkeypatch.setattr(run_import_job, "delay", lambda job_id: None)
    body = judgments(30)
    settings.IMPORT_ASYNC_BYTES = 10 * len(body)  # far under the byte threshold
    settings.IMPORT_SYNC_SECONDS = import_seconds_estimate(kind="annotations", size=len(body)) / 2
    response = post(api_a, judged, body)
    assert response.status_code == 202, response.content
    assert ImportJob.objects.get(pk=response.json()["id"]).status == ImportStatus.QUEUED
    assert not Judgment.objects.exists()
    settings.IMPORT_SYNC_SECONDS = import_seconds_estimate(kind="annotations", size=len(body)) * 2
    assert post(api_a, judged, body).status_code == 200
    assert Judgment.objects.count() == 30


def test_async_0_asks_for_the_request_and_async_1_for_a_job(
    api_a: KeyClient, judged: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.jobs import run_import_job

    monkeypatch.setattr(run_import_job, "delay", lambda job_id: import_job_run(job_id=job_id))
    settings.IMPORT_SYNC_SECONDS = 0
    settings.IMPORT_ASYNC_BYTES = 1
    response = post(api_a, judged, judgments(3), **{"async": "0"})
    assert response.status_code == 200 and response.json()["created"] == 3, response.content
    settings.IMPORT_SYNC_SECONDS = 3600
    settings.IMPORT_ASYNC_BYTES = 1 << 30
    assert post(api_a, judged, judgments(4), **{"async": "1"}).status_code == 202


def test_an_import_past_the_time_limit_writes_nothing_and_answers_503_naming_async(
    api_a: KeyClient, judged: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import judgment_import as history

    quick = history._quick_judgment

    def slow(*args: Any) -> Any:
        time.sleep(0.004)  # reading and checking rows takes a while: 600 rows, 2.4 s
        return quick(*args)

    monkeypatch.setattr(history, "_quick_judgment", slow)
    settings.IMPORT_SYNC_MAX_SECONDS = 0.5
    started = time.monotonic()
    response = post(api_a, judged, judgments(600))
    assert time.monotonic() - started < 2.0
    assert response.status_code == 503, response.content
    answer = response.json()
    assert answer["committed"] is False and "?async=1" in answer["detail"] and "0.5 seconds" in answer["detail"]
    assert not Judgment.objects.exists()
    assert not Task.objects.filter(project=judged, judgment_count__gt=0).exists()


def _long_statement() -> str:
    if connection.vendor == "postgresql":
        return "SELECT pg_sleep(20)"
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) SELECT count(*) FROM c"


def test_a_statement_running_past_the_time_limit_is_cancelled(
    api_a: KeyClient, judged: Project, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last batch's settle (or the COMMIT with its deferred checks) runs after the last row: the clock between
    # rows cannot stop it; the watchdog cancels the statement.
    from quality import consensus

    settle = consensus.tasks_settle

    def stuck(**kwargs: Any) -> None:
        settle(**kwargs)
        with connection.cursor() as cursor:
            cursor.execute(_long_statement())

    monkeypatch.setattr(consensus, "tasks_settle", stuck)
    settings.IMPORT_SYNC_MAX_SECONDS = 1
    started = time.monotonic()
    response = post(api_a, judged, judgments(3))
    assert time.monotonic() - started < 6
    assert response.status_code == 503, response.content
    assert not Judgment.objects.exists()
    assert not Task.objects.filter(project=judged, judgment_count__gt=0).exists()
    monkeypatch.setattr(consensus, "tasks_settle", settle)
    assert post(api_a, judged, judgments(3)).status_code == 200  # the connection is fine afterwards


def test_a_task_import_past_the_time_limit_writes_nothing(
    api_a: KeyClient, tenancy: Tenancy, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange import task_import as tasks

    quick = tasks._quick

    def slow(*args: Any) -> Any:
        time.sleep(0.004)
        return quick(*args)

    monkeypatch.setattr(tasks, "_quick", slow)
    settings.IMPORT_SYNC_MAX_SECONDS = 0.5
    rows = [{"external_id": f"t{n}", "prompt": "Q", "response_a": "A", "response_b": "B"} for n in range(600)]
    response = api_a.post(
        f"/api/v1/projects/{tenancy.project_a.pk}/tasks/import",
        "\n".join(json.dumps(row) for row in rows),
        content_type="application/x-ndjson",
    )
    assert response.status_code == 503 and "?async=1" in response.json()["detail"]
    assert not Task.objects.filter(external_id__startswith="t").exists()
