"""``manage.py audit_sample``: k judgments of one project as JSON Lines, reproducible, never another tenant's."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Judgment, Project, ProjectKind, Role
from routing.management.commands.audit_sample import Command
from routing.services import judgment_record
from tests import factories

FIELDS = [
    "annotation_id",
    "task_id",
    "external_id",
    "annotator",
    "label",
    "a_left",
    "seconds_on_task",
    "created_at",
    "payload",
]


@dataclass
class Audited:
    project: Project
    other_project: Project
    outsider_project: Project


def _judge(project: Project, tasks: int, annotators: list[Any], prefix: str) -> None:
    labels = ["a", "b", "tie", "both_bad"] if project.kind == ProjectKind.PAIRWISE else ["positive", "negative"]
    for t in range(tasks):
        task = factories.make_task(project, f"{prefix}-{t}")
        for a, annotator in enumerate(annotators):
            judgment_record(
                task=task,
                annotator=annotator,
                label=labels[(t + a) % len(labels)],
                client_id=f"{prefix}-{t}-{a}",
                a_left=(t + a) % 2 == 0 if project.kind == ProjectKind.PAIRWISE else None,
                seconds_on_task=float(10 + t + a),
            )


@pytest.fixture
def audited(db: Any) -> Audited:
    """Org A: an audited pairwise project (12 tasks x 3 judgments) and a categorical one; org B: one more project."""
    org_a, org_b = factories.make_org("Org A"), factories.make_org("Org B")
    annotators_a = [factories.make_member(org_a, Role.ANNOTATOR, f"annie{i}@a.example") for i in range(3)]
    project = factories.make_project(org_a, name="Audited prefs")
    other_project = factories.make_project(org_a, ProjectKind.CATEGORICAL, name="Tickets")
    outsider_project = factories.make_project(org_b, name="Beta prefs")
    _judge(project, 12, annotators_a, "audited")
    _judge(other_project, 5, annotators_a, "tickets")
    _judge(outsider_project, 5, [factories.make_member(org_b, Role.ANNOTATOR, "oscar@b.example")], "beta")
    return Audited(project=project, other_project=other_project, outsider_project=outsider_project)


def _audit(project_id: int, *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("audit_sample", str(project_id), *args, stdout=out, stderr=io.StringIO())
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_prints_k_judgments_with_every_field(audited: Audited) -> None:
    rows = _audit(audited.project.pk, "--k", "10", "--seed", "1")
    assert len(rows) == 10
    assert all(list(row) == FIELDS for row in rows)
    ids = [row["annotation_id"] for row in rows]
    assert ids == sorted(ids) and len(set(ids)) == 10
    for row in rows:
        judgment = Judgment.objects.select_related("task", "annotator").get(pk=row["annotation_id"])
        assert row == {
            "annotation_id": judgment.pk,
            "task_id": judgment.task_id,
            "external_id": judgment.task.external_id,
            "annotator": judgment.annotator.username,
            "label": judgment.label,
            "a_left": judgment.a_left,
            "seconds_on_task": judgment.seconds_on_task,
            "created_at": judgment.created_at.isoformat(),
            "payload": judgment.task.payload,
        }
        assert isinstance(row["a_left"], bool)
        assert datetime.fromisoformat(row["created_at"]) == judgment.created_at


def test_same_seed_draws_the_same_sample(audited: Audited) -> None:
    first = _audit(audited.project.pk, "--k", "10", "--seed", "7")
    assert _audit(audited.project.pk, "--k", "10", "--seed", "7") == first
    assert _audit(audited.project.pk, "--k", "10", "--seed", "8") != first


def test_never_includes_another_projects_or_organizations_judgments(audited: Audited) -> None:
    rows = _audit(audited.project.pk, "--k", "1000", "--seed", "1")
    own = set(Judgment.objects.filter(project=audited.project).values_list("id", flat=True))
    assert len(own) == 36
    assert {row["annotation_id"] for row in rows} == own
    assert all(row["external_id"].startswith("audited-") for row in rows)


def test_project_without_judgments_prints_nothing(audited: Audited) -> None:
    empty = factories.make_project(audited.project.organization, name="Empty")
    assert _audit(empty.pk, "--k", "5") == []


def test_output_file_is_written_atomically(audited: Audited, tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    target.write_text("old content\n")
    stdout = io.StringIO()
    call_command(
        "audit_sample", str(audited.project.pk), k=10, seed=3, output=target, stdout=stdout, stderr=io.StringIO()
    )
    assert stdout.getvalue() == ""
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == _audit(audited.project.pk, "--k", "10", "--seed", "3")
    assert [path.name for path in tmp_path.iterdir()] == ["audit.jsonl"]  # no temporary file left behind


def test_unwritable_output_is_a_command_error(audited: Audited, tmp_path: Path) -> None:
    missing_dir = tmp_path / "missing" / "audit.jsonl"
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("audit_sample", str(audited.project.pk), output=missing_dir, stdout=io.StringIO())
    a_directory = tmp_path / "audit.jsonl"
    a_directory.mkdir()
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("audit_sample", str(audited.project.pk), output=a_directory, stdout=io.StringIO())
    assert list(tmp_path.iterdir()) == [a_directory]  # the temporary file was removed


def test_missing_project_is_a_command_error(audited: Audited) -> None:
    missing = max(Project.objects.values_list("pk", flat=True)) + 1000
    with pytest.raises(CommandError, match=rf"^Project {missing} does not exist\.$") as raised:
        call_command("audit_sample", str(missing), stdout=io.StringIO())
    assert raised.value.returncode == 1


@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_a_command_error(audited: Audited, k: str) -> None:
    with pytest.raises(CommandError, match="--k must be at least 1") as raised:
        call_command("audit_sample", str(audited.project.pk), "--k", k, stdout=io.StringIO())
    assert raised.value.returncode == 1


def test_command_line_exits_non_zero_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    # No database needed: k is checked before the project is looked up (and the system checks are skipped).
    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "audit_sample", "1", "--k", "0", "--skip-checks"])
    assert exited.value.code == 1
    assert "CommandError: --k must be at least 1, got 0." in capsys.readouterr().err
