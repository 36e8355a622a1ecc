"""Planted annotator populations for quality tests (and ``bench/simulate_annotators.py``).

Each annotator has a behaviour: ``good`` (agrees with the truth with ``accuracy``), ``random`` (uniform over the
four pairwise choices), ``left`` (always the response shown on the left), ``position`` (left 70% of the time: 40%
blindly, otherwise good), ``verbose`` (the longer response 80% of the time: 60% blindly, otherwise good), ``fast``
(good, but a second per judgment). Rows are written with ``bulk_create``: these tests measure quality, not routing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labeling.models import Judgment, Project, Role, Task
from tests import factories

LABELS = ("a", "b", "tie", "both_bad")


@dataclass
class Planted:
    tasks: list[Task]
    annotators: dict[str, Any]  # name -> user
    behaviour: dict[str, str]  # name -> behaviour
    truth: np.ndarray


def plant(
    project: Project,
    behaviours: dict[str, str],
    *,
    n_tasks: int,
    per_task: int = 3,
    gold_every: int = 10,
    accuracy: float = 0.85,
    seed: int = 0,
    models: tuple[str, ...] = ("model-x", "model-y", "model-z"),
) -> Planted:
    rng = np.random.default_rng(seed)
    truth = rng.choice(2, n_tasks, p=[0.5, 0.5])  # the true better response: 0 = A, 1 = B
    longer_a = rng.random(n_tasks) < 0.5
    # The true winner is the longer response half the time, so verbosity is independent of quality.
    tasks = []
    for n in range(n_tasks):
        pair = rng.choice(len(models), 2, replace=False)
        short, long = "Short answer.", "A much longer answer, with details, caveats and an example or two."
        payload = {
            "prompt": f"Question {n}?",
            "response_a": long if longer_a[n] else short,
            "response_b": short if longer_a[n] else long,
            "model_a": models[pair[0]],
            "model_b": models[pair[1]],
        }
        gold = LABELS[truth[n]] if gold_every and n % gold_every == 0 else None
        tasks.append(
            Task(
                organization_id=project.organization_id,
                project=project,
                external_id=f"t{n}",
                payload=payload,
                gold_label=gold,
            )
        )
    tasks = Task.objects.bulk_create(tasks, batch_size=2000)
    annotators = {name: factories.make_member(project.organization, Role.ANNOTATOR) for name in behaviours}
    names = list(behaviours)
    # Balanced: annotators are dealt out from a sequence of shuffles, so everyone judges about as many tasks; at a
    # seam between two shuffles a repeat is swapped with the next annotator not yet on the task.
    per_task = min(per_task, len(names))
    rounds = -(-n_tasks * per_task // len(names)) + 1
    deal = np.concatenate([rng.permutation(len(names)) for _ in range(rounds)]).tolist()
    rows = []
    for n, task in enumerate(tasks):
        start = n * per_task
        for slot in range(start, start + per_task):
            later = slot
            while deal[later] in deal[start:slot]:
                later += 1
            deal[slot], deal[later] = deal[later], deal[slot]
        chosen = deal[start : start + per_task]
        for index in chosen:
            name = names[index]
            a_left = bool(rng.integers(2))
            label = _choose(behaviours[name], truth[n], a_left, bool(longer_a[n]), accuracy, rng)
            rows.append(
                Judgment(
                    organization_id=project.organization_id,
                    project=project,
                    task=task,
                    annotator=annotators[name],
                    label=label,
                    a_left=a_left,
                    seconds_on_task=1.0 if behaviours[name] == "fast" else float(rng.uniform(8, 40)),
                    client_id=f"p-{task.pk}-{name}",
                )
            )
    Judgment.objects.bulk_create(rows, batch_size=2000)
    return Planted(tasks=tasks, annotators=annotators, behaviour=dict(behaviours), truth=truth)


def _choose(kind: str, truth: int, a_left: bool, longer_a: bool, accuracy: float, rng: np.random.Generator) -> str:
    if kind == "random":
        return LABELS[int(rng.integers(4))]
    if kind == "left":
        return "a" if a_left else "b"
    # Leaning annotators judge well otherwise: 40% "left" + 60% x 1/2 = 70% left; the same for the longer one.
    if kind == "position" and rng.random() < 0.4:
        return "a" if a_left else "b"
    if kind == "verbose" and rng.random() < 0.6:
        return "a" if longer_a else "b"
    if rng.random() < accuracy:
        return LABELS[truth]
    return LABELS[int(rng.choice([1 - truth, 2, 3]))]
