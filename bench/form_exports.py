"""The exports of a ranking project (issue 17) on PostgreSQL, in process: rows per second of ``rm_pairs`` and its
siblings, each task's consensus computed in Python from its judgments streamed in task order.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord .venv/bin/python bench/form_exports.py

Builds a fresh database ``<name>_bench_forms``; a ranking project whose form is a 4-response ranking (primary), a
per-response 1-7 rating and an optional rewrite; imports ``--tasks`` tasks (a 3-turn conversation and 4 responses)
and three judgments of each with random answers through the judgments import (``answers`` checked per row, in
batches; its rate is printed too), recomputes the project's quality, and exports it as ``rm_pairs``, ``dpo``,
``kto``, ``ratings``, ``sft`` and ``annotations`` (JSON Lines bytes, as the API streams them), each twice; the
better run counts. For each: rows, rows per second, time to the first chunk.

Not a test, but it checks its own invariants and exits with status 1 when one fails: every task imported and
completed, every judgment imported, and every export holding exactly the rows the generated answers imply (the
pairs with different mean ranks, the best-vs-worst tasks, K rows per task, the non-empty rewrites, the judgments),
computed here independently of ``exchange.form_exports``. It prints the command that reproduces the run.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from datetime import timedelta
from itertools import combinations, permutations
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_database, configure_django, print_command

K = 4
QUESTIONS = [
    {"key": "rank", "kind": "ranking", "title": "Rank the responses", "primary": True},
    {"key": "helpfulness", "kind": "rating", "title": "Helpfulness", "min": 1, "max": 7, "per_response": True},
    {"key": "better", "kind": "rewrite", "title": "Rewrite the best one", "required": False},
]


def _tasks(n: int) -> bytes:
    rows = []
    for i in range(n):
        rows.append(
            {
                "external_id": f"t{i}",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": f"Question {i}: how do I reverse a list in Python?"},
                ],
                "responses": [
                    {"text": f"Answer {r} to question {i}: use reversed(xs) or xs[::-1].", "model": f"m{r}"}
                    for r in range(K)
                ],
            }
        )
    return b"\n".join(map(orjson.dumps, rows))


def _judgments(n: int, annotators: int, seed: int) -> tuple[bytes, list[list[list[int]]], int]:
    """Three judgments of each task: (the file, each task's rankings, how many rewrites are non-empty)."""
    rng = random.Random(seed)
    orders = list(permutations(range(K)))
    rows, rankings, rewrites = [], [], 0
    for i in range(n):
        ranked = [list(rng.choice(orders)) for _ in range(3)]
        rankings.append(ranked)
        for j, ranking in enumerate(ranked):
            answers: dict[str, Any] = {"rank": ranking, "helpfulness": [rng.randint(1, 7) for _ in range(K)]}
            if rng.random() < 0.5:
                answers["better"] = {"text": f"A better answer {i}.{j}", "source": ranking[0]}
                rewrites += 1
            rows.append({"external_id": f"t{i}", "annotator": f"r{(i + j) % annotators}", "answers": answers})
    return b"\n".join(map(orjson.dumps, rows)), rankings, rewrites


def _mean_places(ranked: list[list[int]]) -> list[float]:
    return [sum(ranking.index(r) for ranking in ranked) / len(ranked) for r in range(K)]


def expected_rows(rankings: list[list[list[int]]], rewrites: int) -> dict[str, int]:
    pairs = decisive = 0
    for ranked in rankings:
        means = _mean_places(ranked)
        pairs += sum(1 for a, b in combinations(range(K), 2) if means[a] != means[b])
        decisive += min(means) != max(means)
    n = len(rankings)
    return {
        "rm_pairs": pairs,
        "dpo": decisive,
        "kto": 2 * decisive,
        "ratings": K * n,
        "sft": rewrites,
        "annotations": 3 * n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print_command(args)
    configure_django(bench_database("bench_forms"), queue="bench-forms")

    # after django.setup(): project modules need the app registry
    from django.utils import timezone

    from exchange.exports import export_request, jsonl_chunks
    from exchange.judgment_import import judgments_import
    from exchange.task_import import tasks_import
    from labeling.models import Judgment, Organization, Task, TaskStatus
    from labeling.services import project_create
    from quality.services import project_quality_recompute

    failures: list[str] = []
    org = Organization.objects.create(name="Bench forms", slug="bench-forms")
    project = project_create(organization=org, name="Ranked", questions=QUESTIONS, min_judgments=3, max_judgments=3)
    n = args.tasks
    report = tasks_import(project=project, stream=io.BytesIO(_tasks(n)), fmt="jsonl")
    if not report.committed or report.created != n:
        failures.append(f"task import: {report.created:,} of {n:,} created, errors {report.errors[:3]}")
    body, rankings, rewrites = _judgments(n, args.annotators, args.seed)
    started = time.perf_counter()
    report = judgments_import(project=project, stream=io.BytesIO(body), fmt="jsonl", create_annotators=True)
    seconds = time.perf_counter() - started
    rate = report.created / seconds
    print(f"judgments import with answers: {report.created:,} rows in {seconds:.2f} s, {rate:,.0f} rows/s")
    if not report.committed or report.created != 3 * n:
        failures.append(f"judgments import: {report.created:,} of {3 * n:,} created, errors {report.errors[:3]}")
    started = time.perf_counter()
    project_quality_recompute(project_id=project.pk)
    print(f"quality recompute: {time.perf_counter() - started:.2f} s")
    complete = Task.objects.for_org(org.pk).filter(project=project, status=TaskStatus.COMPLETE).count()
    if complete != n:
        failures.append(f"{complete:,} of {n:,} tasks complete")
    judgments = Judgment.objects.for_org(org.pk).filter(project=project).count()
    if judgments != 3 * n:
        failures.append(f"{judgments:,} of {3 * n:,} judgments stored")

    expected = expected_rows(rankings, rewrites)
    later = timezone.now() + timedelta(days=1)  # every completed task has settled by then
    print(f"{'format':<12} {'rows':>9} {'rows/s':>10} {'first chunk':>12} {'seconds':>8}")
    for fmt, want in expected.items():
        best: tuple[float, float, int] | None = None
        for _ in range(2):
            request = export_request(project=project, fmt=fmt, now=later)
            started = time.perf_counter()
            first, lines = None, 0
            for chunk in jsonl_chunks(request):
                first = first if first is not None else time.perf_counter() - started
                lines += chunk.count(b"\n")
            total = time.perf_counter() - started
            if best is None or total < best[0]:
                best = (total, first or 0.0, lines)
        assert best is not None
        total, first, lines = best
        print(f"{fmt:<12} {lines:9,} {lines / total:10,.0f} {first * 1000:9.1f} ms {total:8.2f}")
        if lines != want:
            failures.append(f"{fmt}: {lines:,} rows, expected {want:,}")
    for failure in failures:
        print(f"FAILED: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
