"""Soak test with invariants: many annotators work the real pages over HTTP for minutes; nothing may be lost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord .venv/bin/python bench/soak.py            # 100 x 10 min
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord .venv/bin/python bench/soak.py --duration 60

All on loopback. Builds a fresh database ``<name>_soak`` (dropped and re-created on every run) and empties its own
Redis database (``--redis-url``, db 9 by default), seeds one organization with a pairwise project (overlap
``--overlap``, at most two more judgments for dynamic consensus, 5% gold is served, lease TTL ``--lease-ttl``) and
``--tasks`` tasks, then starts gunicorn (``config.wsgi``, gthread workers) and a Celery worker with its embedded beat
(lease sweep every 60 s) on its own queue, as production runs them.

``--annotators`` simulated browsers (threads; each its own cookies and keep-alive connection) work for
``--duration`` seconds the way the page does: sign in (login page, CSRF cookie and token, POST), open the work page,
then loop: open the labeling page (a lease), think, press a choice. Most annotators run the page script (a
``fetch`` POST of the form's fields as multipart with ``X-Requested-With: fetch``, answered with JSON naming the next
page); the others post the plain form (answered with a redirect). Each browser also, at random: double-submits
(the same client id posted again after the answer, or twice at once over two connections), skips, walks away
from an open task past the lease TTL (and then either posts the stale page, which must be refused and store
nothing, or signs in again), and reopens the work page. A submit that fails (network error, 5xx) is retried
with the same client id, like the page script.

After the run it waits for the job queue to drain (the coalesced stats and quality jobs, and the sweep), then
checks, and exits non-zero when one fails:

- every acknowledged submit stored exactly once (acknowledged: answered 302 / JSON ``next`` and the next page
  shows no "nothing was saved" message), no stored row the client was told was refused, no duplicate row;
- no task with more judgments than its overlap (min + extra asked by consensus, never above max), task counters
  equal to their rows; judgments plus live leases never above the overlap, also sampled during the run;
- no lease older than its TTL counted in flight, and no expired lease left active after two sweep periods
  (sampled during the run and at the end);
- no 5xx, no connection error, no traceback in the server or worker logs;
- the stored quality (consensus, annotator scores, rankings, snapshot) covers every judgment and equals what a
  fresh in-process recompute stores.

Prints the command that reproduces the run, p50/p99/max per endpoint, judgments/s, and a one-line JSON summary
(``SOAK {...}``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.annotate_http import (  # noqa: E402
    CHOICES_FORM,
    CLIENT_ID,
    CSRF_FIELD,
    PASSWORD,
    _build,
    _environment,
    _percentile,
    _wait_for,
)
from bench.common import print_command, recreate_database  # noqa: E402

ENDPOINTS = ("login page", "login", "work", "annotate", "submit", "skip")
SKIP_FORM = re.compile(r'<form method="post" action="([^"]+/skip)"')
ANNOTATE_LINK = re.compile(r'href="(/projects/\d+/annotate/)"')
MESSAGES = re.compile(r'<ul class="messages" role="alert">(.*?)</ul>', re.S)
RESPONSE_2 = 'aria-label="Response 2"'
IDEA = re.compile(r"Explain idea (\d+)")  # the task's number, in the prompt bench.annotate_http seeds
SWEEP_SECONDS = 60  # CELERY_BEAT_SCHEDULE["expire-leases"]
RETRIES = 3  # a failed submit is sent again with the same client id, as the page script does on the next key press


class Transport(Exception):
    """No HTTP answer: refused, reset or timed out."""


def _seconds(text: str) -> float:
    """``600``, ``600s``, ``10m``."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)


@dataclass
class Outcome:
    """What one browser saw; merged over all browsers at the end."""

    ms: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))  # (sent at, ms)
    status: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    acked: set[str] = field(default_factory=set)  # client ids the browser believes stored
    refused: dict[str, str] = field(default_factory=dict)  # client id -> the message shown instead
    stale: set[str] = field(default_factory=set)  # posted after walking away past the TTL: must not be stored
    unresolved: set[str] = field(default_factory=set)  # every retry failed: the browser cannot tell
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        for name, values in other.ms.items():
            self.ms[name].extend(values)
        self.status.update(other.status)
        self.transport.update(other.transport)
        self.reconnects += other.reconnects
        self.acked |= other.acked
        self.refused |= other.refused
        self.stale |= other.stale
        self.unresolved |= other.unresolved
        self.counts.update(other.counts)
        self.problems.extend(other.problems[:5])


class Browser:
    """One keep-alive connection with a cookie jar that may be shared with a second connection (a second tab).

    Cookies are kept by hand: the site sets them ``Secure`` (production settings) and this is plain HTTP on
    loopback, where ``http.cookiejar`` would withhold them.
    """

    def __init__(self, port: int, outcome: Outcome, cookies: dict[str, str] | None = None) -> None:
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies = {} if cookies is None else cookies
        self.outcome = outcome
        self.used = False

    def request(
        self, endpoint: str, method: str, path: str, fields: dict[str, str] | None = None, *, fetch: bool = False
    ) -> tuple[int, str, str]:
        """(status, Location, body), timed under ``endpoint``; ``Transport`` when no answer came."""
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body: bytes | None = None
        if fields is not None:
            headers["Origin"] = self.origin  # browsers send it with every POST; Django's CSRF check compares it
            if fetch:  # FormData: multipart, plus the page script's marker header
                boundary = "----soak" + secrets.token_hex(8)
                parts = [
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                    for k, v in fields.items()
                ]
                body = ("".join(parts) + f"--{boundary}--\r\n").encode()
                headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
                headers["X-Requested-With"] = "fetch"
            else:
                body = urlencode(fields).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        sent_at, started = time.time(), time.perf_counter()
        try:
            response = self._send(method, path, body, headers)
            text = response.read().decode()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.outcome.transport[f"{endpoint}: {type(error).__name__}"] += 1
            raise Transport(str(error)) from error
        self.outcome.ms[endpoint].append((sent_at, (time.perf_counter() - started) * 1000))
        self.outcome.status[endpoint, response.status] += 1
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location") or "", text

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
        reused, self.used = self.used, True
        try:
            self.connection.request(method, path, body=body, headers=headers)
            return self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection (gunicorn's keepalive is 2 s): a browser opens a new
            # one and sends again (a repeated submit is safe: its client id makes it idempotent).
            self.connection.close()
            self.outcome.reconnects += 1
            self.connection.request(method, path, body=body, headers=headers)
            return self.connection.getresponse()

    def close(self) -> None:
        self.connection.close()


@dataclass
class Plan:
    port: int
    username: str
    seed: int
    start_at: float
    stop_at: float
    think: float
    ttl: float
    p_fetch: float
    p_skip: float
    p_double: float
    p_abandon: float
    p_work: float


class Annotator:
    """One simulated person at a browser, following ``Plan`` until its stop time."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.outcome = Outcome()
        self.fetch = self.rng.random() < plan.p_fetch  # the page script runs (most browsers), or plain forms
        self.browser = Browser(plan.port, self.outcome)
        self.annotate_path = ""

    # --- pacing
    def _sleep(self, seconds: float) -> bool:
        """Sleep, but never past the stop time; False when the run is over."""
        time.sleep(max(0.0, min(seconds, self.plan.stop_at - time.time())))
        return time.time() < self.plan.stop_at

    def _think(self) -> bool:
        return self._sleep(self.plan.think * self.rng.uniform(0.5, 1.5))

    # --- pages
    def sign_in(self) -> bool:
        self.browser.close()
        self.browser = Browser(self.plan.port, self.outcome)  # a new browser session: fresh cookies
        status, _, page = self.browser.request("login page", "GET", "/accounts/login/")
        token = CSRF_FIELD.search(page)
        if status != 200 or token is None:
            return self._problem(f"login page answered {status}")
        fields = {"csrfmiddlewaretoken": token.group(1), "username": self.plan.username, "password": PASSWORD}
        status, _, _ = self.browser.request("login", "POST", "/accounts/login/", fields)
        if status != 302:
            return self._problem(f"sign-in answered {status}")
        self.outcome.counts["sign-ins"] += 1
        return self.open_work()

    def open_work(self) -> bool:
        status, _, page = self.browser.request("work", "GET", "/work/")
        link = ANNOTATE_LINK.search(page)
        if status != 200 or link is None:
            return self._problem(f"work page answered {status} without a project link")
        self.annotate_path = link.group(1)
        return True

    def _problem(self, text: str) -> bool:
        self.outcome.problems.append(f"{self.plan.username}: {text}")
        self.outcome.counts["problems"] += 1
        return False

    def run(self) -> Outcome:
        try:
            self._run()
        finally:
            self.browser.close()
        return self.outcome

    def _run(self) -> None:
        if not self._sleep(self.plan.start_at - time.time()):
            return
        signed_in = False
        while time.time() < self.plan.stop_at:
            try:
                if not signed_in:
                    signed_in = self.sign_in()
                    if not signed_in:
                        self._sleep(5)
                        continue
                signed_in = self.cycle()
            except Transport:
                self._sleep(1)  # the browser shows an error; the person tries again a moment later

    def cycle(self) -> bool:
        """Open the labeling page and act on it; False when the browser must sign in again."""
        if self.rng.random() < self.plan.p_work:
            self.open_work()
        status, location, page = self.browser.request("annotate", "GET", self.annotate_path)
        if status == 302 and "/accounts/login/" in location:
            self.outcome.counts["sent to sign in"] += 1
            return False
        form, skip_form = CHOICES_FORM.search(page), SKIP_FORM.search(page)
        if status != 200:
            self._problem(f"labeling page answered {status}")
            self._sleep(2)
            return True
        if form is None or skip_form is None:
            self.outcome.counts["nothing left / paused pages"] += 1
            self._sleep(5)
            return True
        self.outcome.counts["tasks opened"] += 1
        token = CSRF_FIELD.search(page).group(1)  # type: ignore[union-attr]
        client_id = CLIENT_ID.search(page).group(1)  # type: ignore[union-attr]
        roll = self.rng.random()
        if roll < self.plan.p_abandon:
            return self.walk_away(form.group(1), token, client_id, page)
        if roll < self.plan.p_abandon + self.plan.p_skip:
            if not self._sleep(self.plan.think * self.rng.uniform(0.2, 0.8)):
                return True
            reason = self.rng.choice(["", "unclear", "expertise"])
            status, ok, _ = self.post("skip", skip_form.group(1), {"csrfmiddlewaretoken": token, "reason": reason})
            self.outcome.counts["skips"] += ok
            return True
        if not self._think():
            return True  # the run ended while this person was reading: the lease is left open
        fields = {"csrfmiddlewaretoken": token, "client_id": client_id, "choice": self.choose(page)}
        if self.fetch:
            fields["active_seconds"] = f"{self.plan.think:.1f}"
        self.submit(form.group(1), fields)
        return True

    def choose(self, page: str) -> str:
        """A careful annotator, right 85% of the time. The better response is the one with code (A) on even
        ideas, gold among them, and the prose (B) on odd ones: with one answer everywhere, chance agreement would be
        so high that the quality checks rightly could not tell these annotators from random clickers."""
        if self.rng.random() < 0.85:
            idea = IDEA.search(page)
            code_second = "print(" in page.split(RESPONSE_2, 1)[-1]
            wants_code = idea is None or int(idea.group(1)) % 2 == 0
            return "second" if code_second == wants_code else "first"
        return self.rng.choice(["first", "second", "tie", "both_bad"])

    def post(self, endpoint: str, path: str, fields: dict[str, str], browser: Browser | None = None) -> tuple:
        """POST the form as this browser does; (status, acknowledged, next path)."""
        status, location, body = (browser or self.browser).request(endpoint, "POST", path, fields, fetch=self.fetch)
        if self.fetch:
            try:
                answer = json.loads(body)
            except ValueError:
                answer = {}
            return status, status == 200 and "next" in answer, answer.get("next", "")
        return status, status == 302, location

    def submit(self, path: str, fields: dict[str, str]) -> None:
        client_id = fields["client_id"]
        roll = self.rng.random()
        acked = False
        if roll < self.plan.p_double / 2:  # two posts at once: a double click racing over two connections
            self.outcome.counts["concurrent double submits"] += 1
            acked = self._concurrent(path, fields)
        else:
            acked = self._send_submit(path, fields)
            if acked and roll < self.plan.p_double:  # posted again after the answer (a retry, a second tab)
                self.outcome.counts["repeated submits"] += 1
                acked = self._send_submit(path, fields) and acked
        if acked is None:
            self.outcome.unresolved.add(client_id)
            return
        if not acked:
            return
        message = self._next_page_message()
        if message:
            self.outcome.refused[client_id] = message
        else:
            self.outcome.acked.add(client_id)

    def _send_submit(self, path: str, fields: dict[str, str], browser: Browser | None = None) -> bool | None:
        """True: acknowledged; False: answered otherwise (counted); None: no answer after every retry."""
        for attempt in range(RETRIES):
            try:
                status, ok, _ = self.post("submit", path, fields, browser)
            except Transport:
                self.outcome.counts["submit retries"] += attempt < RETRIES - 1
                time.sleep(0.5)
                continue
            if status >= 500:
                self.outcome.counts["submit retries"] += attempt < RETRIES - 1
                time.sleep(0.5)
                continue
            if not ok:
                self._problem(f"submit answered {status}")
            return ok
        return None

    def _concurrent(self, path: str, fields: dict[str, str]) -> bool | None:
        second = Browser(self.plan.port, Outcome(), self.browser.cookies)  # same cookies, another connection
        results: list[bool | None] = []
        thread = threading.Thread(target=lambda: results.append(self._send_submit(path, fields, second)))
        thread.start()
        mine = self._send_submit(path, fields)
        thread.join()
        second.close()
        self.outcome.merge(second.outcome)
        theirs = results[0] if results else None
        if mine is None and theirs is None:
            return None
        return bool(mine or theirs) and mine is not False and theirs is not False

    def _next_page_message(self) -> str:
        """The next page, as the browser goes there after a submit: a refusal shows as a message on it."""
        status, _, page = self.browser.request("annotate", "GET", self.annotate_path)
        found = MESSAGES.search(page) if status == 200 else None
        return re.sub(r"<[^>]+>", " ", found.group(1)).strip() if found else ""

    def walk_away(self, submit_path: str, token: str, client_id: str, page: str) -> bool:
        """Leave an open task past its lease; come back and post the stale page, or sign in afresh."""
        self.outcome.counts["leases abandoned"] += 1
        if not self._sleep(self.plan.ttl + self.rng.uniform(3, 20)):
            return True
        if self.rng.random() < 0.5:
            self.outcome.counts["stale submits"] += 1
            self.outcome.stale.add(client_id)
            fields = {"csrfmiddlewaretoken": token, "client_id": client_id, "choice": self.choose(page)}
            if self._send_submit(submit_path, fields):
                message = self._next_page_message()
                self.outcome.counts["stale submits refused with a message"] += bool(message)
            return True
        return False  # came back in a new browser session: signs in again


# --- The servers --------------------------------------------------------------------------------------------------
def _start_servers(args: argparse.Namespace, env: dict[str, str], var_dir: str) -> list[subprocess.Popen]:
    logs = Path(var_dir)
    gunicorn = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers), "--threads",
         str(args.threads), "--bind", f"127.0.0.1:{args.port}", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=(logs / "gunicorn.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-s", str(logs / "beat-schedule"),
         "-Q", env["CELERY_QUEUE"], "--concurrency", str(args.worker_concurrency), "--loglevel=INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return [gunicorn, worker]


def _log_errors(var_dir: str) -> dict[str, int]:
    """Tracebacks, worker timeouts and failed jobs in gunicorn's log (Django logs 500s there) and the worker's."""
    found = {}
    for name in ("gunicorn", "worker"):
        text = (Path(var_dir) / f"{name}.log").read_text(errors="replace")
        found[name] = sum(text.count(sign) for sign in ("Traceback", "WORKER TIMEOUT", "raised unexpected"))
    return found


SUCCEEDED = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded in [\d.e-]+s: (.*)")


def _jobs(var_dir: str) -> dict[str, int]:
    """Jobs the worker finished, from its log: lease sweeps (and leases they recorded), stats and quality runs."""
    done: Counter[str] = Counter()
    for task, result in SUCCEEDED.findall((Path(var_dir) / "worker.log").read_text(errors="replace")):
        done[task] += 1
        if task.endswith("expire_leases_job") and result.strip().isdigit():
            done["swept"] += int(result)
    return {
        "sweeps": done["routing.jobs.expire_leases_job"],
        "swept": done["swept"],
        "stats runs": done["quality.jobs.refresh_project_stats_job"],
        "quality runs": done["quality.jobs.recompute_project_quality_job"],
    }


# --- Checks -------------------------------------------------------------------------------------------------------
def _scalar(sql: str, params: dict[str, Any]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0] or 0)


OVER_OVERLAP_LIVE = """
    SELECT count(*) FROM labeling_task t
    JOIN labeling_project p ON p.id = t.project_id
    LEFT JOIN (SELECT task_id, count(*) n FROM labeling_annotation WHERE project_id = %(p)s GROUP BY task_id) a
      ON a.task_id = t.id
    LEFT JOIN (SELECT task_id, count(*) n FROM routing_assignment
               WHERE project_id = %(p)s AND state = 'active' AND expires_at > now() GROUP BY task_id) l
      ON l.task_id = t.id
    WHERE t.project_id = %(p)s AND t.gold_label IS NULL
      AND coalesce(a.n, 0) + coalesce(l.n, 0) > least(p.min_judgments + t.extra_judgments, p.max_judgments)
"""
# In flight for the router = active and expires_at in the future (routing.sql.live_leases): a lease leased more
# than its TTL ago must not be among them.
STALE_IN_FLIGHT = """
    SELECT count(*) FROM routing_assignment a JOIN labeling_project p ON p.id = a.project_id
    WHERE a.project_id = %(p)s AND a.state = 'active' AND a.expires_at > now()
      AND a.leased_at + make_interval(secs => p.lease_ttl_seconds) <= now()
"""
# The sweep runs every SWEEP_SECONDS: a lease expired two periods (plus a margin) ago must be recorded as expired.
UNSWEPT = """
    SELECT count(*) FROM routing_assignment
    WHERE project_id = %(p)s AND state = 'active' AND expires_at < now() - make_interval(secs => %(lag)s)
"""


def _live_checks(project_id: int) -> dict[str, int]:
    params = {"p": project_id, "lag": 2 * SWEEP_SECONDS + 30}
    return {
        "judgments + live leases over overlap": _scalar(OVER_OVERLAP_LIVE, params),
        "stale leases counted in flight": _scalar(STALE_IN_FLIGHT, params),
        "expired leases not swept": _scalar(UNSWEPT, params),
    }


def _monitor(project_id: int, stop: threading.Event, worst: dict[str, int], loads: list[float]) -> None:
    """Every 10 s during the run: the live invariants (worst value kept) and the machine's 1-minute load."""
    from django.db import connection

    try:
        while not stop.wait(10):
            for name, value in _live_checks(project_id).items():
                worst[name] = max(worst.get(name, 0), value)
            loads.append(os.getloadavg()[0])
    finally:
        connection.close()


def _drain(project_id: int, queue: str, redis_url: str, timeout: float) -> tuple[bool, float]:
    """Wait until no job is queued or held by the worker and the stored quality covers every judgment."""
    # after django.setup(): project modules need the app registry
    import redis
    from django.core.cache import cache

    from labeling.models import Judgment
    from labeling.queueing import coalesced_mark
    from quality.models import ProjectQuality
    from quality.services import QUALITY_JOB, STATS_JOB

    broker = redis.Redis.from_url(redis_url)
    started = time.time()
    settled = 0
    while time.time() - started < timeout:
        last = Judgment.objects.filter(project_id=project_id).order_by("-id").values_list("id", flat=True).first()
        covered = ProjectQuality.objects.filter(project_id=project_id, last_annotation_id=last or 0).exists()
        idle = (
            broker.llen(queue) == 0
            and broker.hlen("unacked") == 0
            and cache.get(coalesced_mark(STATS_JOB, project_id)) is None
            and cache.get(coalesced_mark(QUALITY_JOB, project_id)) is None
        )
        settled = settled + 1 if idle and covered else 0
        if settled >= 3:
            return True, time.time() - started
        time.sleep(1)
    return False, time.time() - started


def _final_checks(project_id: int, outcome: Outcome) -> tuple[dict[str, int], dict[str, Any]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_id, count(*) FROM labeling_annotation WHERE project_id = %s GROUP BY client_id",
            [project_id],
        )
        stored = dict(cursor.fetchall())
    params = {"p": project_id}
    checks = {
        "lost (acknowledged, not stored)": len(outcome.acked - stored.keys()),
        "duplicated (rows beyond one per client id)": sum(n - 1 for n in stored.values()),
        "duplicated (task judged twice by one annotator)": _scalar(
            "SELECT count(*) FROM (SELECT 1 FROM labeling_annotation WHERE project_id = %(p)s "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) d",
            params,
        ),
        "stored though refused": len(outcome.refused.keys() & stored.keys()),
        "stored from an expired lease": len(outcome.stale & stored.keys()),
        "tasks over their overlap": _scalar(
            "SELECT count(*) FROM labeling_task t JOIN labeling_project p ON p.id = t.project_id "
            "LEFT JOIN (SELECT task_id, count(*) n FROM labeling_annotation WHERE project_id = %(p)s "
            "GROUP BY task_id) a ON a.task_id = t.id WHERE t.project_id = %(p)s AND t.gold_label IS NULL "
            "AND coalesce(a.n, 0) > least(p.min_judgments + t.extra_judgments, p.max_judgments)",
            params,
        ),
        "task counters off their rows": _scalar(
            "SELECT count(*) FROM labeling_task t WHERE t.project_id = %(p)s AND t.judgment_count <> "
            "(SELECT count(*) FROM labeling_annotation a WHERE a.task_id = t.id)",
            params,
        ),
        **_live_checks(project_id),
    }
    facts = {
        "stored rows": sum(stored.values()),
        "acknowledged": len(outcome.acked),
        "stored, never acknowledged": len(stored.keys() - outcome.acked - outcome.refused.keys() - outcome.stale),
        "unresolved submits": len(outcome.unresolved),
        "of those stored": len(outcome.unresolved & stored.keys()),
        "leases expired (recorded)": _scalar(
            "SELECT count(*) FROM routing_assignment WHERE project_id = %(p)s AND state = 'expired'", params
        ),
        "leases skipped": _scalar(
            "SELECT count(*) FROM routing_assignment WHERE project_id = %(p)s AND state = 'skipped'", params
        ),
        "annotators paused by quality": _scalar(
            "SELECT count(*) FROM quality_annotatorscore WHERE project_id = %(p)s AND paused_at IS NOT NULL", params
        ),
        "tasks complete": _scalar(
            "SELECT count(*) FROM labeling_task WHERE project_id = %(p)s AND status = 'complete'", params
        ),
    }
    return checks, facts


def _quality_rows(project_id: int) -> dict[str, dict[Any, dict[str, Any]]]:
    # after django.setup(): project modules need the app registry
    from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, TaskConsensus

    volatile = {"id", "computed_at", "seconds"}

    def rows(model: Any, key: str) -> dict[Any, dict[str, Any]]:
        return {
            row[key]: {k: v for k, v in row.items() if k not in volatile}
            for row in model.objects.filter(project_id=project_id).values()
        }

    latest = ProjectQuality.objects.filter(project_id=project_id).order_by("-last_annotation_id", "-id").first()
    snapshot = {} if latest is None else {latest.pk: rows(ProjectQuality, "id").get(latest.pk, {})}
    return {
        "consensus": rows(TaskConsensus, "task_id"),
        "annotator scores": rows(AnnotatorScore, "annotator_id"),
        "model rankings": rows(ModelRanking, "model_name"),
        "snapshot": snapshot,
    }


def _quality_check(project_id: int) -> tuple[int, str]:
    """Rows that differ between the stored quality and a fresh in-process recompute (0), and a description."""
    # after django.setup(): project modules need the app registry
    from quality.services import project_quality_recompute

    before = _quality_rows(project_id)
    project_quality_recompute(project_id=project_id)
    after = _quality_rows(project_id)
    differing = 0
    notes = []
    for table, rows in before.items():
        changed = [key for key in rows.keys() | after[table].keys() if rows.get(key) != after[table].get(key)]
        differing += len(changed)
        notes.append(f"{table} {len(rows)} rows, {len(changed)} differ")
        if changed:
            key = changed[0]
            old, new = rows.get(key) or {}, after[table].get(key) or {}
            fields = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            notes.append(f"  e.g. {table}[{key}] {fields[:5]}")
    return differing, "; ".join(notes)


# --- Report -------------------------------------------------------------------------------------------------------
def _latency_table(outcome: Outcome, steady_from: float) -> dict[str, dict[str, float]]:
    """Per endpoint: count, p50, p99, max over the whole run, and p50/p99 of requests sent after the ramp-up."""
    table = {}
    for endpoint in ENDPOINTS:
        samples = outcome.ms.get(endpoint, [])
        values = [ms for _, ms in samples]
        steady = [ms for sent_at, ms in samples if sent_at >= steady_from]
        table[endpoint] = {
            "count": len(values),
            "p50": round(_percentile(values, 50), 1),
            "p99": round(_percentile(values, 99), 1),
            "max": round(max(values), 1) if values else None,
            "steady_count": len(steady),
            "steady_p50": round(_percentile(steady, 50), 1),
            "steady_p99": round(_percentile(steady, 99), 1),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--duration", type=_seconds, default=600.0, help="seconds of work (600, 600s, 10m)")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--overlap", type=int, default=3, help="judgments per task (min); consensus may ask +2")
    parser.add_argument("--lease-ttl", type=int, default=60, help="seconds (the model's minimum is 30)")
    parser.add_argument("--think", type=float, default=3.0, help="mean seconds on a task before the choice")
    parser.add_argument("--skip", type=float, default=0.04, help="share of tasks skipped")
    parser.add_argument("--double", type=float, default=0.06, help="share of submits posted twice (half at once)")
    parser.add_argument("--abandon", type=float, default=0.01, help="share of tasks left open past the TTL")
    parser.add_argument("--work-page", type=float, default=0.03, help="share of cycles that reopen the work page")
    parser.add_argument("--fetch", type=float, default=0.8, help="share of browsers running the page script")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (gthread)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9", help="emptied at the start: its own db")
    parser.add_argument("--queue", default="concord-soak")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ramp", type=float, default=60.0, help="seconds over which browsers arrive (at most a fifth of the run)"
    )
    args = parser.parse_args()
    print_command(args)
    server = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/concord")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/soak.py runs on PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    var_dir = tempfile.mkdtemp(prefix="concord-soak-")
    database_url = recreate_database(server, (urlsplit(server).path.strip("/") or "concord") + "_soak")
    env = _environment(database_url, var_dir) | {
        "REDIS_URL": args.redis_url,
        "CELERY_QUEUE": args.queue,
        "QUALITY_RECOMPUTE_ON_COMMIT": "1",
    }
    os.environ.update(env)
    built = time.perf_counter()
    project_id, usernames = _build(args.tasks, args.annotators)

    # after django.setup(): project modules need the app registry
    from labeling.models import Project
    from labeling.services import project_update

    project_update(
        project=Project.objects.get(pk=project_id),
        lease_ttl_seconds=args.lease_ttl,
        min_judgments=args.overlap,
        max_judgments=args.overlap + 2,
    )
    print(f"built {args.tasks:,} tasks and {args.annotators} annotators in {time.perf_counter() - built:.1f} s")

    servers = _start_servers(args, env, var_dir)
    outcome = Outcome()
    worst: dict[str, int] = {}
    loads: list[float] = []
    try:
        _wait_for(args.port, 60)
        ramp = min(args.ramp, args.duration / 5)
        start_at = time.time() + 1
        stop_at = start_at + args.duration
        annotators = [
            Annotator(
                Plan(
                    port=args.port,
                    username=username,
                    seed=args.seed * 100_003 + n,
                    start_at=start_at + ramp * n / max(1, len(usernames)),
                    stop_at=stop_at,
                    think=args.think,
                    ttl=args.lease_ttl,
                    p_fetch=args.fetch,
                    p_skip=args.skip,
                    p_double=args.double,
                    p_abandon=args.abandon,
                    p_work=args.work_page,
                )
            )
            for n, username in enumerate(usernames)
        ]
        stop_monitor = threading.Event()
        monitor = threading.Thread(target=_monitor, args=(project_id, stop_monitor, worst, loads))
        monitor.start()
        results: list[Outcome] = []
        threads = [threading.Thread(target=lambda a=a: results.append(a.run())) for a in annotators]
        print(
            f"{args.annotators} annotators for {args.duration:.0f} s (ramp-up {ramp:.0f} s), "
            f"gunicorn {args.workers} workers x {args.threads} threads, Celery {args.worker_concurrency} + beat, "
            f"CPUs: {os.cpu_count()}",
            flush=True,
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.time() - start_at
        stop_monitor.set()
        monitor.join()
        for result in results:
            outcome.merge(result)
        drained, drain_seconds = _drain(project_id, args.queue, args.redis_url, args.drain_timeout)
        checks, facts = _final_checks(project_id, outcome)
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            process.wait(timeout=60)

    for name, value in worst.items():
        checks[name] = max(checks.get(name, 0), value)
    server_5xx = sum(n for (_, status), n in outcome.status.items() if status >= 500)
    checks["5xx answers"] = server_5xx
    checks["connection errors"] = sum(outcome.transport.values())
    log_errors = _log_errors(var_dir)
    jobs = _jobs(var_dir)
    checks["tracebacks in gunicorn log"] = log_errors["gunicorn"]
    checks["tracebacks in worker log"] = log_errors["worker"]
    checks["queue not drained"] = int(not drained)
    differing, notes = _quality_check(project_id)
    checks["quality rows differing from a fresh recompute"] = differing

    latency = _latency_table(outcome, start_at + ramp)
    judgments_per_s = len(outcome.acked) / elapsed
    load = sum(loads) / len(loads) if loads else os.getloadavg()[0]
    print(f"\nran {elapsed:.1f} s; queue drained in {drain_seconds:.1f} s: {drained}; live samples: {len(loads)}")
    print(f"machine load (1-min average, {os.cpu_count()} CPUs, shared with whatever else runs): mean {load:.1f}")
    print("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.counts.items())))
    print("facts:  " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    print("jobs:   " + ", ".join(f"{k} {v}" for k, v in jobs.items()))
    print(f"keep-alive reconnects {outcome.reconnects}; refused submits {len(outcome.refused)}")
    for client_id, message in list(outcome.refused.items())[:3]:
        print(f"  refused {client_id}: {message[:160]}")
    for problem in outcome.problems[:5]:
        print(f"  problem: {problem}")
    for name, count in outcome.transport.most_common(5):
        print(f"  connection error: {name} x{count}")
    statuses = Counter({f"{e} {s}": n for (e, s), n in outcome.status.items()})
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    print(f"\n{'':<11} {'whole run':-^33}  {'after the ramp-up':-^26}")
    columns = ("count", "p50 ms", "p99 ms", "max ms")
    print(f"{'endpoint':<11} {columns[0]:>6} " + " ".join(f"{c:>8}" for c in columns[1:]) + f"  {columns[0]:>6} "
          + " ".join(f"{c:>8}" for c in columns[1:3]))  # fmt: skip
    for endpoint, row in latency.items():
        print(
            f"{endpoint:<11} {row['count']:>6} {row['p50']:>8.1f} {row['p99']:>8.1f} {row['max'] or 0:>8.1f}  "
            f"{row['steady_count']:>6} {row['steady_p50']:>8.1f} {row['steady_p99']:>8.1f}"
        )
    print(f"\njudgments/s {judgments_per_s:.1f} ({len(outcome.acked):,} acknowledged in {elapsed:.0f} s)")
    print(f"quality: {notes}")
    failed = {name: value for name, value in checks.items() if value}
    for name, value in checks.items():
        print(f"{'FAIL' if value else 'ok  '}  {name}: {value}")
    summary = {
        "annotators": args.annotators,
        "duration_s": round(elapsed, 1),
        "workers": f"gunicorn {args.workers}x{args.threads} gthread, celery {args.worker_concurrency}",
        "think_s": args.think,
        "cpus": os.cpu_count(),
        "mean_load": round(load, 1),
        "lease_ttl_s": args.lease_ttl,
        "overlap": args.overlap,
        "judgments": len(outcome.acked),
        "stored": facts["stored rows"],
        "judgments_per_s": round(judgments_per_s, 1),
        "double_submits": outcome.counts["concurrent double submits"] + outcome.counts["repeated submits"],
        "abandoned": outcome.counts["leases abandoned"],
        "skips": outcome.counts["skips"],
        "lost": checks["lost (acknowledged, not stored)"],
        "duplicated": checks["duplicated (rows beyond one per client id)"]
        + checks["duplicated (task judged twice by one annotator)"],
        "over_overlap": checks["tasks over their overlap"] + checks["judgments + live leases over overlap"],
        "stale_leases": checks["stale leases counted in flight"] + checks["expired leases not swept"],
        "5xx": server_5xx,
        "connection_errors": checks["connection errors"],
        "quality_equal": differing == 0,
        "latency_ms": {
            e: {"n": r["count"], "p50": r["p50"], "p99": r["p99"], "max": r["max"]} for e, r in latency.items()
        },
        "sweeps": jobs["sweeps"],
        "swept": jobs["swept"],
        "quality_runs": jobs["quality runs"],
        "failed": sorted(failed),
    }
    print("SOAK " + json.dumps(summary, separators=(",", ":")))
    print(f"logs: {var_dir}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
