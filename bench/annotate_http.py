"""The annotator's page cycle over HTTP: gunicorn (2 workers) on PostgreSQL, with real sessions and CSRF.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/annotate_http.py

Builds a fresh database ``<name>_bench_http`` (dropped and re-created on every run) with one project of ``--tasks``
tasks (min 3 judgments, 5% gold served, auto-pause on as the project's default): ``--form pairwise`` (a plain
pairwise project) or ``--form rich`` (the rich form of ``tests/forms/rich.py``: a 4-response ranking, three
per-response ratings, a rationale, an optional rewrite; tasks from ``rich_task``). It starts gunicorn and a Celery
worker as production runs them (the quality recompute runs on commit), and for each N in ``--annotators`` runs N
browsers (threads, each with its own keep-alive connection) that repeat the page's cycle for ``--seconds`` after a
warm-up: one request per judgment, as the page's script sends it (``X-Next-Task: inline``: the answer carries the
next task's HTML); ``--cycle two`` measures the plain form post answered by a redirect, then the GET of the page.
Prints judgments/s, p50/p99 of each request, the server's CPU per judgment (the gunicorn workers, the PostgreSQL
backends of the bench database and the Celery worker, from ``/proc/<pid>/stat`` before and after the measured
seconds; PostgreSQL must run on this machine), the errors, and the command that reproduces the run. Not a test:
nothing here asserts timings; it exits 1 when any loop failed.

The browsers act for ``--people`` plausible annotators, so that the quality engine has no reason to pause them
(it must not: the page of a paused annotator is "nothing left", which this benchmark counts as an error):

- each task has a hidden truth, seeded and written into ``Task.meta["bench_truth"]`` at build time (45% a, 45% b,
  7% tie, 3% both bad; a or b on gold tasks, whose gold label is that truth), and each person answers it with
  their own accuracy, drawn uniformly in ``--accuracy`` (default 0.85 to 0.90), else one of the other three
  answers at random: agreement far above chance (no ``random_clicker``), gold accuracy far above the pause
  threshold (no ``low_gold_accuracy``), no side or length preferred (the server randomises the order shown);
- each person thinks before answering: the choice is posted at least ``--think`` seconds (median; lognormal,
  never under 3.5 s, above the project's ``too_fast_seconds`` of 3) after their labeling page was served, so the
  server-side time on task is plausible (no ``too_fast``).

A browser takes whichever person has finished thinking longest ago, posts their choice, loads their next page and
hands them back to think; the server sees N requests in flight at any time, as from a crowd of N people clicking
at once. By Little's law ``--people`` must exceed loops/s x think time, or the browsers wait for someone to
finish thinking; the time they waited is printed (loops/s then measures the crowd, not the server). Each person
makes only a few judgments per run, fewer than any flag needs (20 to 30); after the run the recompute is run
in-process and any pause or flag fails the run. People are signed in in-process by Django's own ``login()`` (the
test client's ``force_login``), which creates their database sessions: signing 1,000 people in over HTTP would
cost a PBKDF2 hash each (about 0.35 s of CPU here).
"""

from __future__ import annotations

import argparse
import heapq
import html
import http.client
import json
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_command, recreate_database  # noqa: E402

PASSWORD = "bench-password-not-secret"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHOICES_FORM = re.compile(r'<form method="post" action="([^"]+/submit)"')
CLIENT_ID = re.compile(r'name="client_id" value="([^"]+)"')
TASK_NUMBER = re.compile(r"Explain idea (\d+) in|Question (\d+): how do I")
MESSAGES = re.compile(r'<ul class="messages"[^>]*>(.*?)</ul>', re.S)
TAGS = re.compile(r"<[^>]+>")
LABELS = ("a", "b", "tie", "both_bad")
TRUTH_WEIGHTS = (0.45, 0.45, 0.07, 0.03)
MIN_THINK = 3.5  # seconds: above the project's too_fast_seconds (3) for every judgment, not only the median
RICH_K = 4
ORDER = re.compile(r'data-order="([^"]+)"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _environment(database_url: str, var_dir: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "CONCORD_VAR_DIR": var_dir,
        "CELERY_QUEUE": "bench-http",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }


def _truths(n_tasks: int, seed: int, form: str = "pairwise") -> list[str]:
    """The hidden truth of each task (a or b on gold tasks, every 100th); for the rich form, the best response's
    index."""
    rng = random.Random(seed)
    if form == "rich":
        return [str(rng.randrange(RICH_K)) for _ in range(n_tasks)]
    return [rng.choice(("a", "b")) if n % 100 == 0 else rng.choices(LABELS, TRUTH_WEIGHTS)[0] for n in range(n_tasks)]


def _build(
    n_tasks: int, n_annotators: int, truths: list[str] | None = None, form: str = "pairwise"
) -> tuple[int, list[str]]:
    """The project, its tasks and annotators: the project id and the usernames. With ``truths`` (one per task),
    each task's hidden truth is written into its meta and gold tasks (every 100th) take theirs as the gold label;
    without (``bench/soak.py``), every gold label is "a"."""
    import django

    django.setup()
    # after django.setup(): project modules need the app registry
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from labeling.models import Membership, Organization, Role, Task
    from labeling.services import project_create

    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    from tests.forms.rich import RICH_QUESTIONS, rich_task

    org = Organization.objects.create(name="Bench", slug="bench")
    if form == "rich":
        project = project_create(
            organization=org, name="Bench rich", questions=RICH_QUESTIONS, min_judgments=3, max_judgments=5,
            gold_rate=0.05,
        )  # fmt: skip
    else:
        project = project_create(
            organization=org, name="Bench prefs", kind="pairwise", min_judgments=3, max_judgments=5, gold_rate=0.05
        )
    password = make_password(PASSWORD)
    User = get_user_model()
    users = User.objects.bulk_create(
        User(username=f"annotator{n}@bench.example", password=password) for n in range(n_annotators)
    )
    Membership.objects.bulk_create(Membership(organization=org, user=u, role=Role.ANNOTATOR) for u in users)
    Task.objects.bulk_create(
        (
            Task(
                organization=org,
                project=project,
                external_id=f"pair-{n}",
                payload=_rich_payload(rich_task(n, RICH_K))
                if form == "rich"
                else {
                    "prompt": f"Explain idea {n} in **two** sentences.",
                    "response_a": f"Idea {n} is simple:\n\n```python\nprint({n})\n```",
                    "response_b": f"Idea {n} is *about* sharing the work fairly. It helps.",
                },
                meta={"bench_truth": truths[n]} if truths else {},
                gold_label=(truths[n] if truths else "a") if n % 100 == 0 else None,
            )
            for n in range(n_tasks)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()
    return project.pk, [u.username for u in users]


def _rich_payload(row: dict) -> dict:
    return {"messages": row["messages"], "responses": row["responses"]}


def _sessions(usernames: list[str]) -> list[dict[str, str]]:
    """Sign each person in with Django's own ``login()`` (the test client's ``force_login``): their cookies."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    users = {user.username: user for user in get_user_model().objects.filter(username__in=usernames)}
    cookies = []
    for username in usernames:
        client = Client()
        client.force_login(users[username])
        cookies.append({settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value})
    connection.close()
    return cookies


@dataclass(order=True)
class Person:
    """One simulated annotator: their session, their accuracy and the page they are thinking about."""

    ready_at: float  # when they have finished thinking about the page they hold
    username: str = field(compare=False)
    cookies: dict[str, str] = field(compare=False)
    accuracy: float = field(compare=False)
    rng: random.Random = field(compare=False)
    think: float = field(compare=False)
    page: str = field(default="", compare=False)
    answered: int = field(default=0, compare=False)
    right: int = field(default=0, compare=False)

    def hold(self, page: str) -> None:
        """They got ``page`` now: they will answer it after thinking (lognormal around the median)."""
        self.page = page
        self.ready_at = time.time() + max(MIN_THINK, self.think * self.rng.lognormvariate(0.0, 0.3))

    def task_number(self) -> int | None:
        found = TASK_NUMBER.search(self.page)
        return None if found is None else int(found.group(1) or found.group(2))

    def answers(self, truths: list[str]) -> dict:
        """Their answers to the rich form: the truth ranked first with their accuracy (the rest in any order), rated
        highest, a rationale, and now and then a rewrite of the best. Indexes are the task's own (the page's script
        maps the numbers pressed back with the order shown; this person needs no screen)."""
        number = self.task_number()
        truth = int(truths[number]) if number is not None else 0
        others = [i for i in range(RICH_K) if i != truth]
        best = truth if self.rng.random() < self.accuracy else self.rng.choice(others)
        rest = [i for i in range(RICH_K) if i != best]
        self.rng.shuffle(rest)
        self.answered += 1
        self.right += best == truth
        ratings = [self.rng.randint(6, 7) if i == best else self.rng.randint(2, 5) for i in range(RICH_K)]
        answers = {
            "rank": [best, *rest],
            "helpfulness": ratings,
            "honesty": ratings,
            "harmlessness": [7] * RICH_K,
            "why": "It answers the question and shows the idiom.",
        }
        if self.rng.random() < 0.3:
            answers["better"] = {"text": "Use xs[::-1] for a copy, or xs.reverse() in place.", "source": best}
        return answers

    def choose(self, truths: list[str]) -> str:
        """The choice they press on the page they hold: the task's truth with their accuracy, else another answer."""
        number = self.task_number()
        truth = truths[number] if number is not None else "tie"
        label = truth if self.rng.random() < self.accuracy else self.rng.choice([x for x in LABELS if x != truth])
        self.answered += 1
        self.right += label == truth
        a_first = self.page.find("is simple") < self.page.find("sharing the work")
        if label in ("a", "b"):
            return "first" if (label == "a") == a_first else "second"
        return label


class Crowd:
    """The people, by when they finish thinking; a browser takes the one who finished first."""

    def __init__(self, people: list[Person]) -> None:
        self.heap = list(people)
        heapq.heapify(self.heap)
        self.lock = threading.Lock()

    def take(self, stop_at: float) -> tuple[Person | None, float]:
        """The person who finished thinking first (waiting for them if need be), and the seconds waited; no one
        when they would finish after ``stop_at``."""
        with self.lock:
            person = heapq.heappop(self.heap)
        wait = person.ready_at - time.time()
        if wait > 0:
            if person.ready_at >= stop_at:
                self.give_back(person)
                return None, 0.0
            time.sleep(wait)
        return person, max(wait, 0.0)

    def give_back(self, person: Person) -> None:
        with self.lock:
            heapq.heappush(self.heap, person)


class Browser:
    """One browser: a keep-alive connection, used for whichever person it acts for."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(
        self,
        person: Person,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in person.cookies.items()), **(extra or {})}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed an idle keep-alive connection: reconnect and send again (a repeated submit is
            # safe, its client id makes it idempotent).
            self.connection.close()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        text = response.read().decode()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                person.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location") or "", text


def _first_message(page: str) -> str:
    """What the page tells the person: its messages, else its main heading or first text."""
    found = MESSAGES.search(page) or re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S) or re.search(r"(.*)", page, re.S)
    return html.unescape(" ".join(TAGS.sub(" ", found.group(1)).split()))[:160]  # type: ignore[union-attr]


def _take_page(person: Person, status: int, page: str, step: str, errors: list[tuple[str, int, str]]) -> bool:
    """Hand ``page`` (a labeling page, or the task part of one) to the person to think about; False (an error)
    when it is not one."""
    if status != 200 or CHOICES_FORM.search(page) is None:
        errors.append((step, status, _first_message(page)))
        person.page, person.ready_at = "", time.time() + 1.0
        return False
    if MESSAGES.search(page):  # a refused submit shows its reason on the next page (nothing was stored)
        errors.append(("submit refused", status, _first_message(page)))
    person.hold(page)
    return True


def _open(browser: Browser, person: Person, page_path: str, errors: list[tuple[str, int, str]]) -> bool:
    """Load the person's labeling page (their next task) for them to think about; False (an error) otherwise."""
    status, _, page = browser.request(person, "GET", page_path)
    return _take_page(person, status, page, "labeling page", errors)


def _analyze(database_url: str) -> None:
    """Refresh the planner's statistics after the priming, as autovacuum does on a live server once a table has
    changed by 50 rows and 10% (the 1,000 leases and sessions just made): on statistics taken when the lease table
    was empty, PostgreSQL counts a task's live leases by scanning every active lease of the project (the unique
    index on project and annotator) instead of the task's own (``assignment_task_active``): 100 ms per pick instead
    of 3 ms, which this benchmark would otherwise report as the router's cost."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ANALYZE routing_assignment, labeling_annotation, labeling_task, django_session")


def _prime(port: int, people: list[Person], page_path: str, errors: list[tuple[str, int, str]]) -> None:
    """Give each person a labeling page to think about (not measured)."""
    browser = Browser(port)
    for person in people:
        if not person.page:
            _open(browser, person, page_path, errors)


INLINE = {"X-Requested-With": "fetch", "X-Next-Task": "inline"}


def _work(
    browser: Browser,
    crowd: Crowd,
    page_path: str,
    truths: list[str],
    measure_at: float,
    stop_at: float,
    results: dict[str, list],
    form_kind: str,
    cycle: str,
) -> None:
    while time.time() < stop_at:
        person, waited = crowd.take(stop_at)
        if person is None:
            return
        results["waited"].append(waited)
        if not person.page:
            _open(browser, person, page_path, results["errors"])
            crowd.give_back(person)
            continue
        measured = time.time() >= measure_at
        page = person.page
        form = {
            "csrfmiddlewaretoken": CSRF_FIELD.search(page).group(1),  # type: ignore[union-attr]
            "client_id": CLIENT_ID.search(page).group(1),  # type: ignore[union-attr]
        }
        if form_kind == "rich":
            form["answers"] = json.dumps(person.answers(truths))
            form["active_seconds"] = "5.0"
        else:
            form["choice"] = person.choose(truths)
        action = CHOICES_FORM.search(page).group(1)  # type: ignore[union-attr]
        errors_before = len(results["errors"])
        t0 = time.perf_counter()
        if cycle == "one":
            status, _, answer = browser.request(person, "POST", action, form, INLINE)
            t1 = t2 = time.perf_counter()
            person.page = ""
            try:
                body = json.loads(answer)
            except ValueError:
                body = {}
            if status != 200 or not body.get("saved"):
                results["errors"].append(("submit", status, str(body.get("error") or _first_message(answer))))
                crowd.give_back(person)
                continue
            _take_page(person, status, body.get("html", ""), "next task in the answer", results["errors"])
        else:
            status, location, answer = browser.request(person, "POST", action, form)
            t1 = time.perf_counter()
            person.page = ""
            if status != 302 or location != page_path:
                results["errors"].append(("submit", status, location or _first_message(answer)))
                crowd.give_back(person)
                continue
            _open(browser, person, page_path, results["errors"])
            t2 = time.perf_counter()
        crowd.give_back(person)
        if measured and len(results["errors"]) == errors_before:
            results["submit"].append((t1 - t0) * 1000)
            results["page"].append((t2 - t1) * 1000)
            results["loops"].append(1.0)


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process (``/proc/<pid>/stat``); a process gone is left out."""
    seconds = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)
    return seconds


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def _wait_for(port: int, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def _quality(project_id: int) -> dict[str, int]:
    """Recompute the project's quality now (in-process) and count what it says about the people."""
    # after django.setup(): project modules need the app registry
    from django.db.models import Count, Q

    from quality.models import AnnotatorScore, Flag
    from quality.services import project_quality_recompute

    project_quality_recompute(project_id=project_id)
    flags = Flag.values
    counts = AnnotatorScore.objects.filter(project_id=project_id).aggregate(
        scored=Count("id"),
        paused=Count("id", filter=Q(paused_at__isnull=False)),
        **{flag: Count("id", filter=Q(**{flag: True})) for flag in flags},
    )
    return counts


class CpuMeter:
    """CPU seconds used by the server's processes between ``start`` and ``stop``: the gunicorn workers, the
    PostgreSQL backends of the bench database, the Celery worker.

    Sampled every 0.2 s by a thread: Django closes a connection older than ``CONN_MAX_AGE`` (60 s) at the end of a
    request, so backends come and go during a run. A process seen at ``start`` counts from its CPU then; one that
    appears later counts from zero (it started within the window); one that ends counts up to its last sample
    (at most 0.2 s of its work is missed)."""

    def __init__(self, gunicorn: int, worker: int, database_url: str) -> None:
        import psycopg

        self.gunicorn, self.worker = gunicorn, worker
        self.connection = psycopg.connect(database_url, autocommit=True)
        self.first: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}
        self.running = threading.Event()
        self.thread: threading.Thread | None = None

    def _groups(self) -> dict[str, list[int]]:
        rows = self.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return {
            "web": [self.gunicorn, *_children(self.gunicorn)],
            "postgres": [row[0] for row in rows],
            "celery": [self.worker, *_children(self.worker)],
        }

    def _sample(self, *, at_start: bool = False) -> None:
        for name, pids in self._groups().items():
            for pid, seconds in _cpu_seconds(pids).items():
                self.first[name].setdefault(pid, seconds if at_start else 0.0)
                self.last[name][pid] = seconds

    def _loop(self) -> None:
        while self.running.is_set():
            self._sample()
            time.sleep(0.2)

    def start(self) -> None:
        self.first = {name: {} for name in ("web", "postgres", "celery")}
        self.last = {name: {} for name in ("web", "postgres", "celery")}
        self._sample(at_start=True)
        self.running.set()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running.clear()
        if self.thread is not None:
            self.thread.join()
        self._sample()
        self.used = {
            name: sum(self.last[name][pid] - self.first[name][pid] for pid in self.last[name]) for name in self.last
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 8], help="browsers at once (N)")
    parser.add_argument("--people", type=int, default=1_000, help="simulated annotators the browsers act for")
    parser.add_argument("--think", type=float, default=5.0, help="median seconds a person thinks before the choice")
    parser.add_argument("--accuracy", type=float, nargs=2, default=[0.85, 0.90], help="range of people's accuracy")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per N, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--form", choices=["pairwise", "rich"], default="pairwise", help="the project's form")
    parser.add_argument(
        "--cycle",
        choices=["one", "two"],
        default="one",
        help="one: the script's submit, answered with the next task; two: form post, redirect, GET of the page",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (1: sync workers; more: gthread)"
    )
    args = parser.parse_args()
    print_command(args)
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/annotate_http.py measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/annotate_http.py runs jobs as production does: set REDIS_URL=redis://host:port/0")
    var_dir = tempfile.mkdtemp(prefix="concord-bench-http-")
    database_url = recreate_database(server, (urlsplit(server).path.strip("/") or "concord") + "_bench_http")
    env = _environment(database_url, var_dir)
    os.environ.update(env)
    truths = _truths(args.tasks, args.seed, args.form)
    project_id, usernames = _build(args.tasks, args.people, truths, args.form)
    cookies = _sessions(usernames)
    rng = random.Random(args.seed)
    people = [
        Person(0.0, username, jar, rng.uniform(*args.accuracy), random.Random(rng.random()), args.think)
        for username, jar in zip(usernames, cookies, strict=True)
    ]
    gunicorn = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "2", "--threads", str(args.threads),
         "--bind", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bench-http", "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    failed: list[str] = []
    try:
        _wait_for(args.port)
        page_path = f"/projects/{project_id}/annotate/"
        kind = "sync" if args.threads == 1 else f"gthread x{args.threads}"
        print(
            f"gunicorn 2 workers ({kind}), PostgreSQL, {args.tasks:,} {args.form} tasks, {args.people:,} people "
            f"(accuracy {args.accuracy[0]:.2f}-{args.accuracy[1]:.2f}, think median {args.think:g} s, "
            f"at least {MIN_THINK:g} s), CPUs: {os.cpu_count()}",
            flush=True,
        )
        priming_errors: list[tuple[str, int, str]] = []
        started = time.perf_counter()
        primers = [
            threading.Thread(target=_prime, args=(args.port, people[n::4], page_path, priming_errors)) for n in range(4)
        ]
        for thread in primers:
            thread.start()
        for thread in primers:
            thread.join()
        print(f"opened {args.people:,} labeling pages in {time.perf_counter() - started:.1f} s (not measured)")
        _analyze(database_url)
        if priming_errors:
            failed.append(f"opening the first pages: {len(priming_errors)} errors")
            for (step, status, message), count in Counter(priming_errors).most_common(5):
                print(f"  {count} x {step}: {status} {message}")
        crowd = Crowd(people)
        meter = CpuMeter(gunicorn.pid, worker.pid, database_url)
        for n in args.annotators:
            results: dict[str, list] = {"page": [], "submit": [], "loops": [], "errors": [], "waited": []}
            measure_at = time.time() + args.warmup
            stop_at = measure_at + args.seconds
            browsers = [Browser(args.port) for _ in range(n)]
            threads = [
                threading.Thread(
                    target=_work,
                    args=(b, crowd, page_path, truths, measure_at, stop_at, results, args.form, args.cycle),
                )
                for b in browsers
            ]
            for thread in threads:
                thread.start()
            time.sleep(max(0.0, measure_at - time.time()))
            meter.start()
            for thread in threads:
                thread.join()
            meter.stop()
            page, submit, errors = results["page"], results["submit"], results["errors"]
            waited = sum(results["waited"]) / (n * (args.warmup + args.seconds))
            mean_loop = statistics.fmean(a + b for a, b in zip(page, submit, strict=True)) if page else float("nan")
            judged = max(len(results["loops"]), 1)
            cpu = "  ".join(f"{name} {seconds * 1000 / judged:.2f}" for name, seconds in meter.used.items())
            steps = (
                f"submit with the next task p50 {_percentile(submit, 50):5.1f} ms p99 {_percentile(submit, 99):6.1f} ms"
                if args.cycle == "one"
                else f"page p50 {_percentile(page, 50):5.1f} ms p99 {_percentile(page, 99):6.1f} ms  "
                f"submit p50 {_percentile(submit, 50):5.1f} ms p99 {_percentile(submit, 99):6.1f} ms"
            )
            print(
                f"N={n}: {len(results['loops']) / args.seconds:6.1f} judgments/s  {steps}  "
                f"(mean loop {mean_loop:.1f} ms, errors {len(errors)}, "
                f"browsers waited for a person {waited:.1%} of the time)\n"
                f"     server CPU ms per judgment: {cpu} (web + postgres "
                f"{(meter.used['web'] + meter.used['postgres']) * 1000 / judged:.2f})",
                flush=True,
            )
            if errors:
                failed.append(f"N={n}: {len(errors)} errors")
                for (step, status, message), count in Counter(errors).most_common(5):
                    print(f"  {count} x {step}: {status} {message}")
            if waited > 0.02:
                print("  note: too few people for this rate (raise --people): loops/s is the crowd's pace here")
    finally:
        for process in (gunicorn, worker):
            process.terminate()
            process.wait(timeout=30)

    answered = sum(p.answered for p in people)
    right = sum(p.right for p in people)
    per_person = sorted(p.answered for p in people)
    quality = _quality(project_id)
    print(
        f"people: {answered:,} answers, {right / max(answered, 1):.1%} right (hidden truth); answers per person "
        f"min {per_person[0]} median {per_person[len(per_person) // 2]} max {per_person[-1]}"
    )
    print("quality recompute: " + ", ".join(f"{name} {count}" for name, count in quality.items()))
    flagged = {name: count for name, count in quality.items() if name != "scored" and count}
    if flagged:
        failed.append(f"the quality engine paused or flagged simulated people: {flagged}")
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
        sys.exit(1)
    print("errors: 0 at every N; no one paused or flagged")


if __name__ == "__main__":
    main()
