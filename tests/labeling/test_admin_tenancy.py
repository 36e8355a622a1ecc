"""The customer admin shows and edits only the acting organization (DESIGN §4): isolation of reads and URLs.

Organization A (Alice admin, Mary manager, Annie annotator) must see nothing of organization B (Oscar, "the
outsider"): not in change lists, change/delete/history URLs (404, like a missing id), foreign-key choices, list
filters, autocomplete or search. Superusers keep the full view. The helpers at the top (a browser-like reader of
admin forms, a database snapshot, admin URLs) are shared by the other ``test_admin_*`` modules.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import models
from django.test import Client
from django.test.client import RequestFactory
from django.urls import reverse

from backoffice.base import SuperuserOnlyMixin, TenantAdmin
from labeling.apikeys import api_key_create
from labeling.models import Judgment, Label, Membership, Project, Role, Task
from quality.services import project_quality_recompute
from routing.models import AnnotatorQualification, Lease, ProjectRequirement, Qualification, TaskRequirement
from routing.services import (
    judgment_submit,
    next_task,
    project_requirements_set,
    qualification_create,
    qualification_grant,
    task_requirements_set,
)
from tests import factories
from tests.conftest import Tenancy

User = get_user_model()

#: Models whose admin is tenant-scoped, read from the live registry so that a new admin class is covered here.
TENANT_ADMIN_MODELS: list[type[models.Model]] = sorted(
    (model for model, model_admin in admin.site._registry.items() if isinstance(model_admin, TenantAdmin)),
    key=lambda model: model._meta.label,
)
SUPERUSER_ONLY_MODELS: list[type[models.Model]] = sorted(
    (model for model, model_admin in admin.site._registry.items() if isinstance(model_admin, SuperuserOnlyMixin)),
    key=lambda model: model._meta.label,
)
OBJECT_VIEWS = ("change", "delete", "history")


# --- Shared helpers ------------------------------------------------------------------------------------------
class _FormReader(HTMLParser):
    """Collects what a browser would submit for the ``<form id=...>`` of an admin page (successful controls)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.in_form = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_multiple = False
        self._options: list[tuple[str, bool]] = []
        self._option_value: str | None = None
        self._option_text = ""
        self._option_selected = False
        self._textarea: str | None = None
        self._textarea_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.in_form = a.get("id") == self.form_id
            return
        if not self.in_form:
            return
        name = a.get("name", "")
        if tag == "input" and name and "__prefix__" not in name and "disabled" not in a:
            kind = a.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((name, a.get("value", "on")))
                return
            self.fields.append((name, a.get("value", "")))
        elif tag == "select" and name and "__prefix__" not in name:
            self._select, self._select_multiple, self._options = name, "multiple" in a, []
        elif tag == "option" and self._select is not None:
            self._option_value = a.get("value")
            self._option_selected = "selected" in a
            self._option_text = ""
        elif tag == "textarea" and name and "__prefix__" not in name:
            self._textarea, self._textarea_text = name, ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea_text += data
        elif self._option_value is None and self._select is not None:
            self._option_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "option" and self._select is not None:
            value = self._option_value if self._option_value is not None else self._option_text.strip()
            self._options.append((value, self._option_selected))
            self._option_value = None
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected]
            if not chosen and not self._select_multiple and self._options:
                chosen = [self._options[0][0]]
            self.fields.extend((self._select, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop the newline Django writes right after <textarea>.
            text = self._textarea_text[1:] if self._textarea_text.startswith("\n") else self._textarea_text
            self.fields.append((self._textarea, text))
            self._textarea = None


def form_data(response: Any, form_id: str | None = None) -> dict[str, Any]:
    """The POST data a browser would send for the admin page's model form, ready to be modified and posted."""
    assert response.status_code == 200, response.status_code
    if form_id is None:
        form_id = f"{response.context['opts'].model_name}_form"
    reader = _FormReader(form_id)
    reader.feed(response.content.decode())
    data: dict[str, Any] = {}
    for name, value in reader.fields:
        if name in data:
            data[name] = [*data[name], value] if isinstance(data[name], list) else [data[name], value]
        else:
            data[name] = value
    assert data, f"no form {form_id!r} on the page"
    data.pop("csrfmiddlewaretoken", None)
    return data


def admin_url(model: type[models.Model] | models.Model, view: str, pk: Any = None) -> str:
    """``admin:<app>_<model>_<view>``; ``pk`` (or the instance's pk) for object views."""
    opts = model._meta
    if isinstance(model, models.Model) and pk is None:
        pk = model.pk
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[] if pk is None else [pk])


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row that an admin POST could touch, to prove a refused request changed nothing."""
    tables: list[tuple[type[models.Model], tuple[str, ...]]] = [
        (Project, ()),
        (Label, ()),
        (Task, ()),
        (Membership, ()),
        (Judgment, ()),
        (Qualification, ()),
        (AnnotatorQualification, ()),
        (ProjectRequirement, ()),
        (TaskRequirement, ()),
        (Lease, ()),
        (
            User,
            ("id", "username", "email", "password", "is_superuser", "is_staff", "is_active", "first_name"),
        ),
        (User.user_permissions.through, ()),
        (User.groups.through, ()),
    ]
    return {model._meta.label: list(model._default_manager.order_by("pk").values(*fields)) for model, fields in tables}


def seed_annotations(tenancy: Tenancy) -> tuple[Judgment, Judgment]:
    """A qualification, a grant, a requirement, a lease, a judgment and the quality results computed from it, an API
    key and an invitation per organization, so that every tenant model has rows in both."""
    annotations = []
    for project, task, annotator in (
        (tenancy.project_a, tenancy.task_a, tenancy.annotator_a),
        (tenancy.project_b, tenancy.task_b, tenancy.outsider_b),
    ):
        qualification = qualification_create(organization=project.organization, code="medical")
        qualification_grant(qualification=qualification, annotator=annotator)
        project_requirements_set(project=project, requirements=[(qualification, 1)])
        task_requirements_set(task=task, requirements=[(qualification, 1)])
        lease = next_task(annotator=annotator, project=project)
        assert lease is not None and lease.task_id == task.pk
        annotations.append(
            judgment_submit(lease=lease, label="a", client_id=f"seed-{task.pk}", seconds=2, actor=annotator)
        )
        project_quality_recompute(project_id=project.pk)
        api_key_create(organization=project.organization, name=f"key of {project.organization.slug}")
        factories.make_invitation(project.organization, f"invitee-{project.organization.slug}@example.com")
    return annotations[0], annotations[1]


def make_superuser() -> Any:
    return factories.make_user("root@concord.example", is_superuser=True, is_staff=True)


def results(response: Any) -> list[models.Model]:
    """The rows of a change list response."""
    assert response.status_code == 200, response.status_code
    return list(response.context["cl"].result_list)


def row_of_org(model: type[models.Model], organization: Any) -> models.Model:
    row = model._default_manager.filter(organization=organization).order_by("pk").first()
    assert row is not None, f"seed a {model._meta.label} row in {organization} for the cross-tenant tests"
    return row


def _org_a_objects(tenancy: Tenancy) -> dict[str, models.Model]:
    judgment_a, _ = seed_annotations(tenancy)
    return {
        "project": tenancy.project_a,
        "task": tenancy.task_a,
        "membership": Membership.objects.get(user=tenancy.annotator_a),
        "judgment": judgment_a,
    }


# --- The admin registry is covered -------------------------------------------------------------------------
def test_every_registered_admin_is_tenant_scoped_or_superuser_only() -> None:
    unscoped = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, TenantAdmin | SuperuserOnlyMixin)
    ]
    assert unscoped == [], "every customer-facing admin must subclass TenantAdmin"
    labels = {model._meta.label for model in TENANT_ADMIN_MODELS}
    assert {"labeling.Project", "labeling.Task", "labeling.Membership", "labeling.Judgment"} <= labels
    assert {model._meta.label for model in SUPERUSER_ONLY_MODELS} == {
        "auth.User",
        "auth.Group",
        "labeling.Organization",
    }
    for model in TENANT_ADMIN_MODELS:
        assert model._meta.get_field("organization").related_model.__name__ == "Organization"


# --- Another organization's objects answer 404, exactly like missing ones -----------------------------------
@pytest.mark.parametrize("model_name", ["project", "task", "membership", "judgment"])
def test_outsider_gets_404_on_change_delete_and_history_for_get_and_post(
    client: Client, tenancy: Tenancy, model_name: str
) -> None:
    obj = _org_a_objects(tenancy)[model_name]
    # A valid change form as the owner would post it, so the refusal is not a form error.
    client.force_login(tenancy.admin_a)
    change_data = form_data(client.get(admin_url(obj, "change")))
    client.force_login(tenancy.outsider_b)
    before = snapshot()
    for view in OBJECT_VIEWS:
        url = admin_url(obj, view)
        assert client.get(url).status_code == 404, url
        post_data = {"change": {**change_data, "_save": "Save"}, "delete": {"post": "yes"}}.get(view, {})
        assert client.post(url, post_data).status_code == 404, url
    assert snapshot() == before


@pytest.mark.parametrize("model_name", ["project", "task", "membership", "judgment"])
def test_missing_id_gives_the_same_404_as_another_organizations_id(
    client: Client, tenancy: Tenancy, model_name: str
) -> None:
    obj = _org_a_objects(tenancy)[model_name]
    missing_pk = type(obj)._default_manager.order_by("-pk").values_list("pk", flat=True)[0] + 1000
    client.force_login(tenancy.outsider_b)
    for view in OBJECT_VIEWS:
        foreign = client.get(admin_url(obj, view))
        for pk in (missing_pk, "not-a-number"):
            missing = client.get(admin_url(type(obj), view, pk))
            assert missing.status_code == foreign.status_code == 404
            assert missing.content == foreign.content
        assert client.post(admin_url(type(obj), view, missing_pk), {"post": "yes"}).status_code == 404


@pytest.mark.parametrize("model", TENANT_ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_every_tenant_admin_answers_404_for_another_organizations_row(
    client: Client, tenancy: Tenancy, model: type[models.Model]
) -> None:
    seed_annotations(tenancy)
    foreign = row_of_org(model, tenancy.org_b)
    own = row_of_org(model, tenancy.org_a)
    client.force_login(tenancy.admin_a)
    # The admin's own rows do open (so the 404s below are about tenancy, not a broken page).
    assert client.get(admin_url(own, "change")).status_code == 200
    assert client.get(admin_url(own, "history")).status_code == 200
    before = snapshot()
    for view in OBJECT_VIEWS:
        url = admin_url(foreign, view)
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"post": "yes", "_save": "Save"}).status_code == 404, url
    assert snapshot() == before
    changelist = client.get(admin_url(model, "changelist"))
    rows = results(changelist)
    assert rows, f"alice sees her own {model._meta.label} rows"
    assert {row.organization_id for row in rows} == {tenancy.org_a.pk}


@pytest.mark.parametrize("model", TENANT_ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_bulk_delete_action_cannot_reach_another_organizations_rows(
    client: Client, tenancy: Tenancy, model: type[models.Model]
) -> None:
    seed_annotations(tenancy)
    foreign = row_of_org(model, tenancy.org_b)
    client.force_login(tenancy.admin_a)
    before = snapshot()
    response = client.post(
        admin_url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [foreign.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert snapshot() == before


# --- Change lists, search, list filters and autocomplete -----------------------------------------------------
def test_change_lists_show_only_own_rows(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    client.force_login(tenancy.admin_a)
    projects = results(client.get(admin_url(Project, "changelist")))
    assert projects == [tenancy.project_a]
    assert results(client.get(admin_url(Task, "changelist"))) == [tenancy.task_a]
    memberships = results(client.get(admin_url(Membership, "changelist")))
    assert {m.user for m in memberships} == {tenancy.admin_a, tenancy.manager_a, tenancy.annotator_a}
    annotations = results(client.get(admin_url(Judgment, "changelist")))
    assert [a.task for a in annotations] == [tenancy.task_a]
    page = client.get(admin_url(Project, "changelist")).text
    assert "Alpha prefs" in page
    assert "Beta prefs" not in page
    assert "oscar@b.example" not in client.get(admin_url(Membership, "changelist")).text


def test_search_finds_nothing_of_another_organization(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    client.force_login(tenancy.admin_a)
    assert results(client.get(admin_url(Project, "changelist"), {"q": "Alpha"})) == [tenancy.project_a]
    assert results(client.get(admin_url(Task, "changelist"), {"q": "a-1"})) == [tenancy.task_a]
    for model, term in [
        (Project, "Beta"),
        (Project, "prefs"),
        (Task, "b-1"),
        (Membership, "oscar"),
        (Membership, "b.example"),
        (Judgment, "b-1"),
        (Judgment, "oscar"),
    ]:
        rows = results(client.get(admin_url(model, "changelist"), {"q": term}))
        assert all(row.organization_id == tenancy.org_a.pk for row in rows), (model, term)
        assert not any(row.organization_id == tenancy.org_b.pk for row in rows)
    assert results(client.get(admin_url(Task, "changelist"), {"q": "b-1"})) == []
    assert results(client.get(admin_url(Project, "changelist"), {"q": "Beta"})) == []


def test_list_filters_offer_no_other_organizations_choices(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    # A filter with a single choice is not shown: give org A (and org B) a second project with a task.
    second_a = factories.make_project(tenancy.org_a, name="Delta own")
    factories.make_task(second_a, "d-1")
    secret = factories.make_project(tenancy.org_b, name="Gamma secret")
    factories.make_task(secret, "g-1")
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(Task, "changelist"), {"status__exact": "open"})
    page = response.text
    assert "Alpha prefs" in page
    assert "Beta prefs" not in page
    assert "Gamma secret" not in page
    project_filter = next(spec for spec in response.context["cl"].filter_specs if spec.title == "project")
    assert {pk for pk, _ in project_filter.lookup_choices} == {tenancy.project_a.pk, second_a.pk}
    assert f"project__id__exact={second_a.pk}" in page
    assert f"project__id__exact={tenancy.project_b.pk}" not in page
    assert f"project__id__exact={secret.pk}" not in page
    # Judgments: project and annotator filters list org A only.
    response = client.get(admin_url(Judgment, "changelist"))
    page = response.text
    for foreign_text in ("Beta prefs", "oscar@b.example"):
        assert foreign_text not in page
    for spec in response.context["cl"].filter_specs:
        if spec.title == "project":
            assert {pk for pk, _ in spec.lookup_choices} == {tenancy.project_a.pk}
        if spec.title == "annotator":
            assert {pk for pk, _ in spec.lookup_choices} == {tenancy.annotator_a.pk}
        if spec.title == "label":
            assert set(spec.lookup_choices) == {"a"}  # org B's judgment is "b"
    # The organization filter is a superuser's only.
    for model in (Project, Membership):
        titles = [spec.title for spec in client.get(admin_url(model, "changelist")).context["cl"].filter_specs]
        assert "organization" not in titles


def test_forged_filter_parameters_show_no_other_organizations_rows(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    for model, params in [
        (Task, {"project__id__exact": tenancy.project_b.pk}),
        (Task, {"organization__id__exact": tenancy.org_b.pk}),
        (Project, {"organization__id__exact": tenancy.org_b.pk}),
        (Membership, {"organization__id__exact": tenancy.org_b.pk}),
    ]:
        response = client.get(admin_url(model, "changelist"), params)
        if response.status_code == 200:
            assert all(row.organization_id == tenancy.org_a.pk for row in results(response))
        else:
            # Refused: a lookup outside the page's list filters (400), or Django's "incorrect lookup" redirect (?e=1).
            assert response.status_code in (400, 302)
        assert "Beta prefs" not in response.text


def _autocomplete(client: Client, model_name: str, field_name: str, term: str = "") -> Any:
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": "labeling", "model_name": model_name, "field_name": field_name, "term": term},
    )


def test_autocomplete_returns_only_own_rows(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    other_a = factories.make_project(tenancy.org_a, name="Another A")
    factories.make_project(tenancy.org_b, name="Another B")
    client.force_login(tenancy.admin_a)
    response = _autocomplete(client, "task", "project")
    assert response.status_code == 200
    ids = {int(result["id"]) for result in response.json()["results"]}
    assert ids == {tenancy.project_a.pk, other_a.pk}
    assert {int(r["id"]) for r in _autocomplete(client, "task", "project", "Another").json()["results"]} == {other_a.pk}
    assert _autocomplete(client, "task", "project", "Beta").json()["results"] == []
    # Other foreign keys pointing at tenant models are scoped the same way.
    tasks = _autocomplete(client, "judgment", "task").json()["results"]
    assert {int(r["id"]) for r in tasks} == {tenancy.task_a.pk}
    assert _autocomplete(client, "judgment", "task", "b-1").json()["results"] == []
    # Users and organizations are superuser-only admins: no autocomplete over them.
    for model_name, field_name in [("membership", "user"), ("membership", "organization"), ("judgment", "annotator")]:
        assert _autocomplete(client, model_name, field_name).status_code == 403


def test_autocomplete_is_closed_to_annotators_and_anonymous(client: Client, tenancy: Tenancy) -> None:
    assert _autocomplete(client, "task", "project").status_code == 302
    client.force_login(tenancy.annotator_a)
    assert _autocomplete(client, "task", "project").status_code == 302


# --- Foreign-key choices and the organization on add forms ---------------------------------------------------
def test_task_add_form_offers_only_own_projects(client: Client, tenancy: Tenancy) -> None:
    other_a = factories.make_project(tenancy.org_a, name="Another A")
    client.force_login(tenancy.admin_a)
    response = client.get(admin_url(Task, "add"))
    form = response.context["adminform"].form
    assert set(form.fields["project"].queryset) == {tenancy.project_a, other_a}
    assert "Beta prefs" not in response.text
    # A pre-filled foreign id (?project=...) does not render the other organization's project either.
    response = client.get(admin_url(Task, "add"), {"project": tenancy.project_b.pk})
    assert response.status_code == 200
    assert "Beta prefs" not in response.text


def test_task_posted_into_another_organizations_project_is_refused(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Task, "add")))
    data.update(
        project=tenancy.project_b.pk,
        external_id="smuggled",
        payload='{"prompt": "p", "response_a": "a", "response_b": "b"}',
        organization=tenancy.org_b.pk,
    )
    before = snapshot()
    response = client.post(admin_url(Task, "add"), data)
    assert response.status_code == 200
    assert "project" in response.context["adminform"].form.errors
    assert snapshot() == before
    assert not Task.objects.filter(external_id="smuggled").exists()


@pytest.mark.parametrize("model", TENANT_ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_add_and_change_forms_have_no_organization_field_for_customer_admins(
    client: Client, tenancy: Tenancy, model: type[models.Model]
) -> None:
    seed_annotations(tenancy)
    client.force_login(tenancy.admin_a)
    add = client.get(admin_url(model, "add"))
    change = client.get(admin_url(row_of_org(model, tenancy.org_a), "change"))
    for response in (add, change):
        if response.status_code == 403:  # view-only models (judgments) have no add page
            continue
        assert response.status_code == 200
        assert "organization" not in response.context["adminform"].form.fields
        assert 'name="organization"' not in response.text
        assert "Org B" not in response.text


def test_forged_organization_on_project_add_is_ignored(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Project, "add")))
    data.update(name="Forged", kind="pairwise", organization=tenancy.org_b.pk)
    response = client.post(admin_url(Project, "add"), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    project = Project.objects.get(name="Forged")
    assert project.organization == tenancy.org_a
    assert set(Label.objects.filter(project=project).values_list("organization_id", flat=True)) == {tenancy.org_a.pk}
    assert not Project.objects.filter(organization=tenancy.org_b, name="Forged").exists()


def test_forged_organization_on_task_add_takes_the_projects(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    data = form_data(client.get(admin_url(Task, "add")))
    data.update(
        project=tenancy.project_a.pk,
        external_id="forged-org",
        payload='{"prompt": "p", "response_a": "a", "response_b": "b"}',
        organization=tenancy.org_b.pk,
    )
    assert client.post(admin_url(Task, "add"), data).status_code == 302
    assert Task.objects.get(external_id="forged-org").organization == tenancy.org_a


def test_rows_cannot_be_moved_to_another_organization_by_a_change(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    project_data = form_data(client.get(admin_url(tenancy.project_a, "change")))
    project_data.update(organization=tenancy.org_b.pk, name="Still mine", _save="Save")
    assert client.post(admin_url(tenancy.project_a, "change"), project_data).status_code == 302
    tenancy.project_a.refresh_from_db()
    assert (tenancy.project_a.name, tenancy.project_a.organization) == ("Still mine", tenancy.org_a)

    task_data = form_data(client.get(admin_url(tenancy.task_a, "change")))
    task_data.update(organization=tenancy.org_b.pk, project=tenancy.project_b.pk, status="complete", _save="Save")
    assert client.post(admin_url(tenancy.task_a, "change"), task_data).status_code == 302
    tenancy.task_a.refresh_from_db()
    assert (tenancy.task_a.status, tenancy.task_a.organization, tenancy.task_a.project) == (
        "complete",
        tenancy.org_a,
        tenancy.project_a,
    )

    membership = Membership.objects.get(user=tenancy.annotator_a)
    data = form_data(client.get(admin_url(membership, "change")))
    data.update(organization=tenancy.org_b.pk, user=tenancy.outsider_b.pk, role=Role.MANAGER, _save="Save")
    assert client.post(admin_url(membership, "change"), data).status_code == 302
    membership.refresh_from_db()
    assert (membership.organization, membership.user, membership.role) == (
        tenancy.org_a,
        tenancy.annotator_a,
        Role.MANAGER,
    )


# --- The scoping helpers fail closed ---------------------------------------------------------------------------
def test_scoped_choices_fail_closed_for_unknown_models(tenancy: Tenancy) -> None:
    from backoffice.base import scoped_choices

    request = RequestFactory().get("/admin/")
    request.user = tenancy.admin_a
    request.membership = Membership.objects.get(user=tenancy.admin_a)
    assert list(scoped_choices(request, Permission)) == []
    assert set(scoped_choices(request, Project)) == {tenancy.project_a}
    assert {u.pk for u in scoped_choices(request, User)} == {
        tenancy.admin_a.pk,
        tenancy.manager_a.pk,
        tenancy.annotator_a.pk,
    }


# --- Superusers keep a full view -----------------------------------------------------------------------------
def test_superuser_sees_both_organizations_and_opens_their_objects(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    factories.make_member(tenancy.org_b, Role.ANNOTATOR, "bert@b.example")
    client.force_login(make_superuser())
    for model in TENANT_ADMIN_MODELS:
        rows = results(client.get(admin_url(model, "changelist")))
        assert {row.organization_id for row in rows} == {tenancy.org_a.pk, tenancy.org_b.pk}, model
        for organization in (tenancy.org_a, tenancy.org_b):
            row = row_of_org(model, organization)
            if isinstance(row, Membership):
                # An organization's only admin cannot be deleted, not even by a superuser: open another member.
                row = Membership.objects.filter(organization=organization).exclude(role=Role.ADMIN).first()
            for view in OBJECT_VIEWS:
                assert client.get(admin_url(row, view)).status_code == 200, (model, view)
    assert results(client.get(admin_url(Task, "changelist"), {"q": "b-1"})) == [tenancy.task_b]
    response = client.get(admin_url(Project, "add"))
    assert "organization" in response.context["adminform"].form.fields
    titles = [spec.title for spec in client.get(admin_url(Project, "changelist")).context["cl"].filter_specs]
    assert "organization" in titles
    ids = {int(r["id"]) for r in _autocomplete(client, "task", "project").json()["results"]}
    assert ids == {tenancy.project_a.pk, tenancy.project_b.pk}
    for model in SUPERUSER_ONLY_MODELS:
        assert client.get(admin_url(model, "changelist")).status_code == 200


def test_superuser_adds_a_task_to_any_organization_which_takes_the_projects(client: Client, tenancy: Tenancy) -> None:
    client.force_login(make_superuser())
    data = form_data(client.get(admin_url(Task, "add")))
    data.update(
        project=tenancy.project_b.pk,
        external_id="by-root",
        payload='{"prompt": "p", "response_a": "a", "response_b": "b"}',
        organization=tenancy.org_a.pk,
    )
    assert client.post(admin_url(Task, "add"), data).status_code == 302
    assert Task.objects.get(external_id="by-root").organization == tenancy.org_b


@pytest.mark.parametrize("model", TENANT_ADMIN_MODELS, ids=lambda model: model._meta.label)
def test_not_even_a_superuser_moves_a_row_to_another_organization(
    client: Client, tenancy: Tenancy, model: type[models.Model]
) -> None:
    seed_annotations(tenancy)
    client.force_login(make_superuser())
    row = row_of_org(model, tenancy.org_a)
    response = client.get(admin_url(row, "change"))
    assert "organization" not in response.context["adminform"].form.fields
    if not response.context["has_change_permission"]:
        return
    data = form_data(response) | {"organization": tenancy.org_b.pk, "_save": "Save"}
    response = client.post(admin_url(row, "change"), data)
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    row.refresh_from_db()
    assert row.organization_id == tenancy.org_a.pk
