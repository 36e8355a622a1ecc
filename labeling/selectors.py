"""Reads for labeling. Tenant data is always read through ``for_org`` (see ``labeling/tenancy.py``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from labeling.models import Label, Membership, Organization, Project, Question, Role
from labeling.questions import Option, QuestionSpec


def user_can_manage_any_organization(*, user: Any) -> bool:
    return Membership.objects.filter(user=user, role__in=[Role.ADMIN, Role.MANAGER]).exists()


def organization_users(*, organization: Organization | int) -> QuerySet:
    """The accounts that are members of ``organization`` (for choices in forms)."""
    return get_user_model().objects.filter(memberships__organization=organization).distinct()


def organization_admin_count(*, organization: Organization | int) -> int:
    return Membership.objects.for_org(organization).filter(role=Role.ADMIN).count()


def project_label_values(*, project: Project) -> set[str]:
    return set(Label.objects.for_org(project.organization_id).filter(project=project).values_list("value", flat=True))


def question_spec(question: Question) -> QuestionSpec:
    return QuestionSpec(
        key=question.key,
        kind=question.kind,
        title=question.title,
        help=question.help,
        required=question.required,
        primary=question.primary,
        options=tuple(Option(o["value"], o["title"], o.get("shortcut", "")) for o in question.options or ()),
        min=question.min_value,
        max=question.max_value,
        anchors=dict(question.anchors or {}),
        per_response=question.per_response,
        allow_ties=question.allow_ties,
        min_length=question.min_length,
        max_length=question.max_length,
    )


def project_stored_questions(*, project: Project) -> list[QuestionSpec]:
    """The project's own questions in order; empty for a project with the implied single question."""
    return project_questions_of(organization_id=project.organization_id, project_id=project.pk)


def project_questions_of(*, organization_id: int, project_id: int) -> list[QuestionSpec]:
    """The stored questions of a project known by id (the submit, before it locks anything)."""
    rows = Question.objects.for_org(organization_id).filter(project_id=project_id).order_by("position", "id")
    return [question_spec(row) for row in rows]


def projects_questions(*, organization_id: int, project_ids: list[int]) -> dict[int, list[QuestionSpec]]:
    """Stored questions of several projects at once (the API's project list): ``{project id: [spec, …]}``."""
    found: dict[int, list[QuestionSpec]] = {pk: [] for pk in project_ids}
    rows = Question.objects.for_org(organization_id).filter(project_id__in=project_ids).order_by("position", "id")
    for row in rows:
        found[row.project_id].append(question_spec(row))
    return found


def project_has_questions(*, project: Project) -> bool:
    return Question.objects.for_org(project.organization_id).filter(project=project).exists()
