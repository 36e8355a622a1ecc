"""The quality recompute at scale: a million pairwise judgments on PostgreSQL, timed step by step.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/concord .venv/bin/python bench/quality.py [--reuse]
    DATABASE_URL=… .venv/bin/python bench/quality.py --form rich   # a million ratings: see bench/quality_forms.py

Builds a fresh database ``<name>_bench_quality`` (dropped and re-created on every run; ``--reuse`` keeps the last
one and only forgets its quality results) holding one pairwise project of ``--tasks`` tasks (default 333,334:
1,000,002 judgments at 3 per task), 10% of them gold and 1% repeating an earlier task's payload. Responses come from
``--models`` models and vary in length; a task is truly a tie (15%), both bad (5%), or won by the response whose
model is stronger by a Bradley-Terry draw. ``--annotators`` annotators work in shifts of 50 (a task's three judges
come from the shift on duty, so that peers share enough tasks for Cohen's kappa): mostly good ones (75-95%
accurate), plus random clickers, always-left clickers, position- and verbosity-biased and too-fast ones.
Organization, users, memberships and project go through Django; tasks and judgments through PostgreSQL ``COPY``.

The measurement runs in a fresh child process, so that its peak RSS is the recompute's (plus Python, Django and
numpy), not the build's. It times (1) the read into arrays (``quality.selectors.project_data``), (2) the
in-memory part as the job runs it (``quality.services.compute._compute``: Dawid-Skene on this thread, the work that
needs no consensus on a helper thread), then each of its steps alone for the breakdown, (3) the writes and the commit
(a first run: inserts, whose foreign keys PostgreSQL checks at commit), (4) the whole job end to end on the same
data (a second run: updates), its phases taken from its progress callback.
After the peak RSS is taken: each metric against its oracle library on the same arrays (dev-only dependencies),
and Dawid-Skene's stopping tolerance against a longer fit. Targets: total < 10 s, in-memory part < 1 s, peak RSS
< 1.5 GB. Not a test: nothing asserts timings, but it exits 1 when a step fails, when it reads back fewer judgments
than it built, or when a metric disagrees with its oracle (Dawid-Skene: the same label on < 99.5% of tasks;
Bradley-Terry: log-strengths 1e-4 apart; the others: 1e-9). It prints the command that reproduces the run.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_database, configure_django, print_command
from bench.quality_forms import DEFAULT_TASKS, build_form, measure_form

QUEUE = "bench-quality"
SHIFT = 50  # annotators per shift
LABELS = ("a", "b", "tie", "both_bad")
KINDS = {"random": 0.03, "left": 0.01, "position": 0.02, "verbose": 0.02, "fast": 0.02}  # the rest are good
VOCABULARY = (
    "the model answers clearly and gives an example but misses a caveat about edge cases while the other response "
    "explains each step with code and a short summary of the trade-offs involved in choosing either approach"
)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


# --- Build ------------------------------------------------------------------------------------------------------
@dataclass
class Population:
    """Tasks (index ``t``) and judgments (index ``j``, in task order) as arrays; label codes index ``LABELS``."""

    kind: np.ndarray  # per annotator
    truth: np.ndarray  # per task
    gold: np.ndarray
    repeat_of: np.ndarray  # the task whose payload this one repeats (itself if none)
    model_a: np.ndarray
    model_b: np.ndarray
    len_a: np.ndarray
    len_b: np.ndarray
    j_task: np.ndarray
    j_annotator: np.ndarray
    j_label: np.ndarray
    j_a_left: np.ndarray
    j_seconds: np.ndarray


def population(n_tasks: int, n_annotators: int, n_models: int, seed: int) -> Population:
    rng = np.random.default_rng(seed)
    # Annotators: kinds dealt at random, accuracy 75-95% for the good ones.
    kind = np.array(["good"] * n_annotators, dtype="<U8")
    start = 0
    for name, share in KINDS.items():
        count = round(share * n_annotators)
        kind[start : start + count] = name
        start += count
    kind = kind[rng.permutation(n_annotators)]
    accuracy = np.where(kind == "good", rng.uniform(0.75, 0.95, n_annotators), 0.85)

    # Tasks: two models each; 15% truly a tie, 5% both bad, otherwise the better response is drawn from the two
    # models' strengths. Response lengths are independent of quality.
    strength = rng.normal(0, 0.6, n_models)
    model_a = rng.integers(n_models, size=n_tasks)
    model_b = (model_a + 1 + rng.integers(n_models - 1, size=n_tasks)) % n_models
    truth = (rng.random(n_tasks) >= 1 / (1 + np.exp(strength[model_b] - strength[model_a]))).astype(np.int64)
    draw = rng.random(n_tasks)
    truth[draw < 0.2] = 3
    truth[draw < 0.15] = 2
    len_a = np.minimum(rng.lognormal(np.log(400), 0.8, n_tasks), 4000).astype(np.int64) + 20
    len_b = np.minimum(rng.lognormal(np.log(400), 0.8, n_tasks), 4000).astype(np.int64) + 20
    gold = np.arange(n_tasks) % 10 == 0
    repeat_of = np.arange(n_tasks)
    repeats = np.flatnonzero((rng.random(n_tasks) < 0.01) & ~gold & (np.arange(n_tasks) >= 10))
    repeat_of[repeats] = repeats - rng.integers(1, 10, repeats.size)  # the same payload (and truth) again
    for array in (model_a, model_b, truth, len_a, len_b):
        array[repeats] = array[repeat_of[repeats]]

    # Judgments: three distinct annotators of the shift working when the task came up.
    shift = np.arange(n_tasks) * (n_annotators // SHIFT) // n_tasks
    first = rng.integers(SHIFT, size=n_tasks)
    second = (first + 1 + rng.integers(SHIFT - 1, size=n_tasks)) % SHIFT
    low, high = np.minimum(first, second), np.maximum(first, second)
    third = rng.integers(SHIFT - 2, size=n_tasks)
    third += third >= low
    third += third >= high
    who = (shift[:, np.newaxis] * SHIFT + np.column_stack([first, second, third])).ravel()
    j_task = np.repeat(np.arange(n_tasks), 3)
    n = who.size
    a_left = rng.random(n) < 0.5
    j_truth = truth[j_task]
    # Good judgment: the truth with the annotator's accuracy, otherwise one of the other three labels.
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    label = np.where(rng.random(n) < accuracy[who], j_truth, others[j_truth, rng.integers(3, size=n)])
    blind = rng.random(n)
    left_choice = np.where(a_left, 0, 1)
    who_kind = kind[who]
    label = np.where((who_kind == "position") & (blind < 0.4), left_choice, label)
    label = np.where((who_kind == "verbose") & (blind < 0.6), np.where((len_a > len_b)[j_task], 0, 1), label)
    label = np.where(who_kind == "left", left_choice, label)
    label = np.where(who_kind == "random", rng.integers(4, size=n), label)
    seconds = np.where(who_kind == "fast", rng.uniform(0.5, 2.0, n), rng.lognormal(np.log(20), 0.5, n))
    return Population(
        kind, truth, gold, repeat_of, model_a, model_b, len_a, len_b, j_task, who, label, a_left, np.round(seconds, 3)
    )


def build(n_tasks: int, n_annotators: int, n_models: int, seed: int) -> None:
    """The organization, users, memberships and project through Django; tasks and judgments by COPY."""
    # after django.setup(): project modules need the app registry
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from labeling.models import Membership, Organization, Role
    from labeling.services import project_create

    org = Organization.objects.create(name="Bench quality", slug="bench-quality")
    project = project_create(
        organization=org, name="Bench quality prefs", kind="pairwise", min_judgments=3, max_judgments=5, gold_rate=0.1
    )
    User = get_user_model()
    users = User.objects.bulk_create(
        (User(username=f"annotator{n}@bench.example", password="!") for n in range(n_annotators)), batch_size=5000
    )
    Membership.objects.bulk_create(
        (Membership(organization=org, user=u, role=Role.ANNOTATOR) for u in users), batch_size=5000
    )
    user_ids = np.array([u.pk for u in users], dtype=np.int64)

    pop = population(n_tasks, n_annotators, n_models, seed)
    rng = np.random.default_rng(seed + 1)
    words = VOCABULARY.split()
    text = " ".join(words[i] for i in rng.integers(len(words), size=20_000))
    offsets = rng.integers(0, len(text) - 4100, size=(n_tasks, 2))
    models = [f"model-{n:02d}" for n in range(n_models)]
    now = datetime.now(UTC)
    state = ("complete", now, now, 0, False, False, True, 3, 0.0, "")  # status .. resolution: judged three times

    def task_rows() -> Any:
        for t in range(n_tasks):
            p = int(pop.repeat_of[t])
            payload = {
                "prompt": f"Question {p}: explain the idea behind item {p * 7919 % 100_003} in a few sentences.",
                "response_a": text[offsets[p, 0] : offsets[p, 0] + pop.len_a[p]],
                "response_b": text[offsets[p, 1] : offsets[p, 1] + pop.len_b[p]],
                "model_a": models[pop.model_a[p]],
                "model_b": models[pop.model_b[p]],
            }
            gold_label = LABELS[pop.truth[t]] if pop.gold[t] else None
            yield (org.pk, project.pk, f"pair-{t}", json.dumps(payload), "{}", gold_label, *state, rng.random())

    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor, in Django's transaction
        columns = (
            "organization_id, project_id, external_id, payload, meta, gold_label, status, created_at, updated_at, "
            "extra_judgments, is_restricted, is_sensitive, is_started, judgment_count, rank, resolution, shuffle"
        )
        with raw.copy(f"COPY labeling_task ({columns}) FROM STDIN") as copy:
            for row in task_rows():
                copy.write_row(row)
        cursor.execute("SELECT id FROM labeling_task WHERE project_id = %s ORDER BY id", [project.pk])
        task_ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        columns = (
            "organization_id, project_id, task_id, annotator_id, label, a_left, seconds_on_task, active_seconds, "
            "strength, client_id, created_at"
        )
        n = pop.j_task.size
        created = [now - timedelta(seconds=n - j) for j in range(0, n, 1000)]  # a judgment a millisecond
        columns_j = (task_ids[pop.j_task], user_ids[pop.j_annotator], pop.j_label, pop.j_a_left, pop.j_seconds)
        with raw.copy(f"COPY labeling_annotation ({columns}) FROM STDIN") as copy:
            rows = zip(*(column.tolist() for column in columns_j), strict=True)
            for j, (task, annotator, code, left, seconds) in enumerate(rows):
                row = (task, annotator, LABELS[code], left, seconds, None, None, f"bq-{j}", created[j // 1000])
                copy.write_row((org.pk, project.pk, *row))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE labeling_task")
        cursor.execute("VACUUM ANALYZE labeling_annotation")


# --- Measure ----------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def run(self, name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = function(*args, **kwargs)
        self.times[name] = time.perf_counter() - started
        return result


def measure(args: argparse.Namespace) -> None:
    # after django.setup(): project modules need the app registry
    from django.db import transaction
    from django.utils import timezone

    import numeric
    from labeling.models import Project, ProjectKind
    from quality.selectors import project_data
    from quality.services import compute, recompute

    rss_start = _peak_rss_mib()
    project = Project.objects.get(name="Bench quality prefs")

    # First run, step by step, as project_quality_recompute calls them (the job also takes a lock, reports
    # progress and updates its QualityJob row: left out here, included in the end-to-end run below).
    clock = Clock()
    with transaction.atomic():
        recompute._lock(project.pk)
        data = clock.run("read (project_data)", project_data, project=project)
        previous, window = clock.run("previous scores, pause window", recompute._pause_window, project, data)
        computed = clock.run("in memory (compute._compute)", compute._compute, data, project, window)
        consensus, figures, overall, battles = computed.consensus, computed.figures, computed.overall, computed.battles
        assert project.kind == ProjectKind.PAIRWISE
        now = timezone.now()
        clock.run("write consensus", recompute._write_consensus, project, data, consensus, now)
        clock.run("write scores", recompute._write_scores, project, data, computed, previous, now)
        clock.run("write rankings", recompute._write_rankings, project, battles, now)
        clock.run("write snapshot", recompute._write_snapshot, project, data, computed, now, 0.0)
        commit_started = time.perf_counter()
    clock.times["commit"] = time.perf_counter() - commit_started
    steps = clock.times
    # The in-memory steps one at a time, for the breakdown (the job overlaps the first three with Dawid-Skene).
    alone = Clock()
    base = alone.run("annotator figures without consensus", compute._judgment_figures, data, project, window)
    alone.run("battles (Bradley-Terry + 200 bootstraps)", compute._battles, data)
    alone.run("consensus (Dawid-Skene, leave-one-out)", compute._consensus, data)
    alone.run("annotator figures from consensus", compute._annotator_figures, data, consensus, project, window, base)
    alone.run("project figures (Fleiss, alpha)", compute._project_figures, data, consensus.counts)
    del base
    n_judgments, n_tasks, n_annotators = data.n_judgments, data.n_tasks, int(data.annotator_ids.size)
    kept = figures["peers"].kappa.size
    consensus_labels, majority = consensus.labels, numeric.majority_vote(consensus.counts, on_tie="first")[0]
    del data, consensus, figures, overall, battles, previous, window, computed
    gc.collect()

    # Second run: the whole job, its phases from its progress callback.
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    recompute.project_quality_recompute(
        project_id=project.pk, progress=lambda step, _: marks.append((step, time.perf_counter()))
    )
    total = time.perf_counter() - started
    rss_peak = _peak_rss_mib()
    truth = population(args.tasks, args.annotators, args.models, args.seed).truth
    normal = np.arange(truth.size) % 10 != 0  # not gold
    accuracy = float((consensus_labels[normal] == truth[normal]).mean())
    baseline = float((majority[normal] == truth[normal]).mean())
    phases = {step: end - begin for (step, begin), (_, end) in itertools.pairwise(marks)}
    phases["job bookkeeping, commit"] = total - (marks[-1][1] - marks[0][1])

    in_memory = [k for k in steps if not k.startswith(("read", "write", "commit", "previous"))]
    writes = [k for k in steps if k.startswith(("write", "commit"))]
    print(f"\n{n_judgments:,} judgments, {n_tasks:,} tasks, {n_annotators:,} annotators, {kept:,} peer pairs kept")
    print(f"consensus right on {accuracy:.2%} of non-gold tasks (planted truth; majority vote: {baseline:.2%})")
    print("\nFirst run, step by step (inserts)                   seconds")
    for name, seconds in steps.items():
        print(f"  {name:<48} {seconds:7.3f}")
    print(f"  {'= read':<48} {steps['read (project_data)']:7.3f}")
    print(f"  {'= in memory (target < 1 s)':<48} {sum(steps[k] for k in in_memory):7.3f}")
    print(f"  {'= writes + commit':<48} {sum(steps[k] for k in writes):7.3f}")
    print(f"  {'= total':<48} {sum(steps.values()):7.3f}")
    print("\nThe in-memory steps one at a time (warm; the job overlaps the first two and the last with the consensus)")
    for name, seconds in alone.times.items():
        print(f"  {name:<48} {seconds:7.3f}")
    print(f"  {'= sum, if run one after another':<48} {sum(alone.times.values()):7.3f}")
    print("\nSecond run, project_quality_recompute end to end (updates)")
    for name, seconds in phases.items():
        print(f"  {name:<48} {seconds:7.3f}")
    computing = sum(seconds for name, seconds in phases.items() if not name.startswith(("reading", "saving", "job")))
    print(f"  {'= in memory':<48} {computing:7.3f}")
    print(f"  {'= total (target < 10 s)':<48} {total:7.3f}")
    print(
        f"\nPeak RSS (getrusage ru_maxrss of the whole measuring process: Python, Django, numpy, both runs; the build "
        f"ran in another process): {rss_peak:,.0f} MiB (target < 1,536 MiB); {rss_start:,.0f} MiB before reading."
    )
    sys.stdout.flush()
    failed = [] if n_judgments == 3 * args.tasks else [f"{n_judgments:,} judgments read, {3 * args.tasks:,} built"]
    failed += oracles(project)
    stopping_rule(project, truth)
    if failed:
        print("\nFAILED: " + "; ".join(failed))
        sys.exit(1)
    print("\nEvery judgment read, every metric agrees with its oracle.")


# --- Oracles ----------------------------------------------------------------------------------------------------
def _best(function: Any, *args: Any, repeat: int = 1, **kwargs: Any) -> tuple[float, Any]:
    """The fastest of ``repeat`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, result


def oracles(project: Any) -> list[str]:
    """Time each metric against its oracle library on the same arrays; the checks that disagree."""
    import choix
    import krippendorff
    import pandas as pd
    from crowdkit.aggregation import DawidSkene
    from scipy.stats import binomtest
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa

    # after django.setup(): project modules need the app registry
    import numeric
    from quality.selectors import project_data
    from quality.services import compute

    data = project_data(project=project)
    k = len(data.labels)
    rows: list[tuple[str, float, str, float, str]] = []
    disagreeing: list[str] = []

    def add(what: str, ours: float, oracle_name: str, theirs: float, check: str, agrees: bool) -> None:
        rows.append((what, ours, oracle_name, theirs, check + ("" if agrees else " DISAGREES")))
        if not agrees:
            disagreeing.append(f"{what} against {oracle_name}: {check}")
        print(f"  ... {what}: ours {ours:.4f} s, {oracle_name} {theirs:.4f} s ({check})", flush=True)

    print("\nOracles on the same arrays (running)")
    # Dawid-Skene with gold, as the job runs it.
    ours_t, ds = _best(
        numeric.dawid_skene,
        data.j_task,
        data.j_annotator,
        data.j_label,
        n_classes=k,
        gold=data.task_gold,
        n_items=data.n_tasks,
        n_workers=data.annotator_ids.size,
    )
    frame = pd.DataFrame({"task": data.j_task, "worker": data.j_annotator, "label": data.j_label})
    gold = pd.Series(data.task_gold[data.task_gold >= 0], index=np.flatnonzero(data.task_gold >= 0))
    theirs_t, theirs = _best(DawidSkene(n_iter=100, tol=1e-6).fit_predict, frame, gold)
    same = float((ds.labels[theirs.index.to_numpy()] == theirs.to_numpy()).mean())
    add(
        f"Dawid-Skene, 1M judgments ({ds.n_iter} iterations)",
        ours_t,
        "crowd-kit DawidSkene",
        theirs_t,
        f"same label on {same:.2%} of tasks",
        same >= 0.995,
    )
    del frame, theirs

    # Fleiss' kappa on the tasks with the modal number of judgments, as _project_figures does.
    counts = numeric.label_counts(data.j_task, data.j_label, n_items=data.n_tasks, n_classes=k)
    subset = counts[counts.sum(axis=1) == 3]
    ours_t, ours = _best(numeric.fleiss_kappa, subset, repeat=5)
    theirs_t, theirs = _best(fleiss_kappa, subset, repeat=5)
    add(
        f"Fleiss' kappa, {subset.shape[0]:,} tasks x 3",
        ours_t,
        "statsmodels fleiss_kappa",
        theirs_t,
        f"|diff| {abs(ours - theirs):.1e}",
        abs(ours - theirs) <= 1e-9,
    )

    # Krippendorff's alpha: the job's count form on all tasks against krippendorff's value_counts form, and on a
    # subsample of 20,000 tasks against krippendorff's raters x units matrix (1,000 x 333k floats would be 2.7 GB).
    ours_t, ours = _best(numeric.krippendorff_alpha_counts, counts, repeat=5)
    theirs_t, theirs = _best(krippendorff.alpha, value_counts=counts, level_of_measurement="nominal", repeat=3)
    add(
        f"Krippendorff alpha, all {counts.shape[0]:,} tasks (counts)",
        ours_t,
        "krippendorff value_counts",
        theirs_t,
        f"|diff| {abs(ours - theirs):.1e}",
        abs(ours - theirs) <= 1e-9,
    )
    sample = np.random.default_rng(0).choice(data.n_tasks, 20_000, replace=False)
    matrix = np.full((data.annotator_ids.size, sample.size), np.nan)
    picked = np.isin(data.j_task, sample)
    column = np.searchsorted(np.sort(sample), data.j_task[picked])
    matrix[data.j_annotator[picked], column] = data.j_label[picked]
    ours_t, ours = _best(numeric.krippendorff_alpha, matrix, level="nominal", repeat=3)
    theirs_t, theirs = _best(krippendorff.alpha, matrix, level_of_measurement="nominal", repeat=3)
    add(
        "Krippendorff alpha, 20,000-task subsample (1,000 x 20,000)",
        ours_t,
        "krippendorff reliability_data",
        theirs_t,
        f"|diff| {abs(ours - theirs):.1e}",
        abs(ours - theirs) <= 1e-9,
    )
    del matrix

    # Bradley-Terry point estimate ("half" ties) against choix's ILSR (a tie = half a win each way, so every
    # decisive battle goes in twice and every tie once each way).
    a, b = data.labels.index("a"), data.labels.index("b")
    first, second = data.task_model_a[data.j_task], data.task_model_b[data.j_task]
    won_a, won_b = data.j_label == a, data.j_label == b
    tied = ~(won_a | won_b)
    winners = np.concatenate([first[won_a], second[won_b]])
    losers = np.concatenate([second[won_a], first[won_b]])
    ties = np.column_stack([first[tied], second[tied]])
    m = len(data.models)
    ours_t, fit = _best(numeric.bradley_terry, m, winners, losers, ties=ties, tie_model="half", repeat=3)
    pairs = np.concatenate([np.column_stack([winners, losers])] * 2 + [ties, ties[:, ::-1]]).tolist()
    pairs = [tuple(p) for p in pairs]
    theirs_t, theirs = _best(choix.ilsr_pairwise, m, pairs, tol=1e-10)
    diff = float(np.abs(fit.theta - (theirs - theirs.mean())).max())
    add(
        f"Bradley-Terry fit, {len(winners) + len(ties):,} battles, {m} models",
        ours_t,
        "choix ilsr_pairwise",
        theirs_t,
        f"max |theta diff| {diff:.1e}",
        diff <= 1e-4,
    )
    boot_t, _ = _best(
        numeric.bradley_terry_intervals,
        m,
        winners,
        losers,
        ties=ties,
        tie_model="half",
        n_boot=compute.BOOTSTRAP_REPLICATES,
        seed=0,
    )
    del pairs

    # Peer kappas: ours for every pair at once; scikit-learn one pair at a time (200 pairs, scaled to all).
    n = data.annotator_ids.size
    ours_t, peers = _best(
        numeric.peer_kappas,
        data.j_task,
        data.j_annotator,
        data.j_label,
        n_workers=n,
        n_classes=k,
        min_shared=compute.MIN_PEER_SHARED,
    )
    by_worker = {w: {} for w in range(n)}
    for t, w, y in zip(data.j_task.tolist(), data.j_annotator.tolist(), data.j_label.tolist(), strict=True):
        by_worker[w][t] = y
    chosen = np.random.default_rng(0).choice(peers.kappa.size, min(200, peers.kappa.size), replace=False)
    vectors = []
    for p in chosen.tolist():
        left, right = by_worker[int(peers.first[p])], by_worker[int(peers.second[p])]
        shared = sorted(left.keys() & right.keys())
        vectors.append(([left[t] for t in shared], [right[t] for t in shared], peers.kappa[p]))
    started = time.perf_counter()
    sk = [cohen_kappa_score(x, y) for x, y, _ in vectors]
    per_pair = (time.perf_counter() - started) / max(len(vectors), 1)
    diff = max(
        (abs(s - kappa) for s, (_, _, kappa) in zip(sk, vectors, strict=True) if np.isfinite(kappa)), default=0.0
    )
    add(
        f"Cohen's kappa, all {peers.kappa.size:,} peer pairs",
        ours_t,
        f"sklearn x{peers.kappa.size:,} (200 timed)",
        per_pair * peers.kappa.size,
        f"max |diff| {diff:.1e}",
        diff <= 1e-9,
    )

    # The random-clicking test: one exact one-sided binomial test per annotator.
    consensus = compute._consensus(data)
    has_ref = consensus.reference >= 0
    n_ref, agreeing, _ = numeric.agreement_with_reference(
        data.j_annotator[has_ref], (data.j_label == consensus.reference)[has_ref], n_annotators=n
    )
    chance = numeric.chance_agreement(
        data.j_annotator[has_ref], data.j_label[has_ref], consensus.reference[has_ref], n_annotators=n, n_classes=k
    )
    useful = np.clip(np.nan_to_num(chance, nan=0.0) + compute.RANDOM_MARGIN, 0.0, 0.999)
    ours_t, ours = _best(numeric.binomial_test, agreeing, n_ref, useful, alternative="less", repeat=5)
    started = time.perf_counter()
    theirs = [
        binomtest(int(x), int(t), float(p), alternative="less").pvalue if t else 1.0
        for x, t, p in zip(agreeing, n_ref, useful, strict=True)
    ]
    theirs_t = time.perf_counter() - started
    diff = float(np.nanmax(np.abs(ours - np.array(theirs)) / np.maximum(np.array(theirs), 1e-300)))
    add(
        f"binomial tests, {n:,} annotators",
        ours_t,
        f"scipy binomtest x{n:,}",
        theirs_t,
        f"max relative diff {diff:.1e}",
        diff <= 1e-9,
    )

    print(f"\n{'Metric (same arrays)':<58} {'ours s':>8}  {'oracle':<30} {'oracle s':>8} {'ratio':>7}  check")
    for what, ours, oracle_name, theirs, check in rows:
        print(f"{what:<58} {ours:8.4f}  {oracle_name:<30} {theirs:8.4f} {theirs / ours:6.1f}x  {check}")
    print(f"{'Bradley-Terry 95% intervals, 200 bootstraps':<58} {boot_t:8.4f}  {'(no oracle)':<30}")
    print("ratio = oracle time / ours. Cohen's kappa: scikit-learn timed on 200 random kept pairs (label vectors")
    print("built beforehand, untimed), times the number of pairs; ours computes every pair's table at once.")
    return disagreeing


def reset() -> None:
    """Forget the quality results of a previous run (``--reuse``): the first run below inserts again."""
    # after django.setup(): project modules need the app registry
    from django.db import connection

    from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob, TaskConsensus

    tables = ", ".join(model._meta.db_table for model in (TaskConsensus, AnnotatorScore, ProjectQuality,
                                                          ModelRanking, QualityJob))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables}")


def stopping_rule(project: Any, truth: np.ndarray) -> None:
    """Dawid-Skene's stopping rule: the plain loop (crowd-kit's; the function's default tol is 1e-6, crowd-kit's own
    1e-5) and the accelerated one the job runs (SQUAREM, tol 1e-7), against a fit converged to 1e-13: EM steps,
    time, labels that differ, the largest posterior difference, accuracy against the planted truth."""
    # after django.setup(): project modules need the app registry
    import numeric
    from quality.selectors import project_data
    from quality.services import compute

    data = project_data(project=project)
    args = (data.j_task, data.j_annotator, data.j_label)
    options = {"n_classes": len(data.labels), "gold": data.task_gold, "n_items": data.n_tasks}
    options["n_workers"] = data.annotator_ids.size
    reference = numeric.dawid_skene(*args, max_iter=3000, tol=1e-13, accelerate=True, **options)
    normal = data.task_gold < 0
    print(f"\nDawid-Skene stopping rule, against a fit converged to 1e-13 ({reference.n_iter} EM steps)")
    header = f"{'loop':<12} {'tol':>6} {'EM steps':>8} {'seconds':>8} {'labels differing':>17} {'max |post diff|':>16}"
    print(f"{header} {'right (planted truth)':>22}")
    runs = [("plain", 1e-5, False), ("plain", 1e-6, False)]
    runs += [("accelerated", tol, True) for tol in (1e-6, compute.DS_TOL, 1e-8)]
    for loop, tol, accelerate in runs:
        seconds, fit = _best(numeric.dawid_skene, *args, tol=tol, accelerate=accelerate, **options)
        differing = int((fit.labels != reference.labels).sum())
        distance = float(np.abs(fit.posteriors - reference.posteriors).max())
        right = float((fit.labels[normal] == truth[normal]).mean())
        job = " (the job)" if accelerate and tol == compute.DS_TOL else ""
        print(
            f"{loop:<12} {tol:6.0e} {fit.n_iter:8d} {seconds:8.2f} {differing:17,d} {distance:16.4f} {right:22.4%}{job}"
        )
    right = float((reference.labels[normal] == truth[normal]).mean())
    print(f"{'converged':<12} {'':>6} {reference.n_iter:8d} {'':>8} {'(reference)':>17} {'':>16} {right:22.4%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--form", choices=["pairwise", "rich"], default="pairwise")
    parser.add_argument("--tasks", type=int, help=f"default 333,334 (pairwise), {DEFAULT_TASKS:,} (rich)")
    parser.add_argument("--annotators", type=int, default=1_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="measure the previous run's database again, unbuilt")
    parser.add_argument("--child", choices=["build", "reset", "measure"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    rich = args.form == "rich"
    if args.tasks is None:
        args.tasks = DEFAULT_TASKS if rich else 333_334
    if not args.child:
        print_command(args)
    if args.child:  # a child process, on the bench database
        configure_django(os.environ["DATABASE_URL"], queue=QUEUE)
        if args.child == "build":
            started = time.perf_counter()
            (build_form if rich else build)(args.tasks, args.annotators, args.models, args.seed)
            print(f"built {args.tasks:,} tasks, {3 * args.tasks:,} judgments in {time.perf_counter() - started:.0f} s")
        elif args.child == "reset":
            reset()
        else:
            (measure_form if rich else measure)(args)
        return
    if args.annotators % SHIFT and not rich:
        sys.exit(f"--annotators must be a multiple of {SHIFT}")
    # This process stays small (no Django, no data): a child's peak RSS counts its parent's at the fork on Linux.
    suffix = "bench_quality_rich" if rich else "bench_quality"
    if args.reuse:
        server = urlsplit(os.environ.get("DATABASE_URL", ""))
        url = urlunsplit(server._replace(path=f"/{server.path.strip('/') or 'concord'}_{suffix}"))
    else:
        url = bench_database(suffix)
    env = {**os.environ, "DATABASE_URL": url}
    options = ["--tasks", str(args.tasks), "--annotators", str(args.annotators), "--models", str(args.models)]
    options += ["--seed", str(args.seed), "--form", args.form]
    for child in ("reset" if args.reuse else "build", "measure"):
        step = subprocess.run([sys.executable, __file__, *options, "--child", child], env=env, check=False)  # noqa: S603
        if step.returncode:
            sys.exit(f"bench/quality.py: the {child} step failed (exit status {step.returncode})")


if __name__ == "__main__":
    main()
