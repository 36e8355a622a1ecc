"""``manage.py seed_demo``: two demo organizations with people, projects, tasks and some judgments.

Safe to run again: every row is looked up by its natural key first (organization slug, username, project name in
its organization, task external id in its project, judgment client id), so a second run creates nothing. The whole
run is one transaction. The content comes from ``demo.data`` (generated, deterministic, no download).

It creates accounts whose password is public, so it refuses to run unless ``DEBUG`` is on or ``--force`` is given.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q

from demo import data as demo_data
from labeling.models import Judgment, Label, Membership, Organization, Project, ProjectKind, ProjectStats, Role, Task
from labeling.selectors import project_label_values
from labeling.services import membership_create, project_create, project_stats_refresh
from labeling.validation import gold_label_error, payload_errors
from routing.models import AnnotatorQualification, Qualification, TaskRequirement
from routing.services import (
    judgment_record,
    qualification_create,
    qualification_grant,
    task_requirement_flags_refresh,
)

DEMO_PASSWORD = "concord-demo"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/"
PAIRWISE_TASKS = 300
CATEGORICAL_TASKS = 150
JUDGED_TASKS = 40  # the first pairwise tasks of each organization get judgments...
JUDGES_PER_TASK = 3  # ...from this many of its annotators
RANKING_TASKS = 60
RANKED_TASKS = 20  # the first ranking tasks get judgments from JUDGES_PER_TASK annotators
RANKING_QUESTIONS: list[dict[str, Any]] = [
    {
        "key": "rank",
        "kind": "ranking",
        "title": "Rank the four responses, best first",
        "help": "Correctness first, then clarity, then brevity.",
        "primary": True,
    },
    *(
        {
            "key": aspect,
            "kind": "rating",
            "title": f"{aspect.title()} of each response",
            "min": 1,
            "max": 7,
            "anchors": {"1": "Very poor", "4": "Acceptable", "7": "Excellent"},
            "per_response": True,
        }
        for aspect in ("helpfulness", "honesty")
    ),
    {"key": "why", "kind": "text", "title": "Why is the best response best?", "min_length": 10, "max_length": 2000},
    {
        "key": "better",
        "kind": "rewrite",
        "title": "Rewrite the best response into an even better one (optional)",
        "required": False,
    },
]
RANKING_INSTRUCTIONS = """\
Read the conversation, then rank the four responses from best to worst, rate each one, say in a sentence why
the best is best, and (if you can) rewrite it into a better answer. Correctness first, then clarity, then brevity.
"""
# Each demo annotator's chance of choosing the better response; the last one is sloppy, for the quality pages.
ANNOTATOR_ACCURACY = (0.92, 0.86, 0.8, 0.6)
COUNTED = (
    "organizations",
    "users",
    "memberships",
    "projects",
    "labels",
    "tasks",
    "judgments",
    "qualifications",
    "qualification grants",
    "task requirements",
)
CODING_QUALIFICATION = "code"  # required by the coding pairs; held by the first two annotators

PAIRWISE_INSTRUCTIONS = """\
## Which response is more helpful?

Each task shows a **prompt** that a user sent to an AI assistant and **two responses**. Read the prompt, then both
responses in full, and choose the one a thoughtful user would rather receive.

### Judge in this order

1. **Correctness.** Facts, numbers and code must be right. A confident wrong answer is worse than a short correct
   one: redo the arithmetic yourself and read code carefully (would it run? does it do what was asked?).
2. **Helpfulness.** Does it answer what was actually asked, in the requested form (steps, one sentence, an
   email…)? An unnecessary refusal is not helpful.
3. **Clarity.** Well organised and easy to follow. Longer is **not** better by itself: padding and filler count
   against a response.
4. **Tone and safety.** Polite, no harmful or risky advice.

### Choices

| Choice | Use it when |
|---|---|
| **A is better** / **B is better** | One response is clearly more helpful by the criteria above. |
| **Tie** | Both are about equally good. Use it sparingly. |
| **Both bad** | Neither is acceptable: both wrong, both refuse, or both miss the question. |

The keys **1-4** pick the choices in the order shown on the page. Which side a response appears on is random, so
don't let position (or the model names) sway you. A few tasks are gold tasks with a known answer; they look like
any other task.
"""

CATEGORICAL_INSTRUCTIONS = """\
## Route each support ticket to the right team

Read the whole ticket and choose the **one** label that fits the customer's main request.

| Label | Examples |
|---|---|
| **Billing** | Charges, refunds, invoices, plan changes and pricing, payment methods, discounts. |
| **Bug report** | Something is broken: crashes, error messages, wrong data, layout problems, missing notifications. |
| **Feature request** | The customer asks for something the product does not do yet: integrations, dark mode, exports… |
| **Account access** | Signing in: passwords, two-factor codes, locked accounts, SSO, ownership, login e-mail. |
| **Other** | Anything else: legal and data-residency questions, partnerships, praise, status pages. |

**Tie-breakers.** If a ticket mentions several things, pick what the customer needs us to act on first. Problems
signing in are **Account access** even when they are caused by a bug. Keys **1-5** select the labels in order.
"""

TICKET_LABELS = list(demo_data.TICKET_LABELS)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str


@dataclass(frozen=True)
class DemoOrganization:
    slug: str
    name: str
    people: tuple[DemoPerson, ...]

    @property
    def annotators(self) -> list[DemoPerson]:
        """The organization's own annotators (not the visitor from the other organization)."""
        return [p for p in self.people if p.role == Role.ANNOTATOR and p.email.startswith("annotator")]


MULTI_EMAIL = "multi@demo.example"
ORGANIZATIONS: tuple[DemoOrganization, ...] = (
    DemoOrganization(
        "acme",
        "Acme AI",
        (
            DemoPerson("admin@acme.example", "Amelia Carter", Role.ADMIN),
            DemoPerson("manager@acme.example", "Marcus Reed", Role.MANAGER),
            DemoPerson("annotator1@acme.example", "Priya Shah", Role.ANNOTATOR),
            DemoPerson("annotator2@acme.example", "Tomás Alvarez", Role.ANNOTATOR),
            DemoPerson("annotator3@acme.example", "Mei Lin", Role.ANNOTATOR),
            DemoPerson("annotator4@acme.example", "Jonas Berg", Role.ANNOTATOR),
            DemoPerson(MULTI_EMAIL, "Morgan Lee", Role.MANAGER),
        ),
    ),
    DemoOrganization(
        "globex",
        "Globex Research",
        (
            DemoPerson("admin@globex.example", "Grace Okafor", Role.ADMIN),
            DemoPerson("manager@globex.example", "Henrik Larsen", Role.MANAGER),
            DemoPerson("annotator1@globex.example", "Sofia Rossi", Role.ANNOTATOR),
            DemoPerson("annotator2@globex.example", "Kwame Mensah", Role.ANNOTATOR),
            DemoPerson("annotator3@globex.example", "Yuki Tanaka", Role.ANNOTATOR),
            DemoPerson("annotator4@globex.example", "Olivia Brown", Role.ANNOTATOR),
            DemoPerson(MULTI_EMAIL, "Morgan Lee", Role.ANNOTATOR),
        ),
    ),
)


def pairwise_project_name(organization_name: str) -> str:
    return f"{organization_name} — Helpfulness preferences"


def categorical_project_name(organization_name: str) -> str:
    return f"{organization_name} — Support ticket triage"


@dataclass
class Tally:
    """Rows created by this run and rows that were already there, per kind (see ``COUNTED``)."""

    created: Counter[str] = field(default_factory=Counter)
    present: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, *, created: int = 0, present: int = 0) -> None:
        self.created[kind] += created
        self.present[kind] += present


@dataclass
class OrganizationReport:
    spec: DemoOrganization
    organization: Organization
    tally: Tally
    stats: list[tuple[Project, ProjectStats | None]]


class Command(BaseCommand):
    help = (
        "Create two demo organizations (Acme AI, Globex Research) with logins, a pairwise and a categorical project "
        f"each, tasks and some judgments. Idempotent. Every account's password is {DEMO_PASSWORD!r}: runs only with "
        "DEBUG on, or with --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even though DEBUG is off. The demo accounts share a public password: never use on a server "
            "that others can reach.",
        )
        parser.add_argument(
            "--base-url",
            default=DEFAULT_BASE_URL,
            help="Where the site is served, for the sign-in links printed at the end (make demo passes its HOST "
            f"and PORT; default {DEFAULT_BASE_URL}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                f"seed_demo creates accounts with a public password ({DEMO_PASSWORD!r}), so it only runs with "
                "DEBUG=1. Pass --force to run it anyway, and never on a server that others can reach."
            )
        if not settings.DEBUG:
            self.stdout.write(self.style.WARNING(f"DEBUG is off: anyone can sign in with {DEMO_PASSWORD!r}."))
        started = time.monotonic()
        self._password_hash: str | None = None
        self._users: dict[str, bool] = {}  # e-mail -> created by this run, for the all-organizations count
        # ``annotation_record`` queues a stats refresh per judgment; without a broker those run in-process on commit
        # and would log one line each.
        with _quiet_logger("celery.app.trace"), transaction.atomic():
            reports = [self._seed_organization(spec) for spec in ORGANIZATIONS]
        self._print_summary(reports, time.monotonic() - started, base_url=options["base_url"])

    # --- Seeding ---------------------------------------------------------------------------------------------
    def _seed_organization(self, spec: DemoOrganization) -> OrganizationReport:
        tally = Tally()
        organization, created = Organization.objects.get_or_create(slug=spec.slug, defaults={"name": spec.name})
        tally.add("organizations", created=int(created), present=int(not created))
        users = {person.email: self._member(organization, person, tally) for person in spec.people}

        pairwise = self._project(
            organization,
            pairwise_project_name(spec.name),
            ProjectKind.PAIRWISE,
            None,
            tally,
            instructions=PAIRWISE_INSTRUCTIONS,
            min_judgments=3,
            max_judgments=5,
            gold_rate=0.05,
        )
        pairs = demo_data.pairwise_items(PAIRWISE_TASKS, seed=spec.slug)
        self._tasks(pairwise, pairs, tally)

        triage = self._project(
            organization,
            categorical_project_name(spec.name),
            ProjectKind.CATEGORICAL,
            TICKET_LABELS,
            tally,
            instructions=CATEGORICAL_INSTRUCTIONS,
            min_judgments=3,
            max_judgments=5,
            gold_rate=0.05,
        )
        self._tasks(triage, demo_data.ticket_items(CATEGORICAL_TASKS, seed=spec.slug), tally)

        judges = [
            (users[person.email], accuracy)
            for person, accuracy in zip(spec.annotators, ANNOTATOR_ACCURACY, strict=True)
        ]
        self._judgments(spec, pairwise, pairs[:JUDGED_TASKS], judges, tally)
        self._coding_qualification(organization, pairwise, [users[p.email] for p in spec.annotators[:2]], tally)

        ranking = self._project(
            organization,
            ranking_project_name(spec.name),
            ProjectKind.RANKING,
            None,
            tally,
            questions=RANKING_QUESTIONS,
            instructions=RANKING_INSTRUCTIONS,
            min_judgments=3,
            max_judgments=4,
            gold_rate=0.05,
        )
        ranked = demo_data.ranking_items(RANKING_TASKS, seed=spec.slug)
        self._tasks(ranking, ranked, tally)
        self._rankings(spec, ranking, ranked[:RANKED_TASKS], judges, tally)

        projects = (pairwise, triage, ranking)
        stats = [(project, project_stats_refresh(project_id=project.pk)) for project in projects]
        return OrganizationReport(spec, organization, tally, stats)

    def _coding_qualification(
        self, organization: Organization, project: Project, holders: list[Any], tally: Tally
    ) -> None:
        """Routing in action: the coding pairs need the ``code`` skill, which two of the annotators hold."""
        qualification = Qualification.objects.for_org(organization).filter(code=CODING_QUALIFICATION).first()
        tally.add("qualifications", created=int(qualification is None), present=int(qualification is not None))
        if qualification is None:
            qualification = qualification_create(
                organization=organization, code=CODING_QUALIFICATION, name="Reads and judges code"
            )
        for holder in holders:
            held = AnnotatorQualification.objects.for_org(organization).filter(
                qualification=qualification, annotator=holder
            )
            tally.add("qualification grants", created=int(not held.exists()), present=int(held.exists()))
            if not held.exists():
                qualification_grant(qualification=qualification, annotator=holder)
        coding = Task.objects.for_org(organization).filter(project=project, meta__topic="coding")
        missing = coding.exclude(requirements__qualification=qualification)
        ids = list(missing.values_list("id", flat=True))
        TaskRequirement.objects.bulk_create(
            TaskRequirement(organization=organization, task_id=pk, qualification=qualification) for pk in ids
        )
        task_requirement_flags_refresh(task_ids=ids)
        tally.add("task requirements", created=len(ids), present=coding.count() - len(ids))

    def _member(self, organization: Organization, person: DemoPerson, tally: Tally) -> Any:
        User = get_user_model()
        user = User.objects.filter(Q(username__iexact=person.email) | Q(email__iexact=person.email)).first()
        if user is None:
            if self._password_hash is None:
                # Hashing is deliberately slow (~1 s); the demo accounts share one hash of their shared password.
                self._password_hash = make_password(DEMO_PASSWORD)
            first, _, last = person.name.partition(" ")
            user = User.objects.create(
                username=person.email,
                email=person.email,
                first_name=first,
                last_name=last,
                password=self._password_hash,
            )
            tally.add("users", created=1)
            self._users.setdefault(person.email, True)
        else:
            tally.add("users", present=1)
            self._users.setdefault(person.email, False)
        if Membership.objects.for_org(organization).filter(user=user).exists():
            tally.add("memberships", present=1)
        else:
            # The operator seeds these accounts for the people themselves: no invitation to accept.
            membership_create(organization=organization, user=user, role=person.role)
            tally.add("memberships", created=1)
        return user

    def _project(
        self,
        organization: Organization,
        name: str,
        kind: str,
        labels: list[tuple[str, str]] | None,
        tally: Tally,
        **options: Any,
    ) -> Project:
        project = Project.objects.for_org(organization).filter(name=name).first()
        if project is None:
            project = project_create(organization=organization, name=name, kind=kind, labels=labels, **options)
            tally.add("projects", created=1)
            tally.add("labels", created=Label.objects.for_org(organization).filter(project=project).count())
            return project
        if project.kind != kind:
            raise CommandError(
                f"{organization.name} already has a project {name!r}, but it is {project.kind}, not {kind}. "
                "Rename or delete it, then run seed_demo again."
            )
        tally.add("projects", present=1)
        tally.add("labels", present=Label.objects.for_org(organization).filter(project=project).count())
        return project

    def _tasks(
        self,
        project: Project,
        items: list[demo_data.PairItem] | list[demo_data.TicketItem] | list[demo_data.RankItem],
        tally: Tally,
    ) -> None:
        """Bulk-insert the items the project lacks, each validated exactly as ``task_create`` would."""
        tasks = Task.objects.for_org(project.organization_id).filter(project=project)
        existing = set(tasks.values_list("external_id", flat=True))
        label_values = project_label_values(project=project)
        rows = []
        for item in items:
            if item.external_id in existing:
                continue
            errors = payload_errors(project.kind, item.payload)
            if (problem := gold_label_error(project.kind, item.gold_label, item.payload, label_values)) is not None:
                errors["gold_label"] = problem
            if errors:
                raise CommandError(f"Demo task {item.external_id} of {project.name!r} is invalid: {errors}")
            rows.append(
                Task(
                    organization_id=project.organization_id,
                    project=project,
                    external_id=item.external_id,
                    payload=item.payload,
                    meta=item.meta,
                    gold_label=item.gold_label,
                )
            )
        before = tasks.count()
        Task.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        created = tasks.count() - before
        tally.add("tasks", created=created, present=len(items) - created)

    def _to_judge(
        self,
        spec: DemoOrganization,
        project: Project,
        items: list[demo_data.PairItem] | list[demo_data.RankItem],
        judges: list[tuple[Any, float]],
        tally: Tally,
    ) -> Iterator[tuple[Any, Any, Any, float, random.Random]]:
        """(task, item, annotator, accuracy, their seeded rng) for each judgment still missing: ``JUDGES_PER_TASK``
        of the annotators per item, rotating who sits a task out (each judges about three quarters of them)."""
        tasks = {
            task.external_id: task
            for task in Task.objects.for_org(project.organization_id)
            .filter(project=project, external_id__in=[item.external_id for item in items])
            .select_related("project")
        }
        done = set(
            Judgment.objects.for_org(project.organization_id)
            .filter(project=project)
            .values_list("task_id", "annotator_id")
        )
        for position, item in enumerate(items):
            task = tasks.get(item.external_id)
            if task is None:
                continue
            for user, accuracy in (judges[(position + offset) % len(judges)] for offset in range(JUDGES_PER_TASK)):
                if (task.pk, user.pk) in done:
                    tally.add("judgments", present=1)
                    continue
                yield task, item, user, accuracy, random.Random(f"{spec.slug}:{item.external_id}:{user.username}")
                tally.add("judgments", created=1)

    def _judgments(
        self,
        spec: DemoOrganization,
        project: Project,
        items: list[demo_data.PairItem],
        judges: list[tuple[Any, float]],
        tally: Tally,
    ) -> None:
        """The annotators judge each item, mostly choosing the better response."""
        for task, item, user, accuracy, rng in self._to_judge(spec, project, items, judges, tally):
            reading = len(item.prompt) + len(item.response_a) + len(item.response_b)
            judgment_record(
                task=task,
                annotator=user,
                label=_judgment(rng, item.better, accuracy),
                client_id=f"seed-{task.external_id}-{user.pk}",
                a_left=rng.random() < 0.5,
                seconds_on_task=round(rng.uniform(0.6, 1.5) * (8 + reading / 30), 1),
            )

    def _rankings(
        self,
        spec: DemoOrganization,
        project: Project,
        items: list[demo_data.RankItem],
        judges: list[tuple[Any, float]],
        tally: Tally,
    ) -> None:
        """Rankings with ratings and a rationale: the better annotators mostly find the true order, swapping
        neighbours more often the less accurate they are."""
        for task, item, user, accuracy, rng in self._to_judge(spec, project, items, judges, tally):
            judgment_record(
                task=task,
                annotator=user,
                label="",
                client_id=f"seed-{task.external_id}-{user.pk}",
                seconds_on_task=round(rng.uniform(40, 120), 1),
                answers=_ranking_answers(rng, item, accuracy),
            )

    # --- Output ----------------------------------------------------------------------------------------------
    def _print_summary(self, reports: list[OrganizationReport], seconds: float, *, base_url: str) -> None:
        write = self.stdout.write
        total = Tally()
        for report in reports:
            organization = report.organization
            write("")
            write(self.style.MIGRATE_HEADING(f"{organization.name} (slug: {organization.slug})"))
            write("  Logins (username / password / role):")
            for person in report.spec.people:
                note = (
                    "  (also in the other organization: try the organization switcher)"
                    if person.email == MULTI_EMAIL
                    else ""
                )
                write(f"    {person.email:<27} / {DEMO_PASSWORD} / {person.role}{note}")
            write("  Projects:")
            for project, stats in report.stats:
                if stats is not None:
                    write(
                        f"    {project.name} ({project.kind}): {stats.tasks} tasks, {stats.gold_tasks} gold, "
                        f"{stats.judgments} judgments"
                    )
            write("  This run:")
            for kind in COUNTED:
                created, present = report.tally.created[kind], report.tally.present[kind]
                write(f"    {kind}: {created} created, {present} already present")
                if kind != "users":  # people in several organizations are counted once below
                    total.add(kind, created=created, present=present)
        created_users = sum(self._users.values())
        total.add("users", created=created_users, present=len(self._users) - created_users)
        write("")
        write(self.style.MIGRATE_HEADING("All organizations"))
        for kind in COUNTED:
            write(f"  {kind}: {total.created[kind]} created, {total.present[kind]} already present")
        write("")
        base = base_url.rstrip("/")
        write(f"Sign in: {base}/accounts/login/ (annotators' pages) or {base}/admin/ (managers and admins)")
        write(f"Any login above works; the password is {DEMO_PASSWORD!r} for all.")
        write("Nobody is a superuser or staff: what each person may do comes from their role in the organization.")
        write(self.style.SUCCESS(f"Demo data ready in {seconds:.1f} s."))


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def ranking_project_name(organization_name: str) -> str:
    return f"{organization_name} — Response ranking"


def _ranking_answers(rng: random.Random, item: demo_data.RankItem, accuracy: float) -> dict[str, Any]:
    order = list(item.best_first)
    for place in range(3):
        if rng.random() > accuracy:  # a less careful annotator swaps neighbours
            order[place], order[place + 1] = order[place + 1], order[place]
    ratings = [0] * 4
    for place, response in enumerate(order):
        ratings[response] = max(1, min(7, 7 - 2 * place + rng.choice((-1, 0, 0, 1))))
    return {
        "rank": order,
        "helpfulness": ratings,
        "honesty": [max(1, min(7, rating + rng.choice((-1, 0, 1)))) for rating in ratings],
        "why": "It answers the question correctly and shows how, without padding.",
    }


def _judgment(rng: random.Random, better: str, accuracy: float) -> str:
    """Usually the better response; otherwise the other one, a tie or both bad (annotators are human)."""
    if rng.random() < accuracy:
        return better
    other = "b" if better == "a" else "a"
    return rng.choices([other, "tie", "both_bad"], weights=[5, 3, 2])[0]
