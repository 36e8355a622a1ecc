"""The manager's quality page, its CSV downloads, un-pause and recompute.

Thin: resolve the membership and the project through ``labeling.tenancy`` (another organization's project is a
404, exactly like a missing one), then require a manager or admin of that organization (an annotator of the same
organization gets 403), then call one dashboard read or one quality service.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Project
from labeling.tenancy import access_project, request_membership
from pages.dashboard import annotator_sort, csv_table, person, project_score, quality_page
from quality.services import annotator_unpause, quality_request_recompute

ProjectView = Callable[..., HttpResponse]


def manager_project(view: ProjectView) -> ProjectView:
    """Signed in; the project inside the request's organization (else 404); a manager or admin there (else 403)."""

    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, project_id: int, *args: object, **kwargs: object) -> HttpResponse:
        membership = request_membership(request)
        if membership is None:
            raise Http404("Not found.")
        project = access_project(membership.organization_id, project_id)
        if not membership.can_manage:
            raise PermissionDenied("Only the organization's managers and admins see quality.")
        return view(request, project, *args, **kwargs)

    return wrapper


def _back(project: Project, request: HttpRequest) -> HttpResponse:
    """To the quality page, keeping the table's order (re-validated: only allowed values go into the URL)."""
    sort, direction = annotator_sort(request.GET.get("sort"), request.GET.get("dir"))
    return redirect(f"{reverse('quality', args=[project.pk])}?{urlencode({'sort': sort, 'dir': direction})}")


@manager_project
@require_GET
def quality(request: HttpRequest, project: Project) -> HttpResponse:
    page = quality_page(project=project, sort=request.GET.get("sort"), direction=request.GET.get("dir"))
    return render(request, "quality/dashboard.html", {"page": page, "project": project})


@manager_project
@require_GET
def quality_csv(request: HttpRequest, project: Project, chart: str) -> HttpResponse:
    table = csv_table(project=project, chart=chart)
    if table is None:
        raise Http404("No such chart.")
    header, rows = table
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-{chart}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


@manager_project
@require_POST
def quality_unpause(request: HttpRequest, project: Project, score_id: int) -> HttpResponse:
    score = project_score(project=project, score_id=score_id)
    if score is None:
        raise Http404("Not found.")
    try:
        score = annotator_unpause(score=score, actor=request.user)
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
    else:
        messages.success(request, f"{person(score.annotator)} may work on this project again.")
    return _back(project, request)


@manager_project
@require_POST
def quality_recompute(request: HttpRequest, project: Project) -> HttpResponse:
    quality_request_recompute(project_ids=[project.pk])
    if settings.QUALITY_RECOMPUTE_ON_COMMIT:
        messages.success(request, "Recompute queued: the figures update when it has run.")
    else:
        messages.warning(request, "Recomputes are switched off on this server (QUALITY_RECOMPUTE_ON_COMMIT).")
    return _back(project, request)
