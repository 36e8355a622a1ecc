"""Imports for tasks that exist already: judgments made elsewhere (to migrate history from another tool) and
model predictions (for active learning). Same readers, reports and all-or-nothing rule as the task import.

Judgment rows: ``external_id`` (the task's), ``annotator`` (an e-mail address, or an id from the other tool),
``label``, ``a_left`` (pairwise: was response A shown on the left), ``seconds`` (time on task), ``created_at``
(ISO 8601; default now), ``strength`` (projects with a strength scale), ``answers`` (projects with stored questions).

A project with stored questions (``labeling.questions``) takes ``answers`` on every row (in CSV, a JSON object):
``{question key: answer}``, checked against the row's task (its number of responses) like a submit's, each problem
named ``answers.<key>``. The label is the primary question's answer (``primary_label``); a row may still give
``label``, which must then be that same value. A project without stored questions refuses ``answers``.

The annotator is looked for in this organization only (see ``_Annotators``): an identifier this organization has
imported before, or a member with that e-mail address or username. Anyone else is an error, unless
``create_annotators``: then the organization gets its own pseudonymous annotator for the identifier, a record that
can never sign in, named by the identifier, found again by the next import. An account elsewhere with that address
is never attached, changed or revealed (an import that could attach one would hand its owner's identity, and
their judgments, to whoever wrote the file). Re-importing a judgment of the same task by the same annotator leaves
it as it is (``unchanged``). Every task touched is settled as a submit would settle it (``tasks_settle``, a batch
at a time), and the quality recompute follows.

Prediction rows: ``external_id`` and ``predictions`` (pairwise: P(A better) or ``{"a": p}``; categorical:
``{label: p}``). The task's sampling rank follows at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

import orjson
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable, make_password
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Max, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exchange.reading import (
    ImportReport,
    Invalid,
    RowWriter,
    UnstorableJSON,
    check_options,
    csv_value,
    json_loads,
    run_import,
    task_ids_by_external_id,
)
from labeling.db import int_array, json_text, placeholders
from labeling.models import DECISIVE_LABELS, Judgment, Membership, Project, ProjectKind, Role, Task
from labeling.questions import (
    QuestionSpec,
    answers_clean,
    answers_errors,
    primary_label,
    primary_of,
)
from labeling.ranking import prediction_clean, task_ranks
from labeling.selectors import project_label_values, project_stored_questions
from labeling.services import judgment_errors
from quality import consensus, sql
from quality.selectors import annotator_confusions
from quality.services import project_stats_request_refresh

JUDGMENT_COLUMNS: Final = (
    "external_id", "annotator", "label", "a_left", "strength", "seconds", "created_at", "answers",
)  # fmt: skip
PREDICTION_COLUMNS: Final = ("external_id", "predictions")
BATCH: Final = 1_000
# Judgments are written and their tasks settled this many at a time: a few queries per batch, none per row.
JUDGMENT_BATCH: Final = 5_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_.\-:]{1,100}$")
# An annotator identifier is kept as the name of its pseudonymous record (first_name: 150 characters).
MAX_ANNOTATOR_CHARS: Final = 150
MAX_REMEMBERED_IDENTIFIERS: Final = 100_000  # bounds the memory of a file that names a new annotator every row
MAX_SECONDS: Final = 7 * 86400  # as labeling.services.annotation_errors checks the time on task
PSEUDONYM_PREFIX: Final = "imported-"
# Imports before pseudonymous records made an account <id>@external.invalid for another tool's id.
LEGACY_ID_DOMAIN: Final = "@external.invalid"
INSERT_COLUMNS: Final = (
    "organization_id, project_id, task_id, annotator_id, label, a_left, strength, seconds_on_task, active_seconds, "
    "client_id, created_at, answers"
)
COPY_TYPES: Final = (
    "int8", "int8", "int8", "int4", "text", "bool", "int2", "float8", "float8", "text", "timestamptz", "jsonb",
)  # fmt: skip


def _external_id(record: dict[str, Any], errors: list[tuple[str, str]]) -> str | None:
    value = record.get("external_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        errors.append(("external_id", "is required (the task's external_id)"))
        return None
    return value


def _unknown_fields(record: dict[str, Any], columns: tuple[str, ...], errors: list[tuple[str, str]]) -> None:
    for name in record:
        if name not in columns:
            errors.append((name, f"is not a field of this import (allowed: {', '.join(columns)})"))


def _report(row: int, errors: list[tuple[str, str]], report: ImportReport) -> None:
    for name, message in errors:
        report.add_error(row, name, message)


def _tasks_by_external_id(project: Project, external_ids: list[str]) -> dict[str, Task]:
    # By primary key alone: the ids are the project's (found inside it), and a condition on the organization or the
    # project as well let the planner, with statistics from before they existed, read all their tasks every batch.
    ids = task_ids_by_external_id(project=project, external_ids=external_ids)
    tasks = (
        Task.objects.filter(pk__in=list(ids.values()))
        .only("external_id", "project_id", "predictions", "shuffle")
        .order_by()  # not the model's ordering, which joins the project and sorts
    )
    return {task.external_id: task for task in tasks if task.project_id == project.pk}


# --- Judgments -----------------------------------------------------------------------------------------------------
@dataclass
class _Judgment:
    row: int
    external_id: str
    annotator: str  # the identifier as the file gives it, trimmed and lower-cased
    label: str
    a_left: bool | None
    strength: int | None
    seconds: float
    created_at: datetime | None
    answers: dict[str, Any] | None = None


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(
            value.strip().lower(), Invalid("must be true or false")
        )
    return value


def _number(value: Any, cast: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        try:
            return cast(value.strip())
        except ValueError:
            return Invalid("must be a number")
    return value


def _annotator_identifier(value: Any, errors: list[tuple[str, str]]) -> str:
    """The row's annotator as an identifier: an e-mail address or another tool's id, trimmed and lower-cased."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        errors.append(("annotator", "is required: an e-mail address or the annotator's id in the other tool"))
        return ""
    identifier = value.strip().lower()
    if len(identifier) > MAX_ANNOTATOR_CHARS:
        errors.append(("annotator", f"must be at most {MAX_ANNOTATOR_CHARS} characters"))
    elif not EMAIL_RE.match(identifier) and not EXTERNAL_ID_RE.match(identifier):
        errors.append(("annotator", "must be an e-mail address or an id of letters, digits and . _ - :"))
    return identifier


class _JudgmentRules:
    """What a judgment row is checked against: the project's kind, labels and strength scale, and the import's
    start (no judgment from the future)."""

    def __init__(
        self, project: Project, labels: set[str], now: datetime, questions: list[QuestionSpec] | None = None
    ) -> None:
        self.project = project
        self.labels = labels
        self.now = now
        self.questions = questions or []  # stored questions: every row gives answers
        self.pairwise = project.kind == ProjectKind.PAIRWISE
        self.columns = frozenset(JUDGMENT_COLUMNS)
        # Labels whose judgments need a strength (pairwise decisive, on a strength scale): the quick check leaves
        # those to the full one.
        self.needs_strength = frozenset(DECISIVE_LABELS) if self.pairwise and project.strength_scale else frozenset()
        # Each annotator as the file spells them, checked once: a file names a few hundred people in many rows.
        self.identifiers: dict[str, str | None] = {}

    def identifier(self, annotator: str) -> str | None:
        """The file's annotator as a good identifier (trimmed, lower-cased), or ``None`` when it is not one."""
        known = self.identifiers.get(annotator, False)
        if known is not False:
            return known  # type: ignore[return-value]
        identifier: str | None = annotator.strip().lower()
        if (
            not identifier
            or len(identifier) > MAX_ANNOTATOR_CHARS
            or not (EMAIL_RE.match(identifier) or EXTERNAL_ID_RE.match(identifier))
        ):
            identifier = None
        if len(self.identifiers) < MAX_REMEMBERED_IDENTIFIERS:
            self.identifiers[annotator] = identifier
        return identifier


def _quick_judgment(row: int, record: Any, rules: _JudgmentRules) -> _Judgment | None:
    """The common JSON row (every field of the usual type and good) checked in a few microseconds; ``None`` when
    anything is unusual, for :func:`_clean_judgment`'s full check to accept or report. It accepts exactly what the
    full check accepts (a test compares the two)."""
    if type(record) is not dict or not rules.columns.issuperset(record) or rules.questions or "answers" in record:
        return None
    external_id, annotator, label = record.get("external_id"), record.get("annotator"), record.get("label")
    if type(external_id) is not str or not external_id or external_id.isspace() or type(annotator) is not str:
        return None
    if type(label) is not str or label not in rules.labels or label in rules.needs_strength:
        return None
    a_left = record.get("a_left")
    if (type(a_left) is not bool) if rules.pairwise else (a_left is not None):
        return None
    if record.get("strength") is not None:
        return None
    seconds = record.get("seconds", 0)
    if (type(seconds) is not int and type(seconds) is not float) or not 0 <= seconds < MAX_SECONDS:
        return None
    identifier = rules.identifier(annotator)
    if identifier is None:
        return None
    created_at = record.get("created_at")
    if created_at is None or created_at == "":
        created_at = None
    elif type(created_at) is not str:
        return None
    else:
        try:
            created_at = parse_datetime(created_at)
        except ValueError:
            return None
        if created_at is None:
            return None
        if created_at.tzinfo is None or created_at.utcoffset() is None:
            created_at = timezone.make_aware(created_at, timezone.UTC)
        if created_at > rules.now:
            return None
    return _Judgment(row, external_id, identifier, label, a_left, None, float(seconds), created_at)


def _clean_judgment(row: int, record: Any, rules: _JudgmentRules, report: ImportReport, csv: bool) -> _Judgment | None:
    """The row ready to write, or ``None`` after adding each of its problems to ``report``."""
    if not csv and (quick := _quick_judgment(row, record, rules)) is not None:
        return quick
    return _clean_judgment_fully(row, record, rules, report, csv)


def _clean_judgment_fully(
    row: int, record: Any, rules: _JudgmentRules, report: ImportReport, csv: bool
) -> _Judgment | None:
    project, labels, now = rules.project, rules.labels, rules.now
    if not isinstance(record, dict):
        report.add_error(row, "row", f"must be a JSON object, not {type(record).__name__}")
        return None
    errors: list[tuple[str, str]] = []
    if csv:
        record = {**record, "a_left": _boolean(record.get("a_left")) if "a_left" in record else None}
        for name, cast in (("seconds", float), ("strength", int)):
            if name in record:
                record[name] = _number(record[name], cast)
        if "answers" in record:
            record["answers"] = _json_cell(record["answers"])
    for name, value in record.items():
        if isinstance(value, Invalid):
            errors.append((name, value.message))
    _unknown_fields(record, JUDGMENT_COLUMNS, errors)
    external_id = _external_id(record, errors)
    annotator = _annotator_identifier(record.get("annotator"), errors)
    label = record.get("label")
    a_left = record.get("a_left")
    strength = record.get("strength")
    seconds = record.get("seconds", 0)
    typed = [("label", label, str), ("a_left", a_left, bool), ("strength", strength, int)]
    for name, value, kind in typed:
        if (
            value is not None
            and not isinstance(value, Invalid)
            and (not isinstance(value, kind) or (kind is int and isinstance(value, bool)))
        ):
            errors.append((name, f"must be {'text' if kind is str else kind.__name__}"))
    answers = record.get("answers")
    if rules.questions:
        if answers is None:
            errors.append(("answers", "is required: this project has questions (the label comes from them)"))
        elif not isinstance(answers, dict | Invalid):
            errors.append(("answers", "must be an object mapping each question's key to its answer"))
    elif answers is not None:
        errors.append(("answers", "this project has no questions: give the label instead"))
    if not errors:
        problems = judgment_errors(
            kind=project.kind,
            label=label,
            label_known=label in labels or bool(rules.questions),
            client_id="import",
            a_left=a_left,
            seconds_on_task=seconds,
            strength=strength,
            strength_scale=project.strength_scale,
        )
        if rules.questions:  # the label comes from the answers: checked with it once the task is known
            problems.pop("strength", None)
        errors.extend(("seconds" if name == "seconds_on_task" else name, message) for name, message in problems.items())
    created_at = None
    if record.get("created_at") not in (None, ""):
        value = record["created_at"]
        try:
            created_at = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but no such time (minute 61, February 30)
            created_at = None
        if created_at is None:
            errors.append(("created_at", "must be an ISO 8601 date and time, e.g. 2025-03-01T12:00:00Z"))
        else:
            if timezone.is_naive(created_at):
                created_at = timezone.make_aware(created_at, timezone.UTC)
            if created_at > now:
                errors.append(("created_at", "is in the future"))
    if errors or external_id is None:
        _report(row, errors, report)
        return None
    return _Judgment(row, external_id, annotator, label or "", a_left, strength, float(seconds), created_at, answers)


def _json_cell(value: Any) -> Any:
    """A CSV cell holding JSON (``answers``); empty is absent."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return json_loads(value.encode())
    except UnstorableJSON as error:
        return Invalid(str(error))
    except orjson.JSONDecodeError:
        return Invalid("must be a JSON object")


def pseudonymous_username(*, organization_id: int, identifier: str) -> str:
    """The username of the organization's own record for an annotator known only from an imported file: the same
    for the same identifier (a re-import finds it), unrelated between organizations, and never an address."""
    digest = hashlib.sha256(f"{organization_id}\0{identifier}".encode()).hexdigest()[:32]
    return f"{PSEUDONYM_PREFIX}{organization_id}-{digest}"


class _Annotators:
    """Who each annotator of the file is, decided inside the organization only (every answer is kept for the rest
    of the import, so each identifier is looked up once).

    An identifier names, first, the organization's pseudonymous record made for it by an earlier import (so
    re-imports are stable), else a member whose e-mail address or username it is (an id ``x`` also matches the
    account ``x@external.invalid`` that imports before pseudonymous records made). Accounts outside the
    organization are never looked at: whether an address has an account anywhere changes nothing. With
    ``create_annotators`` an unknown identifier becomes a new pseudonymous record (see :meth:`_create`)."""

    def __init__(self, organization_id: int, create: bool) -> None:
        self.organization_id = organization_id
        self.create = create
        self.known: dict[str, int | None] = {}
        self.refused: set[str] = set()

    def resolve(self, identifiers: set[str]) -> dict[str, int]:
        """User ids by identifier for those that name someone (or were created)."""
        missing = identifiers - self.known.keys()
        if missing:
            found = self._members(missing)
            if self.create:
                found |= self._create(missing - found.keys())
            self.known.update({identifier: found.get(identifier) for identifier in missing})
        return {identifier: user for identifier in identifiers if (user := self.known[identifier]) is not None}

    def _members(self, identifiers: set[str]) -> dict[str, int]:
        pseudonyms = {pseudonymous_username(organization_id=self.organization_id, identifier=i): i for i in identifiers}
        keys = {identifier: identifier for identifier in identifiers}
        keys |= {f"{i}{LEGACY_ID_DOMAIN}": i for i in identifiers if not EMAIL_RE.match(i)}
        members = (
            Membership.objects.for_org(self.organization_id)
            .annotate(email_l=Lower("user__email"), username_l=Lower("user__username"))
            .filter(Q(user__username__in=list(pseudonyms)) | Q(email_l__in=list(keys)) | Q(username_l__in=list(keys)))
            .order_by("user_id")
            .values_list("user_id", "user__username", "email_l", "username_l")
        )
        found: dict[str, int] = {}
        rows = list(members)
        for user_id, username, _, _ in rows:
            if username in pseudonyms:
                found[pseudonyms[username]] = user_id
        for user_id, _, email, username in rows:
            for key in (email, username):
                if key in keys:
                    found.setdefault(keys[key], user_id)
        return found

    def _create(self, identifiers: set[str]) -> dict[str, int]:
        """The organization's own records for ``identifiers``: users who can never sign in (no usable password,
        no e-mail address, inactive) named by the identifier, with an annotator membership. Made with
        ``ON CONFLICT DO NOTHING`` and read back, so a concurrent import of the same names (into another project)
        waits for the other and then uses its records."""
        if not identifiers:
            return {}
        User = get_user_model()
        names = {pseudonymous_username(organization_id=self.organization_id, identifier=i): i for i in identifiers}
        User.objects.bulk_create(
            [
                User(username=name, first_name=identifier, email="", is_active=False, password=make_password(None))
                for name, identifier in sorted(names.items())
            ],
            ignore_conflicts=True,
        )
        found: dict[str, int] = {}
        for user_id, name, email, password in User.objects.filter(username__in=list(names)).values_list(
            "id", "username", "email", "password"
        ):
            if email or is_password_usable(password):  # the name was taken by a real account: never attach it
                self.refused.add(names[name])
            else:
                found[names[name]] = user_id
        Membership.objects.bulk_create(
            [
                Membership(organization_id=self.organization_id, user_id=user, role=Role.ANNOTATOR)
                for user in found.values()
            ],
            ignore_conflicts=True,
        )
        return found


class _JudgmentWriter(RowWriter):
    """Writes the judgments a batch at a time: resolves the batch's annotators (see :class:`_Annotators`), locks its
    tasks in id order, and writes its new judgments in one statement with their times as given; then settles every
    task touched with ``tasks_settle``. A few queries per batch, none per row. On PostgreSQL the batch goes into a
    binary ``COPY`` that stays open while the next batch is read and checked, so the database stores the rows
    meanwhile; the COPY ends (and its tasks are settled) when the next batch needs the connection."""

    def __init__(
        self, project: Project, report: ImportReport, create_annotators: bool, questions: list[QuestionSpec]
    ) -> None:
        self.project = project
        self.report = report
        self.questions = questions
        self.annotators = _Annotators(project.organization_id, create_annotators)
        self.batch: list[_Judgment] = []
        self.copy: _JudgmentCopy | None = None
        self.touched: dict[int, list[sql.Evidence]] = {}  # each task with new judgments not settled yet: all of them
        self.now = timezone.now()
        # Imports into the project are serialised: judgments above this id were made by this import, so finding
        # one for a row's (task, annotator) means an earlier row of the file had it. The table's newest id (the end
        # of its primary key) serves as well as the project's, which meant reading all of the project's judgments.
        self.max_before = Judgment.objects.aggregate(top=Max("id"))["top"] or 0

    def add(self, judgment: _Judgment) -> None:
        self.batch.append(judgment)
        if len(self.batch) >= JUDGMENT_BATCH:
            self._write_batch()

    def flush(self) -> None:
        self._write_batch()
        self._settle_written()

    def discard(self) -> None:
        """Abandon an open COPY (the import is failing; its transaction rolls back)."""
        copy, self.copy = self.copy, None
        if copy is not None:
            with contextlib.suppress(Exception):  # the import's own error is on its way up: keep that one
                copy.close(failed=True)

    def _settle_written(self) -> None:
        """End the open COPY and settle the tasks its judgments touched, as submits would settle them."""
        copy, self.copy = self.copy, None
        if copy is not None:
            copy.close()
        touched, self.touched = self.touched, {}
        if touched:
            consensus.tasks_settle(project=self.project, task_ids=list(touched), now=self.now, evidence=touched)

    def _reject(self, row: int, name: str, message: str) -> None:
        self.report.add_error(row, name, message)
        self.report.skipped += self.report.on_error == "skip"

    def _unknown(self, identifier: str) -> str:
        if identifier in self.annotators.refused:
            return f"{identifier}: its pseudonymous record's name is taken by an account; it cannot be imported"
        return f"{identifier} is not a member (add create_annotators=1 to import them as a pseudonymous annotator)"

    def _answers_check(self, judgment: _Judgment, n_responses: int) -> bool:
        """Check the row's answers against its task and set its label from them (``False``: reported)."""
        errors = answers_errors(self.questions, judgment.answers, n_responses=n_responses)
        if not errors:
            primary = primary_of(self.questions)
            label = primary_label(primary, judgment.answers[primary.key])  # type: ignore[index]
            if judgment.label and judgment.label != label:
                errors["label"] = (
                    f"{judgment.label!r} disagrees with the answers: "
                    f"the primary question {primary.key!r} gives {label!r}"
                )
            else:
                judgment.label = label
                judgment.answers = answers_clean(judgment.answers)  # type: ignore[arg-type]
                problems = judgment_errors(
                    kind=self.project.kind,
                    label=label,
                    label_known=True,
                    client_id="import",
                    a_left=judgment.a_left,
                    seconds_on_task=judgment.seconds,
                    strength=judgment.strength,
                    strength_scale=self.project.strength_scale,
                )
                errors |= {"strength": problems["strength"]} if "strength" in problems else {}
        for name, message in errors.items():
            self.report.add_error(judgment.row, name, message)
        self.report.skipped += bool(errors) and self.report.on_error == "skip"
        return not errors

    def _write_batch(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        self._settle_written()  # no query may run while a COPY is open
        annotators = self.annotators.resolve({judgment.annotator for judgment in batch})
        tasks = _tasks_lock(self.project, sorted({judgment.external_id for judgment in batch}))
        task_ids = sorted(set(tasks.values()))
        # Every judgment the batch's tasks have (locked: none can come or go): what tells a row made before, and,
        # with the batch's new ones, what their settling weighs.
        judged = sql.tasks_judged(task_ids)
        existing = {(row.task_id, row.annotator_id): row.id for row in judged}
        responses = _response_counts(task_ids) if self.questions else {}
        seen: set[tuple[int, int]] = set()
        new: list[tuple[int, int, _Judgment]] = []
        for judgment in batch:
            task_id = tasks.get(judgment.external_id)
            user_id = annotators.get(judgment.annotator)
            if task_id is None:
                self._reject(judgment.row, "external_id", f"{judgment.external_id!r}: no such task in this project")
            elif user_id is None:
                self._reject(judgment.row, "annotator", self._unknown(judgment.annotator))
            elif self.questions and not self._answers_check(judgment, responses[task_id]):
                pass  # reported
            elif (task_id, user_id) in seen or existing.get((task_id, user_id), 0) > self.max_before:
                self._reject(judgment.row, "annotator", "judges this task a second time in this file")
            elif (task_id, user_id) in existing:
                self.report.unchanged += 1
            else:
                seen.add((task_id, user_id))
                new.append((task_id, user_id, judgment))
        if not new:
            return
        org, project_id, now = self.project.organization_id, self.project.pk, self.now
        # Before the COPY: no other query may run while it is open.
        confusions = annotator_confusions(project=self.project, annotator_ids={user_id for _, user_id, _ in new})
        rows = [
            (
                org,
                project_id,
                task_id,
                user_id,
                judgment.label,
                judgment.a_left,
                judgment.strength,
                judgment.seconds,
                None,  # active_seconds: another tool's judgments have only the time on task
                _client_id(project_id, judgment.external_id, user_id),
                judgment.created_at or now,
                judgment.answers,
            )
            for task_id, user_id, judgment in new
        ]
        if connection.vendor == "postgresql":
            self.copy = _JudgmentCopy()
            self.copy.write(rows)
        else:  # not bulk_create: auto_now_add would overwrite the times the file gives
            adapt = connection.ops.adapt_datetimefield_value
            with connection.cursor() as cursor:
                cursor.executemany(
                    _INSERT, [(*values[:-2], adapt(values[-2]), json_text(values[-1])) for values in rows]
                )
        # Built while the database stores the COPY's rows.
        touched: dict[int, list[sql.Evidence]] = {task_id: [] for task_id, _, _ in new}
        for row in judged:
            if row.task_id in touched:
                touched[row.task_id].append(sql.Evidence(row.label, row.confusion))
        for task_id, user_id, judgment in new:
            touched[task_id].append(sql.Evidence(judgment.label, confusions.get(user_id)))
        self.touched = touched
        self.report.created += len(new)


_INSERT: Final = f"INSERT INTO labeling_annotation ({INSERT_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"  # noqa: S608


# How many responses each task shows (``labeling.questions.response_count``), counted by the database: decoding
# every payload in Python cost a sixth of the import.
_RESPONSE_COUNTS_POSTGRES: Final = """
SELECT id, CASE WHEN jsonb_typeof(payload->'responses') = 'array' THEN jsonb_array_length(payload->'responses')
                WHEN payload ? 'response_a' THEN 2 ELSE 0 END
FROM labeling_task WHERE id = ANY(%s::int8[])"""
_RESPONSE_COUNTS: Final = """
SELECT id, CASE WHEN json_type(payload, '$.responses') = 'array' THEN json_array_length(payload, '$.responses')
                WHEN json_type(payload, '$.response_a') IS NOT NULL THEN 2 ELSE 0 END
FROM labeling_task WHERE id IN ({placeholders})"""


def _response_counts(task_ids: list[int]) -> dict[int, int]:
    """How many responses each task shows: what its answers are checked against. One query per batch, for projects
    with questions only (the tasks are the project's, found inside it)."""
    if not task_ids:
        return {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_RESPONSE_COUNTS_POSTGRES, [int_array(task_ids)])
        else:
            cursor.execute(_RESPONSE_COUNTS.format(placeholders=placeholders(task_ids)), task_ids)
        return dict(cursor.fetchall())


_COPY: Final = f"COPY labeling_annotation ({INSERT_COLUMNS}) FROM STDIN (FORMAT BINARY)"


class _JudgmentCopy:
    """New judgments streamed to PostgreSQL by one binary ``COPY`` (no SQL per row, no text escaping)."""

    def __init__(self) -> None:
        self.cursor = connection.cursor()
        self.context = self.cursor.cursor.copy(
            f"COPY labeling_annotation ({INSERT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        )
        self.copy = self.context.__enter__()
        self.copy.set_types(COPY_TYPES)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        write_row = self.copy.write_row
        for values in rows:
            write_row(values)

    def close(self, failed: bool = False) -> None:
        """End the COPY; with ``failed``, cancel it (PostgreSQL discards the rows) and leave the rollback to the
        transaction."""
        error = RuntimeError("the import failed") if failed else None
        try:
            self.context.__exit__(type(error) if error else None, error, None)
        finally:
            self.cursor.close()


def _client_id(project_id: int, task_external_id: str, annotator_id: int) -> str:
    """The client id of an imported judgment: unique per (project, task, annotator), which is what the unique
    (organization, annotator, client id) key needs (external ids are unique per project only)."""
    digest = hashlib.sha256(f"{project_id}\0{task_external_id}\0{annotator_id}".encode()).hexdigest()[:40]
    return f"import-{digest}"


def _tasks_lock(project: Project, external_ids: list[str]) -> dict[str, int]:
    """The project's task ids by external id, with each task's row lock taken in id order (as everyone who takes
    several does) before its judgments are read: a concurrent submit on one of them waits, then finds the imported
    judgment."""
    tasks = task_ids_by_external_id(project=project, external_ids=external_ids)
    if connection.vendor == "postgresql" and tasks:  # SQLite serialises writers: nothing to lock
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM labeling_task WHERE id = ANY(%s::int8[]) ORDER BY id FOR NO KEY UPDATE",
                [int_array(sorted(tasks.values()))],
            )
    return tasks


def judgments_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    on_error: str = "abort",
    create_annotators: bool = False,
    progress: Callable[[int], None] | None = None,
    time_limit: float | None = None,
) -> ImportReport:
    """Import judgments of ``project``'s tasks (see the module docstring); returns the report. ``time_limit``:
    seconds after which the import stops and writes nothing (``ImportTimeout``)."""
    check_options(fmt, "create", on_error)
    report = ImportReport(on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _JudgmentWriter]:
        questions = project_stored_questions(project=project)
        writer = _JudgmentWriter(project, report, create_annotators, questions)
        rules = _JudgmentRules(project, project_label_values(project=project), writer.now, questions)
        csv = fmt == "csv"
        return JUDGMENT_COLUMNS, lambda row, record: _clean_judgment(row, record, rules, report, csv), writer

    run_import(
        project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress, time_limit=time_limit
    )
    if report.committed and report.created:
        project_stats_request_refresh(project_ids=[project.pk])
    return report


# --- Predictions ---------------------------------------------------------------------------------------------------
@dataclass
class _Prediction:
    row: int
    external_id: str
    value: Any


def _clean_prediction(row: int, record: Any, report: ImportReport, csv: bool) -> _Prediction | None:
    if not isinstance(record, dict):
        report.add_error(row, "row", f"must be a JSON object, not {type(record).__name__}")
        return None
    if csv:
        record = {name: csv_value(name, value) for name, value in record.items()}
    errors: list[tuple[str, str]] = []
    _unknown_fields(record, PREDICTION_COLUMNS, errors)
    external_id = _external_id(record, errors)
    value = record.get("predictions")
    if value is None:
        errors.append(("predictions", "is required"))
    elif isinstance(value, Invalid):
        errors.append(("predictions", value.message))
    if errors or external_id is None:
        _report(row, errors, report)
        return None
    return _Prediction(row, external_id, value)


class _PredictionWriter(RowWriter):
    def __init__(self, project: Project, report: ImportReport) -> None:
        self.project = project
        self.report = report
        self.labels = sorted(project_label_values(project=project))
        self.batch: list[_Prediction] = []

    def add(self, prediction: _Prediction) -> None:
        self.batch.append(prediction)
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        tasks = _tasks_by_external_id(self.project, sorted({p.external_id for p in batch}))
        updates: list[tuple[Task, dict[str, float]]] = []
        for prediction in batch:
            task = tasks.get(prediction.external_id)
            if task is None:
                self.report.add_error(
                    prediction.row, "external_id", f"{prediction.external_id!r}: no such task in this project"
                )
                self.report.skipped += self.report.on_error == "skip"
                continue
            try:
                clean = prediction_clean(kind=self.project.kind, labels=self.labels, value=prediction.value)
            except ValidationError as error:
                self.report.add_error(prediction.row, "predictions", "; ".join(error.messages))
                self.report.skipped += self.report.on_error == "skip"
                continue
            if task.predictions == clean:
                self.report.unchanged += 1
            else:
                updates.append((task, clean))
        if not updates:
            return
        ranks = task_ranks(
            kind=self.project.kind,
            strategy=self.project.sampling_strategy,
            labels=self.labels,
            predictions=[clean for _, clean in updates],
            shuffles=[task.shuffle for task, _ in updates],
        )
        _predictions_write([(task.pk, clean, float(rank)) for (task, clean), rank in zip(updates, ranks, strict=True)])
        self.report.updated += len(updates)


# One UPDATE … FROM the batch's values, not bulk_update: its CASE WHEN per row cost about a millisecond of Python
# per task to build (2,000 predictions/s). PostgreSQL: one JSON parameter; SQLite: VALUES (column1…column3).
_PREDICTIONS_WRITE: Final = """
UPDATE labeling_task SET predictions = v.predictions, rank = v.rank
FROM {source} WHERE labeling_task.id = v.id"""
_PREDICTIONS_JSON: Final = "json_to_recordset(%s::json) AS v(id int8, predictions jsonb, rank float8)"
_PREDICTIONS_VALUES: Final = (
    "(SELECT column1 AS id, column2 AS predictions, column3 AS rank FROM (VALUES {rows}) AS prediction_values) AS v"
)


def _predictions_write(rows: list[tuple[int, dict[str, float], float]]) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            values = [{"id": pk, "predictions": clean, "rank": rank} for pk, clean, rank in rows]
            cursor.execute(_PREDICTIONS_WRITE.format(source=_PREDICTIONS_JSON), [orjson.dumps(values).decode()])
            return
        source = _PREDICTIONS_VALUES.format(rows=", ".join(["(%s, %s, %s)"] * len(rows)))
        params = [value for pk, clean, rank in rows for value in (pk, orjson.dumps(clean).decode(), rank)]
        cursor.execute(_PREDICTIONS_WRITE.format(source=source), params)


def predictions_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    on_error: str = "abort",
    progress: Callable[[int], None] | None = None,
    time_limit: float | None = None,
) -> ImportReport:
    """Attach model predictions to ``project``'s tasks by external_id (see the module docstring); ``time_limit`` as
    for ``annotations_import``."""
    check_options(fmt, "upsert", on_error)
    report = ImportReport(mode="upsert", on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _PredictionWriter]:
        return (
            PREDICTION_COLUMNS,
            lambda row, record: _clean_prediction(row, record, report, fmt == "csv"),
            _PredictionWriter(project, report),
        )

    return run_import(
        project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress, time_limit=time_limit
    )
