"""Streamed import and export over HTTP: gunicorn on PostgreSQL, timed from the client, server memory from /proc.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord .venv/bin/python bench/import_export.py

Builds a fresh database ``<name>_bench_io``, starts gunicorn on ``--port`` (one sync worker, so its memory is the
request's) and, with an organization API key:

1. imports ``--import-sizes`` pairwise tasks (default 100,000 and 1,000,000; about 1.2 KB of JSON Lines each) as
   one request each, the body streamed from a file with its Content-Length, in the request (``?async=0``);
2. imports ``--judgment-tasks`` more tasks, then three judgments of each made elsewhere (about 113 bytes of JSON Lines
   a row, ``--annotators`` pseudonymous annotators created by the import: ``?create_annotators=1``), in the request;
   imports the same file again (every row unchanged); recomputes the project's quality and exports it at once as
   ``annotations`` and ``dpo``, with no ``ANALYZE`` in between: the export right after a large import;
3. builds ``--export-tasks`` completed tasks with three judgments each (by COPY and ``VACUUM ANALYZE``, as
   ``bench/quality.py`` does), recomputes their quality, then exports them as ``dpo`` and ``annotations``.

For each request it prints rows per second (rows / wall time on the client), the time to the first byte of the
response body, the gunicorn worker's peak RSS growth during the request (``VmHWM`` after, less ``VmRSS``
before; the peak is reset through ``/proc/<pid>/clear_refs`` first), and the CPU time per row of the worker and
of all PostgreSQL processes (which side bounds the rate). Targets: task import >= 50,000 tasks/s with RSS growth
<= 150 MB; judgments import >= 20,000 rows/s; export >= 100,000 rows/s, first byte <= 100 ms, RSS growth <= 100 MB.

Not a test, but it checks its own invariants and exits with status 1 when one fails: every import answered 200
with every row created (or unchanged on the second judgments import) and no error, the rows in the database equal
to the rows sent, every judged task's counter equal to its judgments, and every export holding exactly the rows
the database says it should. It prints the command that reproduces the run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, configure_django, print_command, recreate_database

PORT = 8766  # --port
LABELS = ("a", "b", "tie", "both_bad")


def _worker_pid(master: int) -> int:
    """The pid of gunicorn's (single) worker process."""
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing")


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each of these processes that is still running."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return seconds


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings: by the processes in both, and by those started in between from zero (one
    that exited in between is left out rather than counted negative; its last moments are lost)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def _postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (backends, WAL writer, checkpointer, ...)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class Probe:
    """Over a block: the peak RSS growth of a process (reset the high-water mark, read it afterwards), its CPU
    time, and the CPU time of all PostgreSQL processes (the worker's connection persists across requests)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> Probe:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.before = _memory(self.pid, "VmRSS")
        self.cpu_before = _cpu_by_pid([self.pid]), _cpu_by_pid(_postgres_pids())
        return self

    def __exit__(self, *exc: Any) -> None:
        self.growth = _memory(self.pid, "VmHWM") - self.before
        self.worker_cpu = _cpu_spent(self.cpu_before[0], _cpu_by_pid([self.pid]))
        self.postgres_cpu = _cpu_spent(self.cpu_before[1], _cpu_by_pid(_postgres_pids()))

    def per_row(self, rows: int) -> str:
        """CPU microseconds per row: the worker's, PostgreSQL's."""
        return f"{self.worker_cpu / rows * 1e6:6.1f} {self.postgres_cpu / rows * 1e6:6.1f}"


def _write_tasks(path: Path, n: int, prefix: str = "imp") -> int:
    """``n`` pairwise rows of about 1.2 KB each as JSON Lines (external ids ``<prefix>-<i>``); the file's size."""
    filler = "The answer explains the idea step by step with an example and a caveat. " * 8
    with path.open("w") as handle:
        for i in range(n):
            row = {
                "external_id": f"{prefix}-{i}",
                "prompt": f"Question {i}: how does item {i * 7919 % 100_003} work, and why does it matter here?",
                "response_a": filler[: 480 + i % 40],
                "response_b": filler[: 500 - i % 40],
                "model_a": f"model-{i % 7}",
                "model_b": f"model-{(i + 3) % 7}",
                "meta": {"batch": i // 1000},
            }
            handle.write(json.dumps(row) + "\n")
    return path.stat().st_size


def _request(method: str, path: str, key: str, body: Any = None, length: int = 0) -> tuple[int, float, float, bytes]:
    """(status, seconds to the first body byte, total seconds, body) of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)
    headers = {"Authorization": f"Bearer {key}"}
    if body is not None:
        headers |= {"Content-Type": "application/x-ndjson", "Content-Length": str(length)}
    started = time.perf_counter()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    first = response.read(1)
    first_byte = time.perf_counter() - started
    rest = response.read()
    total = time.perf_counter() - started
    connection.close()
    return response.status, first_byte, total, first + rest


def _write_judgments(path: Path, n_tasks: int, n_annotators: int, seed: int) -> int:
    """Three judgments of each of the ``n_tasks`` tasks ``jdg-<i>`` by three different annotators of ``n_annotators``
    (e-mail addresses of another tool), as JSON Lines; mostly agreeing, so most tasks complete at three; the
    number of rows."""
    rng = random.Random(seed)
    rows = 0
    with path.open("w") as handle:
        for i in range(n_tasks):
            truth = rng.choice(LABELS)
            for annotator in rng.sample(range(n_annotators), 3):
                label = truth if rng.random() < 0.85 else rng.choice(LABELS)
                row = {
                    "external_id": f"jdg-{i}",
                    "annotator": f"rater{annotator}@elsewhere.example",
                    "label": label,
                    "a_left": rng.random() < 0.5,
                    "seconds": round(rng.uniform(3, 90), 1),
                    "created_at": f"2025-0{1 + i % 9}-1{i % 10}T0{i % 10}:1{i % 6}:00Z",
                }
                handle.write(json.dumps(row) + "\n")
                rows += 1
    return rows


class Failures(list[str]):
    """The benchmark's own invariants that did not hold (each makes the exit status 1)."""

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.append(what)
            print(f"INVARIANT FAILED: {what}", flush=True)
        return ok


def _import(
    kind: str, project_id: int, path: Path, key: str, pid: int, query: str = ""
) -> tuple[int, dict[str, Any], float, Probe]:
    """POST the file at ``path`` to the ``kind`` import of ``project_id`` in the request: (status, report, seconds,
    probe)."""
    size = path.stat().st_size
    url = f"/api/v1/projects/{project_id}/{kind}/import?async=0" + (f"&{query}" if query else "")
    with path.open("rb") as body, Probe(pid) as probe:
        status, _, total, response = _request("POST", url, key, body, size)
    try:
        report = json.loads(response)
    except ValueError:
        report = {"unreadable answer": response[:500].decode(errors="replace")}
    return status, report, total, probe


def _export(path: str, key: str, pid: int) -> tuple[int, int, float, float, Probe]:
    with Probe(pid) as probe:
        status, first_byte, total, body = _request("GET", path, key)
    return status, body.count(b"\n"), first_byte, total, probe


def _line(label: str, rows: int, total: float, probe: Probe, first_byte: float | None = None) -> None:
    first = f"{first_byte * 1000:8.1f} ms" if first_byte is not None else f"{'':>11}"
    print(
        f"{label:<52} {rows:>10,} {total:8.2f} {rows / total:9,.0f} {first} {probe.growth / 2**20:8.0f} MiB  "
        f"{probe.per_row(rows)}",
        flush=True,
    )


def _judgments_stage(
    org: Any, key: str, pid: int, var_dir: str, n_tasks: int, n_annotators: int, failures: Failures
) -> None:
    """Judgments made elsewhere, imported in the request into freshly imported tasks; then the export at once."""
    # after django.setup(): project modules need the app registry
    from django.db import connection

    from labeling.models import Judgment, Membership, Task
    from labeling.services import project_create
    from quality.services import project_quality_recompute

    project = project_create(organization=org, name="Judgments", kind="pairwise", min_judgments=3, max_judgments=5)
    path = Path(var_dir) / "judged-tasks.jsonl"
    _write_tasks(path, n_tasks, prefix="jdg")
    status, report, _, _ = _import("tasks", project.pk, path, key, pid)
    failures.check(status == 200 and report.get("created") == n_tasks, f"tasks for the judgments: {report}")
    path.unlink()
    path = Path(var_dir) / "judgments.jsonl"
    rows = _write_judgments(path, n_tasks, n_annotators, seed=7)
    size = path.stat().st_size
    query = "create_annotators=1"
    status, report, total, probe = _import("annotations", project.pk, path, key, pid, query)
    failures.check(
        status == 200 and report.get("created") == rows and report.get("error_count") == 0,
        f"judgments import answered {status}: {str(report)[:500]}",
    )
    _line(f"import {rows:,} judgments ({size / 2**20:,.1f} MiB JSON Lines)", rows, total, probe)
    status, report, total, probe = _import("annotations", project.pk, path, key, pid, query)
    failures.check(
        status == 200 and report.get("unchanged") == rows and report.get("created") == 0,
        f"judgments re-import answered {status}: {str(report)[:500]}",
    )
    _line(f"import the same {rows:,} judgments again", rows, total, probe)
    path.unlink()
    stored = Judgment.objects.filter(project=project).count()
    failures.check(stored == rows, f"{rows:,} judgments sent, {stored:,} stored")
    annotators = Membership.objects.filter(organization=org, user__username__startswith="imported-").count()
    failures.check(annotators == n_annotators, f"{n_annotators} annotators in the file, {annotators} created")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM labeling_task t WHERE t.project_id = %s AND t.judgment_count <> "
            "(SELECT count(*) FROM labeling_annotation a WHERE a.task_id = t.id)",
            [project.pk],
        )
        miscounted = cursor.fetchone()[0]
    failures.check(miscounted == 0, f"{miscounted} tasks whose judgment_count differs from their judgments")
    complete = Task.objects.filter(project=project, status="complete").count()
    failures.check(complete > 0, "no task completed")
    project_quality_recompute(project_id=project.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM labeling_annotation a JOIN labeling_task t ON t.id = a.task_id "
            "JOIN quality_taskconsensus c ON c.task_id = t.id WHERE t.project_id = %s AND t.status = 'complete'",
            [project.pk],
        )
        expected = {"annotations": cursor.fetchone()[0]}
        cursor.execute(
            "SELECT count(*) FROM labeling_task t JOIN quality_taskconsensus c ON c.task_id = t.id "
            "WHERE t.project_id = %s AND t.status = 'complete' AND c.label IN ('a', 'b')",
            [project.pk],
        )
        expected["dpo"] = cursor.fetchone()[0]
    export_key = _read_only_key(org, "bench export (just imported)")
    for fmt in ("annotations", "dpo"):
        status, exported, first_byte, total, probe = _export(
            f"/api/v1/projects/{project.pk}/export?format={fmt}", export_key, pid
        )
        failures.check(status == 200, f"export {fmt} right after the import answered {status}")
        failures.check(exported == expected[fmt], f"export {fmt}: {exported:,} rows, expected {expected[fmt]:,}")
        _line(f"export {fmt} right after the import", exported, total, probe, first_byte)


def _read_only_key(org: Any, name: str) -> str:
    """A read-only API key of ``org`` (exports need no more)."""
    # after django.setup(): project modules need the app registry
    from labeling.apikeys import api_key_create

    return api_key_create(organization=org, name=name, read_only=True)[1]


def main() -> None:
    global PORT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--import-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--judgment-tasks", type=int, default=100_000, help="tasks judged three times each (0: skip)")
    parser.add_argument("--annotators", type=int, default=200, help="distinct annotators in the judgments file")
    parser.add_argument("--export-tasks", type=int, default=100_000, help="0: skip the steady-state export")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    print_command(args)
    PORT = args.port
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/import_export.py measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")
    database_url = recreate_database(server, (urlsplit(server).path.strip("/") or "concord") + "_bench_io")
    var_dir = tempfile.mkdtemp(prefix="concord-bench-io-")
    secret = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64)
    os.environ["SECRET_KEY"] = secret
    configure_django(database_url, queue="bench-io")

    # after django.setup(): project modules need the app registry
    from django.db import connection

    from bench.quality import build
    from labeling.apikeys import api_key_create
    from labeling.models import Organization, Project
    from labeling.services import project_create
    from quality.services import project_quality_recompute

    org = Organization.objects.create(name="Bench io", slug="bench-io")
    key = api_key_create(organization=org, name="bench")[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secret,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "CONCORD_VAR_DIR": var_dir,
        "CELERY_QUEUE": "bench-io",
        "IMPORT_ASYNC_BYTES": str(1 << 40),  # measure the streamed synchronous path (?async=0 asks for it too)
        "IMPORT_MAX_BYTES": str(1 << 40),
        "IMPORT_SYNC_MAX_SECONDS": "3000",  # a million tasks in one request: below gunicorn's --timeout here
        "EXPORT_SETTLE_SECONDS": "0",
        "QUALITY_RECOMPUTE_ON_COMMIT": "0",
        "API_THROTTLE_RATE": "100000/min",
    }
    gunicorn = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", "1", "--timeout", "3600",
         "--bind", f"127.0.0.1:{PORT}", "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    failures = Failures()
    try:
        for _ in range(300):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        pid = _worker_pid(gunicorn.pid)
        _request("GET", "/api/v1/projects/", key)  # warm the worker (imports, connection)
        print(f"gunicorn 1 sync worker, PostgreSQL, CPUs: {os.cpu_count()}\n")
        print(f"{'':<52} {'':>10} {'':>8} {'':>9} {'':>11} {'':>11}  CPU us/row")
        print(
            f"{'request':<52} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'first byte':>11} {'RSS growth':>11}  "
            "worker postgres"
        )
        for n in args.import_sizes:
            project = project_create(organization=org, name=f"Import {n}", kind="pairwise")
            path = Path(var_dir) / f"tasks-{n}.jsonl"
            size = _write_tasks(path, n)
            status, report, total, probe = _import("tasks", project.pk, path, key, pid)
            failures.check(status == 200 and report.get("created") == n, f"task import answered {status}: {report}")
            _line(f"import {n:,} tasks ({size / 2**20:,.0f} MiB JSON Lines)", n, total, probe)
            path.unlink()
        if args.judgment_tasks:
            _judgments_stage(org, key, pid, var_dir, args.judgment_tasks, args.annotators, failures)
        if args.export_tasks:
            build(args.export_tasks, 500, 20, 0)
            project = Project.objects.get(name="Bench quality prefs")
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE labeling_task SET completed_at = now() - interval '1 hour' WHERE project_id = %s "
                    "AND status = 'complete'",
                    [project.pk],
                )
            project_quality_recompute(project_id=project.pk)
            export_key = _read_only_key(project.organization, "bench export")
            for fmt in ("dpo", "annotations"):
                path = f"/api/v1/projects/{project.pk}/export?format={fmt}"
                status, rows, first_byte, total, probe = _export(path, export_key, pid)
                failures.check(status == 200 and rows > 0, f"export {fmt} answered {status} with {rows} rows")
                _line(f"export {fmt} ({args.export_tasks:,} tasks, analysed)", rows, total, probe, first_byte)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
    if failures:
        print(f"\n{len(failures)} invariant(s) failed:", *failures, sep="\n  ")
        sys.exit(1)
    print("\nAll invariants held.")


if __name__ == "__main__":
    main()
