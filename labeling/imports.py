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

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Max

from labeling.models import Label, Project, ProjectKind, Task
from labeling.services import project_stats_request_refresh
from labeling.validation import CATEGORICAL_REQUIRED, PAIRWISE_OPTIONAL, PAIRWISE_REQUIRED, payload_errors

FORMATS: Final = ("jsonl", "json", "csv")
MODES: Final = ("create", "upsert")
ON_ERROR: Final = ("abort", "skip")
BATCH: Final = 2_000
# A batch is also cut at this many characters of payload, so that one INSERT (and the memory it takes) stays
# bounded whatever the size of the rows.
BATCH_CHARS: Final = 4 * 1024 * 1024
MAX_ROW_BYTES: Final = 16 * 1024 * 1024
MAX_REPORTED_ERRORS: Final = 1_000
READ_CHUNK: Final = 1 << 20
ROW_FIELDS: Final = ("external_id", "meta", "gold", "requires", "predictions")


class ImportFileError(Exception):
    """The file cannot be read past this point (broken JSON structure, bad CSV header, invalid UTF-8)."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message


@dataclass
class RowError:
    row: int
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    committed: bool = False
    mode: str = "create"
    on_error: str = "abort"

    def add_error(self, row: int, field_name: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(row, field_name, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "committed": self.committed,
            "mode": self.mode,
            "on_error": self.on_error,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "error_count": self.error_count,
            "errors": [{"row": e.row, "field": e.field, "message": e.message} for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors),
        }


# --- Reading ----------------------------------------------------------------------------------------------------
def _chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while chunk := stream.read(READ_CHUNK):
        yield chunk


def _jsonl_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Objects of a JSON Lines stream; a line that is not JSON gives a ``RowError`` for that row, not an abort."""
    row = 0
    pending = b""
    for chunk in _chunks(stream):
        pending += chunk
        lines = pending.split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_ROW_BYTES:
            raise ImportFileError(row + 1, f"a line is longer than {MAX_ROW_BYTES:,} bytes")
        for line in lines:
            if line.strip():
                row += 1
                yield row, _json_row(row, line)
    if pending.strip():
        row += 1
        yield row, _json_row(row, pending)


def _json_row(row: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as error:
        message = "is not valid UTF-8" if "utf-8" in str(error).lower() else f"is not valid JSON ({error})"
        return RowError(row, "row", message)


def _json_array_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Elements of a JSON array, decoded one at a time from a growing text buffer."""
    decoder = json.JSONDecoder()
    text_decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, position, row, started, finished = "", 0, 0, False, False
    chunks = _chunks(stream)
    eof = False

    def more() -> bool:
        nonlocal buffer, position, eof
        if eof:
            return False
        chunk = next(chunks, None)
        try:
            text = text_decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError:
            raise ImportFileError(row + 1, "the file is not valid UTF-8") from None
        buffer, position = buffer[position:] + text, 0
        eof = chunk is None
        return True

    def skip_space() -> str:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer):
                return buffer[position]
            if not more():
                return ""

    while True:
        char = skip_space()
        if not started:
            if char != "[":
                raise ImportFileError(0, "a JSON import must be an array of objects: [{...}, {...}]")
            started, position = True, position + 1
            char = skip_space()
            if char == "]":
                finished, position = True, position + 1
                break
        elif char == ",":
            position += 1
            char = skip_space()
        elif char == "]":
            finished, position = True, position + 1
            break
        elif char == "":
            break
        elif row:
            raise ImportFileError(row + 1, "expected ',' or ']' after the previous element")
        if char == "":
            break
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
                break
            except json.JSONDecodeError as error:
                if len(buffer) - position > MAX_ROW_BYTES:
                    raise ImportFileError(row + 1, f"an element is longer than {MAX_ROW_BYTES:,} bytes") from None
                if not more():
                    raise ImportFileError(row + 1, f"is not valid JSON ({error.msg})") from None
        row += 1
        position = end
        yield row, value
    if not finished:
        raise ImportFileError(row + 1, "the JSON array is not closed with ']'")
    if skip_space():
        raise ImportFileError(row + 1, "unexpected data after the JSON array")


class _Readable(io.RawIOBase):
    """Any object with ``read(n)`` (a Django request, an upload) as a raw binary stream for ``io`` wrappers."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _csv_records(stream: IO[bytes], columns: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file with a header, as dicts without the empty cells."""
    text = io.TextIOWrapper(io.BufferedReader(_Readable(stream), READ_CHUNK), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    row = 0
    try:
        header = next(reader, None)
        if not header:
            raise ImportFileError(0, "the CSV file is empty: the first line must name the columns")
        header = [name.strip() for name in header]
        unknown = [name for name in header if name not in columns]
        if unknown:
            raise ImportFileError(
                0, f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(columns)}"
            )
        if len(set(header)) != len(header):
            raise ImportFileError(0, "a column is named twice in the header")
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            row += 1
            if len(cells) != len(header):
                yield row, RowError(row, "row", f"has {len(cells)} cells; the header names {len(header)}")
                continue
            yield row, {name: value for name, value in zip(header, cells, strict=True) if value != ""}
    except UnicodeDecodeError:
        raise ImportFileError(row + 1, "the file is not valid UTF-8") from None
    except csv.Error as error:
        raise ImportFileError(row + 1, f"is not valid CSV ({error})") from None


def _csv_value(name: str, value: str) -> Any:
    """A CSV cell as the JSON value it stands for."""
    if name in ("meta", "predictions"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return _Invalid("must be JSON")
    if name == "requires":
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                return orjson.loads(stripped)
            except orjson.JSONDecodeError:
                return _Invalid("must be a JSON list or codes separated by ';'")
        return [code.strip() for code in stripped.split(";") if code.strip()]
    return value


@dataclass(frozen=True)
class _Invalid:
    message: str


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
        self.labels = sorted(Label.objects.filter(project=project).values_list("value", flat=True))
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

    if isinstance(record, RowError):
        report.add_error(record.row, record.field, record.message)
        return None
    if not isinstance(record, dict):
        report.add_error(row, "row", f"must be a JSON object, not {type(record).__name__}")
        return None
    if from_csv:
        record = {name: _csv_value(name, value) for name, value in record.items()}
    errors: list[tuple[str, str]] = []
    for name, value in record.items():
        if isinstance(value, _Invalid):
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
    if not isinstance(meta, dict | _Invalid):
        errors.append(("meta", "must be a JSON object"))
    gold = record.get("gold")
    if gold is not None and not isinstance(gold, _Invalid) and gold not in ctx.label_set:
        errors.append(("gold", f"{gold!r} is not one of this project's labels ({', '.join(ctx.labels)})"))
    requires = record.get("requires")
    requirement_ids: list[int] | None = None
    if requires is not None and not isinstance(requires, _Invalid):
        if not isinstance(requires, list) or not all(isinstance(code, str) for code in requires):
            errors.append(("requires", "must be a list of qualification codes"))
        else:
            unknown = [code for code in requires if code not in ctx.qualifications]
            if unknown:
                errors.append(("requires", f"unknown qualification(s) {', '.join(map(repr, unknown))}"))
            requirement_ids = sorted({ctx.qualifications[code] for code in requires if code in ctx.qualifications})
    predictions = record.get("predictions")
    if predictions is not None and not isinstance(predictions, _Invalid):
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
class _Rollback(Exception):
    """Raised inside the transaction to undo an import that found bad rows (``on_error="abort"``)."""


class _Writer:
    def __init__(self, ctx: _Context, report: ImportReport, mode: str) -> None:
        self.ctx = ctx
        self.report = report
        self.mode = mode
        self.project = ctx.project
        self.batch: list[_Row] = []
        self.batch_chars = 0
        # Imports into the project are serialised: tasks above this id were created by this import.
        self.max_before = Task.objects.filter(project=self.project).aggregate(top=Max("id"))["top"] or 0

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
            requirements = [
                TaskRequirement(
                    organization_id=self.project.organization_id, task_id=task.pk, qualification_id=q, min_level=1
                )
                for row, task in zip(new, tasks, strict=True)
                for q in row.requires or ()
            ]
            TaskRequirement.objects.bulk_create(requirements)
            self.report.created += len(new)
        if changed:
            self._update(changed)

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
        shuffles = dict(Task.objects.filter(pk__in=[pk for _, pk in updates]).values_list("id", "shuffle"))
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


def _lock(project: Project) -> None:
    """Serialise imports into one project until the transaction ends (SQLite serialises writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x1A70, project.pk])


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
    problems = {}
    if fmt not in FORMATS:
        problems["format"] = f"must be one of {', '.join(FORMATS)}"
    if mode not in MODES:
        problems["mode"] = f"must be one of {', '.join(MODES)}"
    if on_error not in ON_ERROR:
        problems["on_error"] = f"must be one of {', '.join(ON_ERROR)}"
    if problems:
        raise ValidationError(problems)
    report = ImportReport(mode=mode, on_error=on_error)
    try:
        with transaction.atomic():
            _lock(project)
            ctx = _Context(project)
            writer = _Writer(ctx, report, mode)
            if fmt == "jsonl":
                records: Iterator[tuple[int, Any]] = _jsonl_records(stream)
            elif fmt == "json":
                records = _json_array_records(stream)
            else:
                records = _csv_records(stream, ctx.columns)
            try:
                for row, record in records:
                    report.rows = row
                    cleaned = _clean(row, record, ctx, report, fmt == "csv")
                    if cleaned is None:
                        report.skipped += on_error == "skip"
                    else:
                        writer.add(cleaned)
                    if progress is not None and row % BATCH == 0:
                        progress(row)
            except ImportFileError as error:
                report.add_error(error.row, "file", error.message)
                raise _Rollback from None
            writer.flush()
            if report.error_count and on_error == "abort":
                raise _Rollback
            report.committed = True
            if report.created or report.updated:
                project_stats_request_refresh(project_ids=[project.pk])
    except _Rollback:
        report.committed = False
        report.created = report.updated = report.unchanged = 0
    if progress is not None:
        progress(report.rows)
    return report
