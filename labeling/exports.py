"""Dataset export: a project's completed tasks and their consensus, streamed as JSON Lines (or CSV) rows.

Rows are built batch by batch (keyset pages of ``BATCH`` tasks in completion order, payload fields read as text
by the database), so the first byte leaves at once and memory does not grow with the project. Every column has
one type in every row of a format (``null`` where a value does not exist), so ``datasets.load_dataset`` reads
the output as is.

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
  ``active_seconds``, ``created_at``.
- ``arena`` — Chatbot-Arena battles, one per judgment of a task naming two different models: ``model_a``,
  ``model_b``, ``winner`` (``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``), ``judge``, ``external_id``,
  ``tstamp``.

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Avg, BooleanField, Count, F, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from labeling.models import Annotation, Project, ProjectKind, Task, TaskStatus
from labeling.validation import CATEGORICAL_REQUIRED, PAIRWISE_OPTIONAL, PAIRWISE_REQUIRED

FORMATS: Final = ("dpo", "kto", "consensus", "annotations", "arena")
CSV_FORMATS: Final = ("consensus", "annotations")
BATCH: Final = 2_000
FIRST_PAGE: Final = 50
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
    now: datetime | None = None,
) -> ExportRequest:
    """A validated export of ``project``; ``ValidationError`` naming each bad parameter."""
    errors: dict[str, str] = {}
    if fmt not in FORMATS:
        errors["format"] = f"must be one of {', '.join(FORMATS)}"
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
    return ExportRequest(project, fmt, min_confidence, include_gold, after, until)


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
    return PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL if project.kind == ProjectKind.PAIRWISE else CATEGORICAL_REQUIRED


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
    fields = {f"p_{name}": KeyTextTransform(name, "payload") for name in _payload_fields(request.project)}
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
    if request.fmt == "dpo":
        rows = decisive
        excluded = {"tie": by_label.get("tie", 0), "both_bad": by_label.get("both_bad", 0)}
    elif request.fmt == "kto":
        rows = 2 * (decisive + by_label.get("both_bad", 0))
        excluded = {"tie": by_label.get("tie", 0)}
    elif request.fmt == "consensus":
        rows = tasks
    else:
        judgments = _completed(request)
        if request.include_gold:
            judgments = judgments | _gold(request)
        annotations = Annotation.objects.for_org(request.project.organization_id).filter(task__in=judgments)
        if request.fmt == "arena":
            annotations = (
                annotations.annotate(
                    model_a=KeyTextTransform("model_a", "task__payload"),
                    model_b=KeyTextTransform("model_b", "task__payload"),
                )
                .filter(model_a__isnull=False, model_b__isnull=False)
                .exclude(model_a=F("model_b"))
            )
        rows = annotations.count()
    return ExportSummary(tasks, by_label, rows, excluded, export_cursor(request))


# --- Rows ----------------------------------------------------------------------------------------------------------
def annotator_pseudonym(organization_id: int, user_id: int) -> str:
    """A stable, non-reversible id for an annotator within an organization (an HMAC keyed by SECRET_KEY)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{organization_id}:{user_id}".encode(), hashlib.sha256)
    return f"ann_{digest.hexdigest()[:16]}"


def _provenance(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": task["external_id"],
        "confidence": task["confidence"],
        "agreement": task["agreement"],
        "n_judgments": task["n_judgments"],
    }


def _margins(request: ExportRequest, page: list[dict[str, Any]]) -> dict[int, float | None]:
    """Per task, the mean strength of the judgments that chose its consensus side (strength-scale projects)."""
    rows = (
        Annotation.objects.for_org(request.project.organization_id)
        .filter(task_id__in=[task["id"] for task in page], strength__isnull=False)
        .values("task_id", "label")
        .annotate(mean=Avg("strength"))
    )
    means = {(row["task_id"], row["label"]): row["mean"] for row in rows}
    return {task["id"]: means.get((task["id"], task["label"])) for task in page}


def _dpo_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    margins = _margins(request, page) if request.project.strength_scale else {}
    for task in page:
        if task["label"] not in ("a", "b"):
            continue
        win, lose = ("a", "b") if task["label"] == "a" else ("b", "a")
        row = {
            "prompt": task["p_prompt"],
            "chosen": task[f"p_response_{win}"],
            "rejected": task[f"p_response_{lose}"],
            **_provenance(task),
            "chosen_model": task[f"p_model_{win}"],
            "rejected_model": task[f"p_model_{lose}"],
        }
        if request.project.strength_scale:
            row["margin"] = margins.get(task["id"])
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
                **_provenance(task),
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
            **{name: task[f"p_{name}"] for name in fields},
            "label": task["label"],
            "confidence": task["confidence"],
            "posterior": posterior,
            "agreement": task["agreement"],
            "n_judgments": task["n_judgments"],
            "gold": task["gold_label"] is not None,
            "completed_at": task["completed_at"].isoformat() if task["completed_at"] else None,
        }


def _judgments(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict]]:
    by_id = {task["id"]: task for task in page}
    rows = (
        Annotation.objects.for_org(request.project.organization_id)
        .filter(task_id__in=list(by_id))
        .order_by("task_id", "id")
        .values(
            "task_id", "annotator_id", "label", "a_left", "strength", "seconds_on_task", "active_seconds", "created_at"
        )
    )
    for row in _fetch(rows):
        yield by_id[row["task_id"]], row


def _annotation_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    org = request.project.organization_id
    pseudonyms: dict[int, str] = {}
    for task, row in _judgments(request, page):
        annotator = row["annotator_id"]
        if annotator not in pseudonyms:
            pseudonyms[annotator] = annotator_pseudonym(org, annotator)
        yield {
            "external_id": task["external_id"],
            "annotator": pseudonyms[annotator],
            "label": row["label"],
            "a_left": row["a_left"],
            "strength": row["strength"],
            "seconds": row["seconds_on_task"],
            "active_seconds": row["active_seconds"],
            "created_at": row["created_at"].isoformat(),
        }


def _arena_rows(request: ExportRequest, page: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    org = request.project.organization_id
    battles = [
        task for task in page if task["p_model_a"] and task["p_model_b"] and task["p_model_a"] != task["p_model_b"]
    ]
    for task, row in _judgments(request, battles):
        yield {
            "model_a": task["p_model_a"],
            "model_b": task["p_model_b"],
            "winner": WINNERS[row["label"]],
            "judge": annotator_pseudonym(org, row["annotator_id"]),
            "external_id": task["external_id"],
            "tstamp": row["created_at"].timestamp(),
        }


ROW_BUILDERS = {
    "dpo": _dpo_rows,
    "kto": _kto_rows,
    "consensus": _consensus_rows,
    "annotations": _annotation_rows,
    "arena": _arena_rows,
}


def export_rows(request: ExportRequest) -> Iterator[list[dict[str, Any]]]:
    """The export's rows, a page at a time."""
    if request.fmt in ("dpo", "kto", "arena") and request.project.kind != ProjectKind.PAIRWISE:
        raise ValidationError({"format": f"{request.fmt} needs a pairwise project"})
    build = ROW_BUILDERS[request.fmt]
    for page in _pages(request, with_posterior=request.fmt == "consensus"):
        rows = list(build(request, page))
        if rows:
            yield rows


_DPO_SQL: Final = """
SELECT json_build_object(
    'prompt', x.prompt,
    'chosen', CASE c.label WHEN 'a' THEN x.response_a ELSE x.response_b END,
    'rejected', CASE c.label WHEN 'a' THEN x.response_b ELSE x.response_a END,
    'external_id', t.external_id,
    'confidence', round(c.confidence::numeric, 15),
    'agreement', round(c.agreement::numeric, 15),
    'n_judgments', c.n_judgments,
    'chosen_model', CASE c.label WHEN 'a' THEN x.model_a ELSE x.model_b END,
    'rejected_model', CASE c.label WHEN 'a' THEN x.model_b ELSE x.model_a END{margin}
)::text
FROM labeling_task t JOIN quality_taskconsensus c ON c.task_id = t.id
CROSS JOIN LATERAL jsonb_to_record(t.payload) AS x(prompt text, response_a text, response_b text, model_a text,
                                                   model_b text)
WHERE t.organization_id = %(org)s AND t.project_id = %(project)s AND t.status = 'complete'
  AND t.gold_label IS NULL AND t.completed_at <= %(until)s AND c.label IN ('a', 'b'){conditions}
ORDER BY t.completed_at, t.id
"""
_DPO_MARGIN: Final = """,
    'margin', (SELECT round(avg(a.strength), 15) FROM labeling_annotation a
               WHERE a.task_id = t.id AND a.label = c.label AND a.strength IS NOT NULL)"""


def _dpo_sql_chunks(request: ExportRequest) -> Iterator[bytes]:
    """``dpo`` on PostgreSQL: the database writes each row's JSON (the same object as :func:`_dpo_rows`; numbers
    as decimals with 15 places, so that a confidence of 1 reads as a float like the others) and
    streams them all with ``COPY (SELECT …) TO STDOUT`` in completion order (the export index, no sort): one
    consistent snapshot, produced by PostgreSQL while Python forwards the previous block, memory bounded by the
    block. COPY's text format doubles each backslash, and JSON text has no other character it escapes (tabs and
    newlines inside strings are already ``\\t`` and ``\\n``), so halving them restores the JSON exactly."""
    conditions = []
    params: dict[str, Any] = {
        "org": request.project.organization_id,
        "project": request.project.pk,
        "until": request.until,
    }
    if request.after is not None:
        conditions.append("t.completed_at > %(after)s")
        params["after"] = request.after
    if request.min_confidence is not None:
        conditions.append("c.confidence >= %(min_confidence)s")
        params["min_confidence"] = request.min_confidence
    select = _DPO_SQL.format(
        margin=_DPO_MARGIN if request.project.strength_scale else "",
        conditions="".join(f" AND {condition}" for condition in conditions),
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        query = raw.mogrify(select, params)  # COPY takes no bind parameters: the values are quoted by psycopg
        pending = b""
        with raw.copy(f"COPY ({query}) TO STDOUT") as copy:
            for block in copy:
                data = pending + bytes(block)
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut].replace(b"\\\\", b"\\")
                pending = data[cut:]
        if pending:
            yield pending.replace(b"\\\\", b"\\")


def jsonl_chunks(request: ExportRequest) -> Iterator[bytes]:
    """The export as JSON Lines, one bytes chunk per page."""
    if request.fmt == "dpo" and connection.vendor == "postgresql" and not request.include_gold:
        yield from _dpo_sql_chunks(request)
        return
    for rows in export_rows(request):
        yield b"".join(orjson.dumps(row) + b"\n" for row in rows)


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
        return list(ANNOTATION_COLUMNS)
    tail = ["label", "confidence", "posterior", "agreement", "n_judgments", "gold", "completed_at"]
    return ["external_id", *_payload_fields(request.project), *tail]


def csv_chunks(request: ExportRequest) -> Iterator[bytes]:
    """The export as CSV (consensus and annotations): a header, then one chunk per page; nested values as JSON."""
    if request.fmt not in CSV_FORMATS:
        raise ValidationError({"output": f"CSV is offered for {' and '.join(CSV_FORMATS)}"})
    header = _csv_header(request)
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    yield buffer.getvalue().encode()
    for rows in export_rows(request):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            assert list(row) == header
            writer.writerow(
                [
                    spreadsheet_safe(orjson.dumps(value).decode() if isinstance(value, dict | list) else value)
                    for value in row.values()
                ]
            )
        yield buffer.getvalue().encode()
