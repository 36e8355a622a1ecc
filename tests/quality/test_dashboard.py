"""The manager's quality page: who sees it, what it shows, the annotator table, CSV downloads, un-pause and
recompute, and the SVG charts on their own."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from labeling.models import Label, Project
from pages import charts
from pages.dashboard import COLUMNS, csv_cell
from quality.jobs import recompute_project_quality_job
from quality.models import AnnotatorScore, ModelRanking, ProjectQuality, QualityJob, RecomputeStatus
from quality.services import progress_key, project_quality_recompute
from tests import factories
from tests.conftest import Tenancy
from tests.quality.population import plant

CHARTS = ("agreement", "labels", "confusion", "annotators", "models")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


# --- Stored results, written directly (known values) --------------------------------------------------------------
def _snapshot(project: Project, n: int, **fields: Any) -> ProjectQuality:
    values: dict[str, Any] = {
        "n_judgments": 12 * n,
        "last_annotation_id": 100 * n,
        "n_tasks": 10,
        "n_complete": 4,
        "n_annotators": 2,
        "completion": 0.5,
        "fleiss_kappa": 0.25,
        "fleiss_items": 6,
        "krippendorff_alpha": 0.3,
        "percent_agreement": 0.75,
        "label_counts": {"a": 6, "b": 3, "tie": 2, "both_bad": 1},
        "confusion": [[4, 1, 1, 0], [0, 2, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1]],
        "seconds": 0.5,
        "computed_at": T0 + timedelta(hours=n),
    }
    values.update(fields)
    return ProjectQuality.objects.create(organization_id=project.organization_id, project=project, **values)


def _score(project: Project, annotator: Any, **fields: Any) -> AnnotatorScore:
    values: dict[str, Any] = {"n_judgments": 0, "computed_at": T0}
    values.update(fields)
    return AnnotatorScore.objects.create(
        organization_id=project.organization_id, project=project, annotator=annotator, **values
    )


def _ranking(project: Project, name: str, rank: int, theta: float, **fields: Any) -> ModelRanking:
    values: dict[str, Any] = {
        "low": theta - 0.5,
        "high": theta + 0.5,
        "battles": 10,
        "wins": 5,
        "losses": 4,
        "ties": 1,
        "computed_at": T0,
    }
    values.update(fields)
    return ModelRanking.objects.create(
        organization_id=project.organization_id, project=project, model_name=name, rank=rank, theta=theta, **values
    )


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    return tenancy.project_a


@pytest.fixture
def paused(tenancy: Tenancy, project: Project) -> AnnotatorScore:
    """Annie, paused in project A."""
    return _score(
        project, tenancy.annotator_a, n_judgments=40, paused_at=T0, pause_reason="Paused automatically: gold."
    )


def _urls(project_id: int, score_id: int) -> list[tuple[str, str]]:
    urls = [("get", reverse("quality", args=[project_id]))]
    urls += [("get", reverse("quality-csv", args=[project_id, chart])) for chart in CHARTS]
    urls += [
        ("post", reverse("quality-unpause", args=[project_id, score_id])),
        ("post", reverse("quality-recompute", args=[project_id])),
    ]
    return urls


def _csv(response: Any) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


# --- Who may see it -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["admin_a", "manager_a"])
def test_managers_and_admins_get_every_quality_url(
    client: Client, tenancy: Tenancy, project: Project, paused: AnnotatorScore, role: str
) -> None:
    _snapshot(project, 1)
    client.force_login(getattr(tenancy, role))
    for method, url in _urls(project.pk, paused.pk):
        response = getattr(client, method)(url)
        assert response.status_code == (200 if method == "get" else 302), url
    paused.refresh_from_db()
    assert paused.paused_at is None


def test_an_annotator_of_the_organization_gets_403_and_changes_nothing(
    client: Client, tenancy: Tenancy, project: Project, paused: AnnotatorScore, settings: Any
) -> None:
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    client.force_login(tenancy.annotator_a)
    for method, url in _urls(project.pk, paused.pk):
        assert getattr(client, method)(url).status_code == 403, url
    paused.refresh_from_db()
    assert paused.paused_at is not None and paused.unpaused_by is None
    assert not QualityJob.objects.exists()


def test_outsider_gets_404_on_every_quality_url(
    client: Client,
    tenancy: Tenancy,
    project: Project,
    paused: AnnotatorScore,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Another organization's project answers exactly like a missing one, for every method; nothing changes."""
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    _snapshot(project, 1)
    client.force_login(tenancy.outsider_b)
    with django_capture_on_commit_callbacks() as callbacks:
        for project_id in (project.pk, 999_999):
            for method, url in _urls(project_id, paused.pk):
                response = getattr(client, method)(url)
                assert response.status_code == 404, url
                assert b"Alpha prefs" not in response.content
            # The wrong method still answers 404 (tenancy is checked before anything else).
            assert client.post(reverse("quality", args=[project_id])).status_code == 404
            assert client.get(reverse("quality-recompute", args=[project_id])).status_code == 404
    assert callbacks == []
    paused.refresh_from_db()
    assert paused.paused_at is not None and paused.unpaused_by is None
    assert not QualityJob.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client: Client, project: Project, paused: AnnotatorScore) -> None:
    for method, url in _urls(project.pk, paused.pk):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    paused.refresh_from_db()
    assert paused.paused_at is not None


def test_managers_find_the_page_from_their_projects(client: Client, tenancy: Tenancy, project: Project) -> None:
    url = reverse("quality", args=[project.pk])
    client.force_login(tenancy.manager_a)
    assert f'href="{url}"' in client.get(reverse("work")).text
    client.force_login(tenancy.annotator_a)
    assert f'href="{url}"' not in client.get(reverse("work")).text


# --- The page -------------------------------------------------------------------------------------------------------
def test_the_page_shows_recomputed_figures_charts_and_scores(
    client: Client, tenancy: Tenancy, project: Project
) -> None:
    planted = plant(project, {f"good{n}": "good" for n in range(4)} | {"fast": "fast"}, n_tasks=60, per_task=3)
    snapshot = project_quality_recompute(project_id=project.pk)
    assert snapshot is not None
    client.force_login(tenancy.manager_a)
    response = client.get(reverse("quality", args=[project.pk]))
    text = response.text
    assert response.status_code == 200
    assert f"{snapshot.fleiss_kappa:.2f} (on {snapshot.fleiss_items} tasks)" in text
    assert f"{snapshot.krippendorff_alpha:.2f}" in text and f"{snapshot.percent_agreement:.1%}" in text
    assert "Done" in text and "Recompute now" in text
    svgs = re.findall(r"<svg [^>]*>", text)
    assert len(svgs) == 4 and all('role="img"' in svg and "aria-label=" in svg for svg in svgs)
    assert text.count("Download CSV") == 5
    for name in ("model-x", "model-y", "model-z"):
        assert name in text
    assert len(response.context["page"].annotators) == len(planted.annotators)
    assert "Too fast" in text  # the fast annotator's flag, as a text badge
    assert "What the flags mean" in text and "below 3 seconds" in text and "q &lt; 0.01" in text


def test_an_empty_project_says_there_is_no_data_yet(client: Client, tenancy: Tenancy, project: Project) -> None:
    client.force_login(tenancy.admin_a)
    text = client.get(reverse("quality", args=[project.pk])).text
    assert "No quality figures yet" in text and "Never run" in text
    assert text.count("No data yet.") >= 4
    for chart in CHARTS:
        rows = _csv(client.get(reverse("quality-csv", args=[project.pk, chart])))
        assert rows[0] and (chart == "labels" or rows[1:] == [])


def test_a_running_recompute_shows_its_step_and_progress(client: Client, tenancy: Tenancy, project: Project) -> None:
    QualityJob.objects.create(
        project=project, organization=project.organization, status=RecomputeStatus.RUNNING, runs=3
    )
    cache.set(progress_key(project.pk), {"step": "consensus (Dawid-Skene)", "progress": 0.35})
    client.force_login(tenancy.manager_a)
    text = client.get(reverse("quality", args=[project.pk])).text
    assert "Running" in text and "runs: 3" in text
    assert "consensus (Dawid-Skene)" in text and "35%" in text and "<progress" in text


def test_a_failed_recompute_shows_its_error(client: Client, tenancy: Tenancy, project: Project) -> None:
    QualityJob.objects.create(
        project=project, organization=project.organization, status=RecomputeStatus.FAILED, error="ValueError('<x>')"
    )
    client.force_login(tenancy.manager_a)
    text = client.get(reverse("quality", args=[project.pk])).text
    assert "Failed" in text and "ValueError(&#x27;&lt;x&gt;&#x27;)" in text


def test_customer_text_is_escaped_on_the_page(client: Client, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="<b>Bold</b> & <img src=x onerror=alert(2)>")
    _snapshot(project, 1)
    _ranking(project, "<script>alert(1)</script>", 1, 0.4)
    _ranking(project, 'x" onmouseover="alert(3)', 2, -0.4)
    user = factories.make_member(tenancy.org_a, username="<i>eve</i>@a.example")
    user.first_name = "<svg onload=alert(4)>"
    user.save()
    _score(project, user, paused_at=T0, pause_reason="<script>alert(5)</script>")
    client.force_login(tenancy.manager_a)
    text = client.get(reverse("quality", args=[project.pk])).text
    assert "<script>alert" not in text and "<img src=x" not in text and "<svg onload" not in text
    assert "<i>eve" not in text and 'x" onmouseover' not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in text
    assert "&lt;svg onload=alert(4)&gt;" in text and "&lt;script&gt;alert(5)&lt;/script&gt;" in text
    assert len(re.findall(r"<script[^>]*>", text)) == 0


@pytest.mark.parametrize("n_annotators", [3, 30])
def test_the_page_query_count_does_not_grow_with_annotators(
    client: Client, tenancy: Tenancy, project: Project, django_assert_max_num_queries: Any, n_annotators: int
) -> None:
    behaviours = {f"a{n}": "good" for n in range(n_annotators)}
    plant(project, behaviours, n_tasks=max(20, 2 * n_annotators), per_task=3)
    project_quality_recompute(project_id=project.pk)
    _snapshot(project, 50)  # a second snapshot for the history
    AnnotatorScore.objects.filter(project=project).update(paused_at=T0, unpaused_by=tenancy.manager_a)
    client.force_login(tenancy.manager_a)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("quality", args=[project.pk]))
    assert len(response.context["page"].annotators) == n_annotators
    assert response.text.count("Un-pause</button>") == n_annotators
    with django_assert_max_num_queries(10):
        client.get(reverse("quality", args=[project.pk]), {"sort": "flags", "dir": "desc"})


# --- The annotator table's order ------------------------------------------------------------------------------------
#: Annotators a, b, c, d (by name); a has every optional figure empty, so it sorts last both ways there.
FIGURES = {
    "d": {"n_judgments": 30, "median_seconds": 5.0, "gold_accuracy": 0.9, "agreement": 0.8, "kappa_mean": 0.6},
    "b": {"n_judgments": 10, "median_seconds": 9.0, "gold_accuracy": 0.5, "agreement": 0.9, "kappa_mean": 0.2},
    "c": {"n_judgments": 20, "median_seconds": 2.0, "gold_accuracy": 0.7, "agreement": 0.6, "kappa_mean": 0.4},
    "a": {"n_judgments": 50},
}
MORE = {"d": (0.95, 0.5, 0.4), "b": (0.7, 0.7, 0.6), "c": (0.8, 0.6, 0.8), "a": (None, None, None)}
FLAGS = {"d": {}, "b": {"too_fast": True}, "c": {"too_fast": True, "random_clicker": True}}
FLAGS["a"] = FLAGS["c"]
PAUSED = {"b": T0, "a": T0 + timedelta(hours=1)}
EXPECTED_ORDER = {  # column: (ascending, descending)
    "annotator": ("abcd", "dcba"),
    "judgments": ("bcda", "adcb"),
    "seconds": ("cdba", "bdca"),
    "gold": ("bcda", "dcba"),
    "agreement": ("cdba", "bdca"),
    "kappa": ("bcda", "dcba"),
    "skill": ("bcda", "dcba"),
    "position": ("dcba", "bcda"),
    "verbosity": ("dbca", "cbda"),
    "flags": ("dbac", "acbd"),  # a and c both have two: ties go by name
    "paused": ("bacd", "abcd"),  # the active (no pause) come last, by name
}


@pytest.fixture
def table(tenancy: Tenancy, project: Project) -> dict[str, AnnotatorScore]:
    rows = {}
    for name, figures in FIGURES.items():
        person = factories.make_member(tenancy.org_a, username=f"{name}@a.example")
        skill, left, longer = MORE[name]
        rows[name] = _score(
            project,
            person,
            **figures,
            **FLAGS[name],
            skill=skill,
            position_left_rate=left,
            verbosity_rate=longer,
            paused_at=PAUSED.get(name),
        )
    return rows


def _order(client: Client, project: Project, **params: str) -> str:
    response = client.get(reverse("quality", args=[project.pk]), params)
    assert response.status_code == 200
    return "".join(row.name[0] for row in response.context["page"].annotators)


def test_every_allowed_column_sorts_both_ways(
    client: Client, tenancy: Tenancy, project: Project, table: dict[str, AnnotatorScore]
) -> None:
    assert set(EXPECTED_ORDER) == {key for key, _ in COLUMNS}
    client.force_login(tenancy.manager_a)
    for column, (ascending, descending) in EXPECTED_ORDER.items():
        assert _order(client, project, sort=column, dir="asc") == ascending, column
        assert _order(client, project, sort=column, dir="desc") == descending, column
        assert _order(client, project, sort=column) == ascending, column


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "annotator__password"},
        {"sort": "-id"},
        {"sort": "annotator__password", "dir": "desc"},
        {"sort": "paused_at"},
        {"sort": "", "dir": ""},
        {"sort": "judgments", "dir": "sideways"},
        {"sort": "x" * 5000},
    ],
)
def test_unknown_sort_columns_fall_back_to_the_default_order(
    client: Client, tenancy: Tenancy, project: Project, table: dict[str, AnnotatorScore], params: dict[str, str]
) -> None:
    client.force_login(tenancy.manager_a)
    expected = "bcda" if params.get("sort") == "judgments" else "abcd"
    assert _order(client, project, **params) == expected


def test_headers_toggle_direction_and_carry_aria_sort(
    client: Client, tenancy: Tenancy, project: Project, table: dict[str, AnnotatorScore]
) -> None:
    client.force_login(tenancy.manager_a)
    text = client.get(reverse("quality", args=[project.pk]), {"sort": "gold", "dir": "asc"}).text
    assert re.search(r'<th scope="col" aria-sort="ascending"><a href="\?sort=gold&amp;dir=desc#annotators">', text)
    assert 'href="?sort=kappa&amp;dir=asc#annotators"' in text
    assert text.count("aria-sort=") == 1
    text = client.get(reverse("quality", args=[project.pk]), {"sort": "gold", "dir": "desc"}).text
    assert re.search(r'aria-sort="descending"><a href="\?sort=gold&amp;dir=asc#annotators">', text)
    default = client.get(reverse("quality", args=[project.pk])).text
    assert re.search(r'aria-sort="ascending"><a href="\?sort=annotator&amp;dir=desc#annotators">', default)


# --- Un-pause -------------------------------------------------------------------------------------------------------
def test_a_manager_unpauses_an_annotator(
    client: Client, tenancy: Tenancy, project: Project, paused: AnnotatorScore
) -> None:
    client.force_login(tenancy.manager_a)
    url = reverse("quality-unpause", args=[project.pk, paused.pk])
    response = client.post(f"{url}?sort=gold&dir=desc")
    assert response.status_code == 302
    assert response["Location"] == reverse("quality", args=[project.pk]) + "?sort=gold&dir=desc"
    paused.refresh_from_db()
    assert paused.paused_at is None and paused.pause_reason == ""
    assert paused.unpaused_by == tenancy.manager_a and paused.unpaused_at is not None
    text = client.get(response["Location"]).text
    assert "may work on this project again" in text
    assert "Pause lifted by mary@a.example" in text and "Un-pause</button>" not in text
    again = client.post(url, follow=True)
    assert "not paused" in again.text
    paused.refresh_from_db()
    assert paused.unpaused_by == tenancy.manager_a


def test_unpause_redirect_never_carries_raw_input(
    client: Client, tenancy: Tenancy, project: Project, paused: AnnotatorScore
) -> None:
    client.force_login(tenancy.admin_a)
    url = reverse("quality-unpause", args=[project.pk, paused.pk])
    response = client.post(f"{url}?sort=//evil.example&dir=x")
    assert response["Location"] == reverse("quality", args=[project.pk]) + "?sort=annotator&dir=asc"


def test_a_score_of_another_project_or_organization_is_404(client: Client, tenancy: Tenancy, project: Project) -> None:
    other_project = factories.make_project(tenancy.org_a, name="Other prefs")
    theirs = _score(other_project, tenancy.annotator_a, paused_at=T0)
    foreign = _score(tenancy.project_b, tenancy.outsider_b, paused_at=T0)
    client.force_login(tenancy.manager_a)
    for score in (theirs, foreign):
        assert client.post(reverse("quality-unpause", args=[project.pk, score.pk])).status_code == 404
    assert client.post(reverse("quality-unpause", args=[project.pk, 999_999])).status_code == 404
    assert client.post(reverse("quality-unpause", args=[tenancy.project_b.pk, foreign.pk])).status_code == 404
    assert AnnotatorScore.objects.filter(paused_at__isnull=True).count() == 0


def test_posts_need_a_csrf_token(tenancy: Tenancy, project: Project, paused: AnnotatorScore) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenancy.manager_a)
    for _, url in _urls(project.pk, paused.pk)[-2:]:
        assert client.post(url).status_code == 403
    paused.refresh_from_db()
    assert paused.paused_at is not None


# --- Recompute ------------------------------------------------------------------------------------------------------
def test_recompute_now_queues_a_recompute_after_the_request(
    client: Client,
    tenancy: Tenancy,
    project: Project,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.QUALITY_RECOMPUTE_ON_COMMIT = True
    cache.clear()  # no coalescing mark left by another test
    monkeypatch.setattr("labeling.queueing._known_eta", {})
    queued: list[int] = []
    monkeypatch.setattr(
        "quality.jobs.recompute_project_quality_job.apply_async", lambda args, **options: queued.append(args[0])
    )
    plant(project, {f"g{n}": "good" for n in range(3)}, n_tasks=20, per_task=3)
    client.force_login(tenancy.manager_a)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(reverse("quality-recompute", args=[project.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("quality", args=[project.pk]))
    assert len(callbacks) == 1 and queued == [project.pk]
    recompute_project_quality_job(project.pk)  # what the worker does with it
    job = QualityJob.objects.get(project=project)
    assert (job.status, job.runs) == (RecomputeStatus.DONE, 1)
    assert ProjectQuality.objects.get(project=project).n_judgments == 60
    assert "Recompute queued" in client.get(response["Location"]).text


def test_recompute_when_switched_off_says_so(client: Client, tenancy: Tenancy, project: Project) -> None:
    client.force_login(tenancy.admin_a)
    response = client.post(reverse("quality-recompute", args=[project.pk]), follow=True)
    assert "switched off" in response.text
    assert not QualityJob.objects.exists()


# --- CSV downloads --------------------------------------------------------------------------------------------------
@pytest.fixture
def known(tenancy: Tenancy, project: Project) -> Project:
    _snapshot(project, 1, fleiss_kappa=None, krippendorff_alpha=None, fleiss_items=0)
    _snapshot(project, 2, fleiss_kappa=-0.125, completion=1.0)
    ann = factories.make_member(tenancy.org_a, username="ann@a.example")
    bob = factories.make_member(tenancy.org_a, username="bob@a.example")
    _score(
        project,
        bob,
        n_judgments=12,
        median_seconds=7.25,
        gold_n=4,
        gold_correct=3,
        gold_accuracy=0.75,
        gold_low=0.3,
        gold_high=0.95,
        agreement_n=10,
        agreement=0.8,
        chance_agreement=0.3,
        kappa_mean=0.5,
        skill=0.875,
        position_n=8,
        position_left_rate=0.5,
        position_q=1.0,
        verbosity_n=8,
        verbosity_rate=0.625,
        verbosity_baseline=0.5,
        verbosity_q=0.5,
        too_fast=True,
        random_clicker=True,
        paused_at=T0,
        pause_reason="Too fast",
    )
    _score(project, ann, n_judgments=3, unpaused_at=T0, unpaused_by=tenancy.manager_a)
    _ranking(project, "model-x", 1, 0.5, low=0.1, high=0.9)
    _ranking(project, "model-y", 2, -0.5, low=-0.9, high=-0.1, regularised=True)
    return project


def _download(client: Client, project: Project, chart: str) -> Any:
    response = client.get(reverse("quality-csv", args=[project.pk, chart]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="project-{project.pk}-{chart}.csv"'
    return response


def test_csv_downloads_hold_exactly_the_stored_figures(client: Client, tenancy: Tenancy, known: Project) -> None:
    client.force_login(tenancy.manager_a)
    assert _download(client, known, "agreement").content.decode().splitlines() == [
        "computed_at,judgments,tasks,annotators,fleiss_kappa,fleiss_tasks,krippendorff_alpha,percent_agreement,"
        "completion",
        "2025-03-01T13:00:00+00:00,12,10,2,,0,,0.75,0.5",
        "2025-03-01T14:00:00+00:00,24,10,2,-0.125,6,0.3,0.75,1.0",
    ]
    assert _download(client, known, "labels").content.decode().splitlines() == [
        "label,title,count,share",
        "a,A is better,6,0.5",
        "b,B is better,3,0.25",
        "tie,Tie,2,0.166667",
        "both_bad,Both bad,1,0.083333",
    ]
    confusion = _download(client, known, "confusion").content.decode().splitlines()
    assert confusion[:6] == [
        "consensus_label,given_label,count,row_share",
        "a,a,4,0.666667",
        "a,b,1,0.166667",
        "a,tie,1,0.166667",
        "a,both_bad,0,0.0",
        "b,a,0,0.0",
    ]
    assert len(confusion) == 17 and confusion[9:13] == ["tie,a,0,", "tie,b,0,", "tie,tie,0,", "tie,both_bad,0,"]
    assert _download(client, known, "annotators").content.decode().splitlines() == [
        "annotator,email,judgments,median_seconds,gold_n,gold_correct,gold_accuracy,gold_low,gold_high,agreement_n,"
        "agreement,chance_agreement,kappa_mean,skill,position_n,position_left_rate,position_q,verbosity_n,"
        "verbosity_rate,verbosity_baseline,verbosity_q,flags,paused_at,pause_reason,unpaused_at,unpaused_by",
        "ann@a.example,ann@a.example,3,,0,0,,,,0,,,,,0,,,0,,,,,,,2025-03-01T12:00:00+00:00,mary@a.example",
        "bob@a.example,bob@a.example,12,7.25,4,3,0.75,0.3,0.95,10,0.8,0.3,0.5,0.875,8,0.5,1.0,8,0.625,0.5,0.5,"
        "random_clicker too_fast,2025-03-01T12:00:00+00:00,Too fast,,",
    ]
    assert _download(client, known, "models").content.decode().splitlines() == [
        "rank,model,theta,low,high,battles,wins,losses,ties,regularised",
        "1,model-x,0.5,0.1,0.9,10,5,4,1,no",
        "2,model-y,-0.5,-0.9,-0.1,10,5,4,1,yes",
    ]


def test_an_unknown_chart_is_404(client: Client, tenancy: Tenancy, known: Project) -> None:
    client.force_login(tenancy.manager_a)
    for chart in ("passwords", "annotators.csv", "Models"):
        assert client.get(f"/projects/{known.pk}/quality/{chart}.csv").status_code == 404


def test_csv_cells_cannot_run_as_spreadsheet_formulas(client: Client, tenancy: Tenancy, project: Project) -> None:
    _snapshot(project, 1, label_counts={"a": 1, "@evil": 2})
    Label.objects.filter(project=project, value="tie").update(title="=1+2")
    Label.objects.filter(project=project, value="b").update(title="<b>B</b>")
    _ranking(project, '=HYPERLINK("http://evil.example","click")', 1, 0.2)
    _ranking(project, "+cmd|' /C calc'!A0", 2, -0.1)
    _ranking(project, "-2+3", 3, -0.1)
    person = factories.make_member(tenancy.org_a, username="@SUM(1+1)")
    person.email = "\tsneaky@a.example"
    person.save()
    _score(project, person, paused_at=T0, pause_reason="\r=cmd")
    client.force_login(tenancy.manager_a)
    models = _csv(_download(client, project, "models"))
    assert [row[1] for row in models[1:]] == [
        '\'=HYPERLINK("http://evil.example","click")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
    ]
    assert models[2][2] == "-0.1"  # numbers stay numbers
    labels = _csv(_download(client, project, "labels"))
    assert ["tie", "'=1+2", "0", "0.0"] in labels and ["b", "<b>B</b>", "0", "0.0"] in labels
    assert ["'@evil", "", "2", "0.666667"] in labels
    annotators = _csv(_download(client, project, "annotators"))
    assert annotators[1][:2] == ["'@SUM(1+1)", "'\tsneaky@a.example"]
    assert annotators[1][23] == "'\r=cmd"
    for rows in (models, labels, annotators):
        for row in rows:
            for cell in row:
                assert not cell or (cell[0] not in "=+@\t\r" and not re.match(r"-[^0-9]", cell))


def test_csv_cell_rules() -> None:
    assert csv_cell("=1") == "'=1" and csv_cell("plain") == "plain" and csv_cell("") == ""
    assert csv_cell(-0.5) == -0.5 and csv_cell(3) == 3 and csv_cell(True) == "yes"
    assert csv_cell(None) == "" and csv_cell(float("nan")) == ""
    assert csv_cell(T0) == "2025-03-01T12:00:00+00:00"


# --- The charts on their own (plain data in, SVG out) ---------------------------------------------------------------
def _assert_chart(svg: str) -> None:
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert 'role="img"' in svg and "aria-label=" in svg and "<title>" in svg
    assert "<script" not in svg and "style=" not in svg  # the CSP forbids inline style


HOSTILE = '<script>alert(1)</script>"&'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;"


def test_charts_escape_every_piece_of_text() -> None:
    svgs = [
        charts.bar_chart(title=HOSTILE, rows=[(HOSTILE, 3), ("b", 1)]),
        charts.heatmap(title="C", labels=[HOSTILE, "b"], matrix=[[2, 1], [0, 3]], row_title=HOSTILE, column_title="g"),
        charts.interval_chart(title="M", rows=[(HOSTILE, 0.2, -0.1, 0.5)], axis_title=HOSTILE),
        charts.line_chart(
            title="A", x_labels=[HOSTILE, "2"], series=[(HOSTILE, [0.1, 0.2])], y_title=HOSTILE, x_title="x"
        ),
        charts.empty_chart(title=HOSTILE, message=HOSTILE),
    ]
    for svg in svgs:
        _assert_chart(svg)
        assert ESCAPED in svg and "<script>" not in svg


def test_charts_without_data_say_so() -> None:
    empties = [
        charts.bar_chart(title="Labels", rows=[]),
        charts.bar_chart(title="Labels", rows=[("a", 0)]),
        charts.heatmap(title="C", labels=["a"], matrix=[[0]], row_title="r", column_title="c"),
        charts.heatmap(title="C", labels=["a", "b"], matrix=[[1]], row_title="r", column_title="c"),
        charts.interval_chart(title="M", rows=[], axis_title="θ"),
        charts.line_chart(title="A", x_labels=["1"], series=[("k", [None])], y_title="y", x_title="x"),
    ]
    for svg in empties:
        _assert_chart(svg)
        assert "No data yet." in svg


def test_heatmap_shading_is_normalised_per_row_and_counts_are_text() -> None:
    svg = charts.heatmap(title="C", labels=["a", "b"], matrix=[[3, 1], [10, 30]], row_title="r", column_title="c")
    assert re.findall(r'fill-opacity="([0-9.]+)"', svg) == ["0.750", "0.250", "0.250", "0.750"]
    for count, share in (("3", "75%"), ("1", "25%"), ("10", "25%"), ("30", "75%")):
        assert f">{count}</text>" in svg and f">{share}</text>" in svg
    assert "41 of 44 judgments" not in svg and "33 of 44 judgments (75%)" in svg


def test_line_chart_series_differ_by_dash_and_marker_and_are_labelled() -> None:
    svg = charts.line_chart(
        title="Agreement over time",
        x_labels=["d1", "d2", "d3"],
        series=[
            ("Fleiss' κ", [0.2, None, 0.4]),
            ("Krippendorff's \N{GREEK SMALL LETTER ALPHA}", [0.1, 0.3, -0.2]),
            ("Percent", [0.5, 0.6, 0.7]),
        ],
        y_title="Coefficient",
        x_title="Snapshot",
        percent=(False, False, True),
    )
    _assert_chart(svg)
    assert (
        "Fleiss&#x27; κ</text>" in svg
        and "Krippendorff&#x27;s \N{GREEK SMALL LETTER ALPHA}</text>" in svg
        and "Percent</text>" in svg
    )
    assert 'stroke-dasharray="7 4"' in svg and 'stroke-dasharray="2 3"' in svg
    assert "<circle" in svg and "<rect" in svg and "<polygon" in svg
    assert "Coefficient</text>" in svg and "Snapshot</text>" in svg
    assert "latest Fleiss&#x27; κ 0.40, Krippendorff&#x27;s \N{GREEK SMALL LETTER ALPHA} -0.20, Percent 70%" in svg
    assert svg.count("<polyline") == 2  # κ's gap leaves single points, drawn as markers only


def test_interval_chart_puts_every_model_on_one_axis() -> None:
    svg = charts.interval_chart(title="M", rows=[("1. x", 0.5, 0.2, 0.8), ("2. y", -0.5, -0.8, -0.2)], axis_title="θ")
    dots = [float(x) for x in re.findall(r'<circle cx="([0-9.]+)"', svg)]
    assert dots[0] > dots[1]
    assert "1. x 0.50 [0.20, 0.80]" in svg and 'stroke-dasharray="4 3"' in svg


def test_bar_chart_shows_counts_and_percentages() -> None:
    svg = charts.bar_chart(title="Labels", rows=[("a", 3), ("b", 1)])
    assert "3 (75.0%)</text>" in svg and "1 (25.0%)</text>" in svg


def test_long_names_are_shortened_with_the_full_name_as_tooltip() -> None:
    name = "an-extremely-long-model-name-" * 4
    svg = charts.interval_chart(title="M", rows=[(name, 0.0, -0.1, 0.1)], axis_title="θ")
    assert f"<title>{name}</title>" in svg and "…</text>" in svg
