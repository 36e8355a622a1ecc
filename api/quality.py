"""Read endpoints for the quality engine's results: the latest snapshot, annotator scores and flags, the model
leaderboard (``/api/v1/projects/{id}/quality``, ``…/annotators/``, ``…/models``)."""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import TenantAPIView, parameters_check
from exchange.exports import annotator_pseudonym
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob


class ProjectQualityView(TenantAPIView):
    @extend_schema(operation_id="quality_retrieve", responses=OpenApiTypes.OBJECT, tags=["quality"])
    def get(self, request: Request, project_id: int) -> Response:
        parameters_check(request)
        project = self.project(project_id)
        org = self.caller.organization_id
        snapshot = ProjectQuality.objects.for_org(org).filter(project=project).order_by("-computed_at").first()
        job = QualityJob.objects.for_org(org).filter(project=project).first()
        fields = ("n_judgments", "n_tasks", "n_complete", "n_annotators", "completion", "fleiss_kappa", "fleiss_items")
        fields += ("krippendorff_alpha", "percent_agreement", "label_counts", "confusion", "priors", "questions")
        fields += ("computed_at",)
        return Response(
            {
                "snapshot": model_to_dict(snapshot, fields=fields) | {"computed_at": snapshot.computed_at}
                if snapshot
                else None,
                "job": {
                    "status": job.status,
                    "step": job.step,
                    "progress": job.progress,
                    "finished_at": job.finished_at,
                }
                if job
                else None,
            }
        )


class AnnotatorScoreListView(TenantAPIView):
    @extend_schema(operation_id="annotators_list", responses=OpenApiTypes.OBJECT, tags=["quality"])
    def get(self, request: Request, project_id: int) -> Response:
        parameters_check(request)
        project = self.project(project_id)
        org = self.caller.organization_id
        scores = AnnotatorScore.objects.for_org(org).filter(project=project).select_related("annotator")
        rows: list[dict[str, Any]] = []
        for score in scores.order_by("annotator__email"):
            row = model_to_dict(score, exclude=("id", "organization", "project", "annotator", "unpaused_by"))
            row |= {
                "annotator": annotator_pseudonym(org, score.annotator_id),
                "email": score.annotator.email,
                "flags": score.flags,
                "paused": score.paused_at is not None,
            }
            rows.append(row)
        return Response({"results": rows})


class ModelRankingListView(TenantAPIView):
    @extend_schema(operation_id="models_list", responses=OpenApiTypes.OBJECT, tags=["quality"])
    def get(self, request: Request, project_id: int) -> Response:
        parameters_check(request)
        project = self.project(project_id)
        rankings = ModelRanking.objects.for_org(self.caller.organization_id).filter(project=project).order_by("rank")
        fields = ("model_name", "rank", "theta", "low", "high", "battles", "wins", "losses", "ties", "regularised")
        return Response({"results": [model_to_dict(ranking, fields=fields) for ranking in rankings]})
