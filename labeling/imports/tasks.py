"""Bulk task import: JSON Lines, a JSON array or CSV, parsed as a stream and written in batches in one transaction.

``tasks_import`` reads rows one at a time (memory independent of the file's size), validates each (every bad field
of every bad row is reported with its row number), and writes batches of ``BATCH`` tasks. By default one bad row
rolls the whole import back: nothing is written. ``on_error="skip"`` writes the good rows and reports the bad ones.
Re-importing an ``external_id`` changes nothing and counts it as unchanged; ``mode="upsert"`` updates it instead
(its payload only while it has no judgments). Imports into one project are serialised (a PostgreSQL advisory lock),
so the check for an ``external_id`` repeated inside the file is exact: a row that finds its id among the tasks
created after the import began duplicates an earlier row of the same file.

Row fields (``row`` in reports is the 1-based record number):

- ``external_id`` (required; text or a whole number), the payload fields of the project's kind (pairwise:
  ``prompt``, ``response_a``, ``response_b``, optional ``model_a``, ``model_b``; categorical: ``text``);
- ``meta`` (an object), ``gold`` (the known answer: one of the project's labels), ``requires`` (qualification
  codes of the organization: a list, or in CSV ``code;code``), ``predictions`` (pairwise: P(A better) as a
  number or ``{"a": p}``; categorical: ``{label: p}``).

CSV has a header row naming those columns; ``meta`` and ``predictions`` cells hold JSON, empty cells are absent.

A file that cannot be read on (a broken JSON array, an unknown CSV column, invalid UTF-8) writes nothing, whatever
``on_error`` says: the rows after the break cannot be known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final

import orjson
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from labeling.imports.reading import BATCH, ImportReport, Invalid, check_options, csv_value, run_import
from labeling.models import Project, ProjectKind, Task, TaskStatus
from labeling.services import project_label_values, project_stats_request_refresh
from labeling.validation import CATEGORICAL_REQUIRED, PAIRWISE_OPTIONAL, PAIRWISE_REQUIRED, payload_errors

# A batch is also cut at this many characters of payload, so that one INSERT (and the memory it takes) stays
# bounded whatever the size of the rows.
BATCH_CHARS: Final = 4 * 1024 * 1024
ROW_FIELDS: Final = ("external_id", "meta", "gold", "requires", "predictions")
# Columns a COPY of new tasks fills; the routing state (the last five) takes the values of a new task.
COPY_COLUMNS: Final = (
    "organization_id, project_id, external_id, payload, meta, gold_label, predictions, rank, shuffle, is_restricted, "
    "is_sensitive, created_at, updated_at, status, judgment_count, extra_judgments, resolution, is_started"
)
NEW_TASK_STATE: Final = (TaskStatus.OPEN.value, 0, 0, "", False)


# --- Validation -------------------------------------------------------------------------------------------------
@dataclass
class _Row:
    row: int
    external_id: str
    payload: dict[str, Any]
    meta: dict[str, Any]
    gold: str | None
    requires: list[int] | None
    sensitive: bool
    predictions: dict[str, float] | None
    size: int


class _Context:
    """What a row is checked against: the project's kind and labels, the organization's qualifications."""

    def __init__(self, project: Project) -> None:
        from routing.models import Qualification, QualificationKind

        self.project = project
        self.kind = project.kind
        self.labels = sorted(project_label_values(project=project))
        self.label_set = set(self.labels)
        if project.kind == ProjectKind.PAIRWISE:
            self.payload_fields = PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL
        else:
            self.payload_fields = CATEGORICAL_REQUIRED
        self.columns = ("external_id", *self.payload_fields, *ROW_FIELDS[1:])
        qualifications = Qualification.objects.for_org(project.organization_id).values_list("code", "id", "kind")
        self.qualifications = {code: pk for code, pk, _ in qualifications}
        self.sensitive = {pk for _, pk, kind in qualifications if kind == QualificationKind.SENSITIVITY}


def _clean(row: int, record: Any, ctx: _Context, report: ImportReport, from_csv: bool) -> _Row | None:
    """The row ready to write, or ``None`` after adding each of its problems to ``report``."""
    from routing.ranking import prediction_clean

    if not isinstance(record, dict):
        report.add_error(row, "row", f"must be a JSON object, not {type(record).__name__}")
        return None
    if from_csv:
        record = {name: csv_value(name, value) for name, value in record.items()}
    errors: list[tuple[str, str]] = []
    for name, value in record.items():
        if isinstance(value, Invalid):
            errors.append((name, value.message))
    external_id = record.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    if not isinstance(external_id, str) or not external_id.strip():
        errors.append(("external_id", "is required (text or a whole number)"))
    elif len(external_id) > 255:
        errors.append(("external_id", "must be at most 255 characters"))
    payload = {name: record[name] for name in ctx.payload_fields if name in record}
    errors.extend(payload_errors(ctx.kind, payload).items())
    for name in record:
        if name not in ctx.columns:
            allowed = ", ".join(ctx.columns)
            errors.append((name, f"is not a field of a {ctx.kind} task (allowed: {allowed}); put extra data in meta"))
    meta = record.get("meta", {})
    if not isinstance(meta, dict | Invalid):
        errors.append(("meta", "must be a JSON object"))
    gold = record.get("gold")
    if gold is not None and not isinstance(gold, Invalid) and gold not in ctx.label_set:
        errors.append(("gold", f"{gold!r} is not one of this project's labels ({', '.join(ctx.labels)})"))
    requires = record.get("requires")
    requirement_ids: list[int] | None = None
    if requires is not None and not isinstance(requires, Invalid):
        if not isinstance(requires, list) or not all(isinstance(code, str) for code in requires):
            errors.append(("requires", "must be a list of qualification codes"))
        else:
            unknown = [code for code in requires if code not in ctx.qualifications]
            if unknown:
                errors.append(("requires", f"unknown qualification(s) {', '.join(map(repr, unknown))}"))
            requirement_ids = sorted({ctx.qualifications[code] for code in requires if code in ctx.qualifications})
    predictions = record.get("predictions")
    if predictions is not None and not isinstance(predictions, Invalid):
        try:
            predictions = prediction_clean(kind=ctx.kind, labels=ctx.labels, value=predictions)
        except ValidationError as error:
            errors.append(("predictions", "; ".join(error.messages)))
    if errors:
        for name, message in errors:
            report.add_error(row, name, message)
        return None
    return _Row(
        row=row,
        external_id=external_id,
        payload=payload,
        meta=meta,
        gold=gold,
        requires=requirement_ids,
        sensitive=bool(requirement_ids and ctx.sensitive.intersection(requirement_ids)),
        predictions=predictions,
        size=sum(len(value) for value in payload.values()),
    )


# --- Writing ----------------------------------------------------------------------------------------------------
class _Writer:
    def __init__(self, ctx: _Context, report: ImportReport, mode: str) -> None:
        self.ctx = ctx
        self.report = report
        self.mode = mode
        self.project = ctx.project
        self.batch: list[_Row] = []
        self.batch_chars = 0
        # Imports into the project are serialised: tasks above this id were created by this import.
        tasks = Task.objects.for_org(self.project.organization_id).filter(project=self.project)
        self.max_before = tasks.aggregate(top=Max("id"))["top"] or 0

    def add(self, row: _Row) -> None:
        self.batch.append(row)
        self.batch_chars += row.size
        if len(self.batch) >= BATCH or self.batch_chars >= BATCH_CHARS:
            self.flush()

    def flush(self) -> None:
        from routing.models import TaskRequirement
        from routing.ranking import task_ranks

        batch, self.batch, self.batch_chars = self.batch, [], 0
        if not batch:
            return
        fields = ["id", "external_id"]
        if self.mode == "upsert":
            fields += ["payload", "meta", "gold_label", "predictions", "judgment_count"]
        existing = {
            values["external_id"]: values
            for values in Task.objects.for_org(self.project.organization_id)
            .filter(project=self.project, external_id__in=[row.external_id for row in batch])
            .values(*fields)
        }
        new: list[_Row] = []
        seen: dict[str, int] = {}
        changed: list[tuple[_Row, dict[str, Any]]] = []
        for row in batch:
            found = existing.get(row.external_id)
            if row.external_id in seen or (found is not None and found["id"] > self.max_before):
                first = seen.get(row.external_id)
                where = f"row {first}" if first else "an earlier row"
                self._reject(row.row, "external_id", f"{row.external_id!r} repeats {where} of this file")
            elif found is None:
                seen[row.external_id] = row.row
                new.append(row)
            elif self.mode == "upsert":
                seen[row.external_id] = row.row
                changed.append((row, found))
            else:
                seen[row.external_id] = row.row
                self.report.unchanged += 1
        if new:
            shuffles = [Task._meta.get_field("shuffle").default() for _ in new]
            ranks = task_ranks(
                kind=self.ctx.kind,
                strategy=self.project.sampling_strategy,
                labels=self.ctx.labels,
                predictions=[row.predictions for row in new],
                shuffles=shuffles,
            )
            task_ids = self._insert(new, shuffles, ranks)
            requirements = [
                TaskRequirement(
                    organization_id=self.project.organization_id, task_id=task_id, qualification_id=q, min_level=1
                )
                for row, task_id in zip(new, task_ids, strict=True)
                for q in row.requires or ()
            ]
            TaskRequirement.objects.bulk_create(requirements)
            self.report.created += len(new)
        if changed:
            self._update(changed)

    def _insert(self, new: list[_Row], shuffles: list[float], ranks: Any) -> list[int]:
        """Insert the new tasks; their ids, in order. On PostgreSQL by ``COPY`` (a tenth of the cost of an
        INSERT built by the ORM), then one query for the ids, only when some row has requirements."""
        if connection.vendor != "postgresql":
            tasks = Task.objects.bulk_create(
                [
                    Task(
                        organization_id=self.project.organization_id,
                        project=self.project,
                        external_id=row.external_id,
                        payload=row.payload,
                        meta=row.meta,
                        gold_label=row.gold,
                        predictions=row.predictions,
                        shuffle=shuffle,
                        rank=float(rank),
                        is_restricted=bool(row.requires),
                        is_sensitive=row.sensitive,
                    )
                    for row, shuffle, rank in zip(new, shuffles, ranks, strict=True)
                ]
            )
            return [task.pk for task in tasks]
        now = timezone.now()
        org, project = self.project.organization_id, self.project.pk
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY labeling_task ({COPY_COLUMNS}) FROM STDIN") as copy:
                for row, shuffle, rank in zip(new, shuffles, ranks, strict=True):
                    copy.write_row(
                        (
                            org,
                            project,
                            row.external_id,
                            orjson.dumps(row.payload).decode(),
                            orjson.dumps(row.meta).decode(),
                            row.gold,
                            None if row.predictions is None else orjson.dumps(row.predictions).decode(),
                            float(rank),
                            shuffle,
                            bool(row.requires),
                            row.sensitive,
                            now,
                            now,
                            *NEW_TASK_STATE,
                        )
                    )
            if not any(row.requires for row in new):
                return [0] * len(new)  # no requirement rows need the ids
            cursor.execute(
                "SELECT external_id, id FROM labeling_task WHERE project_id = %s AND external_id = ANY(%s)",
                [project, [row.external_id for row in new]],
            )
            ids = dict(cursor.fetchall())
        return [ids[row.external_id] for row in new]

    def _update(self, changed: list[tuple[_Row, dict[str, Any]]]) -> None:
        from routing.models import TaskRequirement
        from routing.ranking import task_ranks

        updates: list[tuple[_Row, int]] = []
        for row, found in changed:
            same = (
                found["payload"] == row.payload
                and found["meta"] == row.meta
                and found["gold_label"] == row.gold
                and found["predictions"] == row.predictions
            )
            if found["payload"] != row.payload and found["judgment_count"]:
                self._reject(row.row, "payload", "cannot change: the task already has judgments")
            elif same and row.requires is None:
                self.report.unchanged += 1
            else:
                updates.append((row, found["id"]))
        if not updates:
            return
        tasks = Task.objects.for_org(self.project.organization_id).filter(pk__in=[pk for _, pk in updates])
        shuffles = dict(tasks.values_list("id", "shuffle"))
        ranks = task_ranks(
            kind=self.ctx.kind,
            strategy=self.project.sampling_strategy,
            labels=self.ctx.labels,
            predictions=[row.predictions for row, _ in updates],
            shuffles=[shuffles[pk] for _, pk in updates],
        )
        tasks = [
            Task(pk=pk, payload=row.payload, meta=row.meta, gold_label=row.gold, predictions=row.predictions, rank=rank)
            for (row, pk), rank in zip(updates, ranks, strict=True)
        ]
        Task.objects.bulk_update(tasks, ["payload", "meta", "gold_label", "predictions", "rank"])
        with_requirements = [(row, pk) for row, pk in updates if row.requires is not None]
        if with_requirements:
            task_ids = [pk for _, pk in with_requirements]
            TaskRequirement.objects.for_org(self.project.organization_id).filter(task_id__in=task_ids).delete()
            TaskRequirement.objects.bulk_create(
                TaskRequirement(
                    organization_id=self.project.organization_id, task_id=pk, qualification_id=q, min_level=1
                )
                for row, pk in with_requirements
                for q in row.requires or ()
            )
            from routing.services import task_requirement_flags_refresh

            task_requirement_flags_refresh(task_ids=task_ids)
        self.report.updated += len(updates)

    def _reject(self, row: int, field_name: str, message: str) -> None:
        self.report.add_error(row, field_name, message)
        self.report.skipped += self.report.on_error == "skip"


def tasks_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    mode: str = "create",
    on_error: str = "abort",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import the tasks in ``stream`` (bytes) into ``project``; see the module docstring. Returns the report;
    ``report.committed`` says whether anything was written. ``ValidationError`` for an unknown format, mode or
    ``on_error``; an unreadable file is reported as an error of the row where reading stopped."""
    check_options(fmt, mode, on_error)
    report = ImportReport(mode=mode, on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _Writer]:
        ctx = _Context(project)
        return (
            ctx.columns,
            lambda row, record: _clean(row, record, ctx, report, fmt == "csv"),
            _Writer(ctx, report, mode),
        )

    run_import(project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress)
    if report.committed and (report.created or report.updated):
        project_stats_request_refresh(project_ids=[project.pk])
    return report
