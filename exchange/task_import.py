"""Bulk task import: JSON Lines, a JSON array or CSV, parsed as a stream and written in batches in one transaction.

``tasks_import`` reads rows one at a time (memory independent of the file's size), validates each (every bad field
of every bad row is reported with its row number), and streams the new tasks to the table (see ``_Writer``: on
PostgreSQL a binary ``COPY`` that runs while the next rows are read). By default one bad row
rolls the whole import back: nothing is written. ``on_error="skip"`` writes the good rows and reports the bad ones.
Re-importing an ``external_id`` changes nothing and counts it as unchanged; ``mode="upsert"`` updates it instead
(its payload only while it has no judgments). Imports into one project are serialised (a PostgreSQL advisory lock),
so the check for an ``external_id`` repeated inside the file is exact: a row that finds its id among the tasks
created after the import began duplicates an earlier row of the same file.

Row fields (``row`` in reports is the 1-based record number):

- ``external_id`` (required; text or a whole number), the payload fields of the project's kind (pairwise:
  ``prompt`` or ``messages``, ``response_a``, ``response_b``, optional ``model_a``, ``model_b``; categorical:
  ``text`` or ``messages``; ranking and rating: ``prompt`` or ``messages``, and ``responses``, a list of
  ``{text, model}``); ``messages`` is a conversation, a list of ``{role, content}``;
- ``meta`` (an object), ``gold`` (the known answer to the primary question: one of the project's labels; a
  ranking's gold may be the whole order, of which the best response counts), ``requires`` (qualification
  codes of the organization: a list, or in CSV ``code;code``), ``predictions`` (pairwise: P(A better) as a
  number or ``{"a": p}``; categorical: ``{label: p}``).

CSV has a header row naming those columns; ``meta`` and ``predictions`` cells hold JSON, empty cells are absent.

Tasks are created in file order, except that a row whose id the filter of seen ids (``_SeenIds``) flags by chance
(about 1 in 70,000 after a million ids) is created at the end of its ``COPY`` session, up to 20,000 rows later.

A file that cannot be read on (a broken JSON array, an unknown CSV column, invalid UTF-8) writes nothing, whatever
``on_error`` says: the rows after the break cannot be known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final

import numpy as np
import orjson
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from exchange.reading import (
    BATCH,
    ImportReport,
    Invalid,
    RowWriter,
    check_options,
    csv_value,
    run_import,
    task_ids_by_external_id,
)
from labeling.models import Project, ProjectKind, Task, TaskStatus, shuffle_key
from labeling.ranking import prediction_clean, task_ranks
from labeling.selectors import project_label_values
from labeling.validation import (
    CATEGORICAL_REQUIRED,
    MAX_TEXT_CHARS,
    PAIRWISE_OPTIONAL,
    PAIRWISE_REQUIRED,
    gold_response_error,
    gold_value,
    payload_errors,
    payload_fields,
    text_problem,
)
from quality.services import project_stats_request_refresh
from routing.models import Qualification, QualificationKind, TaskRequirement
from routing.services import task_requirement_flags_refresh

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
        self.project = project
        self.kind = project.kind
        self.labels = sorted(project_label_values(project=project))
        self.label_set = set(self.labels)
        self.payload_fields = payload_fields(project.kind)
        self.columns = ("external_id", *self.payload_fields, *ROW_FIELDS[1:])
        qualifications = Qualification.objects.for_org(project.organization_id).values_list("code", "id", "kind")
        self.qualifications = {code: pk for code, pk, _ in qualifications}
        self.sensitive = {pk for _, pk, kind in qualifications if kind == QualificationKind.SENSITIVITY}
        # The quick path knows the flat text fields of pairwise and categorical tasks; a conversation, responses and
        # the other kinds take the full check.
        self.required = PAIRWISE_REQUIRED if project.kind == ProjectKind.PAIRWISE else CATEGORICAL_REQUIRED
        self.optional = PAIRWISE_OPTIONAL if project.kind == ProjectKind.PAIRWISE else ()
        flat = project.kind in (ProjectKind.PAIRWISE, ProjectKind.CATEGORICAL)
        self.quick_keys = frozenset(("external_id", *self.required, *self.optional, "meta", "gold") if flat else ())


def _quick(row: int, record: Any, ctx: _Context) -> _Row | None:
    """The common row (no ``requires``, no ``predictions``, every field good) checked in a few microseconds; ``None``
    when anything is unusual, for :func:`_clean`'s full check to accept or report. It accepts exactly what
    ``_clean`` accepts (a test compares the two)."""
    if type(record) is not dict or not ctx.quick_keys.issuperset(record):
        return None
    external_id = record.get("external_id")
    if type(external_id) is int:
        external_id = str(external_id)
    elif type(external_id) is not str or len(external_id) > 255 or not external_id or external_id.isspace():
        return None
    payload = {}
    size = 0
    for name in ctx.required:
        value = record.get(name)
        if type(value) is not str or not value or len(value) > MAX_TEXT_CHARS or value.isspace() or text_problem(value):
            return None
        payload[name] = value
        size += len(value)
    for name in ctx.optional:
        value = record.get(name)
        if value is not None:
            if type(value) is not str or not value or len(value) > 200 or value.isspace() or text_problem(value):
                return None
            payload[name] = value
            size += len(value)
    meta = record.get("meta", {})
    gold = record.get("gold")
    if type(meta) is not dict or (gold is not None and (type(gold) is not str or gold not in ctx.label_set)):
        return None
    return _Row(row, external_id, payload, meta, gold, None, False, None, size)


def _clean(row: int, record: Any, ctx: _Context, report: ImportReport, from_csv: bool) -> _Row | None:
    """The row ready to write, or ``None`` after adding each of its problems to ``report``."""
    if not from_csv and (quick := _quick(row, record, ctx)) is not None:
        return quick
    return _clean_fully(row, record, ctx, report, from_csv)


def _clean_fully(row: int, record: Any, ctx: _Context, report: ImportReport, from_csv: bool) -> _Row | None:
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
    payload = {name: record[name] for name in ctx.payload_fields if record.get(name) is not None}  # null: absent
    errors.extend(payload_errors(ctx.kind, payload).items())
    for name in record:
        if name not in ctx.columns:
            allowed = ", ".join(ctx.columns)
            errors.append((name, f"is not a field of a {ctx.kind} task (allowed: {allowed}); put extra data in meta"))
    meta = record.get("meta", {})
    if not isinstance(meta, dict | Invalid):
        errors.append(("meta", "must be a JSON object"))
    gold = gold_value(ctx.kind, record.get("gold"))
    # Not a string (an object, a list): unhashable, and no label either.
    if gold is not None and not isinstance(gold, Invalid) and (not isinstance(gold, str) or gold not in ctx.label_set):
        errors.append(("gold", f"{gold!r} is not one of this project's labels ({', '.join(ctx.labels)})"))
    elif (problem := gold_response_error(ctx.kind, gold, payload)) is not None:
        errors.append(("gold", problem))
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
        size=sum(len(value) if isinstance(value, str) else len(orjson.dumps(value)) for value in payload.values()),
    )


# --- Writing ----------------------------------------------------------------------------------------------------
class _SeenIds:
    """A Bloom filter of the external ids in the project and in this import so far: fixed memory (``BITS`` / 8
    bytes), no false negatives. An id it has not seen is new for certain and goes straight to the table; one it
    may have seen is checked against the table (:meth:`_Writer._sync`). With 2**26 bits and 4 hashes, about 1 id in
    70,000 is checked needlessly after a million ids, 1 in 140 after five million."""

    BITS: Final = 1 << 26
    HASHES: Final = 4

    def __init__(self) -> None:
        self.bits = np.zeros(self.BITS // 8, dtype=np.uint8)
        self.steps = np.arange(self.HASHES, dtype=np.uint64)[:, None]

    def _positions(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)).view(np.uint64)
        low, high = hashes & np.uint64(0xFFFFFFFF), (hashes >> np.uint64(32)) | np.uint64(1)
        positions = (low + self.steps * high) & np.uint64(self.BITS - 1)  # double hashing: HASHES x n bits
        return (positions >> np.uint64(3)).astype(np.intp), np.left_shift(1, positions & np.uint64(7)).astype(np.uint8)

    def add(self, ids: list[str]) -> np.ndarray:
        """Add ``ids``; per id, whether it may have been added before this call."""
        if not ids:
            return np.zeros(0, dtype=bool)
        cells, masks = self._positions(ids)
        maybe = np.all(self.bits[cells] & masks, axis=0)
        np.bitwise_or.at(self.bits, cells.ravel(), masks.ravel())
        return maybe


@dataclass
class _Suspect:
    row: _Row
    first: int | None  # the row of this file that the id repeats, when known


class _Writer(RowWriter):
    """Writes checked rows as they come. A row whose external id is certainly new (see :class:`_SeenIds`) goes to
    the table at once: on PostgreSQL into a binary ``COPY`` that stays open for up to ``SESSION_ROWS`` rows, so the
    database stores rows while Python reads the next ones. A row whose id may exist waits, with its id, for the end
    of the session (:meth:`_sync`), where one query tells a repeat of this file from a task of the project (left
    unchanged, or updated with ``mode="upsert"``) and from a false alarm (written then)."""

    SLICE: Final = 200  # rows checked against the filter and ranked together (few enough to stay in the CPU cache)
    SESSION_ROWS: Final = 20_000

    def __init__(self, ctx: _Context, report: ImportReport, mode: str) -> None:
        self.ctx = ctx
        self.report = report
        self.mode = mode
        self.project = ctx.project
        self.org = self.project.organization_id
        self.pending: list[_Row] = []
        self.pending_chars = 0
        self.suspects: list[_Suspect] = []
        self.requiring: list[_Row] = []  # written rows with requirements: their ids are read at the sync
        self.session: _CopySession | _ListSession | None = None
        self.seen = _SeenIds()
        # Imports into the project are serialised: tasks above this id were created by this import. The table's
        # newest id (the end of its primary key) serves as well as the project's, without reading the project.
        self.max_before = Task.objects.aggregate(top=Max("id"))["top"] or 0
        tasks = Task.objects.for_org(self.org).filter(project=self.project)
        existing = tasks.values_list("external_id", flat=True).order_by()
        chunk: list[str] = []
        for external_id in existing.iterator(chunk_size=BATCH):
            chunk.append(external_id)
            if len(chunk) == BATCH:
                self.seen.add(chunk)
                chunk = []
        self.seen.add(chunk)

    def add(self, row: _Row) -> None:
        self.pending.append(row)
        self.pending_chars += row.size
        if len(self.pending) >= self.SLICE or self.pending_chars >= BATCH_CHARS:
            self._check()

    def flush(self) -> None:
        self._check()
        self._sync()

    def _check(self) -> None:
        rows, self.pending, self.pending_chars = self.pending, [], 0
        maybe = self.seen.add([row.external_id for row in rows])
        fresh: list[_Row] = []
        first: dict[str, int] = {}
        for row, may_exist in zip(rows, maybe.tolist(), strict=True):
            earlier = first.get(row.external_id)
            if may_exist or earlier is not None:
                self.suspects.append(_Suspect(row, earlier))
            else:
                first[row.external_id] = row.row
                fresh.append(row)
        self._write(fresh)
        if (self.session is not None and self.session.full) or len(self.suspects) >= BATCH:
            self._sync()

    def _write(self, rows: list[_Row]) -> None:
        """Add new tasks to the open session (opening one if needed)."""
        if not rows:
            return
        shuffles = [shuffle_key() for _ in rows]
        ranks = task_ranks(
            kind=self.ctx.kind,
            strategy=self.project.sampling_strategy,
            labels=self.ctx.labels,
            predictions=[row.predictions for row in rows],
            shuffles=shuffles,
        ).tolist()
        if self.session is None:
            if connection.vendor == "postgresql":
                self.session = _CopySession(self.project, self.SESSION_ROWS)
            else:
                self.session = _ListSession(self.project)
        self.session.write(rows, shuffles, ranks)
        self.requiring.extend(row for row in rows if row.requires)
        self.report.created += len(rows)

    def discard(self) -> None:
        """Abandon an open session (the import is failing; its transaction rolls back)."""
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # the import's own error is on its way up: keep that one
                session.close(failed=True)

    def _end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.close()

    def _sync(self) -> None:
        """End the session; sort the suspects out (a repeat, a task of the project, or new after all); add the
        requirement rows of the session's tasks."""
        self._end_session()
        suspects, self.suspects = self.suspects, []
        if suspects:
            self._resolve(suspects)
        requiring, self.requiring = self.requiring, []
        if requiring:
            self._add_requirements(requiring)

    def _resolve(self, suspects: list[_Suspect]) -> None:
        ids = task_ids_by_external_id(
            project=self.project, external_ids=[suspect.row.external_id for suspect in suspects]
        )
        existing: dict[str, dict[str, Any]] = {external_id: {"id": pk} for external_id, pk in ids.items()}
        if self.mode == "upsert" and ids:
            # By primary key alone: the ids are the project's (found inside it), and a condition on the organization
            # or the project as well let the planner, with statistics from before they existed, read all their tasks
            # for every batch.
            fields = ("project_id", "external_id", "payload", "meta", "gold_label", "predictions", "judgment_count")
            for values in Task.objects.filter(pk__in=list(ids.values())).order_by().values("id", *fields):
                if values["project_id"] == self.project.pk:
                    existing[values["external_id"]] = values
        new: list[_Row] = []
        changed: list[tuple[_Row, dict[str, Any]]] = []
        taken: dict[str, int] = {}
        for suspect in suspects:
            row, found = suspect.row, existing.get(suspect.row.external_id)
            first = suspect.first or taken.get(row.external_id)
            if first is not None or (found is not None and found["id"] > self.max_before):
                where = f"row {first}" if first else "an earlier row"
                self._reject(row.row, "external_id", f"{row.external_id!r} repeats {where} of this file")
                continue
            taken[row.external_id] = row.row
            if found is None:
                new.append(row)
            elif self.mode == "upsert":
                changed.append((row, found))
            else:
                self.report.unchanged += 1
        self._write(new)
        self._end_session()  # no query may run while a COPY is open
        if changed:
            self._update(changed)

    def _add_requirements(self, rows: list[_Row]) -> None:
        ids = task_ids_by_external_id(project=self.project, external_ids=[row.external_id for row in rows])
        TaskRequirement.objects.bulk_create(
            TaskRequirement(organization_id=self.org, task_id=ids[row.external_id], qualification_id=q, min_level=1)
            for row in rows
            for q in row.requires or ()
        )

    def _update(self, changed: list[tuple[_Row, dict[str, Any]]]) -> None:
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
            task_requirement_flags_refresh(task_ids=task_ids)
        self.report.updated += len(updates)

    def _reject(self, row: int, field_name: str, message: str) -> None:
        self.report.add_error(row, field_name, message)
        self.report.skipped += self.report.on_error == "skip"


class _CopySession:
    """New tasks streamed to PostgreSQL by one binary ``COPY`` (no SQL per row, no text escaping). JSON columns are
    sent as ``jsonb``'s binary form: a version byte, then the JSON text."""

    TYPES: Final = (
        "int8", "int8", "text", "bytea", "bytea", "text", "bytea", "float8", "float8", "bool", "bool",
        "timestamptz", "timestamptz", "text", "int4", "int2", "text", "bool",
    )  # fmt: skip

    def __init__(self, project: Project, max_rows: int) -> None:
        self.org, self.project, self.now = project.organization_id, project.pk, timezone.now()
        self.rows, self.max_rows = 0, max_rows
        self.cursor = connection.cursor()
        self.context = self.cursor.cursor.copy(f"COPY labeling_task ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)")
        self.copy = self.context.__enter__()
        self.copy.set_types(self.TYPES)

    def write(self, rows: list[_Row], shuffles: list[float], ranks: list[float]) -> None:
        org, project, now, write_row, dumps = self.org, self.project, self.now, self.copy.write_row, orjson.dumps
        self.rows += len(rows)
        for row, shuffle, rank in zip(rows, shuffles, ranks, strict=True):
            write_row(
                (
                    org,
                    project,
                    row.external_id,
                    b"\x01" + dumps(row.payload),
                    b"\x01" + dumps(row.meta),
                    row.gold,
                    None if row.predictions is None else b"\x01" + dumps(row.predictions),
                    rank,
                    shuffle,
                    bool(row.requires),
                    row.sensitive,
                    now,
                    now,
                    *NEW_TASK_STATE,
                )
            )

    @property
    def full(self) -> bool:
        """Rows sent need no memory here: a session ends to check suspects and add requirements every so often."""
        return self.rows >= self.max_rows

    def close(self, failed: bool = False) -> None:
        """End the COPY; with ``failed``, cancel it (PostgreSQL discards the rows) and leave the rollback to the
        transaction."""
        error = RuntimeError("the import failed") if failed else None
        try:
            self.context.__exit__(type(error) if error else None, error, None)
        finally:
            self.cursor.close()


class _ListSession:
    """New tasks kept for one ``bulk_create`` (SQLite and other databases)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.tasks: list[Task] = []
        self.chars = 0

    @property
    def full(self) -> bool:
        return len(self.tasks) >= BATCH or self.chars >= BATCH_CHARS

    def write(self, rows: list[_Row], shuffles: list[float], ranks: list[float]) -> None:
        self.chars += sum(row.size for row in rows)
        self.tasks.extend(
            Task(
                organization_id=self.project.organization_id,
                project=self.project,
                external_id=row.external_id,
                payload=row.payload,
                meta=row.meta,
                gold_label=row.gold,
                predictions=row.predictions,
                shuffle=shuffle,
                rank=rank,
                is_restricted=bool(row.requires),
                is_sensitive=row.sensitive,
            )
            for row, shuffle, rank in zip(rows, shuffles, ranks, strict=True)
        )

    def close(self, failed: bool = False) -> None:
        if not failed:
            Task.objects.bulk_create(self.tasks, batch_size=BATCH)


def tasks_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    mode: str = "create",
    on_error: str = "abort",
    progress: Callable[[int], None] | None = None,
    time_limit: float | None = None,
) -> ImportReport:
    """Import the tasks in ``stream`` (bytes) into ``project``; see the module docstring. Returns the report;
    ``report.committed`` says whether anything was written. ``ValidationError`` for an unknown format, mode or
    ``on_error``; an unreadable file is reported as an error of the row where reading stopped. ``time_limit``:
    seconds after which the import stops and writes nothing (``ImportTimeout``)."""
    check_options(fmt, mode, on_error)
    report = ImportReport(mode=mode, on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _Writer]:
        ctx = _Context(project)
        return (
            ctx.columns,
            lambda row, record: _clean(row, record, ctx, report, fmt == "csv"),
            _Writer(ctx, report, mode),
        )

    run_import(
        project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress, time_limit=time_limit
    )
    if report.committed and (report.created or report.updated):
        project_stats_request_refresh(project_ids=[project.pk])
    return report
