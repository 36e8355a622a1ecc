"""Factories: plain functions that build valid rows through the services, with overridable fields."""

from __future__ import annotations

import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling.invitations import invitation_create
from labeling.models import Invitation, Membership, Organization, Project, ProjectKind, Role, Task
from labeling.services import project_create, task_create

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def make_org(name: str | None = None) -> Organization:
    n = next(_seq)
    name = name or f"Org {n}"
    return Organization.objects.create(name=name, slug=f"{name.lower().replace(' ', '-')}-{n}")


def make_user(username: str | None = None, **fields: Any) -> Any:
    username = username or f"user{next(_seq)}@example.com"
    user = get_user_model()(username=username, email=username, **fields)
    user.set_password(PASSWORD)
    user.save()
    return user


def make_member(organization: Organization, role: str = Role.ANNOTATOR, username: str | None = None) -> Any:
    user = make_user(username)
    Membership.objects.create(organization=organization, user=user, role=role)
    return user


def make_project(organization: Organization, kind: str = ProjectKind.PAIRWISE, **options: Any) -> Project:
    name = options.pop("name", None) or f"{kind.title()} project {next(_seq)}"
    labels = options.pop("labels", None)
    if kind == ProjectKind.CATEGORICAL and labels is None:
        labels = [("positive", "Positive"), ("negative", "Negative"), ("neutral", "Neutral")]
    return project_create(organization=organization, name=name, kind=kind, labels=labels, **options)


def pairwise_payload(n: int = 0) -> dict[str, str]:
    return {
        "prompt": f"Explain idea number {n} simply.",
        "response_a": f"Idea {n} is about sharing work fairly.",
        "response_b": f"Idea {n}: it depends.",
        "model_a": "model-x",
        "model_b": "model-y",
    }


def make_task(project: Project, external_id: str | None = None, **fields: Any) -> Task:
    n = next(_seq)
    payload = fields.pop("payload", None)
    if payload is None:
        payload = pairwise_payload(n) if project.kind == ProjectKind.PAIRWISE else {"text": f"Sample text {n}."}
    return task_create(project=project, external_id=external_id or f"item-{n}", payload=payload, **fields)


BASE_URL = "http://testserver"


def make_invitation(
    organization: Organization, email: str | None = None, role: str = Role.ANNOTATOR, invited_by: Any = None
) -> Invitation:
    """A pending invitation, through the service (its e-mail is queued on commit, like any other)."""
    email = email or f"invitee{next(_seq)}@example.com"
    return invitation_create(
        organization=organization, email=email, role=role, invited_by=invited_by, base_url=BASE_URL
    )


def leased_submit(client: Any, annotator: Any, project: Project) -> tuple[str, dict[str, str]]:
    """Sign ``annotator`` in on ``client``, open the labeling page of ``project`` (a lease) and return the submit URL
    with the form's fields for "Response 1 is better", as the page would post them."""
    client.force_login(annotator)
    page = client.get(reverse("annotate", args=[project.pk]))
    assert page.status_code == 200
    url = reverse("annotate-submit", args=[project.pk, page.context["lease"].pk])
    return url, {"choice": "first", "client_id": page.context["client_id"]}
