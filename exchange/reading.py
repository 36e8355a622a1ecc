"""What every import shares: the row readers (JSON Lines, JSON array, CSV; streamed), the report, the driver
that runs a writer over the rows in one transaction (all or nothing, or skipping bad rows, or nothing at all once
past a time limit), and the lock that serialises imports into one project."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction

from labeling.models import Project
from labeling.validation import MAX_JSON_DEPTH, NUL_MESSAGE, json_value_problem

FORMATS: Final = ("jsonl", "json", "csv")
# A file's format by its name's ending (an upload to the API, a file given to manage.py import_tasks).
EXTENSIONS: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
MODES: Final = ("create", "upsert")
ON_ERROR: Final = ("abort", "skip")
BATCH: Final = 2_000
# Rows between two looks at the clock of an import with a time limit.
DEADLINE_CHECK_ROWS: Final = 256
MAX_ROW_BYTES: Final = 16 * 1024 * 1024
MAX_REPORTED_ERRORS: Final = 1_000
READ_CHUNK: Final = 1 << 20
# orjson reads a whole number beyond 64 bits as a rounded float: a float this large in a row's objects or lists may
# have been one, and sends the row to the exact check.
_ROUNDED: Final = float(2**63)


class UnstorableJSON(Exception):
    """JSON that parses but cannot be stored and returned exactly (a NUL, NaN, a 100-digit number, deep nesting)."""


class CountingReader:
    """A binary file that counts the bytes read from it: how far an import has got, for its progress."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.position += len(data)
        return data


def _needs_exact_check(value: Any) -> bool:
    """Whether a value as orjson read it has nesting past the limit or a float that may be a rounded whole number:
    a few steps for a usual row."""
    if type(value) is not dict and type(value) is not list:
        return type(value) is float and not -_ROUNDED < value < _ROUNDED
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is float and not -_ROUNDED < child < _ROUNDED:
                return True
    return False


def json_loads(data: bytes) -> Any:
    """``orjson.loads``, refusing with ``UnstorableJSON`` what it reads but the database cannot store exactly (see
    ``labeling.validation.json_value_problem``; orjson itself refuses NaN, Infinity and unpaired surrogates)."""
    value = orjson.loads(data)
    if b"\\u0000" in data or _needs_exact_check(value):
        try:
            exact = json.loads(data)  # whole numbers exactly, where orjson rounds a large one to a float
        except RecursionError:
            raise UnstorableJSON(f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
        if (problem := json_value_problem(exact)) is not None:
            raise UnstorableJSON(problem)
    return value


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


def jsonl_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Objects of a JSON Lines stream; a line that is not JSON gives a ``RowError`` for that row, not an abort."""
    row = 0
    pending = b""
    started = False
    for chunk in _chunks(stream):
        pending += chunk
        if not started:
            if len(pending) < len(codecs.BOM_UTF8) and codecs.BOM_UTF8.startswith(pending):
                continue  # perhaps the start of a byte order mark: wait for the rest of it
            # A leading byte order mark is not data, as for the JSON and CSV readers (utf-8-sig).
            pending, started = pending.removeprefix(codecs.BOM_UTF8), True
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
        return json_loads(line)
    except orjson.JSONDecodeError as error:
        message = "is not valid UTF-8" if "utf-8" in str(error).lower() else f"is not valid JSON ({error})"
        return RowError(row, "row", message)
    except UnstorableJSON as error:
        return RowError(row, "row", str(error))


def json_array_records(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
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
            except RecursionError:
                raise ImportFileError(row + 1, f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
        row += 1
        position = end
        # Python's json reads NaN, Infinity, lone surrogates and whole numbers of any size: refused here.
        problem = json_value_problem(value)
        yield row, value if problem is None else RowError(row, "row", problem)
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


def csv_records(stream: IO[bytes], columns: Iterable[str]) -> Iterator[tuple[int, Any]]:
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
            if nul := next((name for name, cell in zip(header, cells, strict=True) if "\x00" in cell), None):
                yield row, RowError(row, nul, NUL_MESSAGE)
                continue
            yield row, {name: value for name, value in zip(header, cells, strict=True) if value != ""}
    except UnicodeDecodeError:
        raise ImportFileError(row + 1, "the file is not valid UTF-8") from None
    except csv.Error as error:
        raise ImportFileError(row + 1, f"is not valid CSV ({error})") from None


def csv_value(name: str, value: str) -> Any:
    """A CSV cell as the JSON value it stands for."""
    if name in ("meta", "predictions"):
        try:
            return json_loads(value.encode())
        except UnstorableJSON as error:
            return Invalid(str(error))
        except orjson.JSONDecodeError:
            return Invalid("must be JSON")
    if name == "requires":
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                return json_loads(stripped.encode())
            except UnstorableJSON as error:
                return Invalid(str(error))
            except orjson.JSONDecodeError:
                return Invalid("must be a JSON list or codes separated by ';'")
        return [code.strip() for code in stripped.split(";") if code.strip()]
    return value


@dataclass(frozen=True)
class Invalid:
    message: str


def read_records(stream: IO[bytes], fmt: str, columns: Iterable[str]) -> Iterator[tuple[int, Any]]:
    """``(row number, record)`` pairs of ``stream`` in ``fmt``; a record may be a ``RowError``."""
    if fmt == "jsonl":
        return jsonl_records(stream)
    if fmt == "json":
        return json_array_records(stream)
    return csv_records(stream, tuple(columns))


class Rollback(Exception):
    """Raised inside the transaction to undo an import that found bad rows (``on_error="abort"``)."""


class ImportTimeout(Exception):
    """The import ran past its time limit and was rolled back: nothing was written."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the import did not finish within {seconds:g} seconds; nothing was written")
        self.seconds = seconds


class _Watchdog:
    """Cancels whatever statement the connection is running once ``seconds`` have passed, and again every
    ``REPEAT`` seconds until stopped: a statement past the deadline (a ``COPY``, the settle, the ``COMMIT`` with its
    deferred checks) fails at once instead of running on. A cancel that finds the connection idle does nothing, so
    :func:`run_import` also checks the clock between rows. PostgreSQL cancels through its protocol, SQLite through
    ``interrupt()``; both may be called from another thread."""

    REPEAT: Final = 0.25

    def __init__(self, seconds: float) -> None:
        connection.ensure_connection()
        self.raw = connection.connection
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="import-watchdog", daemon=True)
        self._thread.start()

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def _run(self) -> None:
        wait = self.seconds
        while not self._stop.wait(max(wait, 0.0)):
            with self._lock:
                if self._stop.is_set():
                    return
                self.fired = True
                with contextlib.suppress(Exception):  # a connection already gone has nothing to cancel
                    if hasattr(self.raw, "cancel_safe"):
                        self.raw.cancel_safe()
                    elif hasattr(self.raw, "cancel"):
                        self.raw.cancel()
                    else:
                        self.raw.interrupt()
            wait = self.REPEAT

    def stop(self) -> None:
        """No cancel is sent after this returns (one in flight is waited for)."""
        with self._lock:
            self._stop.set()
        self._thread.join()


class RowWriter:
    """Where an import's clean rows go: ``add`` each, then ``flush`` once at the end."""

    def add(self, row: Any) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        """Called when the import fails before ``flush``: let go of anything half-sent (an open ``COPY``)."""


@dataclass(frozen=True)
class RowCost:
    """What one row of an import kind costs: its typical size in bytes (on the small side, so that an estimate errs
    towards a background job) and the time to import it (measured with ``bench/import_export.py`` on 2 cores)."""

    typical_bytes: int
    seconds: float


# Measured (bench/import_export.py and an in-process run, 2 cores, PostgreSQL): tasks 29,000/s at 1.2 KB a row;
# judgments 16,000-26,000/s at 113-152 bytes (counted at 60 us a row, the slow end); predictions 12,000/s at 63 bytes.
ROW_COSTS: Final = {
    "tasks": RowCost(typical_bytes=400, seconds=35e-6),
    "annotations": RowCost(typical_bytes=100, seconds=60e-6),
    "predictions": RowCost(typical_bytes=40, seconds=85e-6),
}


def import_seconds_estimate(*, kind: str, size: int) -> float:
    """About how long importing ``size`` bytes of ``kind`` rows takes, before anything is read: the API runs an
    import in the request only when this is small (``IMPORT_SYNC_SECONDS``)."""
    cost = ROW_COSTS[kind]
    return size / cost.typical_bytes * cost.seconds


# A task's id by its external id, each a lookup of its own in the (project, external id) key on PostgreSQL: a LATERAL
# subquery behind OFFSET 0, which the planner keeps as it is, with the project's id as a sub-select, which the planner
# estimates without its value. During and right after a bulk import the statistics say nothing of the new rows, or
# of a project made since they were taken: the plan for the whole list (external_id = ANY(...)) read every task of
# the project for every batch, and a per-key lookup with the project's id as a literal ("too rare to matter") did so
# for every key (50,000 predictions took half an hour). The list goes as one JSON parameter (thousands of
# placeholders, or a list the driver adapts element by element, cost more than the query). SQLite: placeholders.
_TASK_IDS_POSTGRES: Final = """
SELECT t.external_id, t.id FROM json_array_elements_text(%s::json) AS k(external_id)
CROSS JOIN LATERAL (
  SELECT id, external_id FROM labeling_task
  WHERE project_id = (SELECT %s::int8) AND external_id = k.external_id OFFSET 0
) AS t"""
_TASK_IDS: Final = "SELECT external_id, id FROM labeling_task WHERE project_id = %s AND external_id IN ({placeholders})"


def task_ids_by_external_id(*, project: Project, external_ids: list[str]) -> dict[str, int]:
    """The ids of ``project``'s tasks among ``external_ids`` (the project is the caller's, resolved inside its
    organization; external ids are unique per project)."""
    if not external_ids:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_TASK_IDS_POSTGRES, [orjson.dumps(external_ids).decode(), project.pk])
        else:
            placeholders = ", ".join(["%s"] * len(external_ids))
            cursor.execute(_TASK_IDS.format(placeholders=placeholders), [project.pk, *external_ids])
        return dict(cursor.fetchall())


def import_begin(project: Project) -> None:
    """Serialise imports into one project until the transaction ends (SQLite serialises writers anyway), and turn
    PostgreSQL's JIT compilation off for the import's statements: they look keys up, and with no statistics yet for
    the rows being imported the planner's cost estimates run into millions, which made it compile each batch's
    statements (up to 300 ms each) to save nothing."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x1A70, project.pk])
            cursor.execute("SET LOCAL jit = off")


def check_options(fmt: str, mode: str, on_error: str) -> None:
    problems = {}
    if fmt not in FORMATS:
        problems["format"] = f"must be one of {', '.join(FORMATS)}"
    if mode not in MODES:
        problems["mode"] = f"must be one of {', '.join(MODES)}"
    if on_error not in ON_ERROR:
        problems["on_error"] = f"must be one of {', '.join(ON_ERROR)}"
    if problems:
        raise ValidationError(problems)


def run_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    report: ImportReport,
    setup: Callable[[], tuple[tuple[str, ...], Callable[[int, Any], Any], RowWriter]],
    progress: Callable[[int], None] | None = None,
    time_limit: float | None = None,
) -> ImportReport:
    """Read ``stream`` row by row into the writer that ``setup`` returns (with its columns and row cleaner), in one
    transaction under the project's import lock. A cleaner returns the row to write, or ``None`` after reporting
    its problems. Bad rows roll everything back unless ``report.on_error == "skip"``; an unreadable file always
    does. With ``time_limit`` (seconds), an import still running then — waiting for the project's lock, reading,
    writing or committing — is rolled back and ``ImportTimeout`` raised: nothing is written."""
    watchdog = _Watchdog(time_limit) if time_limit is not None else None
    try:
        with transaction.atomic():
            try:
                _import_rows(project, stream, fmt, report, setup, progress, watchdog)
            except BaseException:
                if watchdog is not None:
                    watchdog.stop()  # no cancel may reach the rollback
                raise
    except Rollback:
        report.committed = False
        report.created = report.updated = report.unchanged = 0
    except DatabaseError:
        if watchdog is not None and watchdog.fired:  # the watchdog cancelled a statement, or the commit
            raise ImportTimeout(watchdog.seconds) from None
        raise
    finally:
        if watchdog is not None:
            watchdog.stop()
    if progress is not None:
        progress(report.rows)
    return report


def _import_rows(
    project: Project,
    stream: IO[bytes],
    fmt: str,
    report: ImportReport,
    setup: Callable[[], tuple[tuple[str, ...], Callable[[int, Any], Any], RowWriter]],
    progress: Callable[[int], None] | None,
    watchdog: _Watchdog | None,
) -> None:
    """``run_import``'s work inside its transaction; raises ``Rollback`` when nothing may be written."""
    import_begin(project)
    columns, clean, writer = setup()
    try:
        for row, record in read_records(stream, fmt, columns):
            report.rows = row
            if isinstance(record, RowError):
                report.add_error(record.row, record.field, record.message)
                cleaned = None
            else:
                cleaned = clean(row, record)
            if cleaned is None:
                report.skipped += report.on_error == "skip"
            else:
                writer.add(cleaned)
            if row % DEADLINE_CHECK_ROWS == 0 and watchdog is not None and watchdog.expired:
                raise ImportTimeout(watchdog.seconds)
            if progress is not None and row % BATCH == 0:
                progress(row)
        writer.flush()
    except ImportFileError as error:
        report.add_error(error.row, "file", error.message)
        writer.discard()
        raise Rollback from None
    except BaseException:
        writer.discard()
        raise
    if report.error_count and report.on_error == "abort":
        raise Rollback
    if watchdog is not None and watchdog.expired:
        raise ImportTimeout(watchdog.seconds)
    report.committed = True
