"""``bench/quality.py --form rich``: the quality recompute of a project with issue 17's rich form at a million ratings.

The project is a 4-response ranking (primary) with three per-response 1-7 rating questions, a rationale and an
optional rewrite (``tests/forms/rich.py``). ``--tasks`` tasks (default 27,778) are judged three times each: 83,334
judgments carrying 1,000,008 ratings. Each response has a planted quality; an annotator ranks by quality plus noise
and rates it shifted by their own leniency (-1, 0 or +1), and 3% of annotators straight-line (the same rating
everywhere). Tasks and judgments (with their ``answers``) are written by ``COPY``.

The measurement times ``project_quality_recompute`` end to end twice (inserts, then updates), and the question
figures alone (``quality.services.form_figures``). It exits 1 when fewer ratings are read than were built, or when a
figure disagrees with its oracle: rating alpha against the ``krippendorff`` package on the first 1,500 tasks (a
dense matrix of the full data would not fit), Kendall's W against a per-task loop of scipy's Friedman statistic on
the same tasks, and the Plackett-Luce leaderboard against ``choix`` on every ranking. Target: total < 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta

import numpy as np

K = 4
RATINGS = ("helpfulness", "honesty", "harmlessness")
ORACLE_TASKS = 1_500
DEFAULT_TASKS = 27_778  # x 3 judgments x 4 responses x 3 questions = 1,000,008 ratings


def build_form(n_tasks: int, n_annotators: int, n_models: int, seed: int) -> None:
    """Organization, users and the project through Django; tasks and judgments (with answers) by COPY."""
    # after django.setup(): project modules need the app registry
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from labeling.models import Membership, Organization, Role
    from labeling.services import project_create
    from tests.forms.rich import RICH_QUESTIONS

    org = Organization.objects.create(name="Bench quality forms", slug="bench-quality-forms")
    project = project_create(
        organization=org, name="Bench quality rich", questions=RICH_QUESTIONS, min_judgments=3, max_judgments=3
    )
    User = get_user_model()
    users = User.objects.bulk_create(
        (User(username=f"rater{n}@bench.example", password="!") for n in range(n_annotators)), batch_size=5000
    )
    Membership.objects.bulk_create(
        (Membership(organization=org, user=u, role=Role.ANNOTATOR) for u in users), batch_size=5000
    )
    user_ids = np.array([u.pk for u in users], dtype=np.int64)
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_models)
    task_models = np.argsort(rng.random((n_tasks, n_models)), axis=1)[:, :K]  # K distinct models per task
    quality = strength[task_models] + rng.normal(0, 0.7, (n_tasks, K))
    leniency = rng.choice([-1, 0, 1], n_annotators)
    straight = rng.random(n_annotators) < 0.03
    now = datetime.now(UTC)
    state = ("complete", now, now, 0, False, False, True, 3, 0.0, "")

    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        columns = (
            "organization_id, project_id, external_id, payload, meta, gold_label, status, created_at, updated_at, "
            "extra_judgments, is_restricted, is_sensitive, is_started, judgment_count, rank, resolution, shuffle"
        )
        with raw.copy(f"COPY labeling_task ({columns}) FROM STDIN") as copy:
            for t in range(n_tasks):
                payload = {
                    "prompt": f"Question {t}: how would you explain item {t * 7919 % 100_003}?",
                    "responses": [
                        {"text": f"Answer {r} to question {t}.", "model": f"model-{task_models[t, r]:02d}"}
                        for r in range(K)
                    ],
                }
                copy.write_row((org.pk, project.pk, f"rich-{t}", json.dumps(payload), "{}", None, *state, rng.random()))
        cursor.execute("SELECT id FROM labeling_task WHERE project_id = %s ORDER BY id", [project.pk])
        task_ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        columns = (
            "organization_id, project_id, task_id, annotator_id, label, answers, response_order, seconds_on_task, "
            "client_id, created_at"
        )
        judges = np.argsort(rng.random((n_tasks, n_annotators)), axis=1)[:, :3] if n_annotators <= 64 else None
        with raw.copy(f"COPY labeling_annotation ({columns}) FROM STDIN") as copy:
            j = 0
            for t in range(n_tasks):
                who = judges[t] if judges is not None else rng.choice(n_annotators, 3, replace=False)
                for a in who.tolist():
                    seen = quality[t] + rng.normal(0, 0.8, K)
                    order = np.argsort(-seen).tolist()
                    if straight[a]:
                        ratings = [4] * K
                    else:
                        ratings = np.clip(np.rint(4 + 1.2 * seen + leniency[a]), 1, 7).astype(int).tolist()
                    answers = {"rank": order, **dict.fromkeys(RATINGS, ratings), "why": "The first is the best."}
                    shown = rng.permutation(K).tolist()
                    row = (task_ids[t], user_ids[a], str(order[0]), json.dumps(answers), json.dumps(shown), 20.0)
                    copy.write_row((org.pk, project.pk, *row, f"rq-{j}", now - timedelta(milliseconds=j)))
                    j += 1
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE labeling_task")
        cursor.execute("VACUUM ANALYZE labeling_annotation")


def measure_form(args: argparse.Namespace) -> None:
    # after django.setup(): project modules need the app registry
    import choix
    import krippendorff
    from scipy import stats

    from labeling.models import Project
    from numeric import ranking, ratings
    from quality.models import ModelRanking
    from quality.selectors import form_answers, project_data
    from quality.services import recompute
    from quality.services.form_figures import form_figures

    project = Project.objects.get(name="Bench quality rich")
    totals = []
    for run in ("first run (inserts)", "second run (updates)"):
        started = time.perf_counter()
        snapshot = recompute.project_quality_recompute(project_id=project.pk)
        totals.append((run, time.perf_counter() - started))
    started = time.perf_counter()
    data = project_data(project=project)
    read_data = time.perf_counter() - started
    started = time.perf_counter()
    form = form_answers(project=project, data=data)
    read_form = time.perf_counter() - started
    assert form is not None
    started = time.perf_counter()
    figures = form_figures(data, form, leaderboard=True)
    in_memory = time.perf_counter() - started

    built = args.tasks * 3 * K * len(RATINGS)
    counted = sum(figures.questions[key]["n"] for key in RATINGS)
    print(f"\n{data.n_judgments:,} judgments, {counted:,} ratings, {data.n_tasks:,} tasks, "
          f"{data.annotator_ids.size:,} annotators")  # fmt: skip
    for run, seconds in totals:
        print(f"  project_quality_recompute, {run:<22} {seconds:7.3f} s (target < 10 s)")
    print(f"  read judgments (project_data)                     {read_data:7.3f} s")
    print(f"  read answers and response models (form_answers)   {read_form:7.3f} s")
    print(f"  question figures in memory (form_figures)         {in_memory:7.3f} s")
    for key, found in figures.questions.items():
        print(f"  {key:<14} {found}")
    flagged = int(figures.straight_flag.sum()) if figures.straight_flag is not None else 0
    print(f"  straight-lining flagged: {flagged} annotators")
    sys.stdout.flush()

    failed = [] if counted == built else [f"{counted:,} ratings read, {built:,} built"]
    assert snapshot is not None and snapshot.questions == figures.questions, "the job stored other figures"
    # Oracles on the first tasks: rating alpha (krippendorff) and Kendall's W (scipy's Friedman statistic).
    first = data.j_task < ORACLE_TASKS
    j_index = np.flatnonzero(first)
    annotators = np.unique(data.j_annotator[j_index], return_inverse=True)[1].reshape(-1)
    matrix = np.full((annotators.max() + 1, ORACLE_TASKS * K), np.nan)
    ours_w: list[int] = []
    orders = []
    for row, j in zip(annotators.tolist(), j_index.tolist(), strict=True):
        t = int(data.j_task[j])
        matrix[row, t * K : t * K + K] = form.answers[j]["helpfulness"]
        ours_w.append(t)
        orders.append(form.answers[j]["rank"])
    items = np.repeat(data.j_task[j_index] * K, K) + np.tile(np.arange(K), j_index.size)
    values = np.array([form.answers[j]["helpfulness"] for j in j_index.tolist()], dtype=float).reshape(-1)
    who = np.repeat(annotators, K)
    for level in ("interval", "ordinal"):
        ours = ratings.rating_alpha(items, who, values, n_items=ORACLE_TASKS * K, n_annotators=matrix.shape[0],
                                    level=level)  # fmt: skip
        theirs = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        agrees = abs(ours - theirs) < 1e-9
        print(f"  alpha ({level}) on {ORACLE_TASKS:,} tasks: ours {ours:.6f}, krippendorff {theirs:.6f}")
        if not agrees:
            failed.append(f"alpha ({level}) disagrees with krippendorff")
    tasks = np.array(ours_w)
    w = ranking.kendalls_w(tasks, np.array(orders), n_tasks=ORACLE_TASKS)
    loop = []
    for t in range(ORACLE_TASKS):
        ranks = [[o.index(r) + 1 for r in range(K)] for tt, o in zip(ours_w, orders, strict=True) if tt == t]
        loop.append(stats.friedmanchisquare(*np.array(ranks).T).statistic / (len(ranks) * (K - 1)))
    if not np.allclose(w, loop, atol=1e-9):
        failed.append("Kendall's W disagrees with scipy's Friedman statistic")
    print(f"  Kendall's W on {ORACLE_TASKS:,} tasks: max |ours - scipy| {np.abs(w - np.array(loop)).max():.2e}")
    board = {row.model_name: row for row in ModelRanking.objects.filter(project=project)}
    names = sorted(board)
    code = {name: i for i, name in enumerate(names)}
    rankings_ = [
        [code[form.task_models[int(data.j_task[j])][r]] for r in answers["rank"]]
        for j, answers in enumerate(form.answers)
    ]
    alpha = 0.01 if board[names[0]].regularised else 0.0
    theta = choix.opt_rankings(len(names), rankings_, alpha=alpha)
    theta -= theta.mean()
    distance = max(abs(board[name].theta - theta[code[name]]) for name in names)
    print(f"  Plackett-Luce over {len(names)} models: max |ours - choix| {distance:.2e}")
    if distance > 1e-4:
        failed.append("Plackett-Luce disagrees with choix")
    if failed:
        print("\nFAILED: " + "; ".join(failed))
        sys.exit(1)
    print("\nEvery rating read, every figure agrees with its oracle.")


__all__ = ["DEFAULT_TASKS", "build_form", "measure_form"]
