from django.contrib import admin
from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("org/switch", views.organization_switch_view, name="organization-switch"),
    path("admin/", admin.site.urls),
]
