"""Qualifications: create, grant, opt in, and declare what projects and tasks require."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef

from labeling.models import Membership, Organization, Project, Task
from routing.models import (
    KIND_PREFIX,
    AnnotatorQualification,
    ProjectRequirement,
    Qualification,
    QualificationKind,
    TaskRequirement,
)

# A requirement as services take it: the qualification and the minimum level (1 when a plain qualification).
Requirement = tuple[Qualification, int]


def qualification_kind_for(code: str) -> str:
    """The kind a code names by its prefix: ``lang:de`` a language, ``sensitive:…`` a clearance, else a skill."""
    for kind, prefix in KIND_PREFIX.items():
        if code.startswith(prefix):
            return kind
    return QualificationKind.SKILL


@transaction.atomic
def qualification_create(*, organization: Organization, code: str, name: str = "") -> Qualification:
    code = code.strip().lower()
    qualification = Qualification(
        organization=organization, code=code, kind=qualification_kind_for(code), name=name or code
    )
    qualification.full_clean()
    qualification.save()
    return qualification


@transaction.atomic
def qualification_grant(
    *,
    qualification: Qualification,
    annotator: Any,
    level: int = 1,
    expires_at: datetime | None = None,
    opted_in: bool | None = None,
) -> AnnotatorQualification:
    """Grant (or re-grant with a new level/expiry) ``qualification`` to a member of its organization."""
    if not Membership.objects.for_org(qualification.organization_id).filter(user=annotator).exists():
        raise ValidationError({"annotator": "is not a member of this organization"})
    if level < 1:
        raise ValidationError({"level": "must be at least 1"})
    grant, created = AnnotatorQualification.objects.get_or_create(
        qualification=qualification,
        annotator=annotator,
        defaults={"organization_id": qualification.organization_id, "level": level, "expires_at": expires_at},
    )
    if not created:
        grant.level, grant.expires_at = level, expires_at
    if opted_in is not None:
        grant.opted_in = opted_in
    grant.save()
    return grant


def qualification_opt_in(*, grant: AnnotatorQualification, opted_in: bool) -> AnnotatorQualification:
    """The annotator agrees (or no longer agrees) to see the content a sensitivity clearance covers."""
    grant.opted_in = opted_in
    grant.save(update_fields=["opted_in"])
    return grant


def _requirements_clean(organization_id: int, requirements: Iterable[Requirement]) -> list[Requirement]:
    cleaned = list(requirements)
    for qualification, min_level in cleaned:
        if qualification.organization_id != organization_id:
            raise ValidationError(
                {"requirements": f"{qualification.code!r} is not a qualification of this organization"}
            )
        if min_level < 1:
            raise ValidationError({"requirements": f"{qualification.code!r}: the minimum level must be at least 1"})
    return cleaned


@transaction.atomic
def task_requirements_set(*, task: Task, requirements: Iterable[Requirement]) -> None:
    """Replace ``task``'s requirements and keep its routing flags in step."""
    cleaned = _requirements_clean(task.organization_id, requirements)
    TaskRequirement.objects.for_org(task.organization_id).filter(task=task).delete()
    TaskRequirement.objects.bulk_create(
        TaskRequirement(organization_id=task.organization_id, task=task, qualification=q, min_level=level)
        for q, level in cleaned
    )
    task_requirement_flags_refresh(task_ids=[task.pk])


def task_requirement_flags_refresh(*, task_ids: Iterable[int]) -> None:
    """Recompute ``is_restricted`` / ``is_sensitive`` of these tasks from their requirement rows."""
    ids = list(task_ids)
    requirements = TaskRequirement.objects.filter(task=OuterRef("pk"))
    Task.objects.filter(pk__in=ids).update(
        is_restricted=Exists(requirements),
        is_sensitive=Exists(requirements.filter(qualification__kind=QualificationKind.SENSITIVITY)),
    )


@transaction.atomic
def project_requirements_set(*, project: Project, requirements: Iterable[Requirement]) -> None:
    cleaned = _requirements_clean(project.organization_id, requirements)
    ProjectRequirement.objects.for_org(project.organization_id).filter(project=project).delete()
    ProjectRequirement.objects.bulk_create(
        ProjectRequirement(organization_id=project.organization_id, project=project, qualification=q, min_level=level)
        for q, level in cleaned
    )
