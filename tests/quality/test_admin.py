"""The quality results in the customer admin: read-only records, scoped like every tenant admin (the registry walk
in tests/labeling/test_admin_tenancy.py covers the 404s for another organization's rows)."""

from __future__ import annotations

from django.test import Client

from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob, TaskConsensus
from quality.services import project_quality_recompute
from tests.conftest import Tenancy
from tests.labeling.test_admin_tenancy import admin_url, form_data, results, seed_annotations


def test_results_are_listed_and_read_only_for_admins_and_managers(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    for user in (tenancy.admin_a, tenancy.manager_a):
        client.force_login(user)
        for model in (AnnotatorScore, TaskConsensus, ProjectQuality, ModelRanking, QualityJob):
            rows = results(client.get(admin_url(model, "changelist")))
            assert rows and {row.organization_id for row in rows} == {tenancy.org_a.pk}, model
        assert client.get(admin_url(AnnotatorScore, "add")).status_code == 403
        score = AnnotatorScore.objects.get(project=tenancy.project_a)
        page = client.get(admin_url(score, "change"))
        assert page.status_code == 200 and "Random clicker" in page.text
        data = form_data(page) | {"n_judgments": "999", "random_clicker": "on", "_save": "Save"}
        assert client.post(admin_url(score, "change"), data).status_code == 403
        score.refresh_from_db()
        assert score.n_judgments == 1 and not score.random_clicker


def test_annotators_see_no_quality_admin(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    client.force_login(tenancy.annotator_a)
    score = AnnotatorScore.objects.get(project=tenancy.project_a)
    assert client.get(admin_url(AnnotatorScore, "changelist")).status_code in (302, 403)
    assert client.get(admin_url(score, "change")).status_code in (302, 403)


def test_only_admins_delete_and_the_next_recompute_restores(client: Client, tenancy: Tenancy) -> None:
    seed_annotations(tenancy)
    score = AnnotatorScore.objects.get(project=tenancy.project_a)
    client.force_login(tenancy.manager_a)
    assert client.post(admin_url(score, "delete"), {"post": "yes"}).status_code == 403
    client.force_login(tenancy.admin_a)
    assert client.post(admin_url(score, "delete"), {"post": "yes"}).status_code == 302
    assert not AnnotatorScore.objects.filter(pk=score.pk).exists()
    project_quality_recompute(project_id=tenancy.project_a.pk)
    assert AnnotatorScore.objects.filter(project=tenancy.project_a, annotator=score.annotator).exists()


def test_the_admin_index_names_every_model_in_plain_english(client: Client, tenancy: Tenancy) -> None:
    """Django's default plural of "project quality" is "project qualitys"; no model may be named like that."""
    client.force_login(tenancy.admin_a)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Project quality snapshots" in page.text
    assert "qualitys" not in page.text.lower()
