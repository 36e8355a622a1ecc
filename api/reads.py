"""Read endpoints for a project's rows: tasks (with filters) and judgments, keyset-paginated by id.

Parameters come from an allow-list; anything else (an ORM path such as ``annotator__password``, a typo) is 400.
Pages: ``?after=<id>&limit=<n>`` (1-1,000, default 100); the response's ``next`` is the URL of the next page.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import TenantAPIView, flag_parameter, parameters_check
from exchange.exports import annotator_pseudonym
from labeling.models import Judgment, Task, TaskStatus
from labeling.selectors import project_has_questions

PAGE_PARAMETERS = [
    OpenApiParameter("after", int, description="Return rows with an id above this (from the previous page)."),
    OpenApiParameter("limit", int, description="Rows per page, 1-1,000 (default 100)."),
]


def _page(request: Request, queryset: QuerySet, allowed: tuple[str, ...]) -> tuple[QuerySet, int]:
    parameters_check(request, ("after", "limit", *allowed))
    params = request.query_params
    numbers: dict[str, int] = {}
    for name, default in (("after", 0), ("limit", 100)):
        try:
            numbers[name] = int(params.get(name, default))
        except ValueError:
            raise ValidationError({name: ["must be a whole number"]}) from None
    after, limit = numbers["after"], numbers["limit"]
    if not 1 <= limit <= 1000:
        raise ValidationError({"limit": ["must be from 1 to 1000"]})
    return queryset.filter(id__gt=after).order_by("id"), limit


def _respond(request: Request, rows: list[dict[str, Any]], limit: int) -> Response:
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        query = request.query_params.copy()
        query["after"] = str(rows[-1]["id"])
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return Response({"results": rows, "next": next_url})


class TaskListView(TenantAPIView):
    @extend_schema(
        operation_id="tasks_list",
        parameters=[
            OpenApiParameter("status", str, enum=list(TaskStatus.values)),
            OpenApiParameter("gold", bool),
            OpenApiParameter("has_consensus", bool, description="The quality engine has a consensus for it."),
            *PAGE_PARAMETERS,
        ],
        responses=OpenApiTypes.OBJECT,
        tags=["tasks"],
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project(project_id)
        tasks = Task.objects.for_org(self.caller.organization_id).filter(project=project)
        tasks, limit = _page(request, tasks, ("status", "gold", "has_consensus"))
        status = request.query_params.get("status")
        if status is not None:
            if status not in TaskStatus.values:
                raise ValidationError({"status": [f"must be one of {', '.join(TaskStatus.values)}"]})
            tasks = tasks.filter(status=status)
        if (gold := flag_parameter(request, "gold")) is not None:
            tasks = tasks.filter(gold_label__isnull=not gold)
        if (has_consensus := flag_parameter(request, "has_consensus")) is not None:
            tasks = tasks.filter(quality_consensus__isnull=not has_consensus)
        rows = list(
            tasks.annotate(
                consensus=F("quality_consensus__label"), consensus_confidence=F("quality_consensus__confidence")
            ).values(
                "id",
                "external_id",
                "payload",
                "meta",
                "gold_label",
                "status",
                "resolution",
                "judgment_count",
                "consensus",
                "consensus_confidence",
                "completed_at",
                "created_at",
            )[: limit + 1]
        )
        return _respond(request, rows, limit)


class JudgmentListView(TenantAPIView):
    @extend_schema(
        operation_id="annotations_list", parameters=PAGE_PARAMETERS, responses=OpenApiTypes.OBJECT, tags=["judgments"]
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = self.project(project_id)
        judgments = Judgment.objects.for_org(self.caller.organization_id).filter(project=project)
        judgments, limit = _page(request, judgments, ())
        fields = ["id", "external_id", "annotator_id", "label", "a_left", "strength", "seconds_on_task", "created_at"]
        if project_has_questions(project=project):  # the answers, and the order the responses were shown in
            fields += ["answers", "response_order"]
        rows = list(judgments.annotate(external_id=F("task__external_id")).values(*fields)[: limit + 1])
        org = self.caller.organization_id
        for row in rows:
            row["annotator"] = annotator_pseudonym(org, row.pop("annotator_id"))
        return _respond(request, rows, limit)
