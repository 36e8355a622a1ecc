"""Dataset export: a project's completed tasks and their consensus, streamed as JSON Lines (or CSV) rows.

On PostgreSQL one ``COPY (SELECT …) TO STDOUT (FORMAT BINARY)`` reads everything an export needs in index order
(one snapshot; text as stored, no escaping), and Python writes the rows with orjson in pages small enough to stay
in the CPU cache; elsewhere keyset pages of the ORM feed the same row builders. Either way the first byte leaves
at once and memory does not grow with the project. Every column has one type in every row of a format (``null``
where a value does not exist), so ``datasets.load_dataset`` reads the output as is.

Formats (TRL's dataset types for ``dpo`` and ``kto``):

- ``dpo`` — preference, standard format with explicit prompt: ``prompt``, ``chosen``, ``rejected``, plus
  ``external_id``, ``chosen_model``, ``rejected_model``, ``confidence``, ``agreement``, ``n_judgments`` and, for
  projects with a strength scale, ``margin`` (the mean strength, 1-3, of the judgments that chose the winner).
  Only tasks whose consensus is A or B; ties and "both bad" are counted, not exported.
- ``kto`` — unpaired preference: ``prompt``, ``completion``, ``label`` (true for the preferred response, false
  for the other; "both bad" gives two false rows; ties give none), plus the provenance columns.
- ``consensus`` — one row per task: its payload fields, consensus ``label``, ``confidence``, ``posterior``,
  ``agreement``, ``n_judgments``, ``gold``, ``completed_at``.
- ``annotations`` — one row per judgment of those tasks: ``external_id``, a pseudonymous ``annotator`` (stable
  within the organization, never the account), ``label``, ``a_left``, ``strength``, ``seconds``,
  ``active_seconds``, ``created_at``; for a project with stored questions also ``answers`` (``{question key:
  answer}``, response indexes in the task's own order) and ``response_order`` (the order the responses were shown
  in; ``null`` for pairwise and categorical projects, whose rows are exactly as before).
- ``arena`` — Chatbot-Arena battles, one per judgment of a task naming two different models: ``model_a``,
  ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``), ``judge``, ``external_id``,
  ``tstamp``.
- ``rm_pairs``, ``sft``, ``ratings``, and ``dpo``/``kto`` of a ranking project: rows from each task's consensus over
  its judgments' answers (mean rank, mean rating), documented in ``exchange.form_exports``. ``rm_pairs`` takes a
  ``question`` (a ranking or per-response rating question's key) to say where its pairs come from.

Tasks: the project's complete tasks whose consensus the quality engine has computed, completed at least
``EXPORT_SETTLE_SECONDS`` ago (a judgment committed late cannot be missed by a ``since`` pull); gold tasks only
with ``include_gold`` (and not with ``since``: they never complete). ``since`` is the opaque cursor a previous
export returned: only tasks completed after it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Avg, BooleanField, Count, F, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from exchange import form_exports
from exchange.form_exports import (
    FORM_FORMATS,
    TaskGroup,
    pair_source,
    provenance,
    rating_questions,
    rewrite_questions,
)
from labeling.db import json_value
from labeling.models import Judgment, Project, ProjectKind, Task, TaskStatus
from labeling.questions import QuestionSpec
from labeling.selectors import project_stored_questions
from labeling.validation import CATEGORICAL_REQUIRED, PAIRWISE_OPTIONAL, PAIRWISE_REQUIRED, payload_fields

FORMATS: Final = ("dpo", "kto", "consensus", "annotations", "arena", *FORM_FORMATS)
CSV_FORMATS: Final = ("consensus", "annotations", "ratings")
BATCH: Final = 2_000
FIRST_PAGE: Final = 50
# Pages of the COPY path stay small: their rows are still in the CPU cache when orjson writes them.
COPY_PAGE: Final = 200
CURSOR_SALT: Final = "concord.export.since"
WINNERS: Final = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportRequest:
    project: Project
    fmt: str
    min_confidence: float | None = None
    include_gold: bool = False
    after: datetime | None = None  # from ``since``
    until: datetime | None = None  # completed at or before this (set by export_request)
    question: str | None = None  # rm_pairs: the question its pairs come from
    questions: tuple[QuestionSpec, ...] = ()  # the project's stored questions (none: a plain project)

    @property
    def uses_form(self) -> bool:
        """Rows from each task's consensus over its judgments' answers (``exchange.form_exports``)."""
        return self.fmt in FORM_FORMATS or (self.fmt in ("dpo", "kto") and self.project.kind == ProjectKind.RANKING)


@dataclass(frozen=True)
class ExportSummary:
    tasks: int
    by_label: dict[str, int]
    rows: int
    excluded: dict[str, int]
    next_since: str


def export_request(
    *,
    project: Project,
    fmt: str,
    min_confidence: float | None = None,
    include_gold: bool = False,
    since: str | None = None,
    question: str | None = None,
    now: datetime | None = None,
) -> ExportRequest:
    """A validated export of ``project``; ``ValidationError`` naming each bad parameter (a format the project's
    kind or form cannot give is a bad ``format``)."""
    errors: dict[str, str] = {}
    questions = tuple(project_stored_questions(project=project))
    if fmt not in FORMATS:
        errors["format"] = f"must be one of {', '.join(FORMATS)}"
    elif problem := _format_problem(project, questions, fmt, question):
        errors[problem[0]] = problem[1]
    if min_confidence is not None and not 0 <= min_confidence <= 1:
        errors["min_confidence"] = "must be a number from 0 to 1"
    after = None
    if since:
        try:
            cursor = signing.loads(since, salt=CURSOR_SALT)
            if cursor.get("p") != project.pk:
                raise signing.BadSignature
            after = datetime.fromisoformat(cursor["t"])
        except (signing.BadSignature, KeyError, TypeError, ValueError):
            errors["since"] = "is not a cursor returned by an export of this project"
        if include_gold:
            errors["include_gold"] = "cannot be combined with since: gold tasks never complete"
    if errors:
        raise ValidationError(errors)
    until = (now or timezone.now()) - timedelta(seconds=settings.EXPORT_SETTLE_SECONDS)
    return ExportRequest(project, fmt, min_confidence, include_gold, after, until, question, questions)


def _format_problem(
    project: Project, questions: tuple[QuestionSpec, ...], fmt: str, question: str | None
) -> tuple[str, str] | None:
    """(parameter, message) when the project cannot give ``fmt`` (or ``question`` is wrong)."""
    if question is not None and fmt != "rm_pairs":
        return "question", "applies to the rm_pairs format only"
    if fmt in ("dpo", "kto") and project.kind not in (ProjectKind.PAIRWISE, ProjectKind.RANKING):
        return "format", f"{fmt} needs a pairwise or ranking project"
    if fmt == "arena" and project.kind != ProjectKind.PAIRWISE:
        return "format", "arena needs a pairwise project"
    if fmt == "rm_pairs":
        source = pair_source(kind=project.kind, questions=questions, question=question)
        if isinstance(source, str):
            return ("question" if question is not None else "format"), source
    if fmt == "sft" and not rewrite_questions(questions):
        return "format", "sft needs a project with a rewrite question"
    if fmt == "ratings" and not rating_questions(questions):
        return "format", "ratings needs a project with a rating question"
    return None


def export_cursor(request: ExportRequest) -> str:
    """The ``since`` cursor for the pull after this export: tasks completed after its upper bound."""
    assert request.until is not None
    return signing.dumps({"p": request.project.pk, "t": request.until.isoformat()}, salt=CURSOR_SALT)


# --- Selection ----------------------------------------------------------------------------------------------------
def _base(request: ExportRequest) -> QuerySet[Task]:
    project = request.project
    tasks = Task.objects.for_org(project.organization_id).filter(project=project, quality_consensus__isnull=False)
    if request.min_confidence is not None:
        tasks = tasks.filter(quality_consensus__confidence__gte=request.min_confidence)
    return tasks


def _completed(request: ExportRequest) -> QuerySet[Task]:
    tasks = _base(request).filter(status=TaskStatus.COMPLETE, completed_at__lte=request.until, gold_label__isnull=True)
    if request.after is not None:
        tasks = tasks.filter(completed_at__gt=request.after)
    return tasks


def _gold(request: ExportRequest) -> QuerySet[Task]:
    return _base(request).filter(gold_label__isnull=False, judgment_count__gt=0)


def _payload_fields(project: Project) -> tuple[str, ...]:
    """The payload columns of ``consensus`` (and of the task rows of ``dpo`` and ``kto``)."""
    if project.kind == ProjectKind.PAIRWISE:
        return PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL
    if project.kind == ProjectKind.CATEGORICAL:
        return CATEGORICAL_REQUIRED
    return payload_fields(project.kind)  # prompt, messages, responses


def _fetch(rows: QuerySet) -> list[dict[str, Any]]:
    """A ``values()`` page as dicts. On PostgreSQL straight from the driver (its datetimes are already aware, and
    JSON arrives as text for the caller to parse): Django's per-row conversion costs more than the query."""
    if connection.vendor != "postgresql":
        return list(rows)
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _pages(request: ExportRequest, with_posterior: bool) -> Iterator[list[dict[str, Any]]]:
    """Pages of task rows: completed tasks in completion order, then (``include_gold``) gold tasks by id."""
    fields = {f"p_{name}": KeyTextTransform(name, "payload") for name in _export_payload_fields(request)}
    values = [
        "id",
        "external_id",
        "completed_at",
        "gold_label",
        "label",
        "confidence",
        "agreement",
        "n_judgments",
        *fields,
    ]
    consensus = {
        "label": F("quality_consensus__label"),
        "confidence": F("quality_consensus__confidence"),
        "agreement": F("quality_consensus__agreement"),
        "n_judgments": F("quality_consensus__n_judgments"),
    }
    if with_posterior:
        consensus["posterior"] = F("quality_consensus__posterior")
        values.append("posterior")
    completed = _completed(request).annotate(**consensus, **fields)
    position: tuple[datetime, int] | None = None
    size = FIRST_PAGE  # small first pages get the first byte out at once; then they grow to BATCH
    while True:
        page_query = completed
        if position is not None:
            # A row-value comparison: the database walks the (completed_at, id) index from the last row on.
            page_query = page_query.alias(
                after=RawSQL(
                    '("labeling_task"."completed_at", "labeling_task"."id") > (%s, %s)',
                    position,
                    output_field=BooleanField(),
                )
            ).filter(after=True)
        page = _fetch(page_query.order_by("completed_at", "id").values(*values)[:size])
        if not page:
            break
        yield page
        position = (page[-1]["completed_at"], page[-1]["id"])
        size = min(size * 4, BATCH)
    if request.include_gold:
        gold = _gold(request).annotate(**consensus, **fields)
        last = 0
        while page := _fetch(gold.filter(id__gt=last).order_by("id").values(*values)[:BATCH]):
            yield page
            last = page[-1]["id"]


def export_summary(request: ExportRequest) -> ExportSummary:
    """What the export will hold: tasks by consensus label, rows of its format, what the format leaves out, and
    the cursor for the next ``since`` pull."""
    counts = _completed(request).values("quality_consensus__label").annotate(n=Count("id"))
    by_label: dict[str, int] = {row["quality_consensus__label"]: row["n"] for row in counts}
    if request.include_gold:
        for row in _gold(request).values("quality_consensus__label").annotate(n=Count("id")):
            label = row["quality_consensus__label"]
            by_label[label] = by_label.get(label, 0) + row["n"]
    tasks = sum(by_label.values())
    decisive = by_label.get("a", 0) + by_label.get("b", 0)
    excluded: dict[str, int] = {}
    if request.uses_form:  # the rows follow from each task's judgments: counted by making them
        rows = sum(len(page) for page in export_rows(request))
    elif request.fmt == "dpo":
        rows = decisive
        excluded = {"tie": by_label.get("tie", 0), "both_bad": by_label.get("both_bad", 0)}
    elif request.fmt == "kto":
        rows = 2 * (decisive + by_label.get("both_bad", 0))
        excluded = {"tie": by_label.get("tie", 0)}
    elif request.fmt == "consensus":
        rows = tasks
    else:
        judged = _completed(request)
        if request.include_gold:
            judged = judged | _gold(request)
        judgments = Judgment.objects.for_org(request.project.organization_id).filter(task__in=judged)
        if request.fmt == "arena":
            judgments = (
                judgments.annotate(
                    model_a=KeyTextTransform("model_a", "task__payload"),
                    model_b=KeyTextTransform("model_b", "task__payload"),
                )
                .filter(model_a__isnull=False, model_b__isnull=False)
                .exclude(model_a=F("model_b"))
            )
        rows = judgments.count()
    return ExportSummary(tasks, by_label, rows, excluded, export_cursor(request))


# --- Rows ----------------------------------------------------------------------------------------------------------
def annotator_pseudonym(organization_id: int, user_id: int) -> str:
    """A stable, non-reversible id for an annotator within an organization (an HMAC keyed by SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{organization_id}:{user_id}".encode(), hashlib.sha256)
    return f"ann_{digest.hexdigest()[:16]}"


def _margins(request: ExportRequest, page: list[dict[str, Any]]) -> dict[int, float | None]:
    """Per task, the mean strength of the judgments that chose its consensus side (strength-scale projects)."""
    rows = (
        Judgment.objects.for_org(request.project.organization_id)
        .filter(task_id__in=[task["id"] for task in page], strength__isnull=False)
        .values("task_id", "label")
        .annotate(mean=Avg("strength"))
    )
    means = {(row["task_id"], row["label"]): row["mean"] for row in rows}
    return {task["id"]: means.get((task["id"], task["label"])) for task in page}


def _dpo_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    scale = request.project.strength_scale
    margins = _margins(request, page) if scale and page and "margin" not in page[0] else {}
    for task in page:
        if task["label"] not in ("a", "b"):
            continue
        win, lose = ("a", "b") if task["label"] == "a" else ("b", "a")
        row = {
            "prompt": task["p_prompt"],
            "chosen": task[f"p_response_{win}"],
            "rejected": task[f"p_response_{lose}"],
            **provenance(task),
            "chosen_model": task[f"p_model_{win}"],
            "rejected_model": task[f"p_model_{lose}"],
        }
        if scale:
            row["margin"] = task["margin"] if "margin" in task else margins.get(task["id"])
        yield row


def _kto_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in page:
        label = task["label"]
        if label == "tie" or label not in ("a", "b", "both_bad"):
            continue
        for side in ("a", "b"):
            yield {
                "prompt": task["p_prompt"],
                "completion": task[f"p_response_{side}"],
                "label": label == side,
                **provenance(task),
                "model": task[f"p_model_{side}"],
            }


def _consensus_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    fields = _payload_fields(request.project)
    for task in page:
        posterior = task["posterior"]
        if isinstance(posterior, str):  # SQLite hands JSON over as text
            posterior = orjson.loads(posterior)
        yield {
            "external_id": task["external_id"],
            **{name: json_value(task[f"p_{name}"]) if name in NESTED else task[f"p_{name}"] for name in fields},
            "label": task["label"],
            "confidence": task["confidence"],
            "posterior": posterior,
            "agreement": task["agreement"],
            "n_judgments": task["n_judgments"],
            "gold": task["gold_label"] is not None,
            "completed_at": task["completed_at"].isoformat() if task["completed_at"] else None,
        }


def _judgments(request: ExportRequest, page: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(task, judgment) pairs of a page of tasks, in task order then judgment id (the ORM path)."""
    by_id = {task["id"]: task for task in page}
    rows = (
        Judgment.objects.for_org(request.project.organization_id)
        .filter(task_id__in=list(by_id))
        .order_by("task_id", "id")
        .values("task_id", *JUDGMENT_FIELDS)
    )
    pairs = [(by_id[row["task_id"]], row) for row in _fetch(rows)]
    order = {task_id: position for position, task_id in enumerate(by_id)}
    pairs.sort(key=lambda pair: order[pair[0]["id"]])  # stable: judgments keep their id order within a task
    return pairs


def _is_battle(task: dict[str, Any]) -> bool:
    return bool(task["p_model_a"] and task["p_model_b"] and task["p_model_a"] != task["p_model_b"])


class _Pseudonyms(dict[int, str]):
    def __init__(self, organization_id: int) -> None:
        super().__init__()
        self.organization_id = organization_id

    def __missing__(self, user_id: int) -> str:
        self[user_id] = name = annotator_pseudonym(self.organization_id, user_id)
        return name


def _judgment_rows(request: ExportRequest, pairs: list[tuple[dict, dict]]) -> Iterator[dict[str, Any]]:
    pseudonyms = _Pseudonyms(request.project.organization_id)
    form = bool(request.questions)
    for task, row in pairs:
        data = {
            "external_id": task["external_id"],
            "annotator": pseudonyms[row["annotator_id"]],
            "label": row["label"],
            "a_left": row["a_left"],
            "strength": row["strength"],
            "seconds": row["seconds_on_task"],
            "active_seconds": row["active_seconds"],
            "created_at": row["created_at"],  # ISO 8601, written by orjson (or the CSV writer)
        }
        if form:  # projects with stored questions only: the rows of plain projects stay as they were
            data["answers"] = json_value(row["answers"])
            data["response_order"] = json_value(row["response_order"])
        yield data


def _arena_rows(request: ExportRequest, pairs: list[tuple[dict, dict]]) -> Iterator[dict[str, Any]]:
    pseudonyms = _Pseudonyms(request.project.organization_id)
    for task, row in pairs:
        if _is_battle(task):
            yield {
                "model_a": task["p_model_a"],
                "model_b": task["p_model_b"],
                "winner": WINNERS[row["label"]],
                "judge": pseudonyms[row["annotator_id"]],
                "external_id": task["external_id"],
                "tstamp": row["created_at"].timestamp(),
            }


TASK_BUILDERS = {"dpo": _dpo_rows, "kto": _kto_rows, "consensus": _consensus_rows}
JUDGMENT_BUILDERS = {"annotations": _judgment_rows, "arena": _arena_rows}
JUDGMENT_FIELDS: Final = (
    "annotator_id", "label", "a_left", "strength", "seconds_on_task", "active_seconds", "created_at", "answers",
    "response_order",
)  # fmt: skip
NESTED: Final = ("messages", "responses")  # payload fields that are JSON (text as the database hands them over)


def _form_builder(request: ExportRequest) -> Callable[[list[TaskGroup]], Iterator[dict[str, Any]]]:
    """The row builder of a format made from each task's consensus over its judgments' answers."""
    questions = request.questions
    if request.fmt == "rm_pairs":
        source = pair_source(kind=request.project.kind, questions=questions, question=request.question)
        assert not isinstance(source, str)  # export_request refused it
        scale = request.project.strength_scale
        return lambda groups: form_exports.rm_pairs_rows(source, scale, groups)
    if request.fmt == "sft":
        pseudonyms = _Pseudonyms(request.project.organization_id)
        return lambda groups: form_exports.sft_rows(questions, pseudonyms.__getitem__, groups)
    if request.fmt == "ratings":
        return lambda groups: form_exports.ratings_rows(questions, groups)
    ranking = next(spec for spec in questions if spec.primary)
    build = form_exports.ranking_dpo_rows if request.fmt == "dpo" else form_exports.ranking_kto_rows
    return lambda groups: build(ranking, groups)


# A task's judgments as one JSON array of [annotator_id, label, strength, answers] in id order: one COPY row per
# task rather than one per judgment (psycopg reads a COPY row at a time; the task's payload is decoded once).
_JUDGMENTS_JSON: Final = (
    "(SELECT json_agg(json_build_array(j.annotator_id, j.label, j.strength, j.answers) ORDER BY j.id) "
    "FROM labeling_annotation j WHERE j.task_id = t.id)::text"
)


def _form_columns(request: ExportRequest) -> list[tuple[str, str, str]]:
    return [*_task_columns(request), ("judgments", "text", _JUDGMENTS_JSON)]


def _form_pages(request: ExportRequest) -> Iterator[list[TaskGroup]]:
    """Pages of (task, its judgments in id order), in the export's task order: from one ``COPY`` on PostgreSQL
    (each task's judgments aggregated by the query), else keyset pages of tasks and one query per page for their
    judgments; never a query per task."""
    if connection.vendor == "postgresql":
        for page in _copy_pages(request, _form_columns(request), judgments=False):
            yield [
                (
                    task,
                    [
                        {"annotator_id": a, "label": b, "strength": c, "answers": d}
                        for a, b, c, d in orjson.loads(found)
                    ],
                )
                for task in page
                if (found := task.pop("judgments")) is not None
            ]
        return
    for page in _pages(request, with_posterior=False):
        yield list(form_exports.task_groups(_judgments(request, page)))


def export_rows(request: ExportRequest) -> Iterator[list[dict[str, Any]]]:
    """The export's rows, a page at a time. On PostgreSQL the rows come from one ``COPY`` (see :func:`_copy_pages`);
    elsewhere from keyset pages of the ORM; the same builders make the rows from either."""
    if problem := _format_problem(request.project, request.questions, request.fmt, request.question):
        raise ValidationError({problem[0]: problem[1]})
    if request.uses_form:
        form_build = _form_builder(request)
        for groups in _form_pages(request):
            if rows := list(form_build(groups)):
                yield rows
        return
    judgments = request.fmt in JUDGMENT_BUILDERS
    if connection.vendor == "postgresql" and request.fmt == "dpo":
        yield from _copy_pages(request, _dpo_columns(request), judgments=False)  # the rows themselves
        return
    if connection.vendor == "postgresql":
        pages: Iterator[list[Any]] = _copy_pages(request, _task_columns(request), judgments)
    elif judgments:
        pages = (_judgments(request, page) for page in _pages(request, with_posterior=False))
    else:
        pages = _pages(request, with_posterior=request.fmt == "consensus")
    build = JUDGMENT_BUILDERS[request.fmt] if judgments else TASK_BUILDERS[request.fmt]
    for page in pages:
        rows = list(build(request, page))
        if rows:
            yield rows


# --- PostgreSQL: one COPY ------------------------------------------------------------------------------------------
# (name in the row dict, binary COPY type, SQL); every value is cast to the type named, so the binary rows decode.
_TASK_COLUMNS: Final = (
    ("id", "int8", "t.id::int8"),
    ("external_id", "text", "t.external_id::text"),
    ("completed_at", "timestamptz", "t.completed_at"),
    ("gold_label", "text", "t.gold_label::text"),
    ("label", "text", "c.label::text"),
    ("confidence", "float8", "c.confidence::float8"),
    ("agreement", "float8", "c.agreement::float8"),
    ("n_judgments", "int8", "c.n_judgments::int8"),
)
_JUDGMENT_COLUMNS: Final = (
    ("id", "int8", "a.id::int8"),
    ("annotator_id", "int8", "a.annotator_id::int8"),
    ("label", "text", "a.label::text"),
    ("a_left", "bool", "a.a_left"),
    ("strength", "int8", "a.strength::int8"),
    ("seconds_on_task", "float8", "a.seconds_on_task::float8"),
    ("active_seconds", "float8", "a.active_seconds::float8"),
    ("created_at", "timestamptz", "a.created_at"),
    ("answers", "text", "a.answers::text"),
    ("response_order", "text", "a.response_order::text"),
)
_MARGIN_SQL: Final = (
    "(SELECT avg(m.strength)::float8 FROM labeling_annotation m WHERE m.task_id = t.id AND m.label = c.label "
    "AND m.strength IS NOT NULL)"
)


def _export_payload_fields(request: ExportRequest) -> tuple[str, ...]:
    """The payload fields a format's rows use (annotations none, arena the models, the formats made from answers
    every field of the project's kind)."""
    if request.uses_form:
        return payload_fields(request.project.kind)
    if request.fmt == "annotations":
        return ()
    if request.fmt == "arena":
        return PAIRWISE_OPTIONAL
    return _payload_fields(request.project)


def _task_columns(request: ExportRequest) -> list[tuple[str, str, str]]:
    columns = list(_TASK_COLUMNS[:2] if request.fmt in JUDGMENT_BUILDERS else _TASK_COLUMNS)  # id, external_id
    fields = _export_payload_fields(request)
    columns += [(f"p_{name}", "text", f"x.{name}") for name in fields]
    if request.fmt == "consensus":
        columns.append(("posterior", "text", "c.posterior::text"))
    if request.fmt == "dpo" and request.project.strength_scale and not request.uses_form:
        columns.append(("margin", "float8", _MARGIN_SQL))
    return columns


def _dpo_columns(request: ExportRequest) -> list[tuple[str, str, str]]:
    """``dpo`` rows made by the query itself (as :func:`_dpo_rows` makes them from task rows), for speed."""

    def side(winner: str, loser: str) -> str:
        return f"CASE c.label WHEN 'a' THEN x.{winner} ELSE x.{loser} END"

    columns = [
        ("prompt", "text", "x.prompt"),
        ("chosen", "text", side("response_a", "response_b")),
        ("rejected", "text", side("response_b", "response_a")),
        ("external_id", "text", "t.external_id::text"),
        ("confidence", "float8", "c.confidence::float8"),
        ("agreement", "float8", "c.agreement::float8"),
        ("n_judgments", "int8", "c.n_judgments::int8"),
        ("chosen_model", "text", side("model_a", "model_b")),
        ("rejected_model", "text", side("model_b", "model_a")),
    ]
    if request.project.strength_scale:
        columns.append(("margin", "float8", _MARGIN_SQL))
    return columns


def _copy_sql(
    request: ExportRequest, columns: list[tuple[str, str, str]], judgments: bool
) -> tuple[str, dict[str, Any], list[tuple[str, str, str]]]:
    """The export's one query: completed tasks in completion order (the export index: no sort), then, with
    ``include_gold``, judged gold tasks by id; with their judgments in id order when ``judgments``."""
    if judgments:
        columns += [(f"j_{name}", kind, sql) for name, kind, sql in _JUDGMENT_COLUMNS]
    params: dict[str, Any] = {
        "org": request.project.organization_id,
        "project": request.project.pk,
        "until": request.until,
    }
    conditions = ["t.organization_id = %(org)s", "t.project_id = %(project)s"]
    if request.min_confidence is not None:
        conditions.append("c.confidence >= %(min_confidence)s")
        params["min_confidence"] = request.min_confidence
    if request.fmt in ("dpo", "rm_pairs") and request.project.kind == ProjectKind.PAIRWISE and not request.question:
        conditions.append("c.label IN ('a', 'b')")
    elif request.fmt == "kto" and request.project.kind == ProjectKind.PAIRWISE:
        conditions.append("c.label IN ('a', 'b', 'both_bad')")
    completed = ["t.status = 'complete'", "t.completed_at <= %(until)s", "t.gold_label IS NULL"]
    if request.after is not None:
        completed.append("t.completed_at > %(after)s")
        params["after"] = request.after
    select = ", ".join(f"{sql} AS {name}" for name, _, sql in columns)
    # The task's consensus and judgments are subqueries of their own (LATERAL, behind OFFSET 0, which the planner
    # keeps as they are), each a lookup by the task's id in its task index: with statistics from when the tables
    # were small, a plain join let the planner scan a whole index once per task. Both are found by the task alone
    # (the task is the organization's; its consensus is unique per task, a judgment's task is in its organization
    # by a composite foreign key): a condition on the organization as well let the planner walk the organization's
    # whole index for every task (330 rows/s). Each task's few judgments come in index order; Python puts them in
    # id order (no sort in the plan: the export streams).
    source = (
        "labeling_task t CROSS JOIN LATERAL (SELECT * FROM quality_taskconsensus c WHERE c.task_id = t.id OFFSET 0) c"
    )
    if fields := _export_payload_fields(request):
        record = ", ".join(f"{name} text" for name in fields)
        source += f" CROSS JOIN LATERAL jsonb_to_record(t.payload) AS x({record})"
    if judgments:
        source += " CROSS JOIN LATERAL (SELECT * FROM labeling_annotation j WHERE j.task_id = t.id OFFSET 0) a"
    where = " AND ".join(conditions + completed)
    # Only constant fragments of this module are interpolated; every value is a parameter.
    sql = f"(SELECT {select} FROM {source} WHERE {where} ORDER BY t.completed_at, t.id)"  # noqa: S608
    if request.include_gold:
        gold = " AND ".join([*conditions, "t.gold_label IS NOT NULL", "t.judgment_count > 0"])
        sql += f" UNION ALL (SELECT {select} FROM {source} WHERE {gold} ORDER BY t.id)"  # noqa: S608
    return sql, params, columns


# The export's plan, whatever the statistics say: walk the export index in completion order (gold tasks: the
# organization's id index), and reach each task's consensus and judgments through their task indexes, with no sort,
# hash or scan of a whole table. Right after a large import there are no statistics for the new rows, and the
# planner chose per-task bitmap scans of the organization's whole judgment index (330 rows/s) or, once analysed,
# hash joins that sort the whole export before its first row (1 s to the first byte, 61,000 rows/s); this plan
# streams at once, 80,000-90,000 rows/s either way (bench/import_export.py). For the export's transaction only.
EXPORT_PLANNER: Final = (
    ("enable_seqscan", "off"),
    ("enable_bitmapscan", "off"),
    ("enable_sort", "off"),
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("enable_material", "off"),
    ("max_parallel_workers_per_gather", "0"),
    ("jit", "off"),
)


@contextmanager
def export_planner() -> Iterator[Any]:
    """A cursor in a transaction whose planner takes the export's plan (``EXPORT_PLANNER``); the settings go back
    to what they were afterwards, also when the export runs inside a caller's transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        names = [name for name, _ in EXPORT_PLANNER]
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        previous = cursor.fetchone()
        for name, value in EXPORT_PLANNER:
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        try:
            yield cursor
        finally:
            if connection.is_usable() and not connection.needs_rollback:
                for name, value in zip(names, previous, strict=True):
                    cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def export_plan(request: ExportRequest) -> list[str]:
    """The plan PostgreSQL runs the export's query with (``EXPLAIN``), for tests and for looking."""
    if request.uses_form:
        columns = _form_columns(request)
    else:
        columns = _dpo_columns(request) if request.fmt == "dpo" else _task_columns(request)
    sql, params, _ = _copy_sql(request, columns, request.fmt in JUDGMENT_BUILDERS)
    with export_planner() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return [row[0] for row in cursor.fetchall()]


def _copy_pages(request: ExportRequest, columns: list[tuple[str, str, str]], judgments: bool) -> Iterator[list[Any]]:
    """Pages of task dicts (or of (task, judgment) pairs) from one ``COPY (SELECT …) TO STDOUT (FORMAT BINARY)``:
    one consistent snapshot, streamed as the database produces it (first page ``FIRST_PAGE`` rows, then
    ``BATCH``), text as stored (no escaping on either side), memory bounded by a page. The database reads and
    joins, with the plan ``EXPORT_PLANNER`` fixes; Python (orjson) writes the JSON, which is twice as fast as the
    database's own JSON functions."""
    sql, params, columns = _copy_sql(request, columns, judgments)
    names = [name for name, _, _ in columns]
    size = FIRST_PAGE
    with export_planner() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(sql, params)  # COPY takes no bind parameters: the values are quoted by psycopg
        with raw.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy:
            copy.set_types([kind for _, kind, _ in columns])
            page: list[Any] = []
            if not judgments:
                for values in copy.rows():
                    page.append(dict(zip(names, values, strict=True)))
                    if len(page) >= size:
                        yield page
                        page, size = [], min(size * 4, COPY_PAGE)
            else:
                split = len(columns) - len(_JUDGMENT_COLUMNS)
                task_names, judgment_names = names[:split], [name[2:] for name in names[split:]]
                task: dict[str, Any] = {"id": None}
                group: list[dict[str, Any]] = []  # the task's judgments, put in id order once they are all in
                for values in copy.rows():
                    if values[0] != task["id"]:
                        page.extend((task, judgment) for judgment in sorted(group, key=_judgment_id))
                        if len(page) >= size:
                            yield page
                            page, size = [], min(size * 4, COPY_PAGE)
                        task, group = dict(zip(task_names, values[:split], strict=True)), []
                    group.append(dict(zip(judgment_names, values[split:], strict=True)))
                page.extend((task, judgment) for judgment in sorted(group, key=_judgment_id))
            if page:
                yield page


def _judgment_id(judgment: dict[str, Any]) -> int:
    return judgment["id"]


def jsonl_chunks(request: ExportRequest) -> Iterator[bytes]:
    """The export as JSON Lines, one bytes chunk per page."""
    dumps = orjson.dumps
    for rows in export_rows(request):
        yield b"\n".join(map(dumps, rows)) + b"\n"


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run as a formula: text starting with = + - @ or a control character
    gets a leading apostrophe (OWASP's advice). Numbers and booleans are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


ANNOTATION_COLUMNS: Final = (
    "external_id",
    "annotator",
    "label",
    "a_left",
    "strength",
    "seconds",
    "active_seconds",
    "created_at",
)


def _csv_header(request: ExportRequest) -> list[str]:
    if request.fmt == "annotations":
        return list(ANNOTATION_COLUMNS) + (["answers", "response_order"] if request.questions else [])
    if request.fmt == "ratings":
        return form_exports.ratings_columns(request.questions)
    tail = ["label", "confidence", "posterior", "agreement", "n_judgments", "gold", "completed_at"]
    return ["external_id", *_payload_fields(request.project), *tail]


def _csv_cell(value: Any) -> Any:
    """Nested values as JSON, times in ISO 8601 (as in the JSON Lines output)."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_chunks(request: ExportRequest) -> Iterator[bytes]:
    """The export as CSV (consensus and annotations): a header, then one chunk per page; nested values as JSON."""
    if request.fmt not in CSV_FORMATS:
        raise ValidationError({"output": f"CSV is offered for {', '.join(CSV_FORMATS)}"})
    header = _csv_header(request)
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    yield buffer.getvalue().encode()
    for rows in export_rows(request):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            assert list(row) == header
            writer.writerow([spreadsheet_safe(_csv_cell(value)) for value in row.values()])
        yield buffer.getvalue().encode()
