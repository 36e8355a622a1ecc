"""The annotator's pages: sign-in, their projects, the labeling page (lease → judge / skip → next), tenancy."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from config import urls as root_urls
from labeling.models import Judgment, Project, ProjectKind, Role
from routing.models import Lease, LeaseState, Qualification
from routing.services import next_task, project_requirements_set
from tests import factories
from tests.conftest import Tenancy

XSS = {
    "prompt": "Hi <script>alert('prompt')</script> and </script><script>alert(2)</script>",
    "response_a": '<img src=x onerror="alert(3)"> [click](javascript:alert(4))',
    "response_b": "```html\n<script>alert(5)</script>\n```\n**bold**",
    "model_a": "secret-model-a",
    "model_b": "secret-model-b",
}


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return factories.make_project(tenancy.org_a, name="Prefs", min_judgments=1, max_judgments=1, gold_rate=0)


def _page(client: Client, project: Project) -> Any:
    response = client.get(reverse("annotate", args=[project.pk]))
    assert response.status_code == 200
    return response


def _post_choice(client: Client, response: Any, choice: str) -> Any:
    lease = response.context["lease"]
    return client.post(
        reverse("annotate-submit", args=[lease.project_id, lease.pk]),
        {"choice": choice, "client_id": response.context["client_id"]},
    )


# --- Sign-in ----------------------------------------------------------------------------------------------------
def test_sign_in_lands_on_the_annotators_projects(client: Client, tenancy: Tenancy) -> None:
    response = client.post(reverse("login"), {"username": tenancy.annotator_a.username, "password": factories.PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("work")


def test_sign_in_never_redirects_off_site(client: Client, tenancy: Tenancy) -> None:
    response = client.post(
        reverse("login"),
        {"username": tenancy.annotator_a.username, "password": factories.PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("work")


def test_a_signed_out_annotator_returns_to_the_same_task_after_sign_in(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    url = reverse("annotate", args=[project.pk])
    response = client.get(url)
    assert response.status_code == 302 and response["Location"] == f"{reverse('login')}?next={url}"
    response = client.post(
        reverse("login"), {"username": tenancy.annotator_a.username, "password": factories.PASSWORD, "next": url}
    )
    assert response["Location"] == url


# --- Projects ---------------------------------------------------------------------------------------------------
def test_projects_page_lists_what_is_left_and_hides_unqualified_projects(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    factories.make_task(project)
    gated = factories.make_project(tenancy.org_a, name="Medical prefs")
    medical = Qualification.objects.create(organization=tenancy.org_a, code="medical")
    project_requirements_set(project=gated, requirements=[(medical, 1)])
    client.force_login(tenancy.annotator_a)
    response = client.get(reverse("work"))
    rows = {row.project.name: row for row in response.context["rows"]}
    assert "Medical prefs" not in rows and "Beta prefs" not in rows
    assert (rows["Prefs"].left, rows["Prefs"].done_today) == (2, 0)
    _post_choice(client, _page(client, project), "first")
    rows = {row.project.name: row for row in client.get(reverse("work")).context["rows"]}
    assert (rows["Prefs"].left, rows["Prefs"].done_today) == (1, 1)


def test_a_paused_annotator_is_told_why(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    tenancy.annotator_a.memberships.update(paused_at=timezone.now(), pause_reason="Too fast on gold items")
    client.force_login(tenancy.annotator_a)
    assert "Too fast on gold items" in client.get(reverse("work")).text
    response = _page(client, project)
    assert "paused" in response.text and "lease" not in response.context


# --- The labeling page ------------------------------------------------------------------------------------------
def test_pairwise_page_shows_response_1_and_2_never_a_b_or_models(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project, payload={**XSS, "response_a": "Alpha text", "response_b": "Beta text"})
    client.force_login(tenancy.annotator_a)
    response = _page(client, project)
    text = response.text
    assert "Response 1" in text and "Response 2" in text
    assert "secret-model" not in text and "response_a" not in text
    first, second = ("Alpha", "Beta") if response.context["lease"].a_left else ("Beta", "Alpha")
    assert text.index(f"{first} text") < text.index(f"{second} text")
    for key in ("1", "2", "3", "4", "s"):
        assert f'data-key="{key}"' in text


def test_reload_resumes_the_same_task(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    first = _page(client, project).context["lease"]
    assert _page(client, project).context["lease"].pk == first.pk


@pytest.mark.parametrize("a_left", [True, False])
def test_choices_are_mapped_back_to_a_and_b(client: Client, tenancy: Tenancy, project: Project, a_left: bool) -> None:
    task = factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    response = _page(client, project)
    Lease.objects.filter(pk=response.context["lease"].pk).update(a_left=a_left)
    response = _post_choice(client, response, "first")
    assert response.status_code == 302 and response["Location"] == reverse("annotate", args=[project.pk])
    judgment = Judgment.objects.get(task=task)
    assert (judgment.label, judgment.a_left) == ("a" if a_left else "b", a_left)


def test_a_double_submit_stores_one_judgment(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    response = _page(client, project)
    _post_choice(client, response, "tie")
    again = _post_choice(client, response, "tie")
    assert again.status_code == 302
    assert Judgment.objects.count() == 1


def test_a_submit_after_expiry_says_so_and_offers_the_next_task(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    response = _page(client, project)
    past = timezone.now() - timedelta(seconds=1)
    Lease.objects.update(leased_at=past - timedelta(minutes=20), expires_at=past)
    followed = client.post(
        reverse("annotate-submit", args=[project.pk, response.context["lease"].pk]),
        {"choice": "first", "client_id": response.context["client_id"]},
        follow=True,
    )
    assert "ran out" in followed.text
    assert not Judgment.objects.exists()
    assert followed.context["lease"].pk != response.context["lease"].pk  # a fresh lease, same task


def test_a_bad_choice_is_refused_with_the_page_again(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    response = _post_choice(client, _page(client, project), "maybe")
    assert response.status_code == 400
    assert "label" in response.text
    assert not Judgment.objects.exists()


def test_skip_moves_on_and_records_the_reason(client: Client, tenancy: Tenancy, project: Project) -> None:
    skipped, other = factories.make_task(project), factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    lease = _page(client, project).context["lease"]
    response = client.post(reverse("annotate-skip", args=[project.pk, lease.pk]), {"reason": "expertise"})
    assert response.status_code == 302
    lease.refresh_from_db()
    assert (lease.state, lease.skip_reason) == (LeaseState.SKIPPED, "expertise")
    assert _page(client, project).context["lease"].task_id == (other if lease.task == skipped else skipped).pk


def test_categorical_page_offers_the_projects_labels_with_their_keys(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, ProjectKind.CATEGORICAL, min_judgments=1, max_judgments=1)
    task = factories.make_task(project, payload={"text": "The *app* crashes."})
    client.force_login(tenancy.annotator_a)
    response = _page(client, project)
    assert "<em>app</em>" in response.text
    assert 'data-key="1"' in response.text and "Positive" in response.text
    _post_choice(client, response, "negative")
    assert Judgment.objects.get(task=task).label == "negative"


def test_payload_html_is_shown_as_text(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project, payload=XSS)
    client.force_login(tenancy.annotator_a)
    text = _page(client, project).text
    assert "alert(" in text  # the content is there, as text
    scripts = re.findall(r"<script[^>]*>", text)
    assert len(scripts) == 1 and "annotate.js" in scripts[0]  # the page's own, nothing from the payload
    assert "<img" not in text
    assert 'href="javascript:' not in text
    assert "&lt;script&gt;" in text
    assert "<strong>bold</strong>" in text  # Markdown still renders


def test_labeling_page_query_count_does_not_grow_with_the_project(
    client: Client, tenancy: Tenancy, project: Project, django_assert_max_num_queries: Any
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    _page(client, project)  # warm: session, lease
    Lease.objects.update(state=LeaseState.EXPIRED)
    with django_assert_max_num_queries(16):
        _page(client, project)
    for _ in range(40):
        factories.make_task(project)
    Lease.objects.update(state=LeaseState.EXPIRED)
    with django_assert_max_num_queries(16):
        _page(client, project)


# --- Tenancy ----------------------------------------------------------------------------------------------------
def test_outsider_gets_404_on_every_project_page(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    client.force_login(tenancy.outsider_b)
    missing = 999_999
    for pk in (project.pk, missing):
        assert client.get(reverse("annotate", args=[pk])).status_code == 404
        for name in ("annotate-submit", "annotate-skip", "annotate-undo"):
            assert client.post(reverse(name, args=[pk, lease.pk]), {"choice": "first"}).status_code == 404
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE


@pytest.mark.parametrize("role", ["annotator_a", "manager_a", "admin_a", "outsider_b"])
def test_each_role_on_the_pages(client: Client, tenancy: Tenancy, project: Project, role: str) -> None:
    """Members of the project's organization may label, whatever their role; everyone else gets 404."""
    factories.make_task(project)
    client.force_login(getattr(tenancy, role))
    work = client.get(reverse("work"))
    assert work.status_code == 200
    page = client.get(reverse("annotate", args=[project.pk]))
    if role == "outsider_b":
        assert page.status_code == 404
        assert "Prefs" not in work.text
        return
    assert page.status_code == 200 and page.context["lease"].annotator == getattr(tenancy, role)
    assert "Prefs" in work.text
    assert _post_choice(client, page, "tie").status_code == 302
    assert Judgment.objects.get().annotator == getattr(tenancy, role)


def test_nobody_submits_or_skips_someone_elses_lease(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    lease = next_task(annotator=tenancy.annotator_a, project=project)
    client.force_login(factories.make_member(tenancy.org_a, Role.MANAGER))
    for name in ("annotate-submit", "annotate-skip"):
        assert client.post(reverse(name, args=[project.pk, lease.pk]), {"choice": "first"}).status_code == 404
    lease.refresh_from_db()
    assert lease.state == LeaseState.ACTIVE


#: Every route outside the admin, and how its cross-tenant answer is proven (a new route must be added here).
COVERED_ROUTES = {
    "home": "public",
    "healthz": "public",
    "organization-switch": "tests/labeling/test_views.py (a foreign organization id is refused)",
    "login": "public",
    "logout": "public",
    "work": "scoped to the membership: test_projects_page_lists_what_is_left_and_hides_unqualified_projects",
    "consent": "test_nobody_changes_someone_elses_consent",
    "annotate": "test_outsider_gets_404_on_every_project_page",
    "annotate-submit": "test_outsider_gets_404_on_every_project_page",
    "annotate-skip": "test_outsider_gets_404_on_every_project_page",
    "annotate-undo": "test_outsider_gets_404_on_every_project_page",
    "quality": "tests/quality/test_dashboard.py::test_outsider_gets_404_on_every_quality_url",
    "quality-csv": "tests/quality/test_dashboard.py::test_outsider_gets_404_on_every_quality_url",
    "quality-unpause": "tests/quality/test_dashboard.py::test_outsider_gets_404_on_every_quality_url",
    "quality-recompute": "tests/quality/test_dashboard.py::test_outsider_gets_404_on_every_quality_url",
    "api-projects": "scoped to the caller: tests/api/test_projects.py::test_list_shows_only_the_callers_projects",
    "api-project": "tests/api/test_projects.py::test_another_organizations_project_is_404_like_a_missing_one",
    "api-tasks-import": "tests/api/test_import.py::test_import_crosses_no_organization",
    "api-export": "tests/api/test_export.py::test_export_crosses_no_organization",
    "api-export-summary": "tests/api/test_export.py::test_export_crosses_no_organization",
    "api-tasks": "tests/api/test_reads.py::test_reads_cross_no_organization",
    "api-annotations": "tests/api/test_reads.py::test_reads_cross_no_organization",
    "api-quality": "tests/api/test_reads.py::test_reads_cross_no_organization",
    "api-annotators": "tests/api/test_reads.py::test_reads_cross_no_organization",
    "api-models": "tests/api/test_reads.py::test_reads_cross_no_organization",
    "api-annotations-import": "tests/api/test_history_import.py::test_history_imports_cross_no_organization",
    "api-predictions-import": "tests/api/test_history_import.py::test_history_imports_cross_no_organization",
    "api-import-job": "tests/api/test_import_jobs.py::test_jobs_cross_no_organization",
    "api-schema": "no tenant data; needs a credential: tests/api/test_schema.py",
    "api-docs": "no tenant data; needs a credential: tests/api/test_schema.py",
    "invitation": "the signed link is the capability: tests/labeling/test_invitations.py (unusable links alike)",
    "password_reset": "public; same answer for any address: tests/labeling/test_password_reset.py",
    "password_reset_done": "public",
    "password_reset_complete": "public",
    "password_reset_confirm": "tests/labeling/test_password_reset.py::test_a_link_that_cannot_be_used_answers_404",
    "api-invitations": "scoped to the caller: tests/api/test_invitations.py::test_list_and_retrieve",
    "api-invitation": "tests/api/test_invitations.py::test_another_organizations_invitation_answers_like_a_missing_one",
    "api-invitation-resend": "tests/api/test_invitations.py (as api-invitation)",
    "api-invitation-revoke": "tests/api/test_invitations.py (as api-invitation)",
}


def _route_names(patterns: list[Any]) -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # the admin's own walk: tests/labeling/test_admin_tenancy.py
            names |= _route_names(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            names.add(pattern.name or repr(pattern))
    return names


def test_every_route_has_a_cross_tenant_answer() -> None:
    assert _route_names(root_urls.urlpatterns) == set(COVERED_ROUTES)


# --- The page's script (fetch) and signed-out posts -----------------------------------------------------------
def _fetch_post(client: Client, response: Any, **data: str) -> Any:
    lease = response.context["lease"]
    return client.post(
        reverse("annotate-submit", args=[lease.project_id, lease.pk]),
        {"client_id": response.context["client_id"], **data},
        headers={"X-Requested-With": "fetch"},
    )


def test_the_page_script_gets_where_to_go_next_and_the_active_time_is_stored(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    response = _fetch_post(client, _page(client, project), choice="second", active_seconds="12.5")
    assert response.json() == {"next": reverse("annotate", args=[project.pk])}
    judgment = Judgment.objects.get()
    assert judgment.active_seconds == 12.5
    assert 0 <= judgment.seconds_on_task < 60


def test_the_page_script_gets_errors_as_json(client: Client, tenancy: Tenancy, project: Project) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    response = _fetch_post(client, page, choice="first", active_seconds="soon")
    assert response.status_code == 400 and "active_seconds" in response.json()["error"]
    response = _fetch_post(client, page, choice="first", active_seconds="-3")
    assert response.status_code == 400
    assert not Judgment.objects.exists()


def test_a_signed_out_submit_goes_to_sign_in_and_back_to_the_task(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    factories.make_task(project)
    client.force_login(tenancy.annotator_a)
    page = _page(client, project)
    client.logout()
    task_url = reverse("annotate", args=[project.pk])
    response = _post_choice(client, page, "first")
    assert response.status_code == 302 and response["Location"] == f"{reverse('login')}?next={task_url}"
    response = _fetch_post(client, page, choice="first")
    assert response.status_code == 401 and response.json()["next"] == f"{reverse('login')}?next={task_url}"
    assert not Judgment.objects.exists()


# --- Sensitive content: the annotator's own consent ---------------------------------------------------------------
def _clearance(tenancy: Tenancy, annotator: Any, organization: Any = None) -> Any:
    from routing.services import qualification_create, qualification_grant

    organization = organization or tenancy.org_a
    qualification = Qualification.objects.filter(organization=organization, code="sensitive:self-harm").first()
    qualification = qualification or qualification_create(organization=organization, code="sensitive:self-harm")
    return qualification_grant(qualification=qualification, annotator=annotator)


def test_an_annotator_opts_in_and_out_of_sensitive_content(client: Client, tenancy: Tenancy, project: Project) -> None:
    from routing.services import task_requirements_set

    grant = _clearance(tenancy, tenancy.annotator_a)
    task_requirements_set(task=factories.make_task(project), requirements=[(grant.qualification, 1)])
    client.force_login(tenancy.annotator_a)
    response = client.get(reverse("consent"))
    assert "sensitive:self-harm" in response.text and "Not opted in" in response.text
    assert next_task(annotator=tenancy.annotator_a, project=project) is None
    client.post(reverse("consent"), {"grant": grant.pk, "opted_in": "1"})
    grant.refresh_from_db()
    assert grant.opted_in
    assert next_task(annotator=tenancy.annotator_a, project=project) is not None
    client.post(reverse("consent"), {"grant": grant.pk, "opted_in": "0"})
    grant.refresh_from_db()
    assert not grant.opted_in


def test_nobody_changes_someone_elses_consent(client: Client, tenancy: Tenancy) -> None:
    colleague = factories.make_member(tenancy.org_a, Role.ANNOTATOR)
    theirs = _clearance(tenancy, colleague)
    foreign = _clearance(tenancy, tenancy.outsider_b, tenancy.org_b)
    client.force_login(tenancy.annotator_a)
    assert "sensitive:self-harm" not in client.get(reverse("consent")).text
    for grant in (theirs, foreign):
        assert client.post(reverse("consent"), {"grant": grant.pk, "opted_in": "1"}).status_code == 404
    assert client.post(reverse("consent"), {"grant": "x", "opted_in": "1"}).status_code == 404
    client.force_login(tenancy.outsider_b)
    assert client.post(reverse("consent"), {"grant": theirs.pk, "opted_in": "1"}).status_code == 404
    theirs.refresh_from_db()
    foreign.refresh_from_db()
    assert not theirs.opted_in and not foreign.opted_in
