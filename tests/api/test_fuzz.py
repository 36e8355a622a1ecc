"""Property-based fuzzing of the whole API from its own OpenAPI schema (``/api/schema/``) with schemathesis.

Requests go in process to Django's WSGI handler (``schemathesis.openapi.from_wsgi``) inside the test's transaction,
so path parameters hit rows seeded for organization A (two thirds of the cases take a seeded id, the rest the
schema's random integer). Three runs:

- every operation, positive and negative data, with A's full key: no server error, every status code and content
  type documented, every body valid against its documented schema (each request in a savepoint rolled back
  after it, so all of them see the same seed);
- stateful: drf-spectacular writes no OpenAPI links, so schemathesis infers them (its dependency analysis: the
  ``id`` answered by ``POST /projects/`` feeds every ``{project_id}``, an import's 202 feeds ``{job_id}``) and
  chains calls from what earlier calls created, under the same checks;
- organization B's key against A's ids only: every answer refuses (404, or 400/405 for a malformed request), is
  byte for byte the answer to the same request about an id that exists nowhere, and no body holds any of A's
  markers (project names, task external ids, annotator pseudonyms and e-mails).

Each run prints its operations, requests and failures (``pytest -s``), and the failures are listed in the
assertion message. The counts are deterministic (``derandomize``, no example database).
"""

from __future__ import annotations

import io
import os
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
import werkzeug.test
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exchange.exports import annotator_pseudonym
from exchange.import_jobs import import_job_create
from labeling.models import ProjectKind
from tests import factories
from tests.api.conftest import Keys
from tests.api.test_export import build
from tests.conftest import Tenancy

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation. CONCORD_FUZZ_SCALE=10 fuzzes ten times deeper (a longer run, still deterministic).
SCALE = int(os.environ.get("CONCORD_FUZZ_SCALE", "1"))
EXAMPLES = {GenerationMode.POSITIVE: 30 * SCALE, GenerationMode.NEGATIVE: 15 * SCALE}
STATEFUL_SCENARIOS = 25 * SCALE
MARKER = "zq7-orga"  # in every name and external id seeded for organization A: B must never see it
REFUSALS = {400, 404, 405}  # B's answers about A's ids: not found, or a request malformed whoever sends it
MISSING_ID = 2**31 - 1  # no row has this id
SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "phases": [hypothesis.Phase.explicit, hypothesis.Phase.generate],
}


@dataclass
class Seed:
    """Organization A's rows the fuzzer aims at, and the strings that would betray a leak of them."""

    ids: dict[str, list[int]]
    markers: list[str]


@dataclass
class Tally:
    """Requests sent and their answers; failures grouped by operation, status and check, with an example each."""

    requests: int = 0
    failing_requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)

    def record(self, case: Case, status: int, problems: list[tuple[str, str]]) -> None:
        self.requests += 1
        self.statuses[status] += 1
        self.failing_requests += bool(problems)
        for title, message in problems:
            example = f"{case.method} {case.formatted_path} query={case.query} body={case.body!r:.300}: {message}"
            self.failures.setdefault(f"{case.operation.label} -> {status}: {title}", []).append(example)

    def summary(self, title: str, operations: int) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"{title}: {operations} operations, {self.requests} requests ({codes}); "
            f"{self.failing_requests} failing requests, {len(self.failures)} distinct failures"
        )

    def report(self) -> str:
        return "\n".join(
            f"{len(found):4} x {kind}\n       e.g. {found[0][:2000]}" for kind, found in self.failures.items()
        )


@pytest.fixture
def app() -> Iterator[WSGIHandler]:
    """Django's WSGI handler, without closing the test's connection as each request starts and ends (the test
    client does the same), so that requests see the rows this test's transaction seeded."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def server_errors() -> Iterator[list[str]]:
    """The traceback of every exception a view raised (the client only sees the 500 page)."""
    tracebacks: list[str] = []

    def record(sender: Any, **kwargs: Any) -> None:
        tracebacks.append(traceback.format_exc())

    got_request_exception.connect(record)
    try:
        yield tracebacks
    finally:
        got_request_exception.disconnect(record)


@pytest.fixture
def seed(tenancy: Tenancy, settings: Any, tmp_path: Path) -> Seed:
    """Organization A's projects (pairwise with judgments and computed quality, categorical), tasks, a gold task, an
    import job and an invitation; its unique strings."""
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.EXPORT_SETTLE_SECONDS = 0
    org = tenancy.org_a
    pairwise = factories.make_project(org, name=f"{MARKER} pairwise", consensus_threshold=0.6)
    plan = {
        f"{MARKER}-t1": ["a", "a", "a"],
        f"{MARKER}-t2": ["b", "b", "a"],
        f"{MARKER}-t3": ["tie", "tie", "tie"],
        f"{MARKER}-t4": ["both_bad", "a", "both_bad"],
    }
    judges = build(org, pairwise, plan)  # judgments, then the quality recompute (consensus, scores, ranking)
    factories.make_task(pairwise, f"{MARKER}-gold", gold_label="a")
    categorical = factories.make_project(org, ProjectKind.CATEGORICAL, name=f"{MARKER} categorical")
    factories.make_task(categorical, f"{MARKER}-c1")
    row = b'{"external_id": "' + MARKER.encode() + b'-job", "prompt": "Q", "response_a": "A", "response_b": "B"}\n'
    job = import_job_create(project=pairwise, kind="tasks", stream=io.BytesIO(row), options={"format": "jsonl"})
    invitee = f"{MARKER}-invitee@example.com"
    invitation = factories.make_invitation(org, invitee)
    markers = [MARKER, tenancy.project_a.name, invitee]
    markers += [annotator_pseudonym(org.pk, judge.pk) for judge in judges] + [judge.email for judge in judges]
    projects = [tenancy.project_a.pk, pairwise.pk, categorical.pk]
    return Seed(ids={"project_id": projects, "job_id": [job.pk], "invitation_id": [invitation.pk]}, markers=markers)


def load_schema(app: WSGIHandler, key: str) -> Any:
    return schemathesis.openapi.from_wsgi("/api/schema/", app, headers={"Authorization": f"Bearer {key}"})


def cases(operation: Any, mode: GenerationMode, ids: dict[str, list[int]], random_ids: bool) -> Any:
    """The operation's cases, with seeded ids in two thirds of them (or all) and the schema's random ones else."""
    names = [parameter.name for parameter in operation.path_parameters if parameter.name in ids]
    if not names:
        return operation.as_strategy(generation_mode=mode)
    real = st.fixed_dictionaries({name: st.sampled_from(ids[name]) for name in names})
    seeded = real.flatmap(lambda values: operation.as_strategy(generation_mode=mode, path_parameters=values))
    return st.one_of(seeded, seeded, operation.as_strategy(generation_mode=mode)) if random_ids else seeded


def problems_of(case: Case, response: Any, headers: dict[str, str], server_errors: list[str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        problems += [(failure.title, failure.message) for failure in group.exceptions]
    except AssertionError as failure:  # a single failure
        problems.append((getattr(failure, "title", "check"), getattr(failure, "message", str(failure))))
    if server_errors:
        problems.append(("exception in the view", server_errors[-1]))
        server_errors.clear()
    return problems


def fuzz(
    schema: Any,
    key: str,
    ids: dict[str, list[int]],
    server_errors: list[str],
    *,
    random_ids: bool = True,
    extra_check: Callable[[Case, Any], list[tuple[str, str]]] | None = None,
) -> tuple[int, Tally]:
    """Send every operation's cases, positive then negative, each request in a savepoint rolled back after it."""
    tally = Tally()
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for mode, examples in EXAMPLES.items():

            @hypothesis.settings(max_examples=examples, **SETTINGS)
            @hypothesis.given(case=cases(operation, mode, ids, random_ids))
            def send(case: Case) -> None:
                with transaction.atomic():
                    response = case.call(headers=headers)
                    transaction.set_rollback(True)
                problems = problems_of(case, response, headers, server_errors)
                if extra_check is not None:
                    problems += extra_check(case, response)
                tally.record(case, response.status_code, problems)

            send()
    return len(operations), tally


def test_every_operation_answers_as_documented(
    app: WSGIHandler, keys: Keys, seed: Seed, server_errors: list[str]
) -> None:
    operations, tally = fuzz(load_schema(app, keys.full_a), keys.full_a, seed.ids, server_errors)
    summary = tally.summary("organization A", operations)
    print(f"\n{summary}")
    assert not tally.failures, f"{summary}\n{tally.report()}"


def test_stateful_chains_follow_inferred_links(
    app: WSGIHandler, keys: Keys, seed: Seed, server_errors: list[str]
) -> None:
    schema = load_schema(app, keys.full_a)
    headers = {"Authorization": f"Bearer {keys.full_a}"}
    tally = Tally()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        """Each scenario starts from the seed: its writes are rolled back at its end (else a replayed scenario
        would meet other rows, and Hypothesis would find its generation flaky)."""

        def setup(self) -> None:
            self.scenario = transaction.atomic()
            self.scenario.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def call(self, case: Case, **kwargs: Any) -> Any:
            with transaction.atomic():  # a server error's broken transaction ends with its request
                response = case.call(**kwargs)
                transaction.set_rollback(response.status_code >= 500)
            return response

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Case, **kwargs: Any) -> None:
            tally.record(case, response.status_code, problems_of(case, response, headers, server_errors))

    links = inferred_links(schema)
    assert ("POST /api/v1/projects/", "GET /api/v1/projects/{project_id}/") in links
    Machine.run(settings=hypothesis.settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=6, **SETTINGS))
    summary = tally.summary("stateful, organization A", len(list(schema.get_all_operations())))
    print(f"\n{summary}; {len(links)} links inferred:", *sorted(f"{a} -> {b}" for a, b in links), sep="\n  ")
    assert tally.requests, "the state machine sent nothing"
    assert not tally.failures, f"{summary}\n{tally.report()}"


def inferred_links(schema: Any) -> set[tuple[str, str]]:
    """(producer, consumer) pairs of the links schemathesis wrote into the schema (drf-spectacular writes none)."""
    pairs = set()
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            for response in operation.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    # "#/paths/~1api~1v1~1projects~1{project_id}~1/get": a JSON pointer to the consumer
                    target_path, target_method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
                    target = f"{target_method.upper()} {target_path.replace('~1', '/').replace('~0', '~')}"
                    pairs.add((f"{method.upper()} {path}", target))
    return pairs


def test_organization_b_sees_nothing_of_organization_a(
    app: WSGIHandler, keys: Keys, seed: Seed, server_errors: list[str]
) -> None:
    # Through the same handler as the fuzzer (Django's test client would reconnect the connection closing signal
    # the ``app`` fixture took off, and the next request would close the test's transaction under it).
    own = werkzeug.test.Client(app)
    pairwise = seed.ids["project_id"][1]
    shown_to_a = "".join(
        own.get(path, headers={"Authorization": f"Bearer {keys.full_a}"}).get_data(as_text=True)
        for path in (
            "/api/v1/projects/",
            f"/api/v1/projects/{pairwise}/annotators/",
            f"/api/v1/projects/{pairwise}/annotations/",
            "/api/v1/invitations/",
        )
    )
    assert all(marker in shown_to_a for marker in seed.markers)  # each is something the API shows A
    headers = {"Authorization": f"Bearer {keys.full_b}"}
    twins = Counter[int]()

    def refuses_and_leaks_nothing(case: Case, response: Any) -> list[tuple[str, str]]:
        problems = []
        body = response.content.decode("utf-8", "replace")
        problems += [("leak", f"the body holds {marker!r}") for marker in seed.markers if marker in body]
        if case.path_parameters:
            if response.status_code not in REFUSALS:
                problems.append(("answered about another organization's object", f"status {response.status_code}"))
            twin = case.derive()  # the same request about an object that exists nowhere: the same answer
            twin.path_parameters.update(dict.fromkeys(case.path_parameters, MISSING_ID))
            with transaction.atomic():
                missing = twin.call(headers=headers)
                transaction.set_rollback(True)
            twins[missing.status_code] += 1
            if (missing.status_code, missing.content) != (response.status_code, response.content):
                problems.append(("A's object answers unlike a missing one", f"{missing.status_code}: {missing.text}"))
        return problems

    operations, tally = fuzz(
        load_schema(app, keys.full_b),
        keys.full_b,
        seed.ids,
        server_errors,
        random_ids=False,
        extra_check=refuses_and_leaks_nothing,
    )
    summary = tally.summary("organization B against A's ids", operations)
    summary += f"; and {twins.total()} twin requests about an id that exists nowhere ({dict(twins)})"
    print(f"\n{summary}")
    assert not tally.failures, f"{summary}\n{tally.report()}"
