"""The annotator's pages: their projects, and the labeling page (lease → judge or skip → next).

Thin: resolve the membership and the project through ``labeling.tenancy`` (another organization's project is a
404, exactly like a missing one), call one routing service, render or redirect (POST → redirect → next task).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from labeling.models import DECISIVE_LABELS, Membership, Project, ProjectKind, Strength
from labeling.questions import QuestionSpec, primary_of, response_count
from labeling.selectors import project_stored_questions
from labeling.tenancy import access_project, request_membership
from pages.display import (
    PAIRWISE_CHOICES,
    conversation,
    display_order,
    form_questions,
    pairwise_label,
    pairwise_sides,
    shown_responses,
)
from quality.selectors import paused_scores
from routing.models import Lease
from routing.selectors import (
    GOLD_SHOWN_FROM,
    annotator_clearance,
    annotator_clearances,
    annotator_lease,
    annotator_progress,
    annotator_projects,
)
from routing.services import (
    UNDO_SECONDS,
    AnnotatorPaused,
    LeaseError,
    LeaseExpired,
    judgment_submit,
    judgment_undo,
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
    return _page(request, project, lease, membership=membership)


def _page(
    request: HttpRequest,
    project: Project,
    lease: Lease,
    *,
    status: int = 200,
    membership: Membership | None = None,
    questions: list[QuestionSpec] | None = None,
) -> HttpResponse:
    """The labeling page of ``lease``; with ``membership``, its progress line too (a full page load)."""
    context = _page_context(request, project, lease, questions=questions)
    if membership is not None:
        context["progress"] = annotator_progress(membership=membership, project=project, now=timezone.now())
    return render(request, context["template"], context, status=status)


def _task_html(
    request: HttpRequest, project: Project, lease: Lease, *, questions: list[QuestionSpec] | None = None
) -> str:
    """The task part of the labeling page alone, for the page's script to swap in after a submit or a skip."""
    context = _page_context(request, project, lease, questions=questions) | {"base_template": "annotate/_bare.html"}
    return render_to_string(context["template"], context, request=request)


_FORM_PARTS: dict[str, tuple[str, str]] = {}
_FORM_PARTS_MAX = 256


def _form_parts(
    questions: list[QuestionSpec], n_responses: int, *, strengths: list[tuple[int, str, str]]
) -> tuple[str, str]:
    """The questions' fieldsets and the help's lines of a form with ``n_responses`` responses. They depend on the
    form alone (never on the task, the lease or the person), so a process renders each once: a rich form is some
    800 template nodes, most of a submit's CPU when rendered every time."""
    key = json.dumps([[spec.as_dict() for spec in questions], n_responses, strengths], sort_keys=True)
    parts = _FORM_PARTS.get(key)
    if parts is None:
        context = {
            "questions": form_questions(questions, n_responses=n_responses),
            "numbers": range(1, n_responses + 1),
            "strengths": strengths,
        }
        parts = (
            render_to_string("annotate/_questions.html", context),  # safe: an autoescaped template's output
            render_to_string("annotate/_form_help.html", context),
        )
        if len(_FORM_PARTS) >= _FORM_PARTS_MAX:
            _FORM_PARTS.clear()
        _FORM_PARTS[key] = parts
    return parts


def _page_context(
    request: HttpRequest, project: Project, lease: Lease, *, questions: list[QuestionSpec] | None = None
) -> dict[str, Any]:
    task = lease.task
    payload = task.payload
    context: dict[str, Any] = {
        "project": project,
        "lease": lease,
        "payload": payload,
        "turns": conversation(payload),
        "client_id": uuid.uuid4().hex,  # one per rendered page: a retried POST of this page stores one judgment
        "skip_reasons": SKIP_REASONS,
        "posted_strength": _strength(request.POST.get("strength", ""), label="a") if request.method == "POST" else None,
        "submit_url": reverse("annotate-submit", args=[project.pk, lease.pk]),
        "skip_url": reverse("annotate-skip", args=[project.pk, lease.pk]),
        "undo_seconds": UNDO_SECONDS,
        "template": f"annotate/{project.kind}.html",
    }
    if project.kind == ProjectKind.PAIRWISE and project.strength_scale:
        context["strengths"] = [
            (value, title, key) for (value, title), key in zip(Strength.choices, "zxc", strict=True)
        ]
    if questions is None:
        # Plain pairwise and categorical projects have none stored: one cheap query tells.
        questions = project_stored_questions(project=project)
    if questions:
        n = response_count(payload)
        order = display_order(n_responses=n, a_left=lease.a_left, lease_order=lease.response_order)
        questions_html, help_html = _form_parts(questions, n, strengths=context.get("strengths", []))
        context |= {
            "template": "annotate/form.html",
            "questions_html": questions_html,
            "help_html": help_html,
            "responses": shown_responses(payload, order),
            "order_json": json.dumps(order),
        }
    elif project.kind == ProjectKind.PAIRWISE:
        first, second = pairwise_sides(payload, a_left=bool(lease.a_left))
        context |= {"first": first, "second": second, "choices": PAIRWISE_CHOICES}
    else:
        labels = project.labels.order_by("position", "id")
        context |= {"choices": [(label.value, label.title, label.shortcut) for label in labels]}
    return context


def _from_page_script(request: HttpRequest) -> bool:
    """The page's script posts with fetch and wants JSON (where to go next, or what is wrong) instead of a page."""
    return request.headers.get("X-Requested-With") == "fetch"


def _inline(request: HttpRequest) -> bool:
    """The page's script also asks for the next task in the same answer (one request per judgment)."""
    return _from_page_script(request) and request.headers.get("X-Next-Task") == "inline"


def _to_next_task(
    request: HttpRequest, project: Project, *, questions: list[QuestionSpec] | None = None, **flags: bool
) -> HttpResponse:
    """Where the annotator goes next. A form post is redirected to the labeling page; the page's script gets JSON:
    ``{"next": url}``, and when it asks (``X-Next-Task: inline``) the next task's HTML too, ``{"next", "html",
    "lease"}`` and ``flags`` (``saved``, ``skipped``, ``undone``); no ``html`` when nothing is left: the script then
    loads ``next``."""
    url = reverse("annotate", args=[project.pk])
    if not _from_page_script(request):
        return redirect(url)
    body: dict[str, Any] = {"next": url}
    if _inline(request):
        body |= flags
        lease = next_task(annotator=request.user, project=project)
        if lease is not None:
            body |= {"html": _task_html(request, project, lease, questions=questions), "lease": lease.pk}
    return JsonResponse(body)


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


def _answers(raw: str, *, questions: list[QuestionSpec], a_left: bool) -> dict[str, Any]:
    """The posted ``answers`` (JSON, response indexes already the task's own); a pairwise question's "first" or
    "second" (the sides shown) is mapped back to A/B like a plain pairwise choice."""
    try:
        answers = json.loads(raw) if raw else None
    except ValueError:
        answers = None
    if not isinstance(answers, dict):
        raise ValidationError({"answers": "must be a JSON object mapping each question's key to its answer"})
    for spec in questions:
        if spec.kind == "pairwise" and answers.get(spec.key) in ("first", "second"):
            answers[spec.key] = pairwise_label(answers[spec.key], a_left=a_left)
    return answers


def _problem(error: ValidationError, questions: list[QuestionSpec]) -> tuple[str, dict[str, str]]:
    """The error as one line naming each question by its title, and the messages by question key."""
    titles = {f"answers.{spec.key}": spec.title for spec in questions}
    by_question = {
        field.removeprefix("answers."): ", ".join(texts)
        for field, texts in error.message_dict.items()
        if field in titles
    }
    parts = [
        f"{titles.get(field, field)}{f' ({field})' if field in titles else ''}: {', '.join(texts)}"
        for field, texts in error.message_dict.items()
    ]
    return "; ".join(parts), by_question


@task_post
def submit(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
    membership, project = _membership_and_project(request, project_id)
    lease = annotator_lease(membership=membership, project=project, lease_id=lease_id)
    questions = project_stored_questions(project=project)
    answers = None
    label = ""
    strength = None
    seconds = min((timezone.now() - lease.leased_at).total_seconds(), 7 * 86400 - 1)
    saved = False
    try:
        if questions:
            answers = _answers(request.POST.get("answers", ""), questions=questions, a_left=bool(lease.a_left))
            primary = primary_of(questions)
            if primary.kind == "pairwise":
                strength = _strength(request.POST.get("strength", ""), label=str(answers.get(primary.key)))
        elif project.kind == ProjectKind.PAIRWISE:
            choice = request.POST.get("choice", "")
            label = pairwise_label(choice, a_left=bool(lease.a_left)) or choice
            strength = _strength(request.POST.get("strength", ""), label=label)
        else:
            label = request.POST.get("choice", "")
        judgment_submit(
            lease=lease,
            label=label,
            answers=answers,
            client_id=request.POST.get("client_id", ""),
            seconds=max(seconds, 0.0),
            active_seconds=_seconds(request.POST.get("active_seconds", "")),  # type: ignore[arg-type]
            strength=strength,  # type: ignore[arg-type]
            actor=request.user,
            questions=questions,
        )
        saved = True
    except (LeaseExpired, AnnotatorPaused) as error:
        messages.warning(request, error.messages[0])
    except LeaseError as error:
        messages.info(request, error.messages[0])
    except ValidationError as error:
        problem, by_question = _problem(error, questions)
        if _from_page_script(request):
            return JsonResponse({"error": problem, "questions": by_question}, status=400)
        messages.error(request, problem)
        return _page(request, project, lease, status=400, questions=questions)
    return _to_next_task(request, project, saved=saved, questions=questions)


@task_post
def undo(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
    """Take back the judgment just submitted on this lease (within ``UNDO_SECONDS``): the task comes back."""
    membership, project = _membership_and_project(request, project_id)
    lease = annotator_lease(membership=membership, project=project, lease_id=lease_id)
    undone = False
    try:
        judgment_undo(lease=lease, actor=request.user)
        undone = True
    except LeaseError as error:
        messages.info(request, error.messages[0])
    return _to_next_task(request, project, undone=undone)


@task_post
def skip(request: HttpRequest, project_id: int, lease_id: int) -> HttpResponse:
    membership, project = _membership_and_project(request, project_id)
    lease = annotator_lease(membership=membership, project=project, lease_id=lease_id)
    reasons = dict(SKIP_REASONS)
    reason = request.POST.get("reason", "")
    skipped = False
    try:
        lease_skip(lease=lease, actor=request.user, reason=reason if reason in reasons else "")
        skipped = True
    except LeaseError as error:
        messages.info(request, error.messages[0])
    return _to_next_task(request, project, saved=False, skipped=skipped)


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
