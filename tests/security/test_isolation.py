"""Route-complete tenant isolation (DESIGN §4): every URL of ``config.urls``, from organization B against A.

``ROUTES`` maps every URL pattern (pages, ``/api/v1/``, the schema and docs, and the whole admin: the site's own
views, every registered model admin's ``get_urls()`` with their custom views) to how it is exercised here; a
pattern without an entry fails ``test_every_route_is_in_the_matrix``.

- **object** routes take an id (in the URL, or posted: switch organization, consent). Each is requested with every
  HTTP method and every credential of organization B that the route takes (pages: the sessions of its admin,
  manager and annotator; the API: those and its full and read-only keys; the admin: its admin's and manager's
  sessions) against organization A's object, and again with an id that exists nowhere. Both answers must be the
  same (status, body, ``Location``, ``Allow``, content type), the status 404 (405 for a method the view does not
  take, 403 only for a role limit that holds in one's own organization too), and the database unchanged: row
  counts of every tenant table (found from the models: every model with an ``organization``), of users,
  organizations and admin log entries, and a hash of every row of organization A. A control request by
  organization A's own credential proves that each URL reaches a real object.
- **listing** and **public** routes take no id: every organization B credential reads them and sees none of
  organization A's names, e-mail addresses, external ids or key prefixes (organization A's own credential does
  see them where the route lists rows, so the check can fail).

The tests at the end mix own and foreign ids in imports, API bodies, admin bulk actions and admin add forms: a
foreign id is refused exactly like a missing one (same status, same message but for the id) and nothing of
organization A is written.

The world (two organizations with a row of every tenant model each, from ``tests.factories`` and the admin tests'
``seed_annotations``, in the shape of the ``tenancy`` fixture) is seeded once for the module in a transaction
rolled back at its end; each test runs in a savepoint of it. Two thousand requests make per-test seeding too slow.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import connection, models, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from backoffice.base import SuperuserOnlyMixin, TenantAdmin
from config import urls as root_urls
from labeling.apikeys import api_key_create
from labeling.invitations import TOKEN_SALT as INVITATION_TOKEN_SALT
from labeling.models import (
    ApiKey,
    ImportJob,
    ImportStatus,
    Invitation,
    Judgment,
    Membership,
    Organization,
    Project,
    Role,
    Task,
)
from quality.models import AnnotatorScore
from routing.models import AnnotatorQualification, Lease, Qualification
from routing.services import next_task, qualification_create, qualification_grant
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy, build_tenancy
from tests.labeling.test_admin_tenancy import form_data, seed_annotations

User = get_user_model()

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE = ("GET", "HEAD", "OPTIONS")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
JSONL = "application/x-ndjson"

SESSIONS_B = ("session:admin_b", "session:manager_b", "session:annotator_b")
KEYS_B = ("key:full_b", "key:read_only_b")
CREDENTIALS_B = SESSIONS_B + KEYS_B
#: What org B's credentials may use, per kind of route (pages take no API key; the admin takes no API key).
CREDENTIALS = {"page": SESSIONS_B, "api": CREDENTIALS_B, "admin": ("session:admin_b", "session:manager_b")}

#: Strings that occur only in organization A's rows: none may reach organization B.
MARKERS_A = ("Alpha secret", "a-secret-", "world-a.example")


# --- The world ---------------------------------------------------------------------------------------------------
@dataclass
class World:
    t: Tenancy  # org A: admin_a, manager_a, annotator_a; org B: outsider_b is its admin
    manager_b: Any
    annotator_b: Any
    superuser: Any
    keys: dict[str, str]
    lease_a: Lease  # annotator_a's active lease in project_a
    grant_a: AnnotatorQualification  # annotator_a's sensitivity clearance
    score_a: AnnotatorScore
    job_a: ImportJob
    invitation_a: Invitation  # pending, last sent an hour ago (so that a resend by A goes through)
    group: Group
    #: Organization A's (and B's) row of every model with an admin.
    rows_a: dict[type[models.Model], models.Model] = field(default_factory=dict)
    rows_b: dict[type[models.Model], models.Model] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    snapshot_queries: list[tuple[str, str, list[Any]]] = field(default_factory=list)
    snapshot_labels: list[str] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # credential -> session cookie
    key_prefixes_a: tuple[str, ...] = ()

    def user(self, name: str) -> Any:
        return {
            "admin_a": self.t.admin_a,
            "manager_a": self.t.manager_a,
            "annotator_a": self.t.annotator_a,
            "admin_b": self.t.outsider_b,
            "manager_b": self.manager_b,
            "annotator_b": self.annotator_b,
            "superuser": self.superuser,
        }[name]

    def client(self, credential: str) -> Client:
        kind, name = credential.split(":")
        if kind == "key":
            return KeyClient(self.keys[name])
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[credential]
        return client


_MISSING_PKS: dict[type[models.Model], int] = {}


def missing_pk(model: type[models.Model]) -> int:
    """An id that no row of ``model`` has, in any organization (far above the world's: tests add a few rows)."""
    if model not in _MISSING_PKS:
        top = model._default_manager.order_by("-pk").values_list("pk", flat=True).first() or 0
        _MISSING_PKS[model] = top + 100_000
    return _MISSING_PKS[model]


def pk(obj: models.Model, which: str) -> int:
    return obj.pk if which == "foreign" else missing_pk(type(obj))


def _tenant_models() -> list[type[models.Model]]:
    found = []
    for model in apps.get_models():
        relation = next((f for f in model._meta.fields if f.name == "organization"), None)
        if relation is not None and relation.related_model is Organization:
            found.append(model)
    return sorted(found, key=lambda model: model._meta.label)


TENANT_MODELS = _tenant_models()


def _snapshot_queries(org_a: Organization) -> tuple[list[tuple[str, str, list[Any]]], list[str]]:
    """Raw SQL for the snapshot, built once: it runs after every request of the matrix. PostgreSQL hashes the rows
    itself in one query (one round trip); SQLite, in-process, returns them to be hashed here."""
    quote = connection.ops.quote_name
    members = Membership.objects.filter(organization=org_a).values("user_id")
    tables: list[tuple[str, models.QuerySet]] = [
        *((model._meta.label, model._default_manager.filter(organization=org_a)) for model in TENANT_MODELS),
        ("auth.User", User.objects.filter(pk__in=members)),
        ("labeling.Organization", Organization.objects.all()),
    ]
    labels = [f"{label} count" for label, _ in tables] + ["admin.LogEntry count"]
    # Table and column names come from the models' meta (quoted); every value is a parameter.
    counts = [
        f"(SELECT COUNT(*) FROM {quote(model._meta.db_table)})"  # noqa: S608
        for model in (*(queryset.model for _, queryset in tables), LogEntry)
    ]
    if connection.vendor == "postgresql":
        hashes, params = [], []
        for _, queryset in tables:
            sql, where = queryset.values("pk").query.sql_with_params()
            pk_column = quote(queryset.model._meta.pk.column)
            table = quote(queryset.model._meta.db_table)
            rows = f"string_agg(r::text, '|' ORDER BY r.{pk_column})"
            hashes.append(f"(SELECT md5({rows}) FROM {table} r WHERE r.{pk_column} IN ({sql}))")  # noqa: S608
            params.extend(where)
        labels += [f"{label} rows of org A" for label, _ in tables]
        return [("state", f"SELECT {', '.join(counts + hashes)}", params)], labels
    queries = [("counts", f"SELECT {', '.join(counts)}", [])]
    for label, queryset in tables:
        sql, where = queryset.order_by("pk").values_list().query.sql_with_params()
        queries.append((f"{label} rows of org A", sql, list(where)))
    return queries, labels


def snapshot(world: World) -> dict[str, str]:
    """Row counts of every tenant table, users, organizations and the admin log (a change through the admin
    writes one), and a hash of every one of organization A's rows in them (and of its members' accounts)."""
    state: dict[str, str] = {}
    with connection.cursor() as cursor:
        for label, sql, params in world.snapshot_queries:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if label in ("counts", "state"):  # one row: the counts (by table, as labelled), then the hashes
                state |= dict(zip(world.snapshot_labels, rows[0], strict=False))
            else:
                state[label] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return state


def _seed() -> World:
    tenancy = build_tenancy(
        a="world-a", b="world-b", orgs=("World A", "World B"), project_a="Alpha secret prefs", task_a="a-secret-1"
    )
    org_a, org_b, project_a, project_b = tenancy.org_a, tenancy.org_b, tenancy.project_a, tenancy.project_b
    manager_b = factories.make_member(org_b, Role.MANAGER, "bob@world-b.example")
    annotator_b = factories.make_member(org_b, Role.ANNOTATOR, "bea@world-b.example")
    # A qualification, grant, requirement, lease, judgment, quality results and an API key in each organization.
    seed_annotations(tenancy)
    factories.make_task(project_a, "a-secret-2")
    lease_a = next_task(annotator=tenancy.annotator_a, project=project_a)
    assert lease_a is not None and lease_a.task.external_id == "a-secret-2"
    clearance = qualification_create(organization=org_a, code="sensitive:a-secret-qual")
    grant_a = qualification_grant(qualification=clearance, annotator=tenancy.annotator_a)
    qualification_create(organization=org_a, code="a-secret-qual")
    jobs = {
        project.organization_id: ImportJob.objects.create(
            organization=project.organization,
            project=project,
            kind="tasks",
            options={"format": "jsonl"},
            path="/nonexistent/upload",
            status=ImportStatus.DONE,
        )
        for project in (project_a, project_b)
    }
    keys = {
        "full_a": api_key_create(organization=org_a, name="a-secret-key", created_by=tenancy.admin_a)[1],
        "full_b": api_key_create(organization=org_b, name="b key")[1],
        "read_only_b": api_key_create(organization=org_b, name="b reader", read_only=True)[1],
    }
    # seed_annotations invited an address per organization; their last e-mail an hour ago, so a resend may go.
    Invitation.objects.update(last_sent_at=timezone.now() - timedelta(hours=1))
    world = World(
        t=tenancy,
        manager_b=manager_b,
        annotator_b=annotator_b,
        superuser=factories.make_user("root@world.example", is_superuser=True, is_staff=True),
        keys=keys,
        lease_a=lease_a,
        grant_a=grant_a,
        score_a=AnnotatorScore.objects.filter(organization=org_a).order_by("pk").first(),
        job_a=jobs[org_a.pk],
        invitation_a=Invitation.objects.get(organization=org_a),
        group=Group.objects.create(name="world-group"),
    )
    assert world.score_a is not None
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, TenantAdmin):
            for organization, rows in ((org_a, world.rows_a), (org_b, world.rows_b)):
                row = model._default_manager.filter(organization=organization).order_by("pk").first()
                assert row is not None, f"seed a {model._meta.label} row in both organizations"
                rows[model] = row
    # An organization's only admin cannot be deleted: the membership rows are annotators'.
    world.rows_a[Membership] = Membership.objects.get(user=tenancy.annotator_a)
    world.rows_b[Membership] = Membership.objects.get(user=annotator_b)
    world.rows_a |= {User: tenancy.annotator_a, Group: world.group, Organization: org_a}
    world.rows_b |= {User: annotator_b, Group: world.group, Organization: org_b}
    world.key_prefixes_a = tuple(ApiKey.objects.filter(organization=org_a).values_list("prefix", flat=True))
    for name in ("admin_a", "manager_a", "annotator_a", "admin_b", "manager_b", "annotator_b", "superuser"):
        client = Client()
        client.force_login(world.user(name))
        world.sessions[f"session:{name}"] = client.cookies[settings.SESSION_COOKIE_NAME].value
    world.snapshot_queries, world.snapshot_labels = _snapshot_queries(org_a)
    world.baseline = snapshot(world)
    return world


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Iterator[World]:
    """Seeded once for the module, in a transaction rolled back at its end (see ``w``)."""
    with django_db_blocker.unblock(), _rolled_back():
        name = str(connection.settings_dict["NAME"])  # Django's test database: test_<name>, or SQLite in memory
        assert name.startswith("test_") or "memorydb" in name, f"not seeding {name}: not a test database"
        _MISSING_PKS.clear()
        yield _seed()


@pytest.fixture
def db(world: World) -> Iterator[None]:
    """This module's ``db``: a savepoint of the world's transaction, rolled back after the test. The name makes
    pytest-django set up the test database (it does only for sessions where a test asks for ``db``); the
    savepoint is pytest-django's without its per-test constraint checks (four queries, times two thousand)."""
    with _rolled_back():
        yield


@pytest.fixture
def w(world: World, db: None) -> World:
    return world


@contextmanager
def _rolled_back() -> Iterator[None]:
    atomic = transaction.atomic()
    atomic._from_testcase = True  # type: ignore[attr-defined]  # as Django's TestCase marks its own blocks
    atomic.__enter__()
    try:
        yield
    finally:
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


# --- Requests and their comparison ---------------------------------------------------------------------------
Body = tuple[Any, str]  # data (a dict for forms and JSON, bytes otherwise) and its content type


def send(client: Client, method: str, url: str, body: Body) -> Any:
    if method in SAFE:
        return client.generic(method, url)
    data, content_type = body
    if content_type == FORM:
        data = urlencode(data, doseq=True)
    elif content_type == JSON:
        data = json.dumps(data)
    return client.generic(method, url, data, content_type=content_type)


#: Per-response values: the CSRF token in forms and the Content-Security-Policy nonce of scripts and styles.
PER_RESPONSE_RE = re.compile(r'(name="csrfmiddlewaretoken" value|nonce)="[^"]*"')


def fingerprint(response: Any, url: str, ids: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """What a caller can observe, with the requested URL and the text ids sent (an error may name them) written as
    placeholders. Numeric ids are not masked: no answer repeats one, and masking would hit other numbers."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = PER_RESPONSE_RE.sub(r'\1="…"', content.decode(errors="replace"))
    location = response.get("Location", "")
    if url:
        text, location = text.replace(url, "{url}"), location.replace(url, "{url}")
    for value in ids:
        text, location = text.replace(value, "{id}"), location.replace(value, "{id}")
    return (response.status_code, text, location, response.get("Allow"), response.get("Content-Type"))


# --- The matrix: routes that take an id --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One way of reaching organization A's object through a route."""

    route: str
    variant: str
    kind: str  # "page", "api" or "admin": which credentials apply
    #: ``(world, "foreign" | "missing") -> (url, body for unsafe methods, text ids to mask in the answer)``
    build: Callable[[World, str], tuple[str, Body, tuple[str, ...]]]
    #: Methods the view takes: those answer 404 (others 404 or 405, the same for a missing id).
    methods: tuple[str, ...]
    #: The status of every method when it does not depend on the object (a redirect that reads nothing).
    fixed: int | None = None
    #: Organization A's credential for the control request, its method and the status it gets.
    owner: tuple[str, str, int] | None = None
    #: Statuses by method that do not depend on the id (a page shown for GET, the id being in the POSTed form).
    statuses: tuple[tuple[str, int], ...] = ()
    #: Org B's credentials refused for their role inside their own organization (403) before the id is read (for
    #: the API, in the methods the view takes).
    role_limited: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.route}[{self.variant}]" if self.variant else self.route


def _url(name: str, *args: Any) -> str:
    return reverse(name, args=list(args))


def _page(name: str) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        return _url(name, pk(w.t.project_a, which)), ({}, FORM), ()

    return build


SUBMIT_FORM = {"choice": "first", "client_id": "isolation-1", "reason": "unclear"}


def _lease_route(name: str, foreign_project: bool) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        project = pk(w.t.project_a, which) if foreign_project else w.t.project_b.pk
        return _url(name, project, pk(w.lease_a, which)), (SUBMIT_FORM, FORM), ()

    return build


def _unpause(foreign_project: bool) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        project = pk(w.t.project_a, which) if foreign_project else w.t.project_b.pk
        return _url("quality-unpause", project, pk(w.score_a, which)), ({}, FORM), ()

    return build


def _quality_csv(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
    return reverse("quality-csv", args=[pk(w.t.project_a, which), "annotators"]), ({}, FORM), ()


def _body_id(url: str, name: str, obj: Callable[[World], models.Model], extra: dict[str, str]) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        return reverse(url), ({name: pk(obj(w), which), **extra}, FORM), ()

    return build


def _api(name: str, body: Callable[[World], Body] | None = None) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        return _url(name, pk(w.t.project_a, which)), (body(w) if body else ({}, JSON)), ()

    return build


def _import_body(rows: list[dict[str, Any]]) -> Callable[[World], Body]:
    return lambda w: (b"".join(json.dumps(row).encode() + b"\n" for row in rows), JSONL)


TASK_ROW = {"external_id": "new-1", **factories.pairwise_payload(1)}
JUDGMENT_ROW = {"external_id": "a-secret-1", "annotator": "annie@world-a.example", "label": "a", "a_left": True}
PREDICTION_ROW = {"external_id": "a-secret-1", "predictions": 0.7}


def _import_job(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
    return _url("api-import-job", pk(w.job_a, which)), ({}, JSON), ()


PAGE_CASES = [
    Case("annotate", "", "page", _page("annotate"), ("GET",), owner=("session:annotator_a", "GET", 200)),
    Case(
        "annotate-submit",
        "foreign project and lease",
        "page",
        _lease_route("annotate-submit", True),
        ("POST",),
        owner=("session:annotator_a", "POST", 302),
    ),
    Case("annotate-submit", "own project, foreign lease", "page", _lease_route("annotate-submit", False), ("POST",)),
    Case(
        "annotate-skip",
        "foreign project and lease",
        "page",
        _lease_route("annotate-skip", True),
        ("POST",),
        owner=("session:annotator_a", "POST", 302),
    ),
    Case("annotate-skip", "own project, foreign lease", "page", _lease_route("annotate-skip", False), ("POST",)),
    Case(
        "annotate-undo",
        "foreign project and lease",
        "page",
        _lease_route("annotate-undo", True),
        ("POST",),
        owner=("session:annotator_a", "POST", 302),
    ),
    Case("annotate-undo", "own project, foreign lease", "page", _lease_route("annotate-undo", False), ("POST",)),
    Case("quality", "", "page", _page("quality"), ("GET",), owner=("session:manager_a", "GET", 200)),
    Case("quality-csv", "", "page", _quality_csv, ("GET",), owner=("session:manager_a", "GET", 200)),
    Case(
        "quality-unpause",
        "foreign project and score",
        "page",
        _unpause(True),
        ("POST",),
        owner=("session:admin_a", "POST", 302),
    ),
    Case(
        "quality-unpause",
        "own project, foreign score",
        "page",
        _unpause(False),
        ("POST",),
        role_limited=("session:annotator_b",),  # annotators see no quality page of their own projects
    ),
    Case(
        "quality-recompute", "", "page", _page("quality-recompute"), ("POST",), owner=("session:admin_a", "POST", 302)
    ),
    Case(
        "organization-switch",
        "organization id posted",
        "page",
        _body_id("organization-switch", "organization", lambda w: w.t.org_a, {}),
        ("POST",),
        owner=("session:admin_a", "POST", 302),
    ),
    Case(
        "consent",
        "clearance id posted",
        "page",
        _body_id("consent", "grant", lambda w: w.grant_a, {"opted_in": "1"}),
        ("POST",),
        owner=("session:annotator_a", "POST", 302),
        statuses=(("GET", 200),),  # the page of one's own clearances
    ),
]


def _invitation_link(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
    """A's invitation id in a correctly signed token with another nonce (what an old link holds after a resend: the
    closest an outsider can come without the e-mailed link) against a token naming an id that exists nowhere."""
    invitation_id = pk(w.invitation_a, which)
    token = signing.dumps({"i": invitation_id, "n": "not-the-current-nonce"}, salt=INVITATION_TOKEN_SALT)
    return reverse("invitation", args=[token]), ({"action": "accept"}, FORM), ()


def _password_reset_link(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
    """A's member's account id in a reset link with a wrong token, against an id that exists nowhere."""
    uid = urlsafe_base64_encode(force_bytes(pk(w.t.annotator_a, which)))
    body = {"new_password1": "Taken-over-by-B-1", "new_password2": "Taken-over-by-B-1"}
    return reverse("password_reset_confirm", args=[uid, "set-password"]), (body, FORM), ()


PAGE_CASES += [
    # The accept page takes GET and POST (accept, or create an account): an unusable link answers 404 to any.
    Case("invitation", "another nonce", "page", _invitation_link, ("GET", "POST")),
    Case("password_reset_confirm", "wrong token", "page", _password_reset_link, ("GET", "POST", "PUT")),
]


def _invitation(name: str) -> Callable[..., Any]:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        return _url(name, pk(w.invitation_a, which)), ({}, JSON), ()

    return build


API_CASES = [
    Case(
        "api-project",
        "",
        "api",
        _api("api-project", lambda w: ({"name": "Renamed by B"}, JSON)),
        ("GET", "HEAD", "PATCH"),
        owner=("key:full_a", "PATCH", 200),
    ),
    *(
        Case(name, "", "api", _api(name), ("GET", "HEAD"), owner=("key:full_a", "GET", 200))
        for name in ("api-tasks", "api-annotations", "api-quality", "api-annotators", "api-models")
    ),
    Case(
        "api-tasks-import",
        "",
        "api",
        _api("api-tasks-import", _import_body([TASK_ROW])),
        ("POST",),
        owner=("key:full_a", "POST", 200),
    ),
    Case(
        "api-annotations-import",
        "",
        "api",
        _api("api-annotations-import", _import_body([JUDGMENT_ROW])),
        ("POST",),
        owner=("key:full_a", "POST", 200),
    ),
    Case(
        "api-predictions-import",
        "",
        "api",
        _api("api-predictions-import", _import_body([PREDICTION_ROW])),
        ("POST",),
        owner=("key:full_a", "POST", 200),
    ),
    Case("api-import-job", "", "api", _import_job, ("GET", "HEAD"), owner=("key:full_a", "GET", 200)),
]
API_CASES += [
    Case("api-invitation", "", "api", _invitation("api-invitation"), ("GET", "HEAD"), owner=("key:full_a", "GET", 200)),
    *(
        # Managers read invitations but only admins (and full keys) write: refused before the id is read.
        Case(
            name,
            "",
            "api",
            _invitation(name),
            ("POST",),
            owner=("key:full_a", "POST", 200),
            role_limited=("session:manager_b",),
        )
        for name in ("api-invitation-resend", "api-invitation-revoke")
    ),
]
for _name in ("api-export", "api-export-summary"):
    API_CASES.append(
        Case(
            _name,
            "",
            "api",
            lambda w, which, _name=_name: (f"{_url(_name, pk(w.t.project_a, which))}?format=dpo", ({}, JSON), ()),
            ("GET", "HEAD"),
            owner=("key:full_a", "GET", 200),
        )
    )

#: Admin views of one object, keyed by their URL name suffix ("" is the ``<id>/`` redirect to the change page).
ADMIN_OBJECT_VIEWS = ("change", "delete", "history", "")
ADMIN_FORM = {"post": "yes", "_save": "Save", "name": "Renamed by B", "role": "admin"}


def _admin_route_key(model: type[models.Model], view: str) -> str:
    opts = model._meta
    if view:
        return f"admin:{opts.app_label}_{opts.model_name}_{view}"
    return f"admin/{opts.app_label}/{opts.model_name}/<path:object_id>/"


def _admin_case(model: type[models.Model], view: str) -> Case:
    superuser_only = isinstance(admin.site._registry[model], SuperuserOnlyMixin)

    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        value = pk(w.rows_a[model], which)
        opts = model._meta
        if view:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[value])
        else:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + f"{value}/"
        return url, (ADMIN_FORM, FORM), ()

    owner_credential = "session:superuser" if superuser_only else "session:admin_a"
    if not view:
        return Case(
            _admin_route_key(model, view), "", "admin", build, METHODS, fixed=302, owner=(owner_credential, "GET", 302)
        )
    return Case(
        _admin_route_key(model, view),
        "",
        "admin",
        build,
        METHODS,
        fixed=403 if superuser_only else None,
        owner=(owner_credential, "GET", 200),
    )


def _view_on_site(model: type[models.Model]) -> Case:
    def build(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
        content_type = ContentType.objects.get_for_model(model)
        return reverse("admin:view_on_site", args=[content_type.pk, pk(w.rows_a[model], which)]), ({}, FORM), ()

    # No model has get_absolute_url(): the view answers 404 for every row, its owner's too.
    return Case("admin:view_on_site", model._meta.label, "admin", build, METHODS, owner=("session:admin_a", "GET", 404))


def _catch_all(w: World, which: str) -> tuple[str, Body, tuple[str, ...]]:
    # No trailing slash: the admin's catch-all view redirects to the URL with one (the same for any id).
    return reverse("admin:labeling_project_change", args=[pk(w.t.project_a, which)]).rstrip("/"), ({}, FORM), ()


ADMIN_MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)
ADMIN_CASES = [
    *(_admin_case(model, view) for model in ADMIN_MODELS for view in ADMIN_OBJECT_VIEWS),
    # The view looks up any model's row alike (ContentType.get_object_for_this_type): tenant rows of three apps
    # and a superuser-only one.
    *(_view_on_site(model) for model in (Project, Judgment, Lease, AnnotatorScore, User)),
    Case(
        "admin:auth_user_password_change",
        "",
        "admin",
        lambda w, which: (
            reverse("admin:auth_user_password_change", args=[pk(w.t.annotator_a, which)]),
            ({"password1": "x", "password2": "x"}, FORM),
            (),
        ),
        METHODS,
        fixed=403,
        owner=("session:superuser", "GET", 200),
    ),
    Case(
        "admin/(?P<url>.*)$",
        "no trailing slash",
        "admin",
        _catch_all,
        METHODS,
        fixed=301,
        owner=("session:admin_a", "GET", 301),
    ),
]

CASES = PAGE_CASES + API_CASES + ADMIN_CASES


def expected_statuses(case: Case, credential: str, method: str) -> set[int]:
    """The answers allowed for org B's ``credential``; the test also requires the missing id's exact answer."""
    role = credential.split(":")[1]
    if case.kind == "admin" and role == "annotator_b":
        return {302}  # to the admin's sign-in: annotators have no admin
    if case.fixed is not None:
        return {case.fixed}
    if method in dict(case.statuses):
        return {dict(case.statuses)[method]}
    if credential in case.role_limited and (case.kind != "api" or method in case.methods):
        return {403}  # (an API view checks a role in its handler: other methods get 405, OPTIONS its description)
    if case.kind == "api":
        if role == "annotator_b":
            return {403}  # annotators have no API access, in their own organization either
        if role == "read_only_b" and method not in SAFE:
            return {403}  # a read-only key never writes, in its own organization either
        if method == "OPTIONS":
            return {200}  # DRF's description of the endpoint, which reads no object
    return {404} if method in case.methods else {404, 405}


MATRIX = [
    pytest.param(case, method, credential, id=f"{case.id}-{method}-{credential}")
    for case in CASES
    for method in METHODS
    for credential in CREDENTIALS[case.kind]
]


@pytest.mark.parametrize(("case", "method", "credential"), MATRIX)
def test_another_organizations_object_answers_like_a_missing_one(
    w: World, case: Case, method: str, credential: str
) -> None:
    client = w.client(credential)
    url, body, ids = case.build(w, "foreign")
    foreign = send(client, method, url, body)
    missing_url, missing_body, missing_ids = case.build(w, "missing")
    missing = send(client, method, missing_url, missing_body)
    assert foreign.status_code in expected_statuses(case, credential, method), (
        f"{method} {url} as {credential}: {foreign.status_code}"
    )
    assert fingerprint(foreign, url, ids) == fingerprint(missing, missing_url, missing_ids)
    assert snapshot(w) == w.baseline, f"{method} {url} as {credential} changed a row"


OWNED = [pytest.param(case, id=case.id) for case in CASES if case.owner is not None]


@pytest.mark.parametrize("case", OWNED)
def test_the_matrix_reaches_real_objects(w: World, case: Case) -> None:
    """Control: organization A's own credential gets past the lookup (else the 404s above would prove nothing)."""
    assert case.owner is not None
    credential, method, status = case.owner
    url, body, _ = case.build(w, "foreign")
    response = send(w.client(credential), method, url, body)
    assert response.status_code == status, f"{method} {url} as {credential}"


# --- Routes without an id --------------------------------------------------------------------------------------
PUBLIC = "public"
LISTING = "listing"

#: Routes without an id: the URL to read, the credentials' kind, and whether organization A's admin (or key)
#: sees a marker there (a route that lists rows: the check for org B's view can then fail).
FLAT_ROUTES: dict[str, tuple[str, Callable[[], str], str, str | None]] = {
    "home": (PUBLIC, lambda: reverse("home"), "page", None),
    "healthz": (PUBLIC, lambda: reverse("healthz"), "page", None),
    "login": (PUBLIC, lambda: reverse("login"), "page", None),
    "logout": (PUBLIC, lambda: reverse("logout"), "page", None),
    "password_reset": (PUBLIC, lambda: reverse("password_reset"), "page", None),
    "password_reset_done": (PUBLIC, lambda: reverse("password_reset_done"), "page", None),
    "password_reset_complete": (PUBLIC, lambda: reverse("password_reset_complete"), "page", None),
    "work": (LISTING, lambda: reverse("work"), "page", "session:annotator_a"),
    "api-projects": (LISTING, lambda: reverse("api-projects"), "api", "key:full_a"),
    "api-invitations": (LISTING, lambda: reverse("api-invitations"), "api", "key:full_a"),
    "api-schema": (PUBLIC, lambda: reverse("api-schema"), "api", None),
    "api-docs": (PUBLIC, lambda: reverse("api-docs"), "api", None),
    "admin:index": (LISTING, lambda: reverse("admin:index"), "admin", None),
    "admin:login": (PUBLIC, lambda: reverse("admin:login"), "admin", None),
    "admin:logout": (PUBLIC, lambda: reverse("admin:logout"), "admin", None),
    "admin:password_change": (PUBLIC, lambda: reverse("admin:password_change"), "admin", None),
    "admin:password_change_done": (PUBLIC, lambda: reverse("admin:password_change_done"), "admin", None),
    "admin:jsi18n": (PUBLIC, lambda: reverse("admin:jsi18n"), "admin", None),
    "admin:app_list": (LISTING, lambda: reverse("admin:app_list", args=["labeling"]), "admin", None),
    "admin:autocomplete": (
        LISTING,
        lambda: reverse("admin:autocomplete") + "?app_label=labeling&model_name=task&field_name=project",
        "admin",
        "session:admin_a",
    ),
}
for _model in ADMIN_MODELS:
    _opts = _model._meta
    _owner = "session:admin_a" if isinstance(admin.site._registry[_model], TenantAdmin) else None
    for _view in ("changelist", "add"):
        _key = f"admin:{_opts.app_label}_{_opts.model_name}_{_view}"
        FLAT_ROUTES[_key] = (
            LISTING,
            lambda _key=_key: reverse(_key),
            "admin",
            _owner if _view == "changelist" else None,
        )

#: Every URL pattern and how it is exercised (a new pattern without an entry fails the test below).
ROUTES: dict[str, str] = {
    **{case.route: "object" for case in CASES},
    **{name: kind for name, (kind, *_) in FLAT_ROUTES.items()},
}


def _route_keys(patterns: list[Any], prefix: str = "", namespace: str = "") -> set[str]:
    keys: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            keys |= _route_keys(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            keys.add(f"{namespace}{pattern.name}" if pattern.name else prefix + str(pattern.pattern))
    return keys


def test_every_route_is_in_the_matrix() -> None:
    keys = _route_keys(root_urls.urlpatterns)
    assert any(key.startswith("admin:") for key in keys) and "api-project" in keys  # the walk reaches everything
    assert sorted(keys - set(ROUTES)) == [], "add these routes to the isolation matrix"
    assert sorted(set(ROUTES) - keys) == [], "these matrix entries name no route"


def test_every_admin_view_of_every_model_admin_is_in_the_matrix() -> None:
    """Each registered ModelAdmin's own ``get_urls()`` (custom views included), read from the admin registry."""
    for model, model_admin in admin.site._registry.items():
        for pattern in model_admin.get_urls():
            opts = model._meta
            key = (
                f"admin:{pattern.name}"
                if pattern.name
                else f"admin/{opts.app_label}/{opts.model_name}/{pattern.pattern}"
            )
            assert key in ROUTES, f"{model._meta.label}: {key} is not in the isolation matrix"


FLAT_MATRIX = [
    pytest.param(name, credential, id=f"{name}-GET-{credential}")
    for name, (_kind, _url_of, route_kind, _owner) in FLAT_ROUTES.items()
    for credential in CREDENTIALS[route_kind]
]


def _text(response: Any) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode(errors="replace")


def markers(w: World) -> tuple[str, ...]:
    return (*MARKERS_A, w.t.org_a.slug, *w.key_prefixes_a)


@pytest.mark.parametrize(("name", "credential"), FLAT_MATRIX)
def test_routes_without_an_id_show_nothing_of_another_organization(w: World, name: str, credential: str) -> None:
    url = FLAT_ROUTES[name][1]()
    response = w.client(credential).get(url)
    assert response.status_code < 500
    text = _text(response)
    assert [marker for marker in markers(w) if marker in text] == [], f"GET {url} as {credential}"
    assert snapshot(w) == w.baseline


OWNER_MATRIX = [pytest.param(name, id=name) for name, (*_, owner) in FLAT_ROUTES.items() if owner is not None]


@pytest.mark.parametrize("name", OWNER_MATRIX)
def test_organization_a_sees_its_own_markers_on_listing_routes(w: World, name: str) -> None:
    """Control: the markers do show on these routes for organization A, so their absence above means something."""
    _kind, url_of, _route_kind, owner = FLAT_ROUTES[name]
    assert owner is not None
    response = w.client(owner).get(url_of())
    assert response.status_code == 200
    assert any(marker in _text(response) for marker in markers(w)), f"GET {url_of()} as {owner}"


# --- Bulk and import endpoints: own and foreign ids mixed -------------------------------------------------------
def _both(w: World, credential: str, request: Callable[[Client, str], Any], foreign: str, missing: str) -> Any:
    """``request`` with org A's id and with a missing one, each from the same state (its writes rolled back):
    the answers must match once the id is masked, and no row of organization A may change."""
    answers = []
    for value in (foreign, missing):
        with _rolled_back():
            response = request(w.client(credential), value)
            answers.append(fingerprint(response, "", () if value.isdigit() else (value,)))
            assert _rows_of_a(snapshot(w)) == _rows_of_a(w.baseline), f"{credential} sending {value!r} changed A"
    assert answers[0] == answers[1], f"{credential}: {foreign!r} is told apart from a missing {missing!r}"
    return answers[0]


def _rows_of_a(state: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's hashes of organization A's rows (org B's own rows may change: the own ids were valid)."""
    return {label: value for label, value in state.items() if label.endswith("rows of org A")}


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _import(w: World, what: str, rows: Callable[[str], list[dict[str, Any]]], **params: str) -> Callable[..., Any]:
    def request(client: Client, value: str) -> Any:
        url = reverse(f"api-{what}-import", args=[w.t.project_b.pk])
        query = f"?{urlencode(params)}" if params else ""
        return client.post(url + query, _jsonl(*rows(value)), content_type=JSONL)

    return request


OWN_JUDGMENT = {"external_id": "b-1", "annotator": "bea@world-b.example", "label": "a", "a_left": True}
IMPORT_MIXES = {
    "judgment of a foreign task": (
        "annotations",
        lambda value: [OWN_JUDGMENT, {**OWN_JUDGMENT, "external_id": value}],
        "a-secret-1",
        "no-such-task",
    ),
    "judgment by a foreign annotator": (
        "annotations",
        lambda value: [OWN_JUDGMENT, {**OWN_JUDGMENT, "annotator": value, "label": "b"}],
        "annie@world-a.example",
        "nobody@world-c.example",
    ),
    "prediction for a foreign task": (
        "predictions",
        lambda value: [{"external_id": "b-1", "predictions": 0.9}, {"external_id": value, "predictions": 0.1}],
        "a-secret-2",
        "no-such-task",
    ),
    "task requiring a foreign qualification": (
        "tasks",
        lambda value: [
            {"external_id": "b-new-1", **factories.pairwise_payload(1)},
            {"external_id": "b-new-2", **factories.pairwise_payload(2), "requires": [value]},
        ],
        "a-secret-qual",
        "no-such-qual",
    ),
}


@pytest.mark.parametrize("credential", ["key:full_b", "session:admin_b"])
@pytest.mark.parametrize("mix", list(IMPORT_MIXES))
def test_an_import_rejects_a_foreign_id_exactly_like_a_missing_one_and_writes_nothing(
    w: World, mix: str, credential: str
) -> None:
    what, rows, foreign, missing = IMPORT_MIXES[mix]
    before_b = (Judgment.objects.count(), Task.objects.count(), list(Task.objects.values_list("predictions")))
    status, text, *_ = _both(w, credential, _import(w, what, rows), foreign, missing)
    report = json.loads(text)
    assert (status, report["committed"], report["error_count"]) == (400, False, 1), report
    assert report["errors"][0]["row"] == 2
    assert (Judgment.objects.count(), Task.objects.count(), list(Task.objects.values_list("predictions"))) == before_b


def test_a_task_import_reusing_a_foreign_external_id_creates_a_task_of_ones_own(w: World) -> None:
    """External ids are per project: org A's id is a new one in org B's project, as a never-seen id is."""
    request = _import(
        w, "tasks", lambda value: [{"external_id": value, **factories.pairwise_payload(3)}], mode="upsert"
    )
    status, text, *_ = _both(w, "key:full_b", request, "a-secret-1", "b-fresh-9")
    assert status == 200 and json.loads(text)["created"] == 1


@pytest.mark.parametrize(
    ("url", "method"),
    [("api-projects", "POST"), ("api-project", "PATCH")],
    ids=["create a project", "update a project"],
)
def test_an_organization_id_in_an_api_body_is_refused_like_a_missing_one(w: World, url: str, method: str) -> None:
    """The organization comes from the credential; a body naming one (A's or none) is a 400, not a move."""
    path = reverse(url, args=[w.t.project_b.pk] if url == "api-project" else [])

    def request(client: Client, value: str) -> Any:
        body = {"name": "Moved", "kind": "pairwise", "organization": int(value)}
        return client.generic(method, path, json.dumps(body), content_type=JSON)

    status, *_ = _both(w, "key:full_b", request, str(w.t.org_a.pk), str(missing_pk(Organization)))
    assert status == 400


def _admin_actions(model: type[models.Model]) -> list[str]:
    return [
        "delete_selected",
        *(action for action in admin.site._registry[model].actions or () if isinstance(action, str)),
    ]


BULK = [
    pytest.param(model, action, id=f"{model._meta.label}-{action}")
    for model in ADMIN_MODELS
    if isinstance(admin.site._registry[model], TenantAdmin)
    for action in _admin_actions(model)
]


@pytest.mark.parametrize(("model", "action"), BULK)
@pytest.mark.parametrize("confirmed", [False, True], ids=["asked", "confirmed"])
def test_a_bulk_action_on_own_and_foreign_rows_acts_as_if_the_foreign_id_were_missing(
    w: World, model: type[models.Model], action: str, confirmed: bool
) -> None:
    own = w.rows_b[model].pk
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    def request(client: Client, value: str) -> Any:
        data = {
            "action": action,
            "_selected_action": [own, value],
            "index": 0,
            **({"post": "yes"} if confirmed else {}),
        }
        return client.post(changelist, data, follow=True)

    _both(w, "session:admin_b", request, str(w.rows_a[model].pk), str(missing_pk(model)))

    def only(client: Client, value: str) -> Any:
        return client.post(changelist, {"action": action, "_selected_action": [value], "index": 0}, follow=True)

    _both(w, "session:admin_b", only, str(w.rows_a[model].pk), str(missing_pk(model)))


def _choice_fields(response: Any) -> list[tuple[str, type[models.Model]]]:
    form = response.context["adminform"].form
    return [
        (name, field.queryset.model)
        for name, field in form.fields.items()
        if hasattr(field, "queryset") and field.queryset.model in {*TENANT_MODELS, User}
    ]


ADD_FORMS = [
    pytest.param(model, id=model._meta.label)
    for model in ADMIN_MODELS
    if isinstance(admin.site._registry[model], TenantAdmin) and model not in (Membership,)
]


@pytest.mark.parametrize("model", ADD_FORMS)
def test_an_admin_add_form_refuses_a_foreign_choice_like_a_missing_one(w: World, model: type[models.Model]) -> None:
    """Every foreign-key choice of every add form (and the project form's required qualification) is resolved in
    the admin's organization: org A's row is "not one of the available choices", as a missing one is."""
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
    page = w.client("session:admin_b").get(url)
    if page.status_code == 403:  # read-only records (judgments, leases, quality results) have no add form
        assert not admin.site._registry[model].has_add_permission(page.wsgi_request)
        return
    base = form_data(page) | {"name": "Added by B", "code": "added-by-b", "external_id": "added-by-b"}
    targets = _choice_fields(page)
    if model is Project:
        base |= {"requirements-TOTAL_FORMS": "1", "requirements-0-min_level": "1"}
        targets.append(("requirements-0-qualification", Qualification))
    assert targets or model in (ApiKey, Invitation, Qualification), f"{model._meta.label}: no choice to poison"
    for name, related in targets:
        foreign = w.rows_a.get(related) or related._default_manager.filter(organization=w.t.org_a).first()
        if related is User:
            foreign = w.t.annotator_a

        def request(client: Client, value: str, name: str = name) -> Any:
            return client.post(url, base | {name: value})

        status, text, *_ = _both(w, "session:admin_b", request, str(foreign.pk), str(missing_pk(related)))
        assert status == 200 and "errorlist" in text, f"{model._meta.label}.{name}"


def test_the_membership_add_form_adds_no_one_whatever_the_address(w: World) -> None:
    """Nobody is added to an organization from the admin (issue 15): the form answers 403 for any address."""
    url = reverse("admin:labeling_membership_add")

    def request(client: Client, value: str) -> Any:
        return client.post(url, {"email": value, "role": Role.ANNOTATOR, "password": "a-long-password-9"})

    status, *_ = _both(w, "session:admin_b", request, "annie@world-a.example", "nobody@world-c.example")
    assert status == 403


#: What differs between two invitations whatever their address: ids, times (in the API's JSON, the admin's list).
VARYING_JSON_RE = re.compile(r'"(id|created_at|expires_at|last_sent_at)":("[^"]*"|\d+)')
VARYING_PAGE_RE = re.compile(
    r'/invitation/\d+/|name="_selected_action" value="\d+"|\w+\.?\s\d+,\s\d{4},\s(\d+(:\d+)?\s[ap]\.m\.|noon|midnight)'
)


@pytest.mark.parametrize("credential", ["session:admin_b", "key:full_b"])
def test_an_invitation_tells_nothing_of_the_address_elsewhere(w: World, credential: str) -> None:
    """Inviting an address that has an account in organization A (its member Annie) answers exactly as inviting
    one that exists nowhere, in the admin (the redirect and the page it leads to) and the API; nothing of A shows,
    and nothing of A is written."""
    answers = []
    for value in ("annie@world-a.example", "nobody@world-c.example"):
        with _rolled_back():
            client = w.client(credential)
            if credential.startswith("key:"):
                body = json.dumps({"email": value, "role": Role.MANAGER})
                response = client.post(reverse("api-invitations"), body, content_type=JSON)
                text = VARYING_JSON_RE.sub("…", response.content.decode())
            else:
                response = client.post(reverse("admin:labeling_invitation_add"), {"email": value, "role": "manager"})
                assert response.status_code == 302, response.content
                page = client.get(response["Location"])
                text = VARYING_PAGE_RE.sub("…", page.content.decode())
                text = PER_RESPONSE_RE.sub("", text)
            assert response.status_code in (201, 302)
            text = text.replace(value, "{email}")  # what B typed comes back; nothing else of A may
            assert [marker for marker in markers(w) if marker in text] == []
            assert "Annie" not in text and "World A" not in text
            assert _rows_of_a(snapshot(w)) == _rows_of_a(w.baseline)
            answers.append((response.status_code, response.get("Location"), text))
    if answers[0] != answers[1]:
        diff = "\n".join(difflib.unified_diff(answers[0][2].splitlines(), answers[1][2].splitlines(), lineterm=""))
        pytest.fail(f"{credential}: the answers differ:\n{diff}")
