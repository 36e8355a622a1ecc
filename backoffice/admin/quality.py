"""Customer admin for the quality engine's stored results: read-only records of what the recompute job wrote.

Everything here is recomputed from the judgments, so nothing is edited by hand: an annotator is un-paused on the
project's quality dashboard (which records who and when), and a recompute is requested there or with
``python manage.py recompute_quality``. Scoped to the acting organization like every tenant admin.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from backoffice.base import TenantAdmin
from labeling.models import Role
from quality.models import AnnotatorScore, Flag, ModelRanking, ProjectQuality, QualityJob, TaskConsensus


class ResultAdmin(TenantAdmin):
    """Viewable by the organization's admins and managers; never added or changed here. Admins may delete rows
    (with their project, which cascades; a deleted row comes back at the next recompute, a deleted score with its
    pause window reset, so it re-pauses an annotator who is still flagged)."""

    edit_roles = ()
    list_select_related = ("project",)
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role_allows(request, (Role.ADMIN,), obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in self.model._meta.fields]


@admin.register(AnnotatorScore)
class AnnotatorScoreAdmin(ResultAdmin):
    list_display = (
        "annotator",
        "project",
        "n_judgments",
        "gold_accuracy",
        "agreement",
        "kappa_mean",
        *Flag.values,
        "paused_at",
    )
    list_filter = ("project", *Flag.values)
    list_select_related = ("project", "annotator")
    search_fields = ("annotator__username", "annotator__email")


@admin.register(TaskConsensus)
class TaskConsensusAdmin(ResultAdmin):
    list_display = ("task", "project", "label", "confidence", "agreement", "n_judgments", "method", "computed_at")
    list_filter = ("project", "method", "label")
    list_select_related = ("project", "task")
    search_fields = ("task__external_id",)


@admin.register(ProjectQuality)
class ProjectQualityAdmin(ResultAdmin):
    list_display = (
        "project",
        "computed_at",
        "n_judgments",
        "completion",
        "fleiss_kappa",
        "krippendorff_alpha",
        "percent_agreement",
    )
    list_filter = ("project",)


@admin.register(ModelRanking)
class ModelRankingAdmin(ResultAdmin):
    list_display = ("project", "rank", "model_name", "theta", "low", "high", "battles", "regularised")
    list_filter = ("project",)
    search_fields = ("model_name",)


@admin.register(QualityJob)
class QualityJobAdmin(ResultAdmin):
    list_display = ("project", "status", "step", "progress", "runs", "started_at", "finished_at")
    list_filter = ("status",)
