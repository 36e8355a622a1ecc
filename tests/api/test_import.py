"""POST /api/v1/projects/{id}/tasks/import and manage.py import_tasks: formats, precise errors with nothing
written, skip mode, idempotent re-import, upsert, limits, and the organization boundary."""

from __future__ import annotations

import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from exchange.task_import import tasks_import
from labeling.models import Project, Task
from routing.models import TaskRequirement
from routing.services import qualification_create
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


def url(project: Project, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/projects/{project.pk}/tasks/import" + (f"?{query}" if query else "")


def row(external_id: str, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "prompt": f"Q {external_id}", "response_a": "A", "response_b": "B", **extra}


def jsonl(rows: list[Any]) -> str:
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def send(client: KeyClient, project: Project, body: str | bytes, content_type: str, **params: str) -> Any:
    return client.post(url(project, **params), body, content_type=content_type)


def tasks(project: Project) -> dict[str, Task]:
    return {task.external_id: task for task in Task.objects.filter(project=project)}


# --- Formats ------------------------------------------------------------------------------------------------------
def test_jsonl_import_writes_every_field(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = tenancy.project_a
    qualification_create(organization=tenancy.org_a, code="medical")
    qualification_create(organization=tenancy.org_a, code="sensitive:self-harm")
    rows = [
        row("r1", model_a="gpt", model_b="llama", meta={"source": "x", "n": 1}),
        row("r2", gold="tie"),
        row("r3", requires=["medical", "sensitive:self-harm"], predictions=0.8),
        row(4),  # a whole-number id
    ]
    response = send(api_a, project, jsonl(rows), "application/x-ndjson")
    assert response.status_code == 200, response.content
    report = response.json()
    assert report["committed"] and report["created"] == 4 and report["rows"] == 4 and report["errors"] == []
    stored = tasks(project)
    assert stored["r1"].payload == {
        "prompt": "Q r1",
        "response_a": "A",
        "response_b": "B",
        "model_a": "gpt",
        "model_b": "llama",
    }
    assert stored["r1"].meta == {"source": "x", "n": 1} and stored["r1"].organization_id == tenancy.org_a.pk
    assert stored["r2"].gold_label == "tie"
    assert stored["r3"].predictions == {"a": 0.8, "b": pytest.approx(0.2)}
    assert stored["r3"].is_restricted and stored["r3"].is_sensitive and not stored["r1"].is_restricted
    assert set(TaskRequirement.objects.filter(task=stored["r3"]).values_list("qualification__code", flat=True)) == {
        "medical",
        "sensitive:self-harm",
    }
    assert "4" in stored


def test_json_array_and_csv_and_multipart(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = tenancy.project_a
    qualification_create(organization=tenancy.org_a, code="medical")
    response = send(api_a, project, json.dumps([row("j1"), row("j2", gold="a")]), "application/json")
    assert response.status_code == 200 and response.json()["created"] == 2, response.content
    csv_body = (
        "external_id,prompt,response_a,response_b,gold,meta,requires,predictions\r\n"
        'c1,"Q, with comma","A ""quoted""",B,,"{""k"": [1, 2]}",medical,0.25\r\n'
        "c2,Q2,A2,B2,b,,,\r\n"
    )
    response = send(api_a, project, csv_body.encode(), "text/csv")
    assert response.status_code == 200 and response.json()["created"] == 2, response.content
    stored = tasks(project)
    assert stored["c1"].payload["prompt"] == "Q, with comma" and stored["c1"].payload["response_a"] == 'A "quoted"'
    assert stored["c1"].meta == {"k": [1, 2]} and stored["c1"].is_restricted
    assert stored["c1"].predictions["a"] == 0.25 and stored["c2"].gold_label == "b" and stored["c2"].meta == {}
    upload = SimpleUploadedFile("batch.jsonl", jsonl([row("m1"), row("m2")]).encode(), "application/octet-stream")
    response = api_a.post(url(project), {"file": upload})
    assert response.status_code == 200 and response.json()["created"] == 2, response.content


def test_categorical_rows(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = factories.make_project(tenancy.org_a, "categorical", name="Topics")
    rows = [
        {"external_id": "t1", "text": "hello", "predictions": {"positive": 0.9, "negative": 0.1}},
        {"external_id": "t2", "text": "bye", "gold": "neutral"},
    ]
    response = send(api_a, project, jsonl(rows), "application/x-ndjson")
    assert response.status_code == 200, response.content
    assert tasks(project)["t2"].gold_label == "neutral" and tasks(project)["t1"].predictions["positive"] == 0.9


# --- Bad rows: reported precisely, nothing written ----------------------------------------------------------------
BAD_ROWS = [
    ({"prompt": "Q", "response_a": "A", "response_b": "B"}, "external_id", "is required"),
    (row("x", prompt=""), "prompt", "must not be empty"),
    (row("x", response_b=7), "response_b", "must be text"),
    ({"external_id": "x", "prompt": "Q", "response_a": "A"}, "response_b", "is required"),
    (row("x", colour="red"), "colour", "is not a field"),
    (row("x", gold="maybe"), "gold", "is not one of this project's labels"),
    (row("x", requires=["astrophysics"]), "requires", "unknown qualification"),
    (row("x", requires="medical"), "requires", "list of qualification codes"),
    (row("x", predictions=1.5), "predictions", "from 0 to 1"),
    (row("x", meta=[1, 2]), "meta", "must be a JSON object"),
    (row("x" * 300), "external_id", "at most 255"),
    (["not", "an", "object"], "row", "must be a JSON object"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_ROWS)
def test_each_kind_of_bad_row_is_reported_and_nothing_is_written(
    api_a: KeyClient, tenancy: Tenancy, bad: Any, field: str, message: str
) -> None:
    project = tenancy.project_a
    before = Task.objects.count()
    response = send(api_a, project, jsonl([row("good1"), bad, row("good2")]), "application/x-ndjson")
    assert response.status_code == 400
    report = response.json()
    assert not report["committed"] and report["created"] == 0
    assert any(e["row"] == 2 and e["field"] == field and message in e["message"] for e in report["errors"]), report
    assert all(e["row"] == 2 for e in report["errors"])
    assert Task.objects.count() == before


def test_every_bad_row_is_listed(api_a: KeyClient, tenancy: Tenancy) -> None:
    rows = [row("ok")] + [bad for bad, _, _ in BAD_ROWS] + [row("ok")]  # "ok" twice: a repeated id
    response = send(api_a, tenancy.project_a, jsonl(rows), "application/x-ndjson")
    report = response.json()
    assert response.status_code == 400
    assert {e["row"] for e in report["errors"]} == set(range(2, len(BAD_ROWS) + 2)) | {len(rows)}
    assert any(e["field"] == "external_id" and "repeats row 1" in e["message"] for e in report["errors"])
    assert Task.objects.filter(project=tenancy.project_a).count() == 1  # only the fixture's task


@pytest.mark.parametrize(
    ("body", "content_type", "row_no", "message"),
    [
        (
            b'{"external_id": "a", "prompt": "Q", "response_a": "A", "response_b": "B"}\n{"broken": \n',
            "application/x-ndjson",
            2,
            "not valid JSON",
        ),
        (b'[{"external_id": "a"}, {"external_id": ', "application/json", 2, "not valid JSON"),
        (b'{"external_id": "a"}', "application/json", 0, "must be an array"),
        (b'[{"external_id": "a"} {"external_id": "b"}]', "application/json", 2, "expected ','"),
        (b"external_id,prompt,shoe_size\r\nx,y,z\r\n", "text/csv", 0, "unknown column"),
        (b"external_id,prompt,response_a,response_b\r\nx,y,z\r\n", "text/csv", 1, "has 3 cells"),
        (b"external_id,prompt,response_a,response_b\r\nx,\xff\xfe,a,b\r\n", "text/csv", 1, "not valid UTF-8"),
        (b'{"external_id": "x", "prompt": "\xff"}\n', "application/x-ndjson", 1, "UTF-8"),
    ],
)
def test_malformed_files_are_400_with_the_row(
    api_a: KeyClient, tenancy: Tenancy, body: bytes, content_type: str, row_no: int, message: str
) -> None:
    before = Task.objects.count()
    response = send(api_a, tenancy.project_a, body, content_type)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e["row"] == row_no and message in e["message"] for e in errors), errors
    assert Task.objects.count() == before


def test_skip_mode_writes_the_good_rows_and_reports_the_bad(api_a: KeyClient, tenancy: Tenancy) -> None:
    rows = [row("s1"), row("s2", gold="nope"), row("s3"), row("s1")]
    response = send(api_a, tenancy.project_a, jsonl(rows), "application/x-ndjson", on_error="skip")
    report = response.json()
    assert response.status_code == 200 and report["committed"]
    assert (report["created"], report["skipped"], report["error_count"]) == (2, 2, 2)
    assert {"s1", "s3"} <= set(tasks(tenancy.project_a)) and "s2" not in tasks(tenancy.project_a)


def test_a_broken_file_writes_nothing_even_in_skip_mode(api_a: KeyClient, tenancy: Tenancy) -> None:
    body = json.dumps([row("k1")])[:-1]  # no closing bracket
    response = send(api_a, tenancy.project_a, body, "application/json", on_error="skip")
    assert response.status_code == 400 and "not closed" in response.json()["errors"][0]["message"]
    assert "k1" not in tasks(tenancy.project_a)


# --- Idempotency and upsert ---------------------------------------------------------------------------------------
def test_reimport_changes_nothing_and_upsert_updates(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = tenancy.project_a
    first = send(api_a, project, jsonl([row("u1"), row("u2")]), "application/x-ndjson").json()
    assert first["created"] == 2
    stamp = {t.external_id: t.updated_at for t in tasks(project).values()}
    again = send(api_a, project, jsonl([row("u1", prompt="changed"), row("u2")]), "application/x-ndjson").json()
    assert (again["created"], again["unchanged"], again["updated"]) == (0, 2, 0)
    assert tasks(project)["u1"].payload["prompt"] == "Q u1"
    assert {t.external_id: t.updated_at for t in tasks(project).values()} == stamp
    upsert = send(
        api_a,
        project,
        jsonl([row("u1", prompt="changed", gold="a"), row("u2"), row("u3")]),
        "application/x-ndjson",
        mode="upsert",
    ).json()
    assert (upsert["created"], upsert["updated"], upsert["unchanged"]) == (1, 1, 1), upsert
    assert tasks(project)["u1"].payload["prompt"] == "changed" and tasks(project)["u1"].gold_label == "a"


def test_upsert_keeps_the_payload_of_a_judged_task(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = tenancy.project_a
    Task.objects.filter(pk=tenancy.task_a.pk).update(judgment_count=1)
    body = jsonl([{**row(tenancy.task_a.external_id), "prompt": "rewritten"}])
    response = send(api_a, project, body, "application/x-ndjson", mode="upsert")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "payload"
    tenancy.task_a.refresh_from_db()
    assert tenancy.task_a.payload["prompt"] != "rewritten"


# --- Limits, parameters and the organization boundary -------------------------------------------------------------
def test_too_large_is_413_and_unknown_parameters_are_400(api_a: KeyClient, tenancy: Tenancy, settings: Any) -> None:
    project = tenancy.project_a
    assert send(api_a, project, jsonl([row("z")]), "text/plain").status_code == 400  # no format
    response = send(api_a, project, jsonl([row("z")]), "application/x-ndjson", mode="merge")
    assert response.status_code == 400 and "mode" in response.json()
    assert send(api_a, project, jsonl([row("z")]), "application/x-ndjson", on_error="ignore").status_code == 400
    settings.IMPORT_MAX_BYTES = 100
    assert send(api_a, project, jsonl([row("z"), row("y")]), "application/x-ndjson").status_code == 413
    assert "z" not in tasks(project)


def test_import_crosses_no_organization(api_b: KeyClient, api_read_only: KeyClient, tenancy: Tenancy) -> None:
    body = jsonl([row("intruder")])
    before = Task.objects.count()
    foreign = send(api_b, tenancy.project_a, body, "application/x-ndjson")
    missing = api_b.post(
        f"/api/v1/projects/{tenancy.project_b.pk + 1000}/tasks/import", body, content_type="application/x-ndjson"
    )
    assert foreign.status_code == missing.status_code == 404 and foreign.content == missing.content
    assert send(api_read_only, tenancy.project_a, body, "application/x-ndjson").status_code == 403
    assert KeyClient(None).post(url(tenancy.project_a), body, content_type="application/x-ndjson").status_code == 401
    assert Task.objects.count() == before
    # Qualifications are resolved inside the caller's organization: B's code is unknown to A.
    qualification_create(organization=tenancy.org_b, code="b-only")
    response = send(KeyClient(api_read_only.key), tenancy.project_a, body, "application/x-ndjson")
    assert response.status_code == 403


def test_another_organizations_qualification_is_unknown(api_a: KeyClient, tenancy: Tenancy) -> None:
    qualification_create(organization=tenancy.org_b, code="b-only")
    response = send(api_a, tenancy.project_a, jsonl([row("q", requires=["b-only"])]), "application/x-ndjson")
    assert response.status_code == 400 and "unknown qualification" in response.json()["errors"][0]["message"]


# --- The command and memory ----------------------------------------------------------------------------------------
def test_import_tasks_command(tenancy: Tenancy, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "tasks.jsonl"
    good.write_text(jsonl([row("cmd1"), row("cmd2")]))
    call_command("import_tasks", str(tenancy.project_a.pk), str(good))
    assert json.loads(capsys.readouterr().out)["created"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("external_id,prompt,response_a,response_b\r\nb1,,A,B\r\n")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("import_tasks", str(tenancy.project_a.pk), str(bad), "--no-progress")
    assert "row 1: prompt: is required" in capsys.readouterr().err  # an empty CSV cell is an absent value
    with pytest.raises(CommandError, match="format"):
        call_command("import_tasks", str(tenancy.project_a.pk), str(tmp_path / "x.txt"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("import_tasks", "999999", str(good))


class _Generated(io.RawIOBase):
    """``size`` bytes of JSON Lines made on the fly: the file never exists in memory as a whole."""

    def __init__(self, rows: int) -> None:
        self.rows, self.done, self.pending = rows, 0, b""

    def read(self, size: int = -1) -> bytes:
        while len(self.pending) < max(size, 1) and self.done < self.rows:
            self.pending += b"".join(
                json.dumps(row(f"g{self.done + i}", response_a="x" * 5000)).encode() + b"\n" for i in range(500)
            )
            self.done += 500
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


def test_memory_does_not_grow_with_the_file(tenancy: Tenancy) -> None:
    """Peak Python allocations while importing ~13 MB and ~51 MB of JSON Lines: flat, far below the file size."""
    peaks = []
    for rows in (2_500, 10_000):
        project = factories.make_project(tenancy.org_a, name=f"Memory {rows}")
        tracemalloc.start()
        report = tasks_import(project=project, stream=_Generated(rows), fmt="jsonl")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert report.committed and report.created == rows
    print(f"peak Python allocations: {peaks[0] / 2**20:.1f} MiB (13 MB file), {peaks[1] / 2**20:.1f} MiB (51 MB file)")
    assert peaks[1] < 64 * 1024**2, peaks  # a 51 MB file: one batch of rows at a time
    assert peaks[1] < 1.5 * peaks[0] + 5 * 1024**2, peaks  # 4x the rows, not 4x the memory


# --- The write path: quick checks, the id filter, COPY sessions ---------------------------------------------------
QUICK_CASES: list[Any] = [
    row("q1"),
    row("q2", model_a="m1", model_b="m2", meta={"k": [1, 2]}, gold="a"),
    row("q3", meta={}),
    {**row("q4"), "external_id": 17},
    {**row("q5"), "external_id": True},
    {**row("q6"), "external_id": " "},
    {**row("q7"), "external_id": "x" * 256},
    {**row("q8"), "external_id": "x" * 255},
    {**row("q9"), "prompt": ""},
    {**row("q10"), "prompt": " \n"},
    {**row("q11"), "prompt": 5},
    {**row("q12"), "prompt": " padded "},
    {**row("q13"), "prompt": "x" * 200_001},
    {**row("q14"), "prompt": "x" * 200_000},
    row("q15", model_a=""),
    row("q16", model_a="m" * 201),
    row("q17", model_a=None),
    row("q18", model_b=3),
    row("q19", meta=[1]),
    row("q20", meta=None),
    row("q21", gold="nope"),
    row("q22", gold=None),
    row("q23", gold=1),
    row("q24", requires=[]),
    row("q25", predictions=0.3),
    row("q26", extra="x"),
    {"external_id": "q27", "prompt": "Q", "response_a": "A"},
    {"external_id": "q28", "prompt": "Q", "response_a": "A", "response_b": "B", "text": "t"},
    [row("q29")],
    "q30",
]


def test_the_quick_check_accepts_exactly_what_the_full_check_accepts(tenancy: Tenancy) -> None:
    from exchange.reading import ImportReport
    from exchange.task_import import _clean_fully, _Context, _quick

    ctx = _Context(tenancy.project_a)
    quick_ids, full_ids = set(), set()
    for number, record in enumerate(QUICK_CASES, start=1):
        quick = _quick(number, record, ctx)
        full = _clean_fully(number, record, ctx, ImportReport(), from_csv=False)
        if quick is not None:
            assert quick == full, record
            quick_ids.add(quick.external_id)
        if full is not None:
            full_ids.add(full.external_id)
    assert quick_ids == {"q1", "q2", "q3", "17", "x" * 255, "q12", "q14", "q17", "q22"}
    assert full_ids == quick_ids | {"q24", "q25"}  # declined by the quick check, accepted by the full one


@pytest.fixture
def small_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices of 3 rows and COPY sessions of 5: a few rows cross every boundary of the write path."""
    from exchange import task_import as module

    monkeypatch.setattr(module._Writer, "SLICE", 3)
    monkeypatch.setattr(module._Writer, "SESSION_ROWS", 5)


@pytest.mark.parametrize("filter_bits", [1 << 26, 8], ids=["filter", "every-id-a-suspect"])
def test_ids_are_exact_across_sessions_whatever_the_filter_says(
    api_a: KeyClient, tenancy: Tenancy, small_sessions: None, monkeypatch: pytest.MonkeyPatch, filter_bits: int
) -> None:
    """Repeats across slices and sessions, tasks of the project and new ids come out right both when the id filter
    clears every new id and when it suspects every id (8 bits: each id goes through the table lookup)."""
    from exchange import task_import as module

    monkeypatch.setattr(module._SeenIds, "BITS", filter_bits)
    project = tenancy.project_a
    qualification_create(organization=tenancy.org_a, code="medical")
    assert send(api_a, project, jsonl([row("old1"), row("old2")]), "application/x-ndjson").json()["created"] == 2
    rows = [row(f"n{i}") for i in range(12)]
    rows[4] = row("old1", prompt="changed")  # a task of the project: unchanged
    rows[7] = row("n1")  # repeats row 2, two slices later
    rows[9] = row("n9", requires=["medical"])
    rows[10] = row("n9")  # repeats the row before it (the same slice)
    rows.append(row("n1"))  # repeats row 2 again, another session later
    response = send(api_a, project, jsonl(rows), "application/x-ndjson", on_error="skip")
    report = response.json()
    assert response.status_code == 200 and report["committed"], report
    assert (report["created"], report["unchanged"], report["skipped"]) == (9, 1, 3), report
    repeats = {e["row"]: e["message"] for e in report["errors"]}
    assert set(repeats) == {8, 11, 13} and all("repeats" in message for message in repeats.values())
    assert "repeats row 10" in repeats[11]
    stored = tasks(project)
    assert set(stored) == {"old1", "old2", tenancy.task_a.external_id} | {f"n{i}" for i in range(12)} - {
        "n4",
        "n7",
        "n10",
    }
    assert stored["old1"].payload["prompt"] == "Q old1"
    assert list(TaskRequirement.objects.filter(task=stored["n9"]).values_list("qualification__code", flat=True)) == [
        "medical"
    ]
    assert stored["n9"].is_restricted and not stored["n8"].is_restricted
    upsert = send(api_a, project, jsonl([row("n2", prompt="new"), row("n3"), row("n20")]), "application/x-ndjson",
                  mode="upsert").json()  # fmt: skip
    assert (upsert["created"], upsert["updated"], upsert["unchanged"]) == (1, 1, 1), upsert
    assert tasks(project)["n2"].payload["prompt"] == "new"


def test_a_file_that_breaks_inside_an_open_copy_writes_nothing(
    api_a: KeyClient, tenancy: Tenancy, small_sessions: None
) -> None:
    """Eleven good rows have gone into a COPY session when the JSON array turns out to be broken: the COPY is
    cancelled, nothing is written and the connection serves the next request."""
    body = json.dumps([row(f"b{i}") for i in range(11)])[:-1] + ', {"broken": ]'
    response = send(api_a, tenancy.project_a, body, "application/json", on_error="skip")
    assert response.status_code == 400, response.content
    assert not any(external_id.startswith("b") for external_id in tasks(tenancy.project_a))
    again = send(api_a, tenancy.project_a, jsonl([row("after")]), "application/x-ndjson")
    assert again.status_code == 200 and again.json()["created"] == 1


def test_an_error_while_copying_cancels_the_copy_and_writes_nothing(
    tenancy: Tenancy, small_sessions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of the database or of the code while a COPY session is open (here the second write of a session)
    reaches the caller as it is; the COPY is cancelled and nothing is written."""
    from exchange import task_import as module

    calls = []
    real_copy, real_list = module._CopySession.write, module._ListSession.write

    def failing(self: Any, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:  # the session opened by the first write is still open
            raise RuntimeError("boom")
        (real_copy if isinstance(self, module._CopySession) else real_list)(self, *args)

    monkeypatch.setattr(module._CopySession, "write", failing)
    monkeypatch.setattr(module._ListSession, "write", failing)
    body = jsonl([row(f"w{i}") for i in range(9)]).encode()
    with pytest.raises(RuntimeError, match="boom"):
        tasks_import(project=tenancy.project_a, stream=io.BytesIO(body), fmt="jsonl")
    assert len(calls) == 2
    assert not any(external_id.startswith("w") for external_id in tasks(tenancy.project_a))
    monkeypatch.undo()
    report = tasks_import(project=tenancy.project_a, stream=io.BytesIO(body), fmt="jsonl")
    assert report.committed and report.created == 9
