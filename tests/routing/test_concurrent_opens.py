"""One annotator's calls at once (issue 15, item 6), on PostgreSQL with real connections.

Two tabs or a double click open the labeling page at the same moment: both must get the same lease (it was a 500,
``UniqueViolation assignment_one_active_per_annotator``: the second call waited for the first's lock on the
membership row, then re-checked that row only and read the leases as of before the wait). And a skip racing a
reload that re-leases the task after its lease ran out must never leave the task skipped and leased again.

Each race is forced once deterministically (the first call holds the annotator's lock until PostgreSQL reports the
second waiting for a lock, or the second is done), then run free many times. Double posts (a submit or a skip twice
at once) store one judgment or one skip, and never fail.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from labeling.models import Judgment, Project
from routing import sql
from routing.models import Lease, LeaseState
from routing.services import LeaseError, judgment_submit, lease_skip, next_task
from tests import factories
from tests.routing.helpers import expire
from tests.services import needs_postgres
from tests.services import test_database_url as database_url_of_tests

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]

FREE_ROUNDS = 40
WAIT_SECONDS = 15


def _lock_waiters(database_url: str) -> int:
    """Backends of the test database waiting for a lock, seen from a connection of its own (autocommit, so each
    look is a fresh snapshot of the activity view)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


class HoldFirstCaller:
    """The first router call to read its state keeps the annotator's lock until ``release_when()`` holds.

    Patches ``routing.sql.annotator_state``, which every version of the router calls while holding the lock on the
    annotator's membership row: what a concurrent call then reads is exactly the interleaving under test.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, release_when: Callable[[], bool]) -> None:
        self.holding = threading.Event()
        self.released_on_condition = False
        self._first = threading.Lock()
        real = sql.annotator_state

        def held(**kwargs: Any) -> Any:
            row = real(**kwargs)
            if self._first.acquire(blocking=False):
                self.holding.set()
                self.released_on_condition = _wait_until(release_when)
            return row

        monkeypatch.setattr(sql, "annotator_state", held)


def _in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = target()
        except Exception as error:  # reported to the test
            result["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@pytest.fixture
def world() -> Iterator[tuple[Project, Any]]:
    org = factories.make_org("Tabs")
    project = factories.make_project(org, name="Tabs prefs", min_judgments=1, max_judgments=1, gold_rate=0)
    for n in range(FREE_ROUNDS + 5):
        factories.make_task(project, f"t-{n}")
    yield project, factories.make_member(org)


def _release_active(project: Project, annotator: Any) -> None:
    for lease in Lease.objects.filter(project=project, annotator=annotator, state=LeaseState.ACTIVE):
        lease_skip(lease=lease, actor=annotator)


# --- Two opens at once, in the service ----------------------------------------------------------------------------
def test_two_opens_at_once_get_the_same_lease_forced(monkeypatch: pytest.MonkeyPatch, world: Any) -> None:
    project, annotator = world
    database_url = database_url_of_tests()
    hold = HoldFirstCaller(monkeypatch, release_when=lambda: _lock_waiters(database_url) > 0)
    first, first_result = _in_thread(lambda: next_task(annotator=annotator, project=project))
    assert hold.holding.wait(WAIT_SECONDS)
    second, second_result = _in_thread(lambda: next_task(annotator=annotator, project=project))
    first.join(WAIT_SECONDS * 2)
    second.join(WAIT_SECONDS * 2)
    assert hold.released_on_condition, "the second call never waited for the first's lock"
    assert "error" not in first_result and "error" not in second_result, (first_result, second_result)
    assert first_result["value"].pk == second_result["value"].pk
    assert Lease.objects.filter(annotator=annotator).count() == 1


def test_two_opens_at_once_get_the_same_lease_many_times(world: Any) -> None:
    project, annotator = world
    for round_ in range(FREE_ROUNDS):
        first, second = _twice_at_once(lambda: next_task(annotator=annotator, project=project))
        assert first.pk == second.pk, round_
        _release_active(project, annotator)
    assert Lease.objects.filter(annotator=annotator).count() == FREE_ROUNDS


# --- Two opens at once, over HTTP with one session ----------------------------------------------------------------
def _session_opener(client: Client, base_url: str) -> Callable[[str], tuple[int, str]]:
    """A plain HTTP client that sends the test client's session cookie (the two tabs of one browser)."""
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    server = urlsplit(base_url)

    def get(path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection(server.hostname or "localhost", server.port, timeout=WAIT_SECONDS * 2)
        try:
            conn.request("GET", path, headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"})
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    return get


def _lease_on_page(body: str) -> int:
    match = re.search(r'action="/projects/\d+/annotate/(\d+)/submit"', body)
    assert match, body[:500]
    return int(match.group(1))


def _twice_at_once(call: Callable[[], Any]) -> list[Any]:
    """``call`` in two threads (each with its own database connection) released at the same instant."""
    barrier = threading.Barrier(2)

    def at_once() -> Any:
        barrier.wait(WAIT_SECONDS)
        return call()

    calls = [_in_thread(at_once) for _ in range(2)]
    for thread, _ in calls:
        thread.join(WAIT_SECONDS * 3)
    for _, result in calls:
        assert "error" not in result, result
    return [result["value"] for _, result in calls]


def test_two_tabs_of_one_session_get_the_same_lease_over_http(
    live_server: Any, monkeypatch: pytest.MonkeyPatch, world: Any
) -> None:
    project, annotator = world
    client = Client()
    client.force_login(annotator)
    get = _session_opener(client, live_server.url)
    url = reverse("annotate", args=[project.pk])
    database_url = database_url_of_tests()

    with monkeypatch.context() as patch:  # forced: the first request holds the lock until the second waits
        hold = HoldFirstCaller(patch, release_when=lambda: _lock_waiters(database_url) > 0)
        pages = _twice_at_once(lambda: get(url))
    assert hold.released_on_condition, "the second request never waited for the first's lock"
    assert [status for status, _ in pages] == [200, 200], [body[:300] for _, body in pages]
    assert _lease_on_page(pages[0][1]) == _lease_on_page(pages[1][1])
    _release_active(project, annotator)

    for round_ in range(FREE_ROUNDS // 2):  # free-running
        pages = _twice_at_once(lambda: get(url))
        assert [status for status, _ in pages] == [200, 200], (round_, [body[:300] for _, body in pages])
        assert _lease_on_page(pages[0][1]) == _lease_on_page(pages[1][1]), round_
        _release_active(project, annotator)


# --- A skip racing a reload that re-leases the task -------------------------------------------------------------
def test_a_skip_racing_a_reload_never_leaves_the_task_skipped_and_leased_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The annotator's lease ran out; one tab reloads (which re-leases the same task: it is the only one) while the
    other tab's skip goes out. Either the skip is recorded and the task never comes back to them, or the skip is
    refused because the task was leased to them again; never an acknowledged skip that is then lost."""
    org = factories.make_org("Skip race")
    project = factories.make_project(org, min_judgments=1, max_judgments=1, gold_rate=0)
    task = factories.make_task(project, "only")
    annotator = factories.make_member(org)
    lease = next_task(annotator=annotator, project=project)
    assert lease is not None
    expire(lease)
    database_url = database_url_of_tests()
    skip_done = threading.Event()
    hold = HoldFirstCaller(monkeypatch, release_when=lambda: skip_done.is_set() or _lock_waiters(database_url) > 0)

    reload_thread, reloaded = _in_thread(lambda: next_task(annotator=annotator, project=project))
    assert hold.holding.wait(WAIT_SECONDS)

    def skip() -> Lease:
        try:
            return lease_skip(lease=lease, actor=annotator, reason="unclear")
        finally:
            skip_done.set()

    skip_thread, skipped = _in_thread(skip)
    reload_thread.join(WAIT_SECONDS * 2)
    skip_thread.join(WAIT_SECONDS * 2)
    assert hold.released_on_condition
    assert "error" not in reloaded, reloaded
    held = Lease.objects.filter(task=task, annotator=annotator, state=LeaseState.ACTIVE).exists()
    lease.refresh_from_db()
    if "error" in skipped:
        assert isinstance(skipped["error"], LeaseError), skipped
        assert held and lease.state == LeaseState.EXPIRED  # the reload won: the skip was refused
    else:
        assert lease.state == LeaseState.SKIPPED, "an acknowledged skip was overwritten"
        assert not held, "a skipped task was leased to the same annotator again"
        assert next_task(annotator=annotator, project=project) is None


# --- Double posts at once: one judgment, one skip, never a 500 ---------------------------------------------------
def _submitter(annotator: Any, lease: Lease, client_ids: list[str]) -> Callable[[], Any]:
    """Submits ``lease`` once per call, each call with the next of ``client_ids``; a refusal is returned."""
    pending, lock = iter(client_ids), threading.Lock()

    def submit() -> Any:
        with lock:
            client_id = next(pending)
        try:
            return judgment_submit(lease=lease, label="a", client_id=client_id, seconds=1.0, actor=annotator)
        except LeaseError as error:
            return error

    return submit


@pytest.mark.parametrize("same_page", [True, False], ids=["double-click", "two-tabs"])
def test_two_submits_of_one_lease_at_once_store_one_judgment(world: Any, same_page: bool) -> None:
    """A double click posts the same page twice (same client id): both get the one judgment. Two tabs showing the
    same lease post different client ids: one judgment, and the other is told it was already submitted."""
    project, annotator = world
    for round_ in range(FREE_ROUNDS // 4):
        lease = next_task(annotator=annotator, project=project)
        pages = [f"page-{round_}", f"page-{round_}" if same_page else f"tab-{round_}"]
        first, second = _twice_at_once(_submitter(annotator, lease, pages))
        stored = list(Judgment.objects.filter(task_id=lease.task_id, annotator=annotator))
        assert len(stored) == 1, round_
        if same_page:
            assert first.pk == second.pk == stored[0].pk
        else:
            outcomes = sorted([first, second], key=lambda outcome: isinstance(outcome, LeaseError))
            assert outcomes[0].pk == stored[0].pk and "already submitted" in str(outcomes[1])


def test_two_skips_of_one_lease_at_once_skip_it_once(world: Any) -> None:
    project, annotator = world
    for round_ in range(FREE_ROUNDS // 4):
        lease = next_task(annotator=annotator, project=project)
        first, second = _twice_at_once(lambda lease=lease: lease_skip(lease=lease, actor=annotator))
        assert first.pk == second.pk == lease.pk and first.state == second.state == LeaseState.SKIPPED, round_
        assert Lease.objects.filter(task_id=lease.task_id, annotator=annotator).count() == 1
