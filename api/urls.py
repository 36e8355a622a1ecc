"""``/api/v1/`` routes."""

from django.urls import path

from api import exports, imports, invitations, projects, reads
from api import quality as quality_api

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<int:project_id>/tasks/", reads.TaskListView.as_view(), name="api-tasks"),
    path("projects/<int:project_id>/annotations/", reads.JudgmentListView.as_view(), name="api-annotations"),
    path("projects/<int:project_id>/quality", quality_api.ProjectQualityView.as_view(), name="api-quality"),
    path("projects/<int:project_id>/annotators/", quality_api.AnnotatorScoreListView.as_view(), name="api-annotators"),
    path("projects/<int:project_id>/models", quality_api.ModelRankingListView.as_view(), name="api-models"),
    path("projects/<int:project_id>/tasks/import", imports.TaskImportView.as_view(), name="api-tasks-import"),
    path(
        "projects/<int:project_id>/annotations/import",
        imports.JudgmentImportView.as_view(),
        name="api-annotations-import",
    ),
    path(
        "projects/<int:project_id>/predictions/import",
        imports.PredictionImportView.as_view(),
        name="api-predictions-import",
    ),
    path("import-jobs/<int:job_id>", imports.ImportJobView.as_view(), name="api-import-job"),
    path("invitations/", invitations.InvitationListView.as_view(), name="api-invitations"),
    path("invitations/<int:invitation_id>/", invitations.InvitationDetailView.as_view(), name="api-invitation"),
    path(
        "invitations/<int:invitation_id>/resend",
        invitations.InvitationResendView.as_view(),
        name="api-invitation-resend",
    ),
    path(
        "invitations/<int:invitation_id>/revoke",
        invitations.InvitationRevokeView.as_view(),
        name="api-invitation-revoke",
    ),
    path("projects/<int:project_id>/export", exports.ProjectExportView.as_view(), name="api-export"),
    path(
        "projects/<int:project_id>/export/summary",
        exports.ProjectExportSummaryView.as_view(),
        name="api-export-summary",
    ),
]
