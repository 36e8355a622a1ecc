"""Redis outages (issue 15, item 7): the site keeps working, bounded, while Redis is down or frozen, and catches up
when it is back.

- The cache (``config.cache``): every call has a timeout; while Redis is unreachable every cache user is served
  from a per-process fallback, one warning per outage, and a breaker spares each call the wait.
- A job that cannot be queued after a commit is logged, never a 500: the committed judgment stands and the
  ``sweep-quality`` beat job catches its quality (and stats) up. An import that cannot be queued answers 503 with
  ``Retry-After`` and leaves nothing behind (no job, no file).
- ``/healthz`` is a readiness check naming the dependency that is down, and no address.
- With real processes (gunicorn, a Celery worker, a private ``redis-server`` killed, then started again and frozen
  with SIGSTOP): sign-in, the work and labeling pages, submits by form and by the page script, skips, sign-out, API
  reads and imports answer without a 500 and within the timeout bound; once Redis is back everything works, the
  sweep recomputes what was never queued, and every judgment acknowledged is stored exactly once.

Background imports through an outage (item 8): ``test_import_outage.py``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kombu.exceptions
import pytest
import redis
from celery import current_app
from django.core.cache import cache
from django.db import OperationalError
from django.test import Client
from django.urls import reverse

from config.cache import ResilientRedisCache
from exchange.import_jobs import import_job_create
from exchange.jobs import run_import_job
from labeling import health, queueing
from labeling.apikeys import api_key_create
from labeling.jobs import refresh_project_ranks_job
from labeling.middleware import QUEUE_OUTAGE_MESSAGE, RETRY_AFTER_SECONDS
from labeling.models import ImportJob, ImportStatus, Judgment, Project, ProjectStats, Task
from labeling.outages import CircuitBreaker
from labeling.services import project_update
from quality.jobs import recompute_project_quality_job, refresh_project_stats_job, sweep_quality_job
from quality.models import ProjectQuality
from quality.selectors import stale_project_ids
from quality.services import stats_refresh_mark
from tests import factories
from tests.conftest import Tenancy
from tests.faults.processes import (
    Answer,
    Browser,
    free_port,
    gunicorn,
    needs_redis_server,
    private_redis,
    publish,
    server_environment,
)
from tests.services import ROOT, celery_worker, needs_postgres, needs_redis, wait_for

TIMEOUT = 1.0  # REDIS_SOCKET_TIMEOUT and REDIS_CONNECT_TIMEOUT, the defaults the servers below run with
# A request may meet one cache timeout and one broker timeout (each process probes a Redis found down once per
# REDIS_RETRY_INTERVAL), plus its own work on a machine shared with other tests.
BOUND = 2 * TIMEOUT + 2.0
RETRY_INTERVAL = 5.0  # REDIS_RETRY_INTERVAL's default: how long a process skips a Redis it found down


def _dead_redis_url() -> str:
    """A Redis URL nothing listens on: connections are refused at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


def _resilient(location: str, *, retry_interval: float = 5.0) -> ResilientRedisCache:
    options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT, "retry_interval": retry_interval}
    return ResilientRedisCache(location, {"OPTIONS": options})


def _outage_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "concord.outage" and text in r.getMessage()]


# --- The breaker ------------------------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_skips_a_dependency_found_down_and_lets_one_caller_probe_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = _Clock()
    breaker = CircuitBreaker("Thing", retry_after=5, clock=clock)
    assert breaker.allows() and not breaker.is_open
    with caplog.at_level(logging.WARNING, logger="concord.outage"):
        breaker.record_failure(ConnectionRefusedError("Error 111 connecting to 10.1.2.3:6379. Connection refused."))
        assert breaker.is_open and breaker.skipping() and not breaker.allows()
        clock.now += 4.9
        assert not breaker.allows()
        clock.now += 0.2
        assert not breaker.skipping()  # asking does not take the probe's turn
        assert breaker.allows()  # one probe...
        assert not breaker.allows() and not breaker.allows()  # ...the others keep skipping while it runs
        breaker.record_failure(TimeoutError("timed out"))  # the probe failed: still one line for the outage
        clock.now += 5.1
        assert breaker.allows()
        breaker.record_success()
        assert not breaker.is_open and breaker.allows() and breaker.allows()
    down, back = _outage_lines(caplog, "unavailable"), _outage_lines(caplog, "available again")
    assert down == ["Thing unavailable (connection refused): skipping it for 5 s at a time until it answers again"]
    assert len(back) == 1 and "after 10.2 s" in back[0] and "(4 calls skipped meanwhile)" in back[0]
    assert "10.1.2.3" not in caplog.text  # the reason, never the address


# --- The cache --------------------------------------------------------------------------------------------------
def test_while_redis_is_down_every_cache_call_is_served_by_the_process(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _resilient(_dead_redis_url())
    with caplog.at_level(logging.WARNING, logger="concord.outage"):
        assert store.add("counter", 0) is True and store.add("counter", 5) is False
        assert store.incr("counter") == 1 and store.incr("counter", 2) == 3 and store.decr("counter") == 2
        with pytest.raises(ValueError):
            store.incr("missing")  # what Redis answers too: the sign-in throttle relies on it
        store.set("mark", 1.5, timeout=60)
        assert store.get("mark") == 1.5 and store.has_key("mark") and store.touch("mark", 120)
        store.set_many({"a": 1, "b": 2})
        assert store.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
        store.delete_many(["a", "b"])
        assert store.delete("mark") and store.get("mark", "gone") == "gone" and store.get_many(["a"]) == {}
        assert store.get_or_set("computed", lambda: 42) == 42
    # One line for the outage, whatever the number of calls; Redis was asked once, then skipped.
    assert len(_outage_lines(caplog, "Redis cache unavailable (connection refused)")) == 1
    asked: list[str] = []
    monkeypatch.setattr(store._cache, "get_client", lambda *a, **k: asked.append("redis"))
    assert store.get("computed") == 42 and asked == []


def test_the_cache_is_redis_with_timeouts_and_no_retry_on_a_timeout() -> None:
    store = _resilient("redis://127.0.0.1:6379/3")
    pool = store._cache._get_connection_pool(write=True)
    kwargs = pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == TIMEOUT
    assert kwargs["retry"].get_retries() == 1  # a broken pooled connection is replaced once...
    assert kwargs["retry"]._supported_errors == (redis.exceptions.ConnectionError,)  # ...a timeout is not retried


@needs_redis_server
def test_a_frozen_redis_costs_one_timeout_per_interval_and_is_used_again_when_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with private_redis(tmp_path) as server:
        store = _resilient(server.url, retry_interval=1.0)
        store.set("kept", "in redis")
        server.freeze()
        try:
            with caplog.at_level(logging.WARNING, logger="concord.outage"):
                started = time.monotonic()
                assert store.get("kept") is None  # not in the fallback: the frozen Redis holds it
                first = time.monotonic() - started
                started = time.monotonic()
                for n in range(200):
                    store.set(f"during-{n}", n)
                    assert store.get(f"during-{n}") == n
                rest = time.monotonic() - started
        finally:
            server.thaw()
        assert TIMEOUT * 0.9 <= first < TIMEOUT + 0.5, first  # one timeout, not several retries
        assert rest < 0.5, rest  # 400 calls, none waiting for Redis
        time.sleep(1.1)  # the retry interval: the next call probes Redis, which answers now
        with caplog.at_level(logging.WARNING, logger="concord.outage"):
            assert store.get("kept") == "in redis"
        assert store.get("during-1") is None  # the fallback was emptied: never served by a later outage
        assert len(_outage_lines(caplog, "Redis cache unavailable (timed out)")) == 1
        assert len(_outage_lines(caplog, "Redis cache available again")) == 1


# --- Jobs queued after a commit -----------------------------------------------------------------------------------
@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[str]:
    """Jobs go through a broker (not in-process), and the broker refuses every connection. Returns the names of
    the jobs whose publishing was attempted."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def publish_refused(*args: Any, **kwargs: Any) -> None:
            attempts.append(name)
            raise kombu.exceptions.OperationalError("Error 111 connecting to 10.9.8.7:6379. Connection refused.")

        return publish_refused

    for task in (refresh_project_stats_job, recompute_project_quality_job, refresh_project_ranks_job):
        monkeypatch.setattr(task, "apply_async", refuse(task.name))
        monkeypatch.setattr(task, "delay", refuse(task.name))
    monkeypatch.setattr(run_import_job, "delay", refuse(run_import_job.name))
    monkeypatch.setattr(queueing, "broker", CircuitBreaker("Celery broker", retry_after=5))
    monkeypatch.setattr(queueing, "_known_eta", {})  # what this process remembers of earlier tests' queued runs
    return attempts


@pytest.mark.django_db(transaction=True)
def test_a_submit_whose_jobs_cannot_be_queued_is_stored_and_answered(
    tenancy: Tenancy, broker_down: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """In autocommit (as in production) the jobs are queued while the request is still being answered: a broker
    error there was a 500 although the judgment was stored."""
    client = Client(raise_request_exception=False)
    url, data = factories.leased_submit(client, tenancy.annotator_a, tenancy.project_a)
    cache.delete(stats_refresh_mark(tenancy.project_a.pk))  # an earlier test's project of the same id
    with caplog.at_level(logging.WARNING, logger="concord.outage"):
        answer = client.post(url, data, headers={"X-Requested-With": "fetch"})
    assert answer.status_code == 200 and answer.json() == {"next": reverse("annotate", args=[tenancy.project_a.pk])}
    assert [a.client_id for a in Judgment.objects.filter(task=tenancy.task_a)] == [data["client_id"]]
    assert broker_down == ["quality.jobs.refresh_project_stats_job"]
    # The coalescing mark is dropped: the next request tries again instead of believing a run is queued.
    assert cache.get(stats_refresh_mark(tenancy.project_a.pk)) is None
    assert len(_outage_lines(caplog, "Celery broker unavailable (connection refused)")) == 1
    # While the broker is known to be down, later requests do not wait for it.
    tenancy.project_a.refresh_from_db()
    factories.make_task(tenancy.project_a, "a-2")
    url, data = factories.leased_submit(client, tenancy.annotator_a, tenancy.project_a)
    assert client.post(url, data).status_code == 302 and len(broker_down) == 1


@pytest.mark.django_db(transaction=True)
def test_a_project_change_whose_rerank_cannot_be_queued_is_saved_and_logged(
    tenancy: Tenancy, broker_down: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="concord.outage"):
        project_update(project=tenancy.project_a, sampling_strategy="random")
    assert Project.objects.get(pk=tenancy.project_a.pk).sampling_strategy == "random"
    assert broker_down == ["labeling.jobs.refresh_project_ranks_job"]
    assert _outage_lines(caplog, f"refresh_project_ranks_job({tenancy.project_a.pk},) not queued")


@pytest.mark.django_db(transaction=True)
def test_an_import_that_cannot_be_queued_answers_503_and_leaves_nothing_behind(
    tenancy: Tenancy, broker_down: list[str], settings: Any, tmp_path: Path
) -> None:
    settings.IMPORT_DIR = tmp_path / "imports"
    _, key = api_key_create(organization=tenancy.org_a, name="pipeline")
    row = json.dumps({"external_id": "q1", "prompt": "Q", "response_a": "A", "response_b": "B"})
    client = Client(raise_request_exception=False)
    answer = client.post(
        f"/api/v1/projects/{tenancy.project_a.pk}/tasks/import?async=1",
        row,
        content_type="application/x-ndjson",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 503 and answer["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert answer.json() == {"detail": QUEUE_OUTAGE_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}
    assert broker_down == ["exchange.jobs.run_import_job"]
    assert not ImportJob.objects.exists() and list(settings.IMPORT_DIR.iterdir()) == []
    assert not Task.objects.filter(external_id="q1").exists()
    # While the broker is known to be down, the next import is refused before its body is spooled.
    again = client.post(
        f"/api/v1/projects/{tenancy.project_a.pk}/tasks/import?async=1",
        row,
        content_type="application/x-ndjson",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert again.status_code == 503 and again.json()["detail"] == QUEUE_OUTAGE_MESSAGE
    assert len(broker_down) == 1 and not ImportJob.objects.exists() and list(settings.IMPORT_DIR.iterdir()) == []


def test_a_job_row_the_database_refuses_leaves_no_file(
    tenancy: Tenancy, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.IMPORT_DIR = tmp_path

    def refused(**fields: Any) -> None:
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(ImportJob.objects, "create", refused)
    with pytest.raises(OperationalError):
        import_job_create(
            project=tenancy.project_a, kind="tasks", stream=io.BytesIO(b"{}"), options={"format": "jsonl"}
        )
    assert list(tmp_path.iterdir()) == []


# --- /healthz -----------------------------------------------------------------------------------------------------
def test_healthz_checks_the_database_and_with_redis_the_cache_and_the_broker(
    client: Client, db: None, settings: Any
) -> None:
    answer = client.get(reverse("healthz"))
    expected = {"database"} | ({"cache", "broker"} if settings.REDIS_URL else set())
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    assert answer.json() == {"status": "ok", "checks": {name: {"status": "ok"} for name in expected}}


def test_healthz_answers_503_naming_what_is_down_and_no_address(
    client: Client, db: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    dead = _dead_redis_url()
    monkeypatch.setattr(health, "cache", _resilient(dead))
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(current_app.conf, "broker_url", dead)
    queueing = CircuitBreaker("Celery broker", retry_after=5)  # the check tells job queueing what it found
    monkeypatch.setattr(health, "queueing", queueing)
    answer = client.get(reverse("healthz"))
    assert answer.status_code == 503 and queueing.is_open
    assert answer.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"status": "ok"},
            "cache": {"status": "down", "reason": "connection refused"},
            "broker": {"status": "down", "reason": "connection refused"},
        },
    }
    monkeypatch.setattr(
        health,
        "connection",
        type("Gone", (), {"cursor": lambda self: (_ for _ in ()).throw(OperationalError("terminating connection"))})(),
    )
    answer = client.get(reverse("healthz"))
    assert answer.status_code == 503 and answer.json()["checks"]["database"] == {
        "status": "down",
        "reason": "unavailable (OperationalError)",
    }
    assert dead.rsplit(":", 1)[1].split("/")[0] not in answer.content.decode()


# --- The site through an outage, with real processes --------------------------------------------------------------
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SUBMIT_FORM = re.compile(r'<form method="post" action="([^"]+/submit)"')
SKIP_FORM = re.compile(r'<form method="post" action="([^"]+/skip)"')
CLIENT_ID = re.compile(r'name="client_id" value="([^"]+)"')


class Annotator:
    """A person in a browser: signs in, opens pages, submits as the page does. Records the client ids the site
    acknowledged (a redirect from the form, ``{"next": …}`` for the page script)."""

    def __init__(self, base: str, username: str) -> None:
        self.browser = Browser(base)
        self.username = username
        self.acknowledged: list[str] = []

    def get(self, path: str) -> Answer:
        return self.browser.request("GET", path)

    def sign_in(self) -> Answer:
        page = self.get("/accounts/login/")
        assert page.status == 200, page.text[:300]
        token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        fields = {"csrfmiddlewaretoken": token, "username": self.username, "password": factories.PASSWORD}
        return self.browser.request("POST", "/accounts/login/", form=fields)

    def sign_out(self) -> Answer:
        token = CSRF.search(self.get("/work/").text).group(1)  # type: ignore[union-attr]
        return self.browser.request("POST", "/accounts/logout/", form={"csrfmiddlewaretoken": token})

    def labeling_page(self, project: Project) -> tuple[str, str, str]:
        page = self.get(f"/projects/{project.pk}/annotate/")
        assert page.status == 200, page.text[:300]
        action, skip = SUBMIT_FORM.search(page.text), SKIP_FORM.search(page.text)
        assert action and skip, page.text[:500]
        return action.group(1), skip.group(1), page.text

    def submit(self, project: Project, *, fetch: bool) -> Answer:
        action, _, page = self.labeling_page(project)
        client_id = CLIENT_ID.search(page).group(1)  # type: ignore[union-attr]
        fields = {"csrfmiddlewaretoken": CSRF.search(page).group(1), "client_id": client_id, "choice": "first"}  # type: ignore[union-attr]
        answer = self.browser.request("POST", action, form=fields, fetch=fetch)
        expected = (200, {"next": f"/projects/{project.pk}/annotate/"}) if fetch else (302, None)
        if (answer.status, answer.json() if fetch and answer.status == 200 else None) == expected:
            self.acknowledged.append(client_id)
        return answer

    def skip(self, project: Project) -> Answer:
        _, skip, page = self.labeling_page(project)
        token = CSRF.search(page).group(1)  # type: ignore[union-attr]
        return self.browser.request("POST", skip, form={"csrfmiddlewaretoken": token, "reason": ""})


class Pipeline:
    """An API client with an organization key."""

    def __init__(self, base: str, key: str, project: Project) -> None:
        self.browser = Browser(base)
        self.headers = {"Authorization": f"Bearer {key}"}
        self.project = project

    def get(self, path: str) -> Answer:
        return self.browser.request("GET", path, headers=self.headers)

    def import_rows(self, prefix: str, n: int, *, run_async: bool) -> Answer:
        rows = [{"external_id": f"{prefix}{i}", "prompt": "Q", "response_a": "A", "response_b": "B"} for i in range(n)]
        path = f"/api/v1/projects/{self.project.pk}/tasks/import" + ("?async=1" if run_async else "")
        headers = {**self.headers, "Content-Type": "application/x-ndjson"}
        body = "\n".join(json.dumps(row) for row in rows).encode()
        return self.browser.request("POST", path, body=body, headers=headers)


def _while_redis_is_away(
    annie: Annotator, newcomer: Annotator, pipeline: Pipeline, project: Project, base: str, imports: Path, reason: str
) -> None:
    """Everything a person or a pipeline does, while the private Redis is dead or frozen. The server's breakers are
    past their interval first, so the first calls find out for themselves (a frozen Redis: one timeout each)."""
    time.sleep(RETRY_INTERVAL + 0.5)
    signed_in = newcomer.sign_in()
    assert (signed_in.status, signed_in.headers.get("Location")) == (302, "/work/"), signed_in.text[:300]
    assert newcomer.get("/work/").status == 200
    assert annie.get("/work/").status == 200
    assert annie.submit(project, fetch=False).status == 302
    fetched = annie.submit(project, fetch=True)
    assert fetched.status == 200, fetched.text[:300]
    assert annie.skip(project).status == 302
    assert pipeline.get("/api/v1/projects/").status == 200
    assert pipeline.get(f"/api/v1/projects/{project.pk}/tasks/").status == 200
    stored = pipeline.import_rows(f"sync-{reason[:4]}-", 3, run_async=False)
    assert stored.status == 200 and stored.json()["created"] == 3, stored.text[:300]
    refused = pipeline.import_rows(f"async-{reason[:4]}-", 3, run_async=True)
    assert refused.status == 503 and refused.headers["Retry-After"] == str(RETRY_AFTER_SECONDS), refused.text
    assert refused.json() == {"detail": QUEUE_OUTAGE_MESSAGE, "retry_after": RETRY_AFTER_SECONDS}
    assert not ImportJob.objects.exists() and list(imports.iterdir()) == []
    assert newcomer.sign_out().status == 302
    assert newcomer.get("/work/").status == 302  # signed out, in the database: nothing can bring it back
    ready = Browser(base).request("GET", "/healthz")
    assert ready.status == 503 and ready.headers["Content-Type"] == "application/json", ready.text
    assert ready.json()["checks"] == {
        "database": {"status": "ok"},
        "cache": {"status": "down", "reason": reason},
        "broker": {"status": "down", "reason": reason},
    }


def _every_answer(*people: Any) -> Iterator[tuple[str, Answer]]:
    for person in people:
        yield from person.browser.answers


@needs_postgres
@needs_redis
@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_the_site_works_through_a_redis_outage_bounded_and_catches_up(tenancy: Tenancy, tmp_path: Path) -> None:
    project = tenancy.project_a
    for n in range(12):
        factories.make_task(project, f"outage-{n}")
    newcomer = factories.make_member(tenancy.org_a, username="newcomer@a.example")
    _, key = api_key_create(organization=tenancy.org_a, name="pipeline")
    imports = tmp_path / "imports"
    imports.mkdir()
    log = ROOT / "var" / "test-gunicorn-outage.log"
    with private_redis(tmp_path) as server:
        env = server_environment(REDIS_URL=server.url, IMPORT_DIR=str(imports))
        with gunicorn(env, log=log) as base, celery_worker(env={"REDIS_URL": server.url, "IMPORT_DIR": str(imports)}):
            annie, late = Annotator(base, tenancy.annotator_a.username), Annotator(base, newcomer.username)
            pipeline = Pipeline(base, key, project)
            assert annie.sign_in().status == 302 and annie.get("/work/").status == 200
            assert Browser(base).request("GET", "/healthz").status == 200

            server.kill()  # --- down: every connection refused
            _while_redis_is_away(annie, late, pipeline, project, base, imports, "connection refused")

            server.start()  # --- back empty, and frozen at once: connections accepted, never answered
            server.freeze()
            try:
                _while_redis_is_away(annie, late, pipeline, project, base, imports, "timed out")
            finally:
                server.thaw()

            # --- back: ready again within the breaker's interval, the worker reconnected
            wait_for(lambda: Browser(base).request("GET", "/healthz").status == 200, what="/healthz to answer 200")
            wait_for(server.consumers, what="the worker to reconnect")
            # The judgments' stats and quality jobs were never queued: the sweep (beat, every 10 min) finds them.
            assert stale_project_ids() == [project.pk]
            assert not ProjectQuality.objects.filter(project=project).exists()
            publish(server.url, sweep_quality_job)
            wait_for(lambda: not stale_project_ids(), what="the sweep to recompute the project")
            wait_for(
                lambda: getattr(ProjectStats.objects.filter(project=project).first(), "judgments", 0) == 4,
                what="the sweep to refresh the project's stats",
            )
            # Everything works again: a submit, an import in the background, the session of before the outage.
            assert annie.submit(project, fetch=False).status == 302
            accepted = pipeline.import_rows("after-", 3, run_async=True)
            assert accepted.status == 202, accepted.text
            wait_for(
                lambda: ImportJob.objects.filter(pk=accepted.json()["id"], status=ImportStatus.DONE).exists(),
                what="the worker to run the import queued after the outage",
            )
    answers = list(_every_answer(annie, late, pipeline))
    assert not [(what, a.status) for what, a in answers if a.status >= 500 and "import?async" not in what]
    slow = [(what, round(a.seconds, 2)) for what, a in answers if a.seconds > BOUND]
    assert not slow, f"answered later than {BOUND} s: {slow}"
    # Every judgment the site acknowledged is stored once, and nothing else.
    stored = sorted(Judgment.objects.filter(project=project).values_list("client_id", flat=True))
    assert stored == sorted(annie.acknowledged) and len(stored) == 5
    assert Task.objects.filter(project=project, external_id__startswith="sync-").count() == 6
    assert Task.objects.filter(project=project, external_id__startswith="after-").count() == 3
    assert "Traceback" not in log.read_text()
