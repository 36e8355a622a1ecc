"""Projects: list, create, retrieve, update (``/api/v1/projects/``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import StrictSerializer, TenantAPIView, parameters_check
from labeling.models import Label, Project, ProjectKind, ProjectStats, SamplingStrategy
from labeling.questions import KINDS
from labeling.selectors import projects_questions
from labeling.services import PROJECT_UPDATABLE, project_create, project_update


class LabelSerializer(serializers.Serializer):
    value = serializers.CharField(max_length=64)
    title = serializers.CharField(max_length=100)


class OptionSerializer(serializers.Serializer):
    value = serializers.CharField(max_length=64)
    title = serializers.CharField(max_length=100)
    shortcut = serializers.CharField(max_length=1, required=False, help_text="Keyboard key (default: 1, 2, …).")


class QuestionSerializer(serializers.Serializer):
    """One question of the project's form. Settings apply to their kinds only; another kind's setting is a 400."""

    key = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}$", help_text="Identifier: the answer's key.")
    kind = serializers.ChoiceField(choices=KINDS)
    title = serializers.CharField(max_length=200)
    help = serializers.CharField(required=False, allow_blank=True)
    required = serializers.BooleanField(required=False, default=True)
    primary = serializers.BooleanField(
        required=False, default=False, help_text="Exactly one: pairwise, choice, rating (one per task) or ranking."
    )
    options = OptionSerializer(many=True, required=False, help_text="choice, multi_choice")
    min = serializers.IntegerField(required=False, help_text="rating (default 1)")
    max = serializers.IntegerField(required=False, help_text="rating")
    anchors = serializers.DictField(child=serializers.CharField(), required=False, help_text='rating: {"1": "Bad"}')
    per_response = serializers.BooleanField(required=False, help_text="rating: one rating per response")
    allow_ties = serializers.BooleanField(required=False, help_text="ranking")
    min_length = serializers.IntegerField(required=False, help_text="text, rewrite")
    max_length = serializers.IntegerField(required=False, help_text="text, rewrite")


@extend_schema_field(QuestionSerializer(many=True))
class QuestionsField(serializers.JSONField):
    """The form, checked as a whole by ``labeling.questions`` (errors name ``questions[i].field``)."""


class ProjectSettingsSerializer(StrictSerializer):
    """The settings a project is created with and may change later (all optional: defaults apply)."""

    name = serializers.CharField(max_length=200)
    instructions = serializers.CharField(allow_blank=True, required=False)
    min_judgments = serializers.IntegerField(min_value=1, max_value=50, required=False)
    max_judgments = serializers.IntegerField(min_value=1, max_value=50, required=False)
    consensus_threshold = serializers.FloatField(min_value=0.5, max_value=1, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    lease_ttl_seconds = serializers.IntegerField(min_value=30, max_value=7 * 86400, required=False)
    sampling_strategy = serializers.ChoiceField(choices=SamplingStrategy.choices, required=False)
    sensitive_daily_cap = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    auto_pause = serializers.BooleanField(required=False)
    pause_gold_threshold = serializers.FloatField(min_value=0, max_value=1, required=False)
    pause_min_gold = serializers.IntegerField(min_value=0, max_value=10_000, required=False)
    too_fast_seconds = serializers.FloatField(min_value=0, max_value=3600, required=False)
    strength_scale = serializers.BooleanField(required=False)


class ProjectCreateSerializer(ProjectSettingsSerializer):
    kind = serializers.ChoiceField(
        choices=ProjectKind.choices, required=False, help_text="Required without questions; else the primary's."
    )
    labels = LabelSerializer(many=True, required=False, help_text="Categorical projects: at least two labels.")
    questions = QuestionsField(
        required=False, help_text="The form; without it, a pairwise or categorical project has one implied question."
    )


class ProjectUpdateSerializer(ProjectSettingsSerializer):
    name = serializers.CharField(max_length=200, required=False)
    questions = QuestionsField(required=False, help_text="Replaces the form; only while there are no judgments.")


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    instructions = serializers.CharField()
    labels = LabelSerializer(many=True)
    questions = QuestionSerializer(many=True, help_text="Empty: the implied single question of the kind.")
    min_judgments = serializers.IntegerField()
    max_judgments = serializers.IntegerField()
    consensus_threshold = serializers.FloatField()
    gold_rate = serializers.FloatField()
    lease_ttl_seconds = serializers.IntegerField()
    sampling_strategy = serializers.CharField()
    sensitive_daily_cap = serializers.IntegerField(allow_null=True)
    auto_pause = serializers.BooleanField()
    pause_gold_threshold = serializers.FloatField()
    pause_min_gold = serializers.IntegerField()
    too_fast_seconds = serializers.FloatField()
    strength_scale = serializers.BooleanField()
    tasks = serializers.IntegerField(help_text="From the project's statistics (refreshed by a job).")
    complete_tasks = serializers.IntegerField()
    judgments = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _labels_by_project(organization_id: int, project_ids: list[int]) -> dict[int, list[dict[str, str]]]:
    labels: dict[int, list[dict[str, str]]] = {pk: [] for pk in project_ids}
    rows = (
        Label.objects.for_org(organization_id)
        .filter(project_id__in=project_ids)
        .order_by("project_id", "position", "id")
    )
    for project_id, value, title in rows.values_list("project_id", "value", "title"):
        labels[project_id].append({"value": value, "title": title})
    return labels


def _output(projects: list[Project]) -> list[dict[str, Any]]:
    ids = [project.pk for project in projects]
    labels = _labels_by_project(projects[0].organization_id, ids) if projects else {}
    questions = projects_questions(organization_id=projects[0].organization_id, project_ids=ids) if projects else {}
    rows = []
    for project in projects:
        stats: ProjectStats | None = getattr(project, "stats", None)
        rows.append(
            {
                **{name: getattr(project, name) for name in ("id", "kind", "created_at", "updated_at")},
                **{name: getattr(project, name) for name in PROJECT_UPDATABLE},
                "labels": labels[project.pk],
                "questions": [spec.as_dict() for spec in questions[project.pk]],
                "tasks": stats.tasks if stats else 0,
                "complete_tasks": stats.complete_tasks if stats else 0,
                "judgments": stats.judgments if stats else 0,
            }
        )
    return ProjectOutputSerializer(rows, many=True).data


class ProjectListSerializer(serializers.Serializer):
    results = ProjectOutputSerializer(many=True)


class ProjectListView(TenantAPIView):
    @extend_schema(operation_id="projects_list", responses=ProjectListSerializer, tags=["projects"])
    def get(self, request: Request) -> Response:
        parameters_check(request)
        projects = list(Project.objects.for_org(self.caller.organization_id).select_related("stats").order_by("name"))
        return Response({"results": _output(projects)})

    @extend_schema(
        operation_id="projects_create",
        request=ProjectCreateSerializer,
        responses={201: ProjectOutputSerializer},
        tags=["projects"],
    )
    def post(self, request: Request) -> Response:
        parameters_check(request)
        data = ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        labels = [(label["value"], label["title"]) for label in fields.pop("labels", [])] or None
        project = project_create(
            organization=self.caller.organization,
            name=fields.pop("name"),
            kind=fields.pop("kind", None),
            labels=labels,
            questions=fields.pop("questions", None),
            **fields,
        )
        return Response(_output([project])[0], status=status.HTTP_201_CREATED)


class ProjectDetailView(TenantAPIView):
    @extend_schema(operation_id="projects_retrieve", responses=ProjectOutputSerializer, tags=["projects"])
    def get(self, request: Request, project_id: int) -> Response:
        parameters_check(request)
        return Response(_output([self.project(project_id)])[0])

    @extend_schema(
        operation_id="projects_update",
        request=ProjectUpdateSerializer,
        responses=ProjectOutputSerializer,
        tags=["projects"],
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = self.project(project_id)
        parameters_check(request)
        data = ProjectUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_update(project=project, **data.validated_data)
        return Response(_output([project])[0])
