"""Writes for labeling: each service validates, writes in one transaction and schedules jobs on commit."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from labeling.models import (
    DECISIVE_LABELS,
    PAIRWISE_LABELS,
    Judgment,
    Label,
    Membership,
    Organization,
    Project,
    ProjectKind,
    ProjectStats,
    Question,
    Role,
    Strength,
    Task,
    TaskStatus,
)
from labeling.questions import PROJECT_KIND_OF_PRIMARY, QuestionSpec, primary_labels, primary_of, questions_parse
from labeling.queueing import job_enqueue_on_commit
from labeling.ranking import prediction_clean, task_rank_for
from labeling.selectors import project_label_values, project_stored_questions
from labeling.validation import gold_label_error, label_value_error, payload_errors


def payload_clean(*, kind: str, payload: Any) -> dict[str, Any]:
    """``payload`` if valid for ``kind``; otherwise ``ValidationError`` naming every bad field."""
    errors = payload_errors(kind, payload)
    if errors:
        raise ValidationError({"payload": [f"{field}: {message}" for field, message in errors.items()]})
    return payload


def project_ensure_pairwise_labels(*, project: Project) -> None:
    """Pairwise projects always have exactly the four fixed labels; extra ones are refused elsewhere."""
    if project.kind != ProjectKind.PAIRWISE:
        return
    for position, (value, title, shortcut) in enumerate(PAIRWISE_LABELS):
        Label.objects.get_or_create(
            project=project,
            value=value,
            defaults={
                "organization_id": project.organization_id,
                "title": title,
                "shortcut": shortcut,
                "position": position,
            },
        )


def _labels_create(project: Project, labels: list[tuple[str, str, str]]) -> None:
    Label.objects.bulk_create(
        Label(
            organization_id=project.organization_id,
            project=project,
            value=value,
            title=title[:100],
            shortcut=shortcut,
            position=position,
        )
        for position, (value, title, shortcut) in enumerate(labels)
    )


def _questions_store(project: Project, specs: list[QuestionSpec]) -> None:
    Question.objects.for_org(project.organization_id).filter(project=project).delete()
    Question.objects.bulk_create(
        Question(
            organization_id=project.organization_id,
            project=project,
            key=spec.key,
            kind=spec.kind,
            title=spec.title,
            help=spec.help,
            required=spec.required,
            primary=spec.primary,
            position=position,
            options=[{"value": o.value, "title": o.title, "shortcut": o.shortcut} for o in spec.options],
            min_value=spec.min,
            max_value=spec.max,
            anchors=spec.anchors,
            per_response=spec.per_response,
            allow_ties=spec.allow_ties,
            min_length=spec.min_length,
            max_length=spec.max_length,
        )
        for position, spec in enumerate(specs)
    )


def _questions_labels(specs: list[QuestionSpec]) -> list[tuple[str, str, str]]:
    return primary_labels(primary_of(specs))


@transaction.atomic
def project_create(
    *,
    organization: Organization,
    name: str,
    kind: str | None = None,
    labels: list[tuple[str, str]] | None = None,
    questions: list[Any] | None = None,
    **options: Any,
) -> Project:
    """Create a project with its labels: the fixed four for pairwise, ``labels`` (value, title) for categorical.

    With ``questions`` (``labeling.questions``), the form decides: the kind is the primary question's (``kind``, if
    given, must agree), and the labels are the primary question's answers (ranking and rating projects have only
    this way in)."""
    specs: list[QuestionSpec] = []
    if questions is not None:
        specs, errors = questions_parse(questions, kind=kind)
        if errors:
            raise ValidationError(errors)
        if labels:
            raise ValidationError({"labels": "give the options in the primary question, not as labels"})
        kind = PROJECT_KIND_OF_PRIMARY[primary_of(specs).kind]
    elif kind in (ProjectKind.RANKING, ProjectKind.RATING):
        raise ValidationError({"questions": f"a {kind} project needs its questions (one of them primary)"})
    if kind is None:
        raise ValidationError({"kind": "is required (or give questions)"})
    project = Project(organization=organization, name=name, kind=kind, **options)
    project.full_clean()
    project.save()
    if specs:
        _questions_store(project, specs)
        if kind == ProjectKind.PAIRWISE:
            project_ensure_pairwise_labels(project=project)
        else:
            _labels_create(project, _questions_labels(specs))
        return project
    if kind == ProjectKind.PAIRWISE:
        if labels:
            raise ValidationError({"labels": "Pairwise projects use the fixed labels a, b, tie and both_bad."})
        project_ensure_pairwise_labels(project=project)
        return project
    if not labels or len(labels) < 2:
        raise ValidationError({"labels": "A categorical project needs at least two labels."})
    values = [value for value, _ in labels]
    if len(set(values)) != len(values):
        raise ValidationError({"labels": "Each label needs a value of its own (a value is given twice)."})
    for value, _ in labels:
        error = label_value_error(value)
        if error:
            raise ValidationError({"labels": f"{value!r} {error}"})
    _labels_create(
        project,
        [(value, title, str(position + 1) if position < 9 else "") for position, (value, title) in enumerate(labels)],
    )
    return project


@transaction.atomic
def project_questions_replace(*, project: Project, questions: list[Any]) -> list[QuestionSpec]:
    """Replace the project's form. Allowed while it has no judgments; once it has tasks, the primary question's
    kind and answers (its labels, which gold answers and predictions name) must stay as they are."""
    specs, errors = questions_parse(questions, kind=project.kind)
    if errors:
        raise ValidationError(errors)
    locked = Project.objects.for_org(project.organization_id).select_for_update().get(pk=project.pk)
    if Judgment.objects.for_org(project.organization_id).filter(project=locked).exists():
        raise ValidationError({"questions": "cannot change once the project has judgments"})
    labels = _questions_labels(specs)
    current = project_label_values(project=locked)
    if {value for value, _, _ in labels} != current:
        if Task.objects.for_org(project.organization_id).filter(project=locked).exists():
            raise ValidationError(
                {"questions": "the primary question's answers cannot change once the project has tasks"}
            )
        Label.objects.for_org(project.organization_id).filter(project=locked).delete()
        _labels_create(locked, labels)
    else:  # the same answers: their titles, keys and order follow the form (pages and exports show them)
        stored = {label.value: label for label in Label.objects.for_org(project.organization_id).filter(project=locked)}
        changed = []
        for position, (value, title, shortcut) in enumerate(labels):
            label = stored[value]
            if (label.title, label.shortcut, label.position) != (title[:100], shortcut, position):
                label.title, label.shortcut, label.position = title[:100], shortcut, position
                changed.append(label)
        Label.objects.bulk_update(changed, ["title", "shortcut", "position"])
    _questions_store(locked, specs)
    return project_stored_questions(project=locked)


#: Project settings that may change after creation (the kind fixes every task's payload shape: never).
PROJECT_UPDATABLE = (
    "name",
    "instructions",
    "min_judgments",
    "max_judgments",
    "consensus_threshold",
    "gold_rate",
    "lease_ttl_seconds",
    "sampling_strategy",
    "sensitive_daily_cap",
    "auto_pause",
    "pause_gold_threshold",
    "pause_min_gold",
    "too_fast_seconds",
    "strength_scale",
)


def project_ranks_request_refresh(*, project: Project) -> None:
    """Re-rank the project's tasks (a new sampling strategy) in a job, once the transaction commits."""
    if_lost = "the tasks keep their ranks until the next re-rank (a sampling strategy change, a predictions import)"
    job_enqueue_on_commit("labeling.jobs.refresh_project_ranks_job", (project.pk,), if_lost=if_lost)


@transaction.atomic
def project_update(*, project: Project, **fields: Any) -> Project:
    """Change a project's settings (``PROJECT_UPDATABLE``) and, with ``questions``, its form
    (``project_questions_replace``), all or nothing; a new sampling strategy re-ranks its tasks."""
    if "questions" in fields:
        project_questions_replace(project=project, questions=fields.pop("questions"))
    unknown = sorted(set(fields) - set(PROJECT_UPDATABLE))
    if unknown:
        raise ValidationError({name: "cannot be changed" for name in unknown})
    strategy = project.sampling_strategy
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean()
    project.save()
    if project.sampling_strategy != strategy:
        project_ranks_request_refresh(project=project)
    return project


@transaction.atomic
def task_create(
    *,
    project: Project,
    external_id: str,
    payload: dict[str, Any],
    meta: dict[str, Any] | None = None,
    gold_label: str | None = None,
    predictions: Any = None,
) -> Task:
    """Create one task; its sampling rank follows the project's strategy (``labeling/ranking.py``)."""

    errors: dict[str, Any] = {}
    if not isinstance(external_id, str) or not external_id.strip():
        errors["external_id"] = "is required"
    try:
        payload_clean(kind=project.kind, payload=payload)
    except ValidationError as error:
        errors.update(error.message_dict)
    if (
        problem := gold_label_error(project.kind, gold_label, payload, project_label_values(project=project))
    ) is not None:
        errors["gold_label"] = problem
    if meta is not None and not isinstance(meta, dict):
        errors["meta"] = "must be a JSON object"
    if predictions is not None:
        try:
            predictions = prediction_clean(
                kind=project.kind, labels=sorted(project_label_values(project=project)), value=predictions
            )
        except ValidationError as error:
            errors["predictions"] = "; ".join(error.messages)
    if errors:
        raise ValidationError(errors)
    if Task.objects.for_org(project.organization_id).filter(project=project, external_id=external_id).exists():
        raise ValidationError({"external_id": f"{external_id!r} already exists in this project"})
    task = Task(
        organization_id=project.organization_id,
        project=project,
        external_id=external_id,
        payload=payload,
        meta=meta or {},
        gold_label=gold_label,
        predictions=predictions,
    )
    task.rank = task_rank_for(project=project, predictions=predictions, shuffle=task.shuffle)
    task.save()
    return task


def _seconds_error(value: Any) -> str | None:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or not 0 <= value < 7 * 86400:
        return "must be a number of seconds from 0 to 604800"
    return None


def judgment_errors(
    *,
    kind: str,
    label: str,
    label_known: bool,
    client_id: str,
    a_left: bool | None,
    seconds_on_task: float,
    active_seconds: float | None = None,
    strength: int | None = None,
    strength_scale: bool = False,
) -> dict[str, str]:
    """Every field of a judgment that a project of ``kind`` cannot accept (``label_known``: among its labels;
    ``strength_scale``: the project asks how much better on decisive pairwise judgments)."""
    errors: dict[str, str] = {}
    if not isinstance(client_id, str) or not client_id:
        errors["client_id"] = "is required"
    elif len(client_id) > 64:
        errors["client_id"] = "must be at most 64 characters"
    if not label_known:
        errors["label"] = f"{label!r} is not one of this project's labels"
    if kind == ProjectKind.PAIRWISE and a_left is None:
        errors["a_left"] = "is required for pairwise judgments (was response A shown on the left?)"
    if kind != ProjectKind.PAIRWISE and a_left is not None:
        errors["a_left"] = "applies to pairwise projects only"
    if error := _strength_error(kind=kind, label=label, strength=strength, strength_scale=strength_scale):
        errors["strength"] = error
    if error := _seconds_error(seconds_on_task):
        errors["seconds_on_task"] = error
    if active_seconds is not None and (error := _seconds_error(active_seconds)):
        errors["active_seconds"] = error
    return errors


def _strength_error(*, kind: str, label: str, strength: int | None, strength_scale: bool) -> str | None:
    decisive = kind == ProjectKind.PAIRWISE and label in DECISIVE_LABELS
    if strength is None:
        return "is required: how much better (1 slightly, 2 clearly, 3 much)" if decisive and strength_scale else None
    if not strength_scale:
        return "applies only to pairwise projects with a strength scale"
    if not decisive:
        return "applies only to a judgment that prefers A or B"
    if isinstance(strength, bool) or strength not in Strength.values:
        return "must be 1 (slightly), 2 (clearly) or 3 (much)"
    return None


def judgment_validate(
    *,
    project: Project,
    label: str,
    client_id: str,
    a_left: bool | None,
    seconds_on_task: float,
    strength: int | None = None,
) -> None:
    """Raise ``ValidationError`` naming every field of a judgment that ``project`` cannot accept."""
    errors = judgment_errors(
        kind=project.kind,
        label=label,
        label_known=label in project_label_values(project=project),
        client_id=client_id,
        a_left=a_left,
        seconds_on_task=seconds_on_task,
        strength=strength,
        strength_scale=project.strength_scale,
    )
    if errors:
        raise ValidationError(errors)


def judgment_by_client_id(*, organization_id: int, annotator: AbstractBaseUser, client_id: str) -> Judgment | None:
    return (
        Judgment.objects.for_org(organization_id)
        .filter(annotator=annotator, client_id=client_id)
        .order_by("pk")
        .first()
    )


@transaction.atomic
def project_stats_refresh(*, project_id: int) -> ProjectStats | None:
    """Recount a project's tasks and judgments from rows and upsert its stats. Safe to run twice or concurrently.

    Returns ``None`` when the project no longer exists (a job may outlive a deletion). Queued by
    ``quality.services.project_stats_request_refresh``, whose job then asks for the project's quality recompute.
    """
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None
    tasks = Task.objects.for_org(project.organization_id).filter(project=project)
    counts = tasks.aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status=TaskStatus.OPEN)),
        complete=Count("id", filter=Q(status=TaskStatus.COMPLETE)),
        gold=Count("id", filter=Q(gold_label__isnull=False)),
    )
    judgments = (
        Judgment.objects.for_org(project.organization_id)
        .filter(project=project)
        .aggregate(total=Count("id"), annotators=Count("annotator", distinct=True))
    )
    stats, _ = ProjectStats.objects.update_or_create(
        project=project,
        defaults={
            "organization_id": project.organization_id,
            "tasks": counts["total"],
            "open_tasks": counts["open"],
            "complete_tasks": counts["complete"],
            "gold_tasks": counts["gold"],
            "judgments": judgments["total"],
            "annotators": judgments["annotators"],
            "refreshed_at": timezone.now(),
        },
    )
    return stats


@transaction.atomic
def membership_create(*, organization: Organization, user: AbstractBaseUser, role: str) -> Membership:
    """Make ``user`` a member of ``organization`` with ``role``, for operators' tools that act for the person
    themselves (``seed_demo``). Requests never call this on someone else's behalf: people join by accepting an
    invitation (``labeling.invitations``), so an organization cannot add an account that did not agree to it."""
    if role not in Role.values:
        raise ValidationError({"role": f"{role!r} is not a role"})
    if Membership.objects.for_org(organization).filter(user=user).exists():
        raise ValidationError({"user": f"{user} is already a member of {organization}."})
    return Membership.objects.create(organization=organization, user=user, role=role)
