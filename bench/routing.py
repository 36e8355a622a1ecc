"""Routing benchmark: many annotators doing next task → submit at once through the service layer, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/routing.py

Builds a fresh database ``<name>_bench_routing`` (dropped and re-created on every run) holding one project of
``--tasks`` pairwise tasks (min 3, max 5 judgments, 5% gold), starts ``--annotators`` processes (each one
annotator with its own connection), lets them work for ``--seconds`` with no think time, then prints latency
percentiles, throughput and the invariant checks (all must be 0). As in production, the stats jobs that submits
queue on commit go through Redis to a real Celery worker (started here). Not a test: nothing asserts timings, but
the exit status is 1 when a call failed or an invariant check is not 0; it prints the command that reproduces it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import print_command, recreate_database  # noqa: E402


def _configure(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory: not what production runs
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ["CELERY_QUEUE"] = "bench-routing"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def _build(n_tasks: int, n_annotators: int, gold_share: float) -> tuple[int, list[int]]:
    # after django.setup(): project modules need the app registry
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling.models import Membership, Organization, Role, Task
    from labeling.services import project_create

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench", slug="bench")
    project = project_create(
        organization=org, name="Bench prefs", kind="pairwise", min_judgments=3, max_judgments=5, gold_rate=0.05
    )
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"annotator{n}@bench.example") for n in range(n_annotators)
    )
    Membership.objects.bulk_create(Membership(organization=org, user=u, role=Role.ANNOTATOR) for u in users)
    n_gold = int(n_tasks * gold_share)
    rng = random.Random(1)
    batch = []
    for n in range(n_tasks):
        batch.append(
            Task(
                organization=org,
                project=project,
                external_id=f"pair-{n}",
                payload={"prompt": f"Question {n}?", "response_a": f"Answer {n} A.", "response_b": f"Answer {n} B."},
                gold_label="a" if n < n_gold else None,
                shuffle=rng.random(),
            )
        )
        if len(batch) == 5000:
            Task.objects.bulk_create(batch)
            batch = []
    Task.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project.pk, [u.pk for u in users]


def _annotate_group(jobs: list[tuple[int, int, float, float, int, float]]) -> list[dict[str, Any]]:
    """One process hosting several annotators, one thread (and one database connection) each."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    connection.close()  # never share the parent's socket
    sys.setswitchinterval(0.0005)  # a web server's threads would not hold the GIL 5 ms at a time either
    with ThreadPoolExecutor(max_workers=len(jobs)) as threads:
        return list(threads.map(_annotate, jobs))


def _annotate(args: tuple[int, int, float, float, float, int, float]) -> dict[str, Any]:
    """One annotator: next → submit every ``interval`` seconds (0: back to back) from ``start_at`` to ``stop_at``.

    Calls that start before ``measure_at`` warm up (connections open, statements get prepared and cached) and
    are done but not timed or counted in the rate; their judgments still count in the invariant checks.
    """
    project_id, user_id, start_at, measure_at, stop_at, seed, interval = args
    # after django.setup(): project modules need the app registry
    from django.contrib.auth import get_user_model
    from django.db import connection

    from labeling.models import Project
    from routing.services import AnnotatorPaused, judgment_submit, next_task

    project = Project.objects.get(pk=project_id)
    user = get_user_model().objects.get(pk=user_id)
    rng = random.Random(seed)
    next_ms: list[float] = []
    submit_ms: list[float] = []
    acked: list[int] = []
    errors: list[str] = []
    refused_paused = 0
    next_slot = start_at + rng.random() * interval  # annotators do not start in lockstep
    n = 0
    while time.time() < stop_at:
        now = time.time()
        if next_slot > now:
            time.sleep(next_slot - now)
        next_slot = max(next_slot + interval, time.time() - interval)  # behind schedule: no backlog burst
        if time.time() >= stop_at:
            break
        measured = time.time() >= measure_at
        t0 = time.perf_counter()
        try:
            lease = next_task(annotator=user, project=project)
            t1 = time.perf_counter()
            if measured:
                next_ms.append((t1 - t0) * 1000)
            if lease is None:
                time.sleep(0.01)
                continue
            label = "a" if rng.random() < 0.8 else rng.choice(["b", "tie", "both_bad"])
            n += 1
            judgment = judgment_submit(lease=lease, label=label, client_id=f"{user_id}-{n}", seconds=4.0, actor=user)
            if measured:
                submit_ms.append((time.perf_counter() - t1) * 1000)
            acked.append(judgment.pk)
        except AnnotatorPaused:
            # The quality engine paused this annotator between their lease and their submit: the submit is refused
            # by design (nothing stored), and the router gives them nothing more.
            refused_paused += 1
        except Exception as error:  # counted and printed: the run must report them, not die
            errors.append(f"{type(error).__name__}: {error}")
    connection.close()
    return {"next": next_ms, "submit": submit_ms, "acked": acked, "errors": errors, "refused_paused": refused_paused}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _invariants(project_id: int, acked: list[int]) -> dict[str, int]:
    # after django.setup(): project modules need the app registry
    from django.db import connection

    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    checks = {}
    with connection.cursor() as cursor:
        # Judgments + live leases above what a normal task may hold (min + extra), and extra beyond max.
        cursor.execute(
            """
            SELECT count(*) FROM labeling_task t
            LEFT JOIN (SELECT task_id, count(*) n FROM labeling_annotation WHERE project_id = %(p)s GROUP BY task_id) a
              ON a.task_id = t.id
            LEFT JOIN (SELECT task_id, count(*) n FROM routing_assignment
                       WHERE project_id = %(p)s AND state = 'active' AND expires_at > now() GROUP BY task_id) l
              ON l.task_id = t.id
            WHERE t.project_id = %(p)s AND t.gold_label IS NULL
              AND (coalesce(a.n, 0) + coalesce(l.n, 0) > %(min)s + t.extra_judgments
                   OR %(min)s + t.extra_judgments > %(max)s)
            """,
            {"p": project_id, "min": project.min_judgments, "max": project.max_judgments},
        )
        checks["tasks over their overlap"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM labeling_annotation WHERE project_id = %s "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) d",
            [project_id],
        )
        checks["annotator judged a task twice"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM routing_assignment WHERE project_id = %s AND is_gold "
            "GROUP BY task_id, annotator_id HAVING count(*) > 1) d",
            [project_id],
        )
        checks["gold shown twice to one annotator"] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM labeling_task t WHERE t.project_id = %s AND t.judgment_count <> "
            "(SELECT count(*) FROM labeling_annotation a WHERE a.task_id = t.id)",
            [project_id],
        )
        checks["task counters off their rows"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM labeling_annotation WHERE project_id = %s", [project_id])
        checks["rows minus acknowledged submits"] = abs(cursor.fetchone()[0] - len(set(acked)))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds, after the warm-up")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of work first, not measured")
    parser.add_argument(
        "--processes", type=int, default=2, help="annotators are threads spread over this many processes"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=400.0,
        help="offered judgments/s over all annotators (each paced evenly); 0: back to back, to find the ceiling",
    )
    args = parser.parse_args()
    print_command(args)
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/routing.py measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench/routing.py runs jobs as production does: set REDIS_URL=redis://host:port/0")
    name = (urlsplit(server).path.strip("/") or "concord") + "_bench_routing"
    _configure(recreate_database(server, name))

    built = time.perf_counter()
    project_id, user_ids = _build(args.tasks, args.annotators, gold_share=0.01)
    print(f"built {args.tasks:,} tasks and {args.annotators} annotators in {time.perf_counter() - built:.1f}s")

    from django.db import connection

    connection.close()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "bench-routing",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        start_at = time.time() + 2.0
        measure_at = start_at + args.warmup
        stop_at = measure_at + args.seconds
        interval = len(user_ids) / args.rate if args.rate > 0 else 0.0
        jobs = [(project_id, user_id, start_at, measure_at, stop_at, n, interval) for n, user_id in enumerate(user_ids)]
        groups = [jobs[n :: args.processes] for n in range(args.processes)]
        with mp.get_context("fork").Pool(args.processes) as pool:
            results = [result for group in pool.map(_annotate_group, groups) for result in group]
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    next_ms = [v for r in results for v in r["next"]]
    submit_ms = [v for r in results for v in r["submit"]]
    acked = [v for r in results for v in r["acked"]]
    errors = [e for r in results for e in r["errors"]]
    offered = f"{args.rate:.0f} judgments/s offered" if args.rate > 0 else "back to back"
    print(
        f"annotators: {args.annotators} (threads over {args.processes} processes, one connection each), {offered}, "
        f"{args.warmup:.0f}s warm-up + {args.seconds:.0f}s measured, CPUs: {os.cpu_count()}"
    )
    print(
        f"next task  p50 {_percentile(next_ms, 50):6.2f} ms  p90 {_percentile(next_ms, 90):6.2f} ms"
        f"  p99 {_percentile(next_ms, 99):6.2f} ms"
        f"  mean {statistics.fmean(next_ms):6.2f} ms  ({len(next_ms):,} calls)"
    )
    print(
        f"submit     p50 {_percentile(submit_ms, 50):6.2f} ms  p90 {_percentile(submit_ms, 90):6.2f} ms"
        f"  p99 {_percentile(submit_ms, 99):6.2f} ms"
        f"  mean {statistics.fmean(submit_ms):6.2f} ms  ({len(submit_ms):,} calls)"
    )
    print(f"judgments/s {len(submit_ms) / args.seconds:8.1f}  ({len(submit_ms):,} judgments timed)")
    print(f"errors      {len(errors)}" + (f"  first: {errors[0]}" if errors else ""))
    paused = sum(r["refused_paused"] for r in results)
    print(f"submits refused: annotator paused by quality checks meanwhile: {paused}")
    violations = _invariants(project_id, acked)
    for check, count in violations.items():
        print(f"violations: {check}: {count}")
    failed = [f"{len(errors)} errors"] if errors else []
    failed += [f"{check}: {count}" for check, count in violations.items() if count]
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
        sys.exit(1)
    print("no errors, no violations")


if __name__ == "__main__":
    main()
