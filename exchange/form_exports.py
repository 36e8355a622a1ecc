"""The exports of projects with a form (issue 17): each task's consensus over its judgments' answers, and the rows
of the formats built on it. ``exchange.exports`` selects the tasks and streams their judgments in task order (one
query for the whole export on PostgreSQL, one per page elsewhere; never one per task); this module turns each task's
group of judgments into rows, in plain Python (a task has at most 9 responses and a handful of judgments: numpy's
per-call cost would be most of the work).

Consensus, per task, over its judgments that answered the question:

- a ranking question: each response's **mean rank** (its place, 1 = best; responses tied at a place share the mean
  of the places they span); the consensus order is by mean rank, a tie broken by the lower response index;
- a per-response rating question: each response's **mean rating** (its consensus score), with the population
  standard deviation (``ddof=0``) and the number of ratings; a rating asked once per task, per task;
- a pairwise project: the consensus label the quality engine settled on (``a`` or ``b``).

Formats (every column one type in every row: ``null`` where a value does not exist):

- ``rm_pairs`` — reward-model pairs: ``prompt`` (``null`` for a conversation), ``messages`` (the conversation, or
  ``null``), ``chosen``, ``rejected``, ``margin``, ``external_id``, ``chosen_model``, ``rejected_model``,
  ``chosen_index``, ``rejected_index``, ``n_judgments``. The pairs come from the source named by ``question``:
  a ranking question (every pair i above j in the consensus order; ``margin`` = j's mean rank minus i's), or a
  per-response rating question (every pair whose mean ratings differ; ``margin`` = the difference). Without
  ``question``: the primary question when it is a ranking; else, for a pairwise project, the consensus winner vs
  the loser with ``margin`` = the mean strength (1-3) of the judgments that chose the winner on a strength-scale
  project, else the winner's vote share (the fraction of the task's judgments that chose it); else the mean, per
  response, of the mean ratings of all the per-response rating questions (on their own scales). Pairs with no
  difference (equal mean ranks, equal scores) say nothing about which response is better and are left out.
- ``sft`` — one row per judgment's non-empty rewrite, as TRL's ``SFTTrainer`` conversational rows: ``messages``
  (the task's conversation, or its prompt as a user turn, then the rewrite as the assistant's turn), ``external_id``,
  ``annotator`` (pseudonymous), ``question`` (the rewrite question's key), ``source`` (the response index it started
  from, or ``null``), ``source_model``.
- ``ratings`` — one row per task and response (one per task when the task has no responses): ``external_id``,
  ``prompt``, ``messages``, ``response`` (index), ``completion``, ``model``, then for each rating question in form
  order ``<key>_mean``, ``<key>_std`` and ``<key>_n`` (a rating asked once per task repeats its task's figures on
  each of the task's rows; no rating: ``null`` mean and spread, ``n`` 0).
- ``dpo`` and ``kto`` of a ranking project: the best vs the worst response of the consensus ranking (``dpo``:
  ``chosen``/``rejected`` with ``margin``, the difference of their mean ranks; ``kto``: the best ``label`` true, the
  worst false), plus ``messages``; a task whose best and worst tie gives no row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from labeling.db import json_value
from labeling.questions import QuestionSpec

FORM_FORMATS: Final = ("rm_pairs", "sft", "ratings")

Task = dict[str, Any]
Judgment = dict[str, Any]
TaskGroup = tuple[Task, list[Judgment]]  # a task and its judgments in id order


# --- What the form offers -------------------------------------------------------------------------------------------
def rating_questions(questions: tuple[QuestionSpec, ...]) -> list[QuestionSpec]:
    return [spec for spec in questions if spec.kind == "rating"]


def rewrite_questions(questions: tuple[QuestionSpec, ...]) -> list[QuestionSpec]:
    return [spec for spec in questions if spec.kind == "rewrite"]


def pair_sources(questions: tuple[QuestionSpec, ...]) -> list[QuestionSpec]:
    """The questions ``rm_pairs`` can take its pairs from: rankings and per-response ratings."""
    return [spec for spec in questions if spec.kind == "ranking" or (spec.kind == "rating" and spec.per_response)]


@dataclass(frozen=True)
class PairSource:
    """Where ``rm_pairs`` takes a task's pairs from: one ranking question, some per-response rating questions (their
    mean), or (``pairwise``) the consensus label."""

    ranking: QuestionSpec | None = None
    ratings: tuple[QuestionSpec, ...] = ()
    pairwise: bool = False


def pair_source(*, kind: str, questions: tuple[QuestionSpec, ...], question: str | None) -> PairSource | str:
    """The source of ``rm_pairs``'s pairs, or why there is none (the message of a 400 on ``question`` or
    ``format``)."""
    sources = pair_sources(questions)
    if question is not None:
        spec = next((spec for spec in sources if spec.key == question), None)
        if spec is None:
            keys = ", ".join(spec.key for spec in sources) or "none in this project"
            return f"must be the key of a ranking or per-response rating question ({keys})"
        return PairSource(ranking=spec) if spec.kind == "ranking" else PairSource(ratings=(spec,))
    primary = next((spec for spec in questions if spec.primary), None)
    if primary is not None and primary.kind == "ranking":
        return PairSource(ranking=primary)
    if kind == "pairwise":
        return PairSource(pairwise=True)
    ratings = tuple(spec for spec in sources if spec.kind == "rating")
    if ratings:
        return PairSource(ratings=ratings)
    return "rm_pairs needs a pairwise project, or a ranking or per-response rating question"


# --- Consensus ------------------------------------------------------------------------------------------------------
def places(ranking: list[Any], k: int) -> list[float] | None:
    """Each response's place (1 = best) in one ranking answer; tied responses share the mean of the places they
    span. ``None`` for an answer that does not rank exactly the ``k`` responses."""
    place = [0.0] * k
    if len(ranking) == k and all(type(index) is int for index in ranking):  # no ties: the common answer
        if sorted(ranking) != list(range(k)):
            return None
        for position, index in enumerate(ranking, start=1):
            place[index] = float(position)
        return place
    seen = 0
    filled: set[int] = set()
    for entry in ranking:
        group = entry if isinstance(entry, list) else [entry]
        shared = seen + (len(group) + 1) / 2
        for index in group:
            if type(index) is not int or not 0 <= index < k or index in filled:
                return None
            place[index] = shared
            filled.add(index)
        seen += len(group)
    return place if len(filled) == k else None


def mean_ranks(rankings: list[list[Any]], k: int) -> list[float] | None:
    """Each response's mean place over the rankings (``None`` when no ranking fits the task's ``k`` responses)."""
    found = [place for ranking in rankings if (place := places(ranking, k)) is not None]
    if not found:
        return None
    return [sum(column) / len(found) for column in zip(*found, strict=True)]


@dataclass(frozen=True)
class Stats:
    mean: float | None
    std: float | None
    n: int


def stats(values: list[float]) -> Stats:
    """Mean, population standard deviation (``ddof=0``) and count; ``None`` figures without values."""
    if not values:
        return Stats(None, None, 0)
    mean = sum(values) / len(values)
    return Stats(mean, math.sqrt(sum((value - mean) ** 2 for value in values) / len(values)), len(values))


def rating_stats(answers: list[dict[str, Any]], spec: QuestionSpec, k: int) -> list[Stats]:
    """A rating question's figures: one per response (per-response) or one for the task."""
    if not spec.per_response:
        return [stats([value for a in answers if isinstance(value := a.get(spec.key), int)])]
    lists = [value for a in answers if isinstance(value := a.get(spec.key), list) and len(value) == k]
    return [stats([ratings[i] for ratings in lists]) for i in range(k)]


def scores(source: PairSource, answers: list[dict[str, Any]], k: int) -> list[float] | None:
    """Each response's consensus score (higher is better): minus its mean rank, or its (mean) mean rating."""
    if source.ranking is not None:
        means = mean_ranks([value for a in answers if isinstance(value := a.get(source.ranking.key), list)], k)
        return None if means is None else [-mean for mean in means]
    if k == 0:
        return None
    per_question: list[list[float]] = []
    for spec in source.ratings:
        figures = rating_stats(answers, spec, k)
        if figures[0].n:  # the question was answered on this task (a per-response rating rates every response)
            per_question.append([figure.mean for figure in figures])  # type: ignore[misc]
    if not per_question:
        return None
    return [sum(means[i] for means in per_question) / len(per_question) for i in range(k)]


def consensus_order(values: list[float]) -> list[int]:
    """Response indexes best first: by score, highest first, a tie broken by the lower index."""
    return sorted(range(len(values)), key=lambda index: (-values[index], index))


def ordered_pairs(values: list[float]) -> Iterator[tuple[int, int, float]]:
    """(chosen, rejected, margin) for every pair i above j in the consensus order whose scores differ."""
    order = consensus_order(values)
    for position, better in enumerate(order):
        for worse in order[position + 1 :]:
            margin = values[better] - values[worse]
            if margin > 0:
                yield better, worse, margin


# --- Tasks and their judgments --------------------------------------------------------------------------------------
def task_groups(pairs: list[tuple[Task, Judgment]]) -> Iterator[tuple[Task, list[Judgment]]]:
    """(task, its judgments) from a page of (task, judgment) pairs in task order (a task is never split between
    pages)."""
    task: Task | None = None
    group: list[Judgment] = []
    for current, judgment in pairs:
        if task is not None and current["id"] != task["id"]:
            yield task, group
            group = []
        task = current
        group.append(judgment)
    if task is not None:
        yield task, group


def responses(task: Task) -> list[tuple[str, str | None]]:
    """The task's responses as (text, model), in the task's own order (a pairwise task: A then B)."""
    if "p_responses" in task and task["p_responses"] is not None:
        return [(item["text"], item.get("model")) for item in json_value(task["p_responses"])]
    if task.get("p_response_a") is not None:
        return [(task["p_response_a"], task.get("p_model_a")), (task["p_response_b"], task.get("p_model_b"))]
    return []


def context(task: Task) -> tuple[str | None, list[dict[str, str]] | None]:
    """The task's prompt (text) and conversation (``messages``): one of them is ``None``."""
    messages = json_value(task.get("p_messages"))
    prompt = task.get("p_prompt")
    if prompt is None and messages is None:
        prompt = task.get("p_text")
    return prompt, messages


def answers_of(judgments: list[Judgment]) -> list[dict[str, Any]]:
    return [answers for judgment in judgments if isinstance(answers := json_value(judgment["answers"]), dict)]


def provenance(task: Task) -> dict[str, Any]:
    return {
        "external_id": task["external_id"],
        "confidence": task["confidence"],
        "agreement": task["agreement"],
        "n_judgments": task["n_judgments"],
    }


# --- Rows -----------------------------------------------------------------------------------------------------------
def rm_pairs_rows(source: PairSource, strength_scale: bool, groups: list[TaskGroup]) -> Iterator[dict[str, Any]]:
    for task, judgments in groups:
        items = responses(task)
        if source.pairwise:
            if task["label"] not in ("a", "b"):
                continue
            win, lose = (0, 1) if task["label"] == "a" else (1, 0)
            chose = [judgment for judgment in judgments if judgment["label"] == task["label"]]
            if strength_scale:
                strengths = [judgment["strength"] for judgment in chose if judgment["strength"] is not None]
                margin = sum(strengths) / len(strengths) if strengths else None
            else:
                margin = len(chose) / len(judgments)
            found: list[tuple[int, int, float | None]] = [(win, lose, margin)]
            n = len(judgments)
        else:
            answers = answers_of(judgments)
            values = scores(source, answers, len(items))
            if values is None:
                continue
            found = list(ordered_pairs(values))  # type: ignore[arg-type]
            n = len(answers)
        prompt, messages = context(task)
        for chosen, rejected, margin in found:
            yield {
                "prompt": prompt,
                "messages": messages,
                "chosen": items[chosen][0],
                "rejected": items[rejected][0],
                "margin": margin,
                "external_id": task["external_id"],
                "chosen_model": items[chosen][1],
                "rejected_model": items[rejected][1],
                "chosen_index": chosen,
                "rejected_index": rejected,
                "n_judgments": n,
            }


def best_and_worst(ranking: QuestionSpec, k: int, judgments: list[Judgment]) -> tuple[int, int, float] | None:
    """The consensus ranking's best and worst of ``k`` responses and the difference of their mean ranks (``None``:
    no ranking, or they tie)."""
    values = scores(PairSource(ranking=ranking), answers_of(judgments), k)
    if values is None or k < 2:
        return None
    order = consensus_order(values)
    margin = values[order[0]] - values[order[-1]]
    return (order[0], order[-1], margin) if margin > 0 else None


def ranking_dpo_rows(ranking: QuestionSpec, groups: list[TaskGroup]) -> Iterator[dict[str, Any]]:
    for task, judgments in groups:
        items = responses(task)
        if (found := best_and_worst(ranking, len(items), judgments)) is None:
            continue
        best, worst, margin = found
        prompt, messages = context(task)
        yield {
            "prompt": prompt,
            "chosen": items[best][0],
            "rejected": items[worst][0],
            **provenance(task),
            "chosen_model": items[best][1],
            "rejected_model": items[worst][1],
            "margin": margin,
            "messages": messages,
        }


def ranking_kto_rows(ranking: QuestionSpec, groups: list[TaskGroup]) -> Iterator[dict[str, Any]]:
    for task, judgments in groups:
        items = responses(task)
        if (found := best_and_worst(ranking, len(items), judgments)) is None:
            continue
        prompt, messages = context(task)
        for index, desirable in ((found[0], True), (found[1], False)):
            yield {
                "prompt": prompt,
                "completion": items[index][0],
                "label": desirable,
                **provenance(task),
                "model": items[index][1],
                "messages": messages,
            }


def sft_rows(
    questions: tuple[QuestionSpec, ...], pseudonym: Callable[[int], str], groups: list[TaskGroup]
) -> Iterator[dict[str, Any]]:
    rewrites = rewrite_questions(questions)
    for task, judgments in groups:
        prompt, messages = context(task)
        turns = list(messages) if messages is not None else [{"role": "user", "content": prompt}]
        items = responses(task)
        for judgment in judgments:
            answers = json_value(judgment["answers"])
            if not isinstance(answers, dict):
                continue
            for spec in rewrites:
                value = answers.get(spec.key)
                if not isinstance(value, dict) or not isinstance(value.get("text"), str) or not value["text"].strip():
                    continue
                source = value.get("source")
                yield {
                    "messages": [*turns, {"role": "assistant", "content": value["text"]}],
                    "external_id": task["external_id"],
                    "annotator": pseudonym(judgment["annotator_id"]),
                    "question": spec.key,
                    "source": source,
                    "source_model": items[source][1] if isinstance(source, int) and source < len(items) else None,
                }


def ratings_columns(questions: tuple[QuestionSpec, ...]) -> list[str]:
    base = ["external_id", "prompt", "messages", "response", "completion", "model"]
    return base + [f"{spec.key}_{figure}" for spec in rating_questions(questions) for figure in ("mean", "std", "n")]


def ratings_rows(questions: tuple[QuestionSpec, ...], groups: list[TaskGroup]) -> Iterator[dict[str, Any]]:
    specs = rating_questions(questions)
    for task, judgments in groups:
        items = responses(task)
        k = len(items)
        answers = answers_of(judgments)
        figures = {spec.key: rating_stats(answers, spec, k) for spec in specs}
        prompt, messages = context(task)
        for index in range(k) if k else [None]:
            row: dict[str, Any] = {
                "external_id": task["external_id"],
                "prompt": prompt,
                "messages": messages,
                "response": index,
                "completion": None if index is None else items[index][0],
                "model": None if index is None else items[index][1],
            }
            for spec in specs:
                found = figures[spec.key]
                at = index if spec.per_response and index is not None else 0
                figure = found[at] if found else Stats(None, None, 0)
                row |= {f"{spec.key}_mean": figure.mean, f"{spec.key}_std": figure.std, f"{spec.key}_n": figure.n}
            yield row
