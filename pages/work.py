"""The annotator's pages: their projects, and the labeling page (lease → judge or skip → next).

Thin: resolve the membership and the project through ``labeling.tenancy`` (another organization's project is a
404, exactly like a missing one), call one routing service, render or redirect (POST → redirect → next task).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import DECISIVE_LABELS, Membership, Project, ProjectKind, Strength
from labeling.tenancy import access_project, request_membership
from pages.display import PAIRWISE_CHOICES, pairwise_label, pairwise_sides
from quality.selectors import paused_scores
from routing.models import Lease
from routing.selectors import (
    GOLD_SHOWN_FROM,
    annotator_clearance,
    annotator_clearances,
    annotator_lease,
    annotator_projects,
)
from routing.services import (
    AnnotatorPaused,
    LeaseError,
    LeaseExpired,
    judgment_submit,
    lease_skip,
    next_task,
    qualification_opt_in,
)

SKIP_REASONS = (
    ("", "No reason"),
    ("unclear", "Unclear or broken item"),
    ("expertise", "Outside my expertise"),
    ("language", "Language I can't judge"),
    ("distressing", "Distressing content"),
)


def _membership_and_project(request: HttpRequest, project_id: int) -> tuple[Membership, Project]:
    membership = request_membership(request)
    if membership is None:
        raise Http404("Not found.")
    return membership, access_project(membership.organization_id, project_id)


@login_required
@require_GET
def work(request: HttpRequest) -> HttpResponse:
    """The annotator's projects in the current organization."""
    membership = request_membership(request)
    if membership is None:
        return render(request, "annotate/work.html", {"rows": [], "membership": None})
    rows = annotator_projects(membership=membership, now=timezone.now())
    context = {"rows": rows, "membership": membership, "gold_shown_from": GOLD_SHOWN_FROM}
    return render(request, "annotate/work.html", context)


@login_required
@require_GET
def annotate(request: HttpRequest, project_id: int) -> HttpResponse:
    """The annotator's current task in the project (a reload resumes it), or a new lease, or "nothing left"."""
    membership, project = _membership_and_project(request, project_id)
    lease = next_task(annotator=request.user, project=project)
    if lease is None:
        paused = paused_scores(
            organization_id=project.organization_id, project_ids=[project.pk], annotator=request.user
        )
        context = {"project": project, "membership": membership, "quality_pause": paused.get(project.pk)}
        return render(request, "annotate/done.html", context)
    return _page(request, project, lease)


def _page(request: HttpRequest, project: Project, lease: Lease, *, status: int = 200) -> HttpResponse:
    task = lease.task
    context = {
        "project": project,
        "lease": lease,
        "payload": task.payload,
        "client_id": uuid.uuid4().hex,  # one per rendered page: a retried POST of this page stores one judgment
        "skip_reasons": SKIP_REASONS,
        "posted_strength": _strength(request.POST.get("strength", ""), label="a") if request.method == "POST" else None,
        "submit_url": reverse("annotate-submit", args=[project.pk, lease.pk]),
        "skip_url": reverse("annotate-skip", args=[project.pk, lease.pk]),
    }
    if project.kind == ProjectKind.PAIRWISE:
        first, second = pairwise_sides(task.payload, a_left=bool(lease.a_left))
        context |= {"first": first, "second": second, "choices": PAIRWISE_CHOICES}
        if project.strength_scale:
            context["strengths"] = [
                (value, title, key) for (value, title), key in zip(Strength.choices, "zxc", strict=True)
            ]
    else:
        labels = project.labels.order_by("position", "id")
        context |= {"choices": [(label.value, label.title, label.shortcut) for label in labels]}
    return render(request, f"annotate/{project.kind}.html", context, status=status)


def _from_page_script(request: HttpRequest) -> bool:
    """The page's script posts with fetch and wants JSON (where to go next, or what is wrong) instead of a page."""
    return request.headers.get("X-Requested-With") == "fetch"


def _to_next_task(request: HttpRequest, project_id: int) -> HttpResponse:
    url = reverse("annotate", args=[project_id])
    return JsonResponse({"next": url}) if _from_page_script(request) else redirect(url)


def task_post(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """POST-only and signed in. A signed-out annotator (session expired) is sent to sign in and then back to the
    task page, where their lease resumes: the POST itself cannot be replayed after the sign-in."""

    @wraps(view)
    @require_POST
    def wrapper(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
        if not request.user.is_authenticated:
            login = redirect_to_login(reverse("annotate", args=[project_id]))
            if _from_page_script(request):
                return JsonResponse({"next": login["Location"]}, status=401)
            return login
        return view(request, project_id, lease_id)

    return wrapper


def _strength(value: str, *, label: str) -> int | str | None:
    """The posted strength on a decisive pairwise judgment; ignored otherwise (a scale left set before a Tie)."""
    if label not in DECISIVE_LABELS or not value:
        return None
    try:
        return int(value)
    except ValueError:
        return value  # the service names the field in its error


def _seconds(value: str) -> float | str | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return value  # the service names the field in its error


@task_post
def submit(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
    membership, project = _membership_and_project(request, project_id)
    lease = annotator_lease(membership=membership, project=project, lease_id=lease_id)
    choice = request.POST.get("choice", "")
    strength = None
    if project.kind == ProjectKind.PAIRWISE:
        label = pairwise_label(choice, a_left=bool(lease.a_left)) or choice
        strength = _strength(request.POST.get("strength", ""), label=label)
    else:
        label = choice
    seconds = min((timezone.now() - lease.leased_at).total_seconds(), 7 * 86400 - 1)
    try:
        judgment_submit(
            lease=lease,
            label=label,
            client_id=request.POST.get("client_id", ""),
            seconds=max(seconds, 0.0),
            active_seconds=_seconds(request.POST.get("active_seconds", "")),  # type: ignore[arg-type]
            strength=strength,  # type: ignore[arg-type]
            actor=request.user,
        )
    except (LeaseExpired, AnnotatorPaused) as error:
        messages.warning(request, error.messages[0])
    except LeaseError as error:
        messages.info(request, error.messages[0])
    except ValidationError as error:
        problem = "; ".join(f"{field}: {', '.join(texts)}" for field, texts in error.message_dict.items())
        if _from_page_script(request):
            return JsonResponse({"error": problem}, status=400)
        messages.error(request, problem)
        return _page(request, project, lease, status=400)
    return _to_next_task(request, project.pk)


@task_post
def skip(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
    membership, project = _membership_and_project(request, project_id)
    lease = annotator_lease(membership=membership, project=project, lease_id=lease_id)
    reasons = dict(SKIP_REASONS)
    reason = request.POST.get("reason", "")
    try:
        lease_skip(lease=lease, actor=request.user, reason=reason if reason in reasons else "")
    except LeaseError as error:
        messages.info(request, error.messages[0])
    return _to_next_task(request, project.pk)


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    """The annotator's own sensitivity clearances: they alone opt in to (or out of) that content."""
    membership = request_membership(request)
    if membership is None:
        raise Http404("Not found.")
    if request.method == "POST":
        grant = annotator_clearance(membership=membership, grant_id=request.POST.get("grant"))
        qualification_opt_in(grant=grant, opted_in=request.POST.get("opted_in") == "1")
        messages.success(
            request,
            f"{'Opted in to' if grant.opted_in else 'Opted out of'} {grant.qualification.name or grant.qualification}.",
        )
        return redirect("consent")
    return render(request, "annotate/consent.html", {"grants": annotator_clearances(membership=membership)})
