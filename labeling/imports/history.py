"""Imports for tasks that exist already: judgments made elsewhere (to migrate history from another tool) and
model predictions (for active learning). Same readers, reports and all-or-nothing rule as the task import.

Judgment rows: ``external_id`` (the task's), ``annotator`` (an e-mail address, or an id from the other tool,
which becomes ``<id>@external.invalid``), ``label``, ``a_left`` (pairwise: was response A shown on the left),
``seconds`` (time on task), ``created_at`` (ISO 8601; default now), ``strength`` (projects with a strength scale).
An annotator who is not a member of the organization is an error, unless ``create_annotators``: then they are
added as an annotator (a new account has no usable password until an admin sets one). Re-importing a judgment of
the same task by the same annotator leaves it as it is (``unchanged``). Each task touched is recounted and
settled as a submit would settle it, and the quality recompute follows.

Prediction rows: ``external_id`` and ``predictions`` (pairwise: P(A better) or ``{"a": p}``; categorical:
``{label: p}``). The task's sampling rank follows at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Max, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from labeling.imports.reading import ImportReport, Invalid, RowWriter, check_options, csv_value, run_import
from labeling.models import Annotation, Membership, Project, Role, Task
from labeling.services import annotation_errors, project_label_values, project_stats_request_refresh

JUDGMENT_COLUMNS: Final = ("external_id", "annotator", "label", "a_left", "strength", "seconds", "created_at")
PREDICTION_COLUMNS: Final = ("external_id", "predictions")
BATCH: Final = 1_000
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_.\-:]{1,100}$")


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
    tasks = Task.objects.for_org(project.organization_id).filter(project=project, external_id__in=external_ids)
    return {task.external_id: task for task in tasks}


# --- Judgments -----------------------------------------------------------------------------------------------------
@dataclass
class _Judgment:
    row: int
    external_id: str
    email: str
    label: str
    a_left: bool | None
    strength: int | None
    seconds: float
    created_at: datetime | None


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


def _clean_judgment(
    row: int, record: Any, project: Project, labels: set[str], report: ImportReport, csv: bool
) -> _Judgment | None:
    if not isinstance(record, dict):
        report.add_error(row, "row", f"must be a JSON object, not {type(record).__name__}")
        return None
    errors: list[tuple[str, str]] = []
    if csv:
        record = {**record, "a_left": _boolean(record.get("a_left")) if "a_left" in record else None}
        for name, cast in (("seconds", float), ("strength", int)):
            if name in record:
                record[name] = _number(record[name], cast)
    for name, value in record.items():
        if isinstance(value, Invalid):
            errors.append((name, value.message))
    _unknown_fields(record, JUDGMENT_COLUMNS, errors)
    external_id = _external_id(record, errors)
    annotator = record.get("annotator")
    email = ""
    if isinstance(annotator, int) and not isinstance(annotator, bool):
        annotator = str(annotator)
    if not isinstance(annotator, str) or not annotator.strip():
        errors.append(("annotator", "is required: an e-mail address or the annotator's id in the other tool"))
    elif EMAIL_RE.match(annotator.strip()):
        email = annotator.strip().lower()
    elif EXTERNAL_ID_RE.match(annotator.strip()):
        email = f"{annotator.strip().lower()}@external.invalid"
    else:
        errors.append(("annotator", "must be an e-mail address or an id of letters, digits and . _ - :"))
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
    if not errors:
        problems = annotation_errors(
            kind=project.kind,
            label=label,
            label_known=label in labels,
            client_id="import",
            a_left=a_left,
            seconds_on_task=seconds,
            strength=strength,
            strength_scale=project.strength_scale,
        )
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
            if created_at > timezone.now():
                errors.append(("created_at", "is in the future"))
    if errors or external_id is None:
        _report(row, errors, report)
        return None
    return _Judgment(row, external_id, email, label, a_left, strength, float(seconds), created_at)


class _JudgmentWriter(RowWriter):
    def __init__(self, project: Project, report: ImportReport, create_annotators: bool) -> None:
        self.project = project
        self.report = report
        self.create_annotators = create_annotators
        self.batch: list[_Judgment] = []
        # Imports into the project are serialised: judgments above this id were made by this import, so finding
        # one for a row's (task, annotator) means an earlier row of the file had it.
        annotations = Annotation.objects.for_org(project.organization_id).filter(project=project)
        self.max_before = annotations.aggregate(top=Max("id"))["top"] or 0

    def add(self, judgment: _Judgment) -> None:
        self.batch.append(judgment)
        if len(self.batch) >= BATCH:
            self.flush()

    def _reject(self, row: int, name: str, message: str) -> None:
        self.report.add_error(row, name, message)
        self.report.skipped += self.report.on_error == "skip"

    def _annotators(self, emails: set[str]) -> dict[str, int]:
        """User ids by e-mail for the batch: members of the organization, plus (``create_annotators``) the rest."""
        org = self.project.organization_id
        User = get_user_model()
        users: dict[str, Any] = {}
        matches = User.objects.annotate(email_l=Lower("email"), username_l=Lower("username")).filter(
            Q(email_l__in=emails) | Q(username_l__in=emails)
        )
        for user in matches.order_by("id"):
            for key in (user.email.lower(), user.username.lower()):
                if key in emails:
                    users.setdefault(key, user)
        members = set(Membership.objects.for_org(org).filter(user__in=users.values()).values_list("user_id", flat=True))
        found = {email: user.pk for email, user in users.items() if user.pk in members}
        if self.create_annotators:
            for email in sorted(emails - set(found)):
                user = users.get(email)
                if user is None:
                    user = User(username=email, email=email)
                    user.set_unusable_password()
                    user.save()
                Membership.objects.create(organization_id=org, user=user, role=Role.ANNOTATOR)
                found[email] = user.pk
        return found

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if not batch:
            return
        tasks = _tasks_by_external_id(self.project, sorted({j.external_id for j in batch}))
        annotators = self._annotators({j.email for j in batch})
        existing = {
            (task_id, annotator_id): pk
            for pk, task_id, annotator_id in Annotation.objects.for_org(self.project.organization_id)
            .filter(task__in=list(tasks.values()), annotator_id__in=list(annotators.values()))
            .values_list("id", "task_id", "annotator_id")
        }
        seen: set[tuple[int, int]] = set()
        new: list[tuple[_Judgment, Annotation]] = []
        for judgment in batch:
            task = tasks.get(judgment.external_id)
            user_id = annotators.get(judgment.email)
            if task is None:
                self._reject(judgment.row, "external_id", f"{judgment.external_id!r}: no such task in this project")
            elif user_id is None:
                self._reject(
                    judgment.row, "annotator", f"{judgment.email} is not a member (add create_annotators=1 to add them)"
                )
            elif (task.pk, user_id) in seen or existing.get((task.pk, user_id), 0) > self.max_before:
                self._reject(judgment.row, "annotator", "judges this task a second time in this file")
            elif (task.pk, user_id) in existing:
                self.report.unchanged += 1
            else:
                seen.add((task.pk, user_id))
                client_id = (
                    "import-" + hashlib.sha256(f"{judgment.external_id}\0{judgment.email}".encode()).hexdigest()[:40]
                )
                new.append(
                    (
                        judgment,
                        Annotation(
                            organization_id=self.project.organization_id,
                            project=self.project,
                            task=task,
                            annotator_id=user_id,
                            label=judgment.label,
                            a_left=judgment.a_left,
                            strength=judgment.strength,
                            seconds_on_task=judgment.seconds,
                            client_id=client_id,
                        ),
                    )
                )
        if not new:
            return
        created = Annotation.objects.bulk_create([annotation for _, annotation in new])
        dated = [
            Annotation(pk=annotation.pk, created_at=judgment.created_at)
            for (judgment, _), annotation in zip(new, created, strict=True)
            if judgment.created_at is not None
        ]
        if dated:
            Annotation.objects.bulk_update(dated, ["created_at"])
        self.report.created += len(created)
        # Recount and settle every task that got judgments, as a submit would (under each task's row lock).
        from routing.services import task_progress_refresh

        touched = sorted({annotation.task_id for annotation in created})
        for task in Task.objects.for_org(self.project.organization_id).filter(pk__in=touched):
            task_progress_refresh(task=task, project=self.project)


def annotations_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    on_error: str = "abort",
    create_annotators: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import judgments of ``project``'s tasks (see the module docstring); returns the report."""
    check_options(fmt, "create", on_error)
    report = ImportReport(on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _JudgmentWriter]:
        labels = project_label_values(project=project)
        writer = _JudgmentWriter(project, report, create_annotators)
        return (
            JUDGMENT_COLUMNS,
            lambda row, record: _clean_judgment(row, record, project, labels, report, fmt == "csv"),
            writer,
        )

    run_import(project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress)
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
        from routing.ranking import prediction_clean, task_ranks

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
        Task.objects.bulk_update(
            [
                Task(pk=task.pk, predictions=clean, rank=float(rank))
                for (task, clean), rank in zip(updates, ranks, strict=True)
            ],
            ["predictions", "rank"],
        )
        self.report.updated += len(updates)


def predictions_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    on_error: str = "abort",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Attach model predictions to ``project``'s tasks by external_id (see the module docstring)."""
    check_options(fmt, "upsert", on_error)
    report = ImportReport(mode="upsert", on_error=on_error)

    def setup() -> tuple[tuple[str, ...], Callable[[int, Any], Any], _PredictionWriter]:
        return (
            PREDICTION_COLUMNS,
            lambda row, record: _clean_prediction(row, record, report, fmt == "csv"),
            _PredictionWriter(project, report),
        )

    return run_import(project=project, stream=stream, fmt=fmt, report=report, setup=setup, progress=progress)
