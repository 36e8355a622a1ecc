from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.schema import not_found
from pages import quality as quality_views
from pages import site as views
from pages import work as routing_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("org/switch", views.organization_switch_view, name="organization-switch"),
    # A signed-in GET of the sign-in page redirects; a POST always authenticates, from a fresh session
    # (labeling.logins.LoginThrottleMiddleware ends any session it arrives with).
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/reset/", views.PasswordResetRequestView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(template_name="registration/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(template_name="registration/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        views.PasswordResetLinkView.as_view(),
        name="password_reset_confirm",
    ),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("work/", routing_views.work, name="work"),
    path("work/sensitive-content", routing_views.consent, name="consent"),
    path("projects/<int:project_id>/annotate/", routing_views.annotate, name="annotate"),
    path(
        "projects/<int:project_id>/annotate/<int:lease_id>/submit",
        routing_views.submit,
        name="annotate-submit",
    ),
    path("projects/<int:project_id>/annotate/<int:lease_id>/skip", routing_views.skip, name="annotate-skip"),
    path("projects/<int:project_id>/annotate/<int:lease_id>/undo", routing_views.undo, name="annotate-undo"),
    path("projects/<int:project_id>/quality/", quality_views.quality, name="quality"),
    path("projects/<int:project_id>/quality/<slug:chart>.csv", quality_views.quality_csv, name="quality-csv"),
    path(
        "projects/<int:project_id>/quality/annotators/<int:score_id>/unpause",
        quality_views.quality_unpause,
        name="quality-unpause",
    ),
    path("projects/<int:project_id>/quality/recompute", quality_views.quality_recompute, name="quality-recompute"),
    path("api/v1/", include("api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

# An /api/ URL that matches no route (an id that is not a number) answers JSON, as the API's own 404s do.
handler404 = not_found

# A body over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413 (Django's own answer is a 400), wherever it is first read.
handler400 = views.bad_request
# A database outage raised in a middleware (outside any view) answers 503 like one inside a view.
handler500 = views.server_error
