"""The annotator's page cycle over HTTP: gunicorn (2 workers) on PostgreSQL, with real sessions and CSRF.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python bench/annotate_http.py

Builds a fresh database ``<name>_bench_http`` (dropped and re-created on every run) with one pairwise project of
``--tasks`` tasks (min 3 judgments), starts gunicorn and a Celery worker as production runs them, signs in N
annotators (each a thread with its own keep-alive connection and cookies), and has each repeat the page cycle —
GET the labeling page, POST a choice (a plain form post, answered by a redirect to the next task) — for
``--seconds`` after a warm-up. Prints loops/s and p50/p99 of each step, for each N in ``--annotators``.
Not a test: nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database  # noqa: E402

PASSWORD = "bench-password-not-secret"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHOICES_FORM = re.compile(r'<form method="post" action="([^"]+/submit)"')
CLIENT_ID = re.compile(r'name="client_id" value="([^"]+)"')


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


def _build(n_tasks: int, n_annotators: int) -> tuple[int, list[str]]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection

    from labeling.models import Membership, Organization, Role, Task
    from labeling.services import project_create

    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    org = Organization.objects.create(name="Bench", slug="bench")
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
                payload={
                    "prompt": f"Explain idea {n} in **two** sentences.",
                    "response_a": f"Idea {n} is simple:\n\n```python\nprint({n})\n```",
                    "response_b": f"Idea {n} is *about* sharing the work fairly. It helps.",
                },
                gold_label="a" if n % 100 == 0 else None,
            )
            for n in range(n_tasks)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()
    return project.pk, [u.username for u in users]


class Annotator:
    """One simulated annotator: a keep-alive connection and its cookies."""

    def __init__(self, port: int, username: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.username = username

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
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
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.getheader("Location") or "", text

    def sign_in(self) -> None:
        _, _, page = self.request("GET", "/accounts/login/")
        token = CSRF_FIELD.search(page).group(1)  # type: ignore[union-attr]
        status, _, _ = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
        )
        if status != 302:
            raise RuntimeError(f"sign-in failed for {self.username}: {status}")


def _work(
    annotator: Annotator, page_path: str, measure_at: float, stop_at: float, results: dict[str, list[float]]
) -> None:
    n = 0
    while time.time() < stop_at:
        measured = time.time() >= measure_at
        t0 = time.perf_counter()
        status, _, page = annotator.request("GET", page_path)
        t1 = time.perf_counter()
        form = CHOICES_FORM.search(page)
        if status != 200 or form is None:
            results["errors"].append(1.0)
            time.sleep(0.05)
            continue
        n += 1
        status, location, _ = annotator.request(
            "POST",
            form.group(1),
            {
                "csrfmiddlewaretoken": CSRF_FIELD.search(page).group(1),  # type: ignore[union-attr]
                "client_id": CLIENT_ID.search(page).group(1),  # type: ignore[union-attr]
                "choice": ("first", "second", "tie", "both_bad")[n % 4],
            },
        )
        t2 = time.perf_counter()
        if status != 302 or location != page_path:
            results["errors"].append(1.0)
            continue
        if measured:
            results["page"].append((t1 - t0) * 1000)
            results["submit"].append((t2 - t1) * 1000)
            results["loops"].append(1.0)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per N, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (1: sync workers; more: gthread)"
    )
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/annotate_http.py measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/annotate_http.py runs jobs as production does: set REDIS_URL=redis://host:port/0")
    var_dir = tempfile.mkdtemp(prefix="concord-bench-http-")
    database_url = recreate_database(server, (urlsplit(server).path.strip("/") or "concord") + "_bench_http")
    env = _environment(database_url, var_dir)
    os.environ.update(env)
    project_id, usernames = _build(args.tasks, max(args.annotators))
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
    try:
        _wait_for(args.port)
        page_path = f"/projects/{project_id}/annotate/"
        kind = "sync" if args.threads == 1 else f"gthread x{args.threads}"
        print(f"gunicorn 2 workers ({kind}), PostgreSQL, {args.tasks:,} pairwise tasks, CPUs: {os.cpu_count()}")
        for n in args.annotators:
            annotators = [Annotator(args.port, username) for username in usernames[:n]]
            for annotator in annotators:
                annotator.sign_in()
            results: dict[str, list[float]] = {"page": [], "submit": [], "loops": [], "errors": []}
            measure_at = time.time() + args.warmup
            stop_at = measure_at + args.seconds
            threads = [
                threading.Thread(target=_work, args=(a, page_path, measure_at, stop_at, results)) for a in annotators
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            page, submit = results["page"], results["submit"]
            print(
                f"N={n}: {len(results['loops']) / args.seconds:6.1f} loops/s  "
                f"page p50 {_percentile(page, 50):5.1f} ms p99 {_percentile(page, 99):6.1f} ms  "
                f"submit p50 {_percentile(submit, 50):5.1f} ms p99 {_percentile(submit, 99):6.1f} ms  "
                f"(mean loop {statistics.fmean(a + b for a, b in zip(page, submit, strict=True)):.1f} ms, "
                f"errors {len(results['errors'])})"
            )
    finally:
        for process in (gunicorn, worker):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
