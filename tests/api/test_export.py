"""GET /api/v1/projects/{id}/export (and /summary, manage.py export_dataset): every format's exact shape, the
datasets round trip, filters, the since cursor, CSV formula neutralisation, streaming, and tenancy."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from exchange.exports import annotator_pseudonym, spreadsheet_safe
from labeling.models import Judgment, Project, Role, Task
from quality.services import project_quality_recompute
from routing.services import judgment_record
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.services import needs_postgres

# Task -> the three judges' labels (min_judgments is 3): the consensus is the majority here.
PLAN = {
    "t-a": ["a", "a", "a"],
    "t-b": ["b", "b", "a"],
    "t-tie": ["tie", "tie", "tie"],
    "t-bad": ["both_bad", "both_bad", "both_bad"],
    "t-same-model": ["a", "a", "a"],
}


@pytest.fixture(autouse=True)
def _no_settle(settings: Any) -> None:
    settings.EXPORT_SETTLE_SECONDS = 0


def build(org: Any, project: Project, plan: dict[str, list[str]] = PLAN) -> list[Any]:
    judges = [factories.make_member(org, Role.ANNOTATOR) for _ in range(3)]
    for n, (external_id, labels) in enumerate(plan.items()):
        payload = {
            "prompt": f"Prompt {external_id}",
            "response_a": f"=SUM(A1) answer A {external_id}",
            "response_b": f"answer B {external_id}",
            "model_a": "alpha" if external_id != "t-same-model" else "gamma",
            "model_b": "beta" if external_id != "t-same-model" else "gamma",
        }
        task = factories.make_task(project, external_id, payload=payload)
        for judge, label in zip(judges, labels, strict=True):
            strength = (2 if judge == judges[0] else 3) if project.strength_scale and label in ("a", "b") else None
            judgment_record(
                task=task, annotator=judge, label=label, client_id=f"{external_id}-{judge.pk}", a_left=n % 2 == 0,
                seconds_on_task=4.5, strength=strength,
            )  # fmt: skip
    project_quality_recompute(project_id=project.pk)
    return judges


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content if hasattr(response, "content") else response
    body = b"".join(response.streaming_content)
    return [json.loads(line) for line in body.splitlines()]


def export(client: KeyClient, project: Project, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project.pk}/export", params)


@pytest.fixture
def project(tenancy: Tenancy) -> Project:
    # Two of three is agreement enough (0.6), so that t-b completes with a dissenting judgment.
    project = factories.make_project(tenancy.org_a, name="Export prefs", consensus_threshold=0.6)
    build(tenancy.org_a, project)
    return project


def test_dpo_rows_are_trl_preference_rows(api_a: KeyClient, project: Project) -> None:
    response = export(api_a, project, format="dpo")
    assert response["Content-Type"].startswith("application/x-ndjson")
    data = {row["external_id"]: row for row in rows(response)}
    assert set(data) == {"t-a", "t-b", "t-same-model"}
    assert data["t-a"]["chosen"].startswith("=SUM") and data["t-a"]["rejected"] == "answer B t-a"
    assert data["t-b"]["chosen"] == "answer B t-b" and data["t-b"]["chosen_model"] == "beta"
    assert data["t-a"] == {
        "prompt": "Prompt t-a",
        "chosen": "=SUM(A1) answer A t-a",
        "rejected": "answer B t-a",
        "external_id": "t-a",
        "confidence": pytest.approx(data["t-a"]["confidence"]),
        "agreement": 1.0,
        "n_judgments": 3,
        "chosen_model": "alpha",
        "rejected_model": "beta",
    }
    assert 0.5 < data["t-a"]["confidence"] <= 1 and data["t-b"]["agreement"] == pytest.approx(1 / 3)
    assert response["X-Concord-Next-Since"]  # the counts are at /export/summary (counting would delay the stream)


def test_margin_column_on_strength_scale_projects(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Strength", strength_scale=True)
    build(tenancy.org_a, project, {"s1": ["a", "a", "a"], "s2": ["b", "b", "b"]})
    data = {row["external_id"]: row for row in rows(export(api_a, project, format="dpo"))}
    assert data["s1"]["margin"] == pytest.approx((2 + 3 + 3) / 3)


def test_kto_rows(api_a: KeyClient, project: Project) -> None:
    data = rows(export(api_a, project, format="kto"))
    by_task: dict[str, list[dict[str, Any]]] = {}
    for row in data:
        by_task.setdefault(row["external_id"], []).append(row)
    assert set(by_task) == {"t-a", "t-b", "t-bad", "t-same-model"}  # ties give no rows
    a_rows = {row["completion"]: row["label"] for row in by_task["t-a"]}
    assert a_rows == {"=SUM(A1) answer A t-a": True, "answer B t-a": False}
    assert [row["label"] for row in by_task["t-bad"]] == [False, False]
    assert set(data[0]) == {
        "prompt",
        "completion",
        "label",
        "external_id",
        "confidence",
        "agreement",
        "n_judgments",
        "model",
    }


def test_consensus_annotations_and_arena_rows(api_a: KeyClient, project: Project, tenancy: Tenancy) -> None:
    consensus = {row["external_id"]: row for row in rows(export(api_a, project, format="consensus"))}
    assert consensus["t-tie"]["label"] == "tie" and consensus["t-bad"]["label"] == "both_bad"
    assert set(consensus["t-a"]["posterior"]) == {"a", "b", "tie", "both_bad"} and consensus["t-a"]["gold"] is False
    assert consensus["t-a"]["prompt"] == "Prompt t-a" and consensus["t-a"]["completed_at"]
    annotations = rows(export(api_a, project, format="annotations"))
    assert len(annotations) == 15
    judge_ids = {row["annotator"] for row in annotations}
    assert len(judge_ids) == 3 and all(judge.startswith("ann_") for judge in judge_ids)
    users = set(Judgment.objects.filter(project=project).values_list("annotator_id", flat=True))
    assert judge_ids == {annotator_pseudonym(tenancy.org_a.pk, user) for user in users}
    assert all("annotator_id" not in row for row in annotations)  # the account id is never exported
    assert {row["seconds"] for row in annotations} == {4.5} and annotations[0]["a_left"] in (True, False)
    arena = rows(export(api_a, project, format="arena"))
    assert len(arena) == 12  # the same-model task is not a battle
    winners = {(row["external_id"], row["winner"]) for row in arena}
    assert ("t-a", "model_a") in winners and ("t-tie", "tie") in winners and ("t-bad", "tie (bothbad)") in winners
    assert ("t-b", "model_b") in winners and all(row["model_a"] == "alpha" for row in arena)


def test_rows_load_with_hugging_face_datasets(api_a: KeyClient, project: Project, tmp_path: Path) -> None:
    from datasets import load_dataset

    for fmt in ("dpo", "kto", "consensus", "annotations", "arena"):
        path = tmp_path / f"{fmt}.jsonl"
        path.write_bytes(b"".join(export(api_a, project, format=fmt).streaming_content))
        dataset = load_dataset("json", data_files=str(path), split="train")
        assert dataset.num_rows > 0, fmt
        if fmt == "dpo":
            dtypes = {name: getattr(feature, "dtype", None) for name, feature in dataset.features.items()}
            expected = {"prompt": "string", "chosen": "string", "rejected": "string", "confidence": "float64"}
            assert {name: dtypes[name] for name in expected} == expected and dtypes["n_judgments"] == "int64"
        if fmt == "kto":
            assert dataset.features["label"].dtype == "bool" and dataset.features["completion"].dtype == "string"


def test_filters_and_the_since_cursor(api_a: KeyClient, project: Project, tenancy: Tenancy) -> None:
    everything = rows(export(api_a, project, format="consensus"))
    confident = rows(export(api_a, project, format="consensus", min_confidence=0.99))
    assert 0 < len(confident) <= len(everything)
    assert all(row["confidence"] >= 0.99 for row in confident)
    first = export(api_a, project, format="consensus")
    b"".join(first.streaming_content)
    cursor = first["X-Concord-Next-Since"]
    assert rows(export(api_a, project, format="consensus", since=cursor)) == []
    # A task completing afterwards is the only row of the next pull.
    later = {"t-later": ["a", "a", "a"]}
    build(tenancy.org_a, project, later)
    pulled = rows(export(api_a, project, format="consensus", since=cursor))
    assert [row["external_id"] for row in pulled] == ["t-later"]


def test_recently_completed_tasks_wait_for_the_next_pull(api_a: KeyClient, project: Project, settings: Any) -> None:
    settings.EXPORT_SETTLE_SECONDS = 60
    assert rows(export(api_a, project, format="consensus")) == []
    Task.objects.filter(project=project).update(completed_at=timezone.now() - timedelta(minutes=2))
    assert len(rows(export(api_a, project, format="consensus"))) == 5


def test_gold_only_when_asked(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, name="Gold prefs")
    judges = build(tenancy.org_a, project, {"n1": ["a", "a", "a"]})
    gold = factories.make_task(project, "g1", gold_label="b")
    judgment_record(task=gold, annotator=judges[0], label="b", client_id="g1-0", a_left=True)
    project_quality_recompute(project_id=project.pk)
    assert [row["external_id"] for row in rows(export(api_a, project, format="consensus"))] == ["n1"]
    with_gold = rows(export(api_a, project, format="consensus", include_gold="true"))
    assert [(row["external_id"], row["gold"], row["label"]) for row in with_gold] == [
        ("n1", False, "a"),
        ("g1", True, "b"),
    ]


def test_csv_neutralises_formulas(api_a: KeyClient, project: Project) -> None:
    response = export(api_a, project, format="consensus", output="csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(table) == 5
    assert all(row["response_a"].startswith("'=SUM") for row in table)
    assert json.loads(table[0]["posterior"])  # nested values as JSON
    annotations = export(api_a, project, format="annotations", output="csv")
    assert len(list(csv.DictReader(io.StringIO(b"".join(annotations.streaming_content).decode())))) == 15
    assert [spreadsheet_safe(v) for v in ("=1+1", "+1", "-2", "@x", "\tx", "ok", -3, 1.5)] == [
        "'=1+1", "'+1", "'-2", "'@x", "'\tx", "ok", -3, 1.5
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "parquet"}, "format"),
        ({}, "format"),
        ({"format": "dpo", "output": "csv"}, "output"),
        ({"format": "consensus", "output": "xml"}, "output"),
        ({"format": "dpo", "min_confidence": "lots"}, "min_confidence"),
        ({"format": "dpo", "min_confidence": "2"}, "min_confidence"),
        ({"format": "dpo", "since": "forged"}, "since"),
        ({"format": "dpo", "include_gold": "maybe"}, "include_gold"),
        ({"format": "dpo", "annotator__password": "x"}, "annotator__password"),
    ],
)
def test_bad_parameters_are_400(api_a: KeyClient, project: Project, params: dict[str, str], field: str) -> None:
    response = export(api_a, project, **params)
    assert response.status_code == 400 and field in response.json(), response.content


def test_a_cursor_of_another_project_is_refused(api_a: KeyClient, project: Project, tenancy: Tenancy) -> None:
    cursor = export(api_a, tenancy.project_a, format="consensus")["X-Concord-Next-Since"]
    assert export(api_a, project, format="consensus", since=cursor).status_code == 400


def test_summary_endpoint(api_a: KeyClient, project: Project) -> None:
    summary = api_a.get(f"/api/v1/projects/{project.pk}/export/summary", {"format": "dpo"}).json()
    assert summary["rows"] == 3 and summary["excluded"] == {"tie": 1, "both_bad": 1}
    assert summary["by_label"] == {"a": 2, "b": 1, "tie": 1, "both_bad": 1} and summary["next_since"]


def test_categorical_projects_export_consensus_but_not_preferences(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, "categorical", name="Cats")
    judges = [factories.make_member(tenancy.org_a) for _ in range(3)]
    task = factories.make_task(project, "c1")
    for judge in judges:
        judgment_record(task=task, annotator=judge, label="neutral", client_id=f"c1-{judge.pk}")
    project_quality_recompute(project_id=project.pk)
    data = rows(export(api_a, project, format="consensus"))
    assert data[0]["text"] and data[0]["label"] == "neutral"
    assert export(api_a, project, format="dpo").status_code == 400


def test_export_crosses_no_organization(api_b: KeyClient, api_read_only: KeyClient, project: Project) -> None:
    assert rows(export(api_read_only, project, format="dpo"))  # reading is what read-only keys are for
    for url in (f"/api/v1/projects/{project.pk}/export", f"/api/v1/projects/{project.pk}/export/summary"):
        foreign = api_b.get(url, {"format": "dpo"})
        missing = api_b.get(url.replace(str(project.pk), str(project.pk + 1000)), {"format": "dpo"})
        assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
        assert KeyClient(None).get(url, {"format": "dpo"}).status_code == 401


def test_export_dataset_command(project: Project, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    call_command("export_dataset", str(project.pk), "--format", "dpo")
    captured = capsysbinary.readouterr()
    assert len(captured.out.splitlines()) == 3 and b"left out: 1 tie, 1 both_bad" in captured.err
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_dataset", "999999", "--format", "dpo")
    with pytest.raises(CommandError, match="since"):
        call_command("export_dataset", str(project.pk), "--format", "dpo", "--since", "nope")


def test_completed_at_follows_the_task(tenancy: Tenancy) -> None:
    from quality.consensus import task_progress_refresh

    project = factories.make_project(tenancy.org_a, name="Completion")
    build(tenancy.org_a, project, {"c": ["a", "a", "a"]})
    task = Task.objects.get(project=project, external_id="c")
    assert task.status == "complete" and task.completed_at is not None
    first = task.completed_at
    task_progress_refresh(task=task, project=project)  # a recount keeps the time it completed
    task.refresh_from_db()
    assert task.completed_at == first
    Judgment.objects.filter(task=task).first().delete()
    task_progress_refresh(task=task, project=project)  # a judgment removed: open again, no completion time
    task.refresh_from_db()
    assert task.status == "open" and task.completed_at is None


@pytest.mark.parametrize("fmt", ["consensus", "annotations", "kto", "arena", "dpo"])
def test_pages_cover_every_row_once(
    api_a: KeyClient, project: Project, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small pages (1, then 4) walk the same rows as one big page: none lost, none twice."""
    whole = rows(export(api_a, project, format=fmt))
    from exchange import exports

    monkeypatch.setattr(exports, "FIRST_PAGE", 1)
    monkeypatch.setattr(exports, "BATCH", 4)
    monkeypatch.setattr(exports, "COPY_PAGE", 4)
    paged = rows(export(api_a, project, format=fmt))
    assert paged == whole and len(whole) > 1


@pytest.mark.parametrize("strength_scale", [False, True])
def test_dpo_rows_made_by_the_query_equal_the_rows_made_from_tasks(tenancy: Tenancy, strength_scale: bool) -> None:
    """On PostgreSQL the dpo query picks chosen and rejected itself (for speed); the other formats, and SQLite,
    make them from task rows with ``_dpo_rows``. Both ways give the same rows, gold and margins included."""
    from exchange import exports

    project = factories.make_project(
        tenancy.org_a, name="Same dpo", strength_scale=strength_scale, consensus_threshold=0.6
    )
    build(tenancy.org_a, project)
    request = exports.export_request(project=project, fmt="dpo", include_gold=True)
    made = [row for page in exports.export_rows(request) for row in page]
    if connection.vendor == "postgresql":
        pages = exports._copy_pages(request, exports._task_columns(request), judgments=False)
    else:
        pages = exports._pages(request, with_posterior=False)
    from_tasks = [row for page in pages for row in exports._dpo_rows(request, page)]
    assert made == from_tasks and len(made) >= 2
    assert all(("margin" in row) == strength_scale for row in made)


# --- Right after a large import: the export's plan does not depend on statistics -----------------------------------
def _capture_export_plans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The plan of every ``COPY (query) TO STDOUT`` the export runs, EXPLAINed on the same connection just before
    it, in the same transaction and with the same settings as the export's own query."""
    import psycopg

    plans: list[str] = []
    copy = psycopg.Cursor.copy

    def explained(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        text = statement if isinstance(statement, str) else statement.as_string(cursor)
        if text.startswith("COPY (") and "TO STDOUT" in text:
            cursor.execute("EXPLAIN " + text[len("COPY (") : text.rindex(") TO STDOUT")])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return copy(cursor, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", explained)
    return plans


@needs_postgres
@pytest.mark.parametrize("analysed", [False, True])
def test_an_export_right_after_a_large_import_walks_the_export_index(
    api_a: KeyClient, tenancy: Tenancy, monkeypatch: pytest.MonkeyPatch, analysed: bool
) -> None:
    # Statistics from when the tables were small (or none for the new rows): the planner scanned the organization's
    # whole judgment index once per task (6,700-10,000 rows/s; 330 with none at all) or, once analysed, sorted the
    # whole export before its first row. The export's plan is now the same whatever the statistics say.
    with connection.cursor() as cursor:
        for table in ("labeling_task", "labeling_annotation", "quality_taskconsensus"):
            cursor.execute(f"ANALYZE {table}")  # in the test's transaction: statistics of the small tables
    project = factories.make_project(tenancy.org_a, name="Imported", min_judgments=3)
    n = 3000
    tasks = "\n".join(
        json.dumps(
            {"external_id": f"i{i}", "prompt": f"Q{i}", "response_a": "A", "response_b": "B", "model_a": "m1"}
            | ({"model_b": "m2"} if i % 100 else {"gold": "a"})  # one in a hundred is gold
        )
        for i in range(n)
    )
    url = f"/api/v1/projects/{project.pk}"
    assert api_a.post(f"{url}/tasks/import", tasks, content_type="application/x-ndjson").status_code == 200
    judgments = "\n".join(
        json.dumps({"external_id": f"i{i}", "annotator": f"r{(i + k) % 50}@old.example", "label": "a", "a_left": True})
        for i in range(n)
        for k in range(3)
    )
    imported = api_a.post(
        f"{url}/annotations/import?create_annotators=1", judgments, content_type="application/x-ndjson"
    )
    assert imported.status_code == 200 and imported.json()["created"] == 3 * n
    project_quality_recompute(project_id=project.pk)
    if analysed:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE labeling_task, labeling_annotation, quality_taskconsensus")
    plans = _capture_export_plans(monkeypatch)
    normal = n - n // 100
    assert len(rows(export(api_a, project, format="annotations"))) == 3 * normal
    assert len(rows(export(api_a, project, format="dpo"))) == normal
    for fmt in ("kto", "consensus", "arena"):
        assert rows(export(api_a, project, format=fmt))
    assert len(rows(export(api_a, project, format="annotations", include_gold="true"))) == 3 * n
    assert len(plans) == 6
    for plan in plans:
        assert "Index Scan using task_export_order on labeling_task t" in plan, plan
        for slow in ("Sort", "Hash", "Merge", "Seq Scan", "Bitmap", "Materialize", "Gather", "JIT"):
            assert slow not in plan, plan
    by_task = r"Index (Only )?Scan using \w+ on {table} \w+\b[^\n]*\n\s+Index Cond: \({column} = t\.id\)"
    for plan in plans:
        assert re.search(by_task.format(table="quality_taskconsensus", column="task_id"), plan), plan
    for plan in (plans[0], plans[4], plans[5]):  # the judgments of annotations, arena, annotations with gold
        assert re.search(by_task.format(table="labeling_annotation", column="task_id"), plan), plan
    assert re.search(r"Index Scan using \w+ on labeling_task t_1\b", plans[5]), plans[5]  # gold: in id order, no sort
