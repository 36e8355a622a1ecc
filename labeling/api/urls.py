"""``/api/v1/`` routes."""

from django.urls import path

from labeling.api import imports, projects

urlpatterns = [
    path("projects/", projects.ProjectListView.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<int:project_id>/tasks/import", imports.TaskImportView.as_view(), name="api-tasks-import"),
]
