"""``/api/v1/`` routes."""

from django.urls import path

from labeling.api import exports, imports, projects

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<int:project_id>/tasks/import", imports.TaskImportView.as_view(), name="api-tasks-import"),
    path("projects/<int:project_id>/export", exports.ProjectExportView.as_view(), name="api-export"),
    path(
        "projects/<int:project_id>/export/summary",
        exports.ProjectExportSummaryView.as_view(),
        name="api-export-summary",
    ),
]
