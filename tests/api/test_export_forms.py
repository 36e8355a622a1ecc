"""Exports of projects with a form (issue 17): rm_pairs, sft, ratings, dpo and kto of a ranking project, and the
annotations' answers, with exact rows on a hand-made task (three judgments of one 4-response task), each loaded
with Hugging Face ``datasets``; the parameters' 400s and another organization's 404."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from exchange import form_exports
from exchange.exports import annotator_pseudonym
from labeling.models import Judgment, Project, Role
from labeling.questions import QuestionSpec
from quality.services import project_quality_recompute
from routing.services import judgment_record
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy
from tests.forms.rich import RICH_QUESTIONS, rich_answers, rich_task
from tests.services import needs_postgres

# The hand-made task: three judges rank its 4 responses. Places (1 = best): response 0 gets 1, 2, 1 (mean 4/3);
# 1 gets 2, 1, 3 (mean 2); 2 gets 3, 3, 2 (mean 8/3); 3 gets 4, 4, 4 (mean 4).
RANKINGS = [[0, 1, 2, 3], [1, 0, 2, 3], [0, 2, 1, 3]]
MEAN_RANK = [4 / 3, 2, 8 / 3, 4]
# Ratings 7 - place for every aspect; the third judge rates harmlessness the other way round.
HARMLESSNESS = [[7, 6, 5, 4], [6, 7, 5, 4], [1, 2, 3, 4]]
REWRITE = "Use xs[::-1] for a copy, or xs.reverse() in place."
RESPONSES = [f"Answer {r} to 1: use `reversed(xs)` or\n\n```python\nxs[::-1]\n```" for r in range(4)]
MESSAGES = rich_task(1)["messages"]


@pytest.fixture(autouse=True)
def _no_settle(settings: Any) -> None:
    settings.EXPORT_SETTLE_SECONDS = 0


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def export(client: KeyClient, project: Project, **params: Any) -> Any:
    return client.get(f"/api/v1/projects/{project.pk}/export", params)


def loaded(client: KeyClient, project: Project, tmp_path: Path, **params: Any) -> Any:
    """The export as ``datasets`` reads it (``load_dataset("json", data_files=…)``)."""
    from datasets import load_dataset

    path = tmp_path / f"{params['format']}-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_bytes(b"".join(export(client, project, **params).streaming_content))
    return load_dataset("json", data_files=str(path), split="train")


@pytest.fixture
def ranked(tenancy: Tenancy) -> tuple[Project, list[Any]]:
    project = factories.make_project(
        tenancy.org_a, "ranking", name="Ranked", questions=RICH_QUESTIONS, min_judgments=3, max_judgments=3
    )
    row = rich_task(1)  # an import row: the payload is its conversation and responses
    task = factories.make_task(
        project, row["external_id"], payload={"messages": MESSAGES, "responses": row["responses"]}
    )
    judges = [factories.make_member(tenancy.org_a, Role.ANNOTATOR) for _ in range(3)]
    for n, (judge, ranking) in enumerate(zip(judges, RANKINGS, strict=True)):
        answers = rich_answers(ranking)
        answers["harmlessness"] = HARMLESSNESS[n]
        if n == 1:
            del answers["better"]  # optional: no rewrite
        if n == 2:
            answers["better"] = {"text": "  ", "source": None}  # an empty rewrite is no row
        judgment_record(task=task, annotator=judge, label="", client_id=f"r-{n}", answers=answers, seconds_on_task=9)
    project_quality_recompute(project_id=project.pk)
    return project, judges


def pair(chosen: int, rejected: int, margin: float) -> dict[str, Any]:
    return {
        "prompt": None,
        "messages": MESSAGES,
        "chosen": RESPONSES[chosen],
        "rejected": RESPONSES[rejected],
        "margin": pytest.approx(margin),
        "external_id": "rich-1",
        "chosen_model": f"m{chosen}",
        "rejected_model": f"m{rejected}",
        "chosen_index": chosen,
        "rejected_index": rejected,
        "n_judgments": 3,
    }


def test_rm_pairs_of_a_ranking_are_every_pair_of_the_mean_rank_order(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tmp_path: Path
) -> None:
    project, _ = ranked
    m = MEAN_RANK
    expected = [pair(i, j, m[j] - m[i]) for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))]
    assert rows(export(api_a, project, format="rm_pairs")) == expected
    assert rows(export(api_a, project, format="rm_pairs", question="rank")) == expected
    dataset = loaded(api_a, project, tmp_path, format="rm_pairs")
    assert dataset.num_rows == 6 and dataset.features["margin"].dtype == "float64"
    assert dataset.features["chosen"].dtype == "string" and dataset[0]["messages"][1]["role"] == "user"


def test_rm_pairs_of_a_rating_question_are_the_pairs_whose_mean_ratings_differ(
    api_a: KeyClient, ranked: tuple[Project, list[Any]]
) -> None:
    project, _ = ranked
    # harmlessness means: 14/3, 5, 13/3, 4 -> order 1, 0, 2, 3.
    means = [14 / 3, 5, 13 / 3, 4]
    expected = [pair(i, j, means[i] - means[j]) for i, j in ((1, 0), (1, 2), (1, 3), (0, 2), (0, 3), (2, 3))]
    assert rows(export(api_a, project, format="rm_pairs", question="harmlessness")) == expected
    # helpfulness: 20/3, 6, 16/3, 4 (the ranking's order).
    helpful = [20 / 3, 6, 16 / 3, 4]
    got = rows(export(api_a, project, format="rm_pairs", question="helpfulness"))
    assert [(r["chosen_index"], r["rejected_index"], r["margin"]) for r in got] == [
        (i, j, pytest.approx(helpful[i] - helpful[j])) for i, j in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    ]


def test_dpo_and_kto_of_a_ranking_are_its_best_and_worst(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tmp_path: Path
) -> None:
    project, _ = ranked
    [dpo] = rows(export(api_a, project, format="dpo"))
    assert dpo == {
        "prompt": None,
        "chosen": RESPONSES[0],
        "rejected": RESPONSES[3],
        "external_id": "rich-1",
        "confidence": pytest.approx(dpo["confidence"]),
        "agreement": pytest.approx(1 / 3),  # one of the three pairs of judges agrees on the best (response 0)
        "n_judgments": 3,
        "chosen_model": "m0",
        "rejected_model": "m3",
        "margin": pytest.approx(4 - 4 / 3),
        "messages": MESSAGES,
    }
    kto = rows(export(api_a, project, format="kto"))
    assert [(row["completion"], row["label"], row["model"]) for row in kto] == [
        (RESPONSES[0], True, "m0"),
        (RESPONSES[3], False, "m3"),
    ]
    assert set(kto[0]) == {"prompt", "completion", "label", "external_id", "confidence", "agreement", "n_judgments",
                           "model", "messages"}  # fmt: skip
    for fmt in ("dpo", "kto"):
        dataset = loaded(api_a, project, tmp_path, format=fmt)
        assert dataset.num_rows == (1 if fmt == "dpo" else 2)
    assert loaded(api_a, project, tmp_path, format="kto").features["label"].dtype == "bool"


def test_sft_rows_are_the_rewrites_as_conversations(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tenancy: Tenancy, tmp_path: Path
) -> None:
    project, judges = ranked
    assert rows(export(api_a, project, format="sft")) == [
        {
            "messages": [*MESSAGES, {"role": "assistant", "content": REWRITE}],
            "external_id": "rich-1",
            "annotator": annotator_pseudonym(tenancy.org_a.pk, judges[0].pk),
            "question": "better",
            "source": 0,
            "source_model": "m0",
        }
    ]  # the second judge wrote no rewrite, the third an empty one
    dataset = loaded(api_a, project, tmp_path, format="sft")
    assert dataset.num_rows == 1 and dataset[0]["messages"][-1] == {"role": "assistant", "content": REWRITE}


def _figures(values: list[int]) -> tuple[Any, Any, int]:
    mean = sum(values) / len(values)
    return (
        pytest.approx(mean),
        pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))),
        len(values),
    )


def test_ratings_rows_are_each_responses_mean_spread_and_count(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tmp_path: Path
) -> None:
    project, _ = ranked
    got = rows(export(api_a, project, format="ratings"))
    helpful = [[7, 6, 5, 4], [6, 7, 5, 4], [7, 5, 6, 4]]
    expected = []
    for r in range(4):
        row: dict[str, Any] = {
            "external_id": "rich-1",
            "prompt": None,
            "messages": MESSAGES,
            "response": r,
            "completion": RESPONSES[r],
            "model": f"m{r}",
        }
        for key, table in (("helpfulness", helpful), ("honesty", helpful), ("harmlessness", HARMLESSNESS)):
            mean, std, n = _figures([ratings[r] for ratings in table])
            row |= {f"{key}_mean": mean, f"{key}_std": std, f"{key}_n": n}
        expected.append(row)
    assert got == expected
    assert got[3]["helpfulness_std"] == 0 and got[0]["helpfulness_mean"] == pytest.approx(20 / 3)
    dataset = loaded(api_a, project, tmp_path, format="ratings")
    assert dataset.features["harmlessness_mean"].dtype == "float64" and dataset.features["honesty_n"].dtype == "int64"
    table = api_a.get(f"/api/v1/projects/{project.pk}/export", {"format": "ratings", "output": "csv"})
    lines = b"".join(table.streaming_content).decode().splitlines()
    assert (
        lines[0].startswith("external_id,prompt,messages,response,completion,model,helpfulness_mean") and len(lines) > 4
    )


def test_annotations_carry_answers_and_response_order(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tenancy: Tenancy, tmp_path: Path
) -> None:
    project, judges = ranked
    got = rows(export(api_a, project, format="annotations"))
    assert len(got) == 3
    first = Judgment.objects.get(project=project, annotator=judges[0])
    assert got[0] == {
        "external_id": "rich-1",
        "annotator": annotator_pseudonym(tenancy.org_a.pk, judges[0].pk),
        "label": "0",
        "a_left": None,
        "strength": None,
        "seconds": 9.0,
        "active_seconds": None,
        "created_at": got[0]["created_at"],
        "answers": first.answers,
        "response_order": None,  # recorded without a lease: no order shown
    }
    assert got[1]["answers"]["rank"] == [1, 0, 2, 3] and "better" not in got[1]["answers"]
    assert loaded(api_a, project, tmp_path, format="annotations").num_rows == 3


def test_summary_counts_the_rows_of_a_form_format(api_a: KeyClient, ranked: tuple[Project, list[Any]]) -> None:
    project, _ = ranked
    url = f"/api/v1/projects/{project.pk}/export/summary"
    assert api_a.get(url, {"format": "rm_pairs"}).json()["rows"] == 6
    assert api_a.get(url, {"format": "ratings"}).json()["rows"] == 4


RATING_QUESTIONS = [
    {"key": "overall", "kind": "rating", "title": "Overall", "min": 1, "max": 5, "primary": True},
    {"key": "clarity", "kind": "rating", "title": "Clarity", "min": 1, "max": 5, "per_response": True},
    {"key": "accuracy", "kind": "rating", "title": "Accuracy", "min": 1, "max": 10, "per_response": True},
]


def test_a_rating_project_pairs_by_the_mean_of_its_per_response_ratings(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(
        tenancy.org_a, "rating", name="Rated", questions=RATING_QUESTIONS, min_judgments=2, max_judgments=2
    )
    task = factories.make_task(
        project, "q1", payload={"prompt": "Say hi", "responses": [{"text": "hi"}, {"text": "hello", "model": "b"}]}
    )
    judges = [factories.make_member(tenancy.org_a) for _ in range(2)]
    for n, (clarity, accuracy) in enumerate((([5, 1], [2, 6]), ([4, 2], [4, 8]))):
        answers = {"overall": 3 + n, "clarity": clarity, "accuracy": accuracy}
        judgment_record(task=task, annotator=judges[n], label="", client_id=f"q-{n}", answers=answers)
    project_quality_recompute(project_id=project.pk)
    # Scores: response 0 (4.5 + 3) / 2 = 3.75, response 1 (1.5 + 7) / 2 = 4.25.
    [row] = rows(export(api_a, project, format="rm_pairs"))
    assert (row["prompt"], row["messages"], row["chosen"], row["rejected"], row["chosen_model"]) == (
        "Say hi", None, "hello", "hi", "b"
    )  # fmt: skip
    assert row["margin"] == pytest.approx(0.5) and row["rejected_model"] is None
    [clear] = rows(export(api_a, project, format="rm_pairs", question="clarity"))
    assert (clear["chosen"], clear["margin"]) == ("hi", pytest.approx(3.0))
    ratings = rows(export(api_a, project, format="ratings"))
    assert [(r["response"], r["overall_mean"], r["overall_n"], r["clarity_mean"]) for r in ratings] == [
        (0, 3.5, 2, 4.5),
        (1, 3.5, 2, 1.5),
    ]  # a rating asked once per task repeats the task's figures on each row
    assert export(api_a, project, format="dpo").status_code == 400


def test_rm_pairs_of_a_pairwise_project_are_the_consensus_winner_with_its_vote_share(
    api_a: KeyClient, tenancy: Tenancy, tmp_path: Path
) -> None:
    from tests.api.test_export import build

    project = factories.make_project(tenancy.org_a, name="Pairs", consensus_threshold=0.6)
    build(tenancy.org_a, project, {"w-a": ["a", "a", "a"], "w-b": ["b", "b", "a"], "w-tie": ["tie", "tie", "tie"]})
    got = {row["external_id"]: row for row in rows(export(api_a, project, format="rm_pairs"))}
    assert set(got) == {"w-a", "w-b"}
    assert got["w-b"] == {
        "prompt": "Prompt w-b",
        "messages": None,
        "chosen": "answer B w-b",
        "rejected": "=SUM(A1) answer A w-b",
        "margin": pytest.approx(2 / 3),
        "external_id": "w-b",
        "chosen_model": "beta",
        "rejected_model": "alpha",
        "chosen_index": 1,
        "rejected_index": 0,
        "n_judgments": 3,
    }
    assert got["w-a"]["margin"] == 1.0
    assert loaded(api_a, project, tmp_path, format="rm_pairs").num_rows == 2
    strong = factories.make_project(tenancy.org_a, name="Strong pairs", strength_scale=True)
    build(tenancy.org_a, strong, {"s1": ["a", "a", "a"]})
    [row] = rows(export(api_a, strong, format="rm_pairs"))
    assert row["margin"] == pytest.approx((2 + 3 + 3) / 3)  # the mean strength of the winner's judgments


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "rm_pairs", "question": "why"}, "question"),
        ({"format": "rm_pairs", "question": "nope"}, "question"),
        ({"format": "dpo", "question": "rank"}, "question"),
        ({"format": "arena"}, "format"),
        ({"format": "rm_pairs", "output": "csv"}, "output"),
        ({"format": "rm_pair"}, "format"),
    ],
)
def test_bad_form_parameters_are_400_naming_them(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], params: dict[str, str], field: str
) -> None:
    project, _ = ranked
    response = export(api_a, project, **params)
    assert response.status_code == 400 and field in response.json(), response.content


def test_formats_a_plain_project_cannot_give_are_400(api_a: KeyClient, tenancy: Tenancy) -> None:
    for fmt in ("sft", "ratings"):
        response = export(api_a, tenancy.project_a, format=fmt)
        assert response.status_code == 400 and "format" in response.json(), response.content
    categorical = factories.make_project(tenancy.org_a, "categorical", name="Plain cats")
    for fmt in ("rm_pairs", "dpo", "kto"):
        assert "format" in export(api_a, categorical, format=fmt).json()


def test_another_organizations_form_export_is_404(
    api_b: KeyClient, api_a: KeyClient, ranked: tuple[Project, list[Any]]
) -> None:
    project, _ = ranked
    for fmt in ("rm_pairs", "sft", "ratings", "dpo"):
        foreign = export(api_b, project, format=fmt)
        missing = api_b.get(f"/api/v1/projects/{project.pk + 1000}/export", {"format": fmt})
        assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content


def test_openapi_lists_and_describes_the_formats(api_a: KeyClient) -> None:
    schema = yaml.safe_load(api_a.get("/api/schema/").content)
    for path in ("/api/v1/projects/{project_id}/export", "/api/v1/projects/{project_id}/export/summary"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        fmt = parameters["format"]
        assert {"rm_pairs", "sft", "ratings", "dpo", "kto"} <= set(fmt["schema"]["enum"])
        for name in ("`rm_pairs`", "`sft`", "`ratings`", "Ranking projects: the best vs the worst", "margin"):
            assert name in fmt["description"], name
        assert "rm_pairs" in parameters["question"]["description"]


# --- The consensus itself ---------------------------------------------------------------------------------------------
def test_places_share_the_mean_of_a_tied_span() -> None:
    assert form_exports.places([[0, 2], 1, 3], 4) == [1.5, 3, 1.5, 4]
    assert form_exports.places([0, 1], 3) is None  # not a ranking of this task's responses
    assert form_exports.places([[0, 0], 1], 3) is None and form_exports.places([0, 0, 1], 3) is None
    assert form_exports.mean_ranks([[0, 1, 2], [2, 1, 0]], 3) == [2, 2, 2]


def test_equal_scores_make_no_pair_and_ties_order_by_index() -> None:
    assert form_exports.consensus_order([1.0, 2.0, 2.0]) == [1, 2, 0]
    assert list(form_exports.ordered_pairs([1.0, 2.0, 2.0])) == [(1, 0, 1.0), (2, 0, 1.0)]
    ranking = QuestionSpec(key="rank", kind="ranking", title="Rank", primary=True)
    split = [{"answers": {"rank": [0, 1]}}, {"answers": {"rank": [1, 0]}}]
    assert form_exports.best_and_worst(ranking, 2, split) is None  # the best and the worst tie: no dpo row


def test_consensus_of_a_ranking_project_has_its_conversation_and_responses(
    api_a: KeyClient, ranked: tuple[Project, list[Any]], tmp_path: Path
) -> None:
    project, _ = ranked
    [row] = rows(export(api_a, project, format="consensus"))
    assert row["messages"] == MESSAGES and row["prompt"] is None and row["label"] == "0"
    assert [response["text"] for response in row["responses"]] == RESPONSES
    assert loaded(api_a, project, tmp_path, format="consensus").num_rows == 1


def test_plain_projects_keep_their_annotation_columns(api_a: KeyClient, tenancy: Tenancy) -> None:
    from exchange.exports import ANNOTATION_COLUMNS
    from tests.api.test_export import build

    project = factories.make_project(tenancy.org_a, name="Plain", consensus_threshold=0.6)
    build(tenancy.org_a, project, {"p1": ["a", "a", "b"]})
    got = rows(export(api_a, project, format="annotations"))
    assert len(got) == 3 and all(list(row) == list(ANNOTATION_COLUMNS) for row in got)
    table = export(api_a, project, format="annotations", output="csv")
    assert b"".join(table.streaming_content).decode().splitlines()[0] == ",".join(ANNOTATION_COLUMNS)


@pytest.fixture
def many(ranked: tuple[Project, list[Any]]) -> Project:
    """The ranked project with five more tasks, each judged by the same three judges in other orders."""
    project, judges = ranked
    for i in range(2, 7):
        row = rich_task(i)
        task = factories.make_task(
            project, row["external_id"], payload={"prompt": f"Q{i}", "responses": row["responses"]}
        )
        for n, judge in enumerate(judges):
            order = [(i + n + r) % 4 for r in range(4)]
            judgment_record(task=task, annotator=judge, label="", client_id=f"m{i}-{n}", answers=rich_answers(order))
    project_quality_recompute(project_id=project.pk)
    return project


@pytest.mark.parametrize("fmt", ["rm_pairs", "sft", "ratings", "dpo", "kto", "annotations"])
def test_form_pages_cover_every_row_once(
    api_a: KeyClient, many: Project, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small pages (1, then 4) walk the same rows as one big page: none lost, none twice."""
    from exchange import exports

    whole = rows(export(api_a, many, format=fmt))
    monkeypatch.setattr(exports, "FIRST_PAGE", 1)
    monkeypatch.setattr(exports, "BATCH", 4)
    monkeypatch.setattr(exports, "COPY_PAGE", 4)
    assert rows(export(api_a, many, format=fmt)) == whole
    assert len({row["external_id"] for row in whole}) == 6


@needs_postgres
@pytest.mark.parametrize("fmt", ["rm_pairs", "ratings", "dpo"])
def test_the_form_export_plan_walks_the_export_index(many: Project, fmt: str) -> None:
    from exchange.exports import export_plan, export_request

    plan = "\n".join(export_plan(export_request(project=many, fmt=fmt)))
    assert "Index Scan using task_export_order on labeling_task t" in plan, plan
    assert "Index Cond: (task_id = t.id)" in plan, plan  # each task's judgments by the task index
    for slow in ("Sort", "Hash", "Merge", "Seq Scan", "Bitmap", "Materialize"):
        assert slow not in plan, plan


def test_export_dataset_command_takes_the_question(
    ranked: tuple[Project, list[Any]], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    project, _ = ranked
    call_command("export_dataset", str(project.pk), "--format", "rm_pairs", "--question", "harmlessness")
    captured = capsysbinary.readouterr()
    assert [json.loads(line)["chosen_index"] for line in captured.out.splitlines()] == [1, 1, 1, 0, 0, 2]
    assert b"6 rows from 1 tasks" in captured.err
    with pytest.raises(CommandError, match="question"):
        call_command("export_dataset", str(project.pk), "--format", "rm_pairs", "--question", "why")
