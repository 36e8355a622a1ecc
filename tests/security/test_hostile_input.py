"""Hostile input everywhere users type or import (issue 7): query parameters only from allow-lists (no ORM path
reaches a filter, so no password-hash oracle), JSON keys stored as text, oversized bodies refused with 413 before
anything is written, malformed files refused with the row, markup shown as text on every page, the security
headers on real responses, and ``?next=`` kept on the site.

Organization A (Alice admin, Annie annotator) is the attacker's own organization throughout: these are not
isolation tests (``test_isolation.py``) but tests of what a member may send.
"""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from labeling.apikeys import api_key_create
from labeling.models import ImportJob, Judgment, Label, Membership, Project, Role, Task
from quality.models import AnnotatorScore, ModelRanking
from routing.models import Lease, LeaseState
from routing.services import next_task, qualification_create, qualification_grant
from tests import factories
from tests.api.conftest import KeyClient
from tests.conftest import Tenancy

User = get_user_model()

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HOSTILE = SCRIPT + IMG
HOSTILE_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
MARKDOWN = (
    f"{HOSTILE}\n\n[click me](javascript:alert(1)) [upper](JAVASCRIPT:alert(1)) [tab](java\tscript:alert(1)) "
    '[data](data:text/html,<b>x</b>) <javascript:alert(1)> ![img](x) [ok](https://example.com/"onmouseover=alert(1))\n'
)


@pytest.fixture
def api_a(tenancy: Tenancy) -> KeyClient:
    from django.core.cache import cache

    cache.clear()  # throttle counters
    return KeyClient(api_key_create(organization=tenancy.org_a, name="pipeline", created_by=tenancy.admin_a)[1])


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def superuser() -> Any:
    return factories.make_user("root@concord.example", is_superuser=True, is_staff=True)


# --- Query parameters: allow-lists only ---------------------------------------------------------------------------
#: ORM paths, lookups and orderings an attacker would try; none is a parameter of any endpoint.
HOSTILE_PARAMETERS = [
    ("annotator__password", "x"),
    ("annotator__password__startswith", "md5$"),
    ("task__project__organization__name", "Org B"),
    ("payload__regex", ".*"),
    ("external_id__regex", "^(a+)+$"),
    ("id__gt", "0"),
    ("organization", "1"),
    ("ordering", "annotator__password"),
    ("order_by", "-annotator__password"),
    ("o", "1"),
    ("search", "x"),
    ("shoe_size", "44"),
]


def _api_reads(tenancy: Tenancy) -> list[str]:
    project = tenancy.project_a.pk
    return [
        reverse("api-projects"),
        reverse("api-project", args=[project]),
        reverse("api-tasks", args=[project]),
        reverse("api-annotations", args=[project]),
        reverse("api-quality", args=[project]),
        reverse("api-annotators", args=[project]),
        reverse("api-models", args=[project]),
        reverse("api-export", args=[project]) + "?format=annotations",
        reverse("api-export-summary", args=[project]) + "?format=annotations",
    ]


@pytest.mark.parametrize(("name", "value"), HOSTILE_PARAMETERS)
def test_every_api_read_refuses_a_parameter_outside_its_allow_list(
    api_a: KeyClient, tenancy: Tenancy, name: str, value: str
) -> None:
    for url in _api_reads(tenancy):
        joiner = "&" if "?" in url else "?"
        response = api_a.get(f"{url}{joiner}{name}={value}")
        assert response.status_code == 400, (url, response.status_code)
        assert name in response.json(), (url, response.json())


def test_import_endpoints_refuse_unknown_parameters(api_a: KeyClient, tenancy: Tenancy) -> None:
    body = b'{"external_id": "p1", "prompt": "Q", "response_a": "A", "response_b": "B"}\n'
    for route in ("api-tasks-import", "api-annotations-import", "api-predictions-import"):
        url = reverse(route, args=[tenancy.project_a.pk]) + "?annotator__password__startswith=md5"
        response = api_a.post(url, body, content_type="application/x-ndjson")
        assert response.status_code == 400 and "annotator__password__startswith" in response.json(), route
    job = ImportJob.objects.create(organization=tenancy.org_a, project=tenancy.project_a, kind="tasks")
    response = api_a.get(reverse("api-import-job", args=[job.pk]) + "?ordering=project__organization__name")
    assert response.status_code == 400 and "ordering" in response.json()
    assert not Task.objects.filter(external_id="p1").exists()


def test_no_password_hash_prefix_oracle_through_the_api(api_a: KeyClient, tenancy: Tenancy) -> None:
    """A right and a wrong guess at the first characters of a password hash get the very same answer."""
    assert tenancy.annotator_a.password.startswith("md5$")
    url = reverse("api-annotations", args=[tenancy.project_a.pk])
    for name in ("annotator__password__startswith", "task__judgments__annotator__password__startswith"):
        right = api_a.get(f"{url}?{name}=md5$")
        wrong = api_a.get(f"{url}?{name}=zzz")
        assert right.status_code == wrong.status_code == 400
        assert right.content == wrong.content


def test_the_quality_page_sorts_only_by_its_columns(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.admin_a)
    url = reverse("quality", args=[tenancy.project_a.pk])
    default = client.get(url)
    for sort in ("annotator__password", "-annotator__password", "annotator__password__startswith"):
        response = client.get(url, {"sort": sort, "dir": "desc"})
        assert response.status_code == 200
        assert response.context["page"].sort == default.context["page"].sort  # the default column, not the input


def test_the_allowed_parameters_still_filter(api_a: KeyClient, tenancy: Tenancy) -> None:
    url = reverse("api-tasks", args=[tenancy.project_a.pk])
    assert [row["external_id"] for row in api_a.get(f"{url}?status=open&gold=false&limit=5").json()["results"]] == [
        tenancy.task_a.external_id
    ]
    assert api_a.get(f"{url}?status=annotator__password").status_code == 400
    assert api_a.get(reverse("api-projects")).status_code == 200
    assert api_a.get(reverse("api-project", args=[tenancy.project_a.pk])).status_code == 200


# --- Admin change lists: only their list filters ------------------------------------------------------------------
#: Lookups outside every list filter: relation paths into the user's password, regexes and local-field lookups.
ADMIN_LOOKUPS = [
    ("user__password__startswith", "md5$"),
    ("annotator__password__startswith", "md5$"),
    ("created_by__password__startswith", "md5$"),
    ("unpaused_by__password__startswith", "md5$"),
    ("password__startswith", "md5$"),
    ("hash__startswith", "0"),
    ("key_hash__startswith", "0"),
    ("payload__contains", "a"),
    ("name__regex", "^(a+)+$"),
    ("id__gt", "0"),
    ("organization__name__startswith", "Org"),
    ("project__organization__slug__startswith", "org"),
    ("no_such_field", "1"),
]


def _changelists() -> list[str]:
    return [f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist" for model in admin.site._registry]


def _refused(response: Any) -> bool:
    """Django's admin answers a forbidden lookup with 400 and a lookup it cannot apply with a redirect to ``?e=1``."""
    if response.status_code == 400:
        return True
    return response.status_code == 302 and urlsplit(response["Location"]).query == "e=1"


@pytest.mark.parametrize("changelist", _changelists())
def test_admin_change_lists_refuse_lookups_outside_their_filters(tenancy: Tenancy, changelist: str) -> None:
    client = signed_in(superuser())
    url = reverse(changelist)
    assert client.get(url).status_code == 200
    for name, value in ADMIN_LOOKUPS:
        response = client.get(url, {name: value})
        assert _refused(response), (changelist, name, response.status_code)
    for ordering in ("annotator__password", "user__password", "-password", "1.x.-999", "999"):
        assert client.get(url, {"o": ordering}).status_code == 200, (changelist, ordering)  # ignored: no such column


def test_no_password_hash_prefix_oracle_in_the_admin(tenancy: Tenancy) -> None:
    for client in (signed_in(superuser()), signed_in(tenancy.admin_a)):
        for changelist, name in [
            ("admin:labeling_membership_changelist", "user__password__startswith"),
            ("admin:labeling_judgment_changelist", "annotator__password__startswith"),
            ("admin:routing_lease_changelist", "annotator__password__startswith"),
            ("admin:quality_annotatorscore_changelist", "annotator__password__startswith"),
            ("admin:auth_user_changelist", "password__startswith"),
        ]:
            right = client.get(reverse(changelist), {name: "md5$"})
            wrong = client.get(reverse(changelist), {name: "zzz"})
            assert right.status_code == wrong.status_code and right.status_code in (302, 400, 403), changelist
            assert right.status_code != 302 or right["Location"] == wrong["Location"]


def test_admin_list_filters_search_and_sorting_still_work(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.admin_a)
    project = tenancy.project_a
    checks = [
        ("admin:labeling_task_changelist", {"status__exact": "open"}),
        ("admin:labeling_task_changelist", {"gold": "yes"}),
        ("admin:labeling_task_changelist", {"project__id__exact": str(project.pk)}),
        ("admin:labeling_task_changelist", {"project__isnull": "False", "o": "2", "q": "a-1"}),
        ("admin:labeling_project_changelist", {"kind__exact": "pairwise", "sampling_strategy__exact": "random"}),
        ("admin:labeling_membership_changelist", {"role__exact": "annotator", "q": "annie"}),
        ("admin:labeling_judgment_changelist", {"annotator__id__exact": str(tenancy.annotator_a.pk)}),
        ("admin:routing_lease_changelist", {"is_gold__exact": "1", "state__exact": "active"}),
        ("admin:quality_annotatorscore_changelist", {"random_clicker__exact": "0"}),
        ("admin:labeling_apikey_changelist", {"read_only__exact": "1"}),
    ]
    for changelist, params in checks:
        response = client.get(reverse(changelist), params)
        assert response.status_code == 200, (changelist, params, response.status_code)
    tasks = client.get(reverse("admin:labeling_task_changelist"), {"status__exact": "complete"})
    assert tenancy.task_a.external_id not in tasks.content.decode()


# --- ?next= stays on the site --------------------------------------------------------------------------------------
OFF_SITE = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http:evil.example",
    " //evil.example",
    "/\t/evil.example",
    "https://testserver@evil.example/",
    "data:text/html,<script>alert(1)</script>",
]


def _on_site(location: str) -> bool:
    parts = urlsplit(location)
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and not location.startswith(("//", "/\\"))
        and "evil" not in location
    )


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_never_redirects_off_site(tenancy: Tenancy, target: str) -> None:
    client = Client()
    page = client.get(reverse("login"), {"next": target})
    assert page.status_code == 200 and "evil" not in page.content.decode() and "alert(1)" not in page.content.decode()
    response = client.post(
        reverse("login") + "?" + f"next={target}",
        {"username": tenancy.annotator_a.username, "password": factories.PASSWORD, "next": target},
    )
    assert response.status_code == 302 and _on_site(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", OFF_SITE)
def test_admin_sign_in_and_sign_out_never_redirect_off_site(tenancy: Tenancy, target: str) -> None:
    client = Client()
    response = client.post(
        reverse("admin:login"),
        {"username": tenancy.admin_a.username, "password": factories.PASSWORD, "next": target},
    )
    assert response.status_code == 302 and _on_site(response["Location"]), response["Location"]
    response = client.post(reverse("logout"), {"next": target})
    assert response.status_code == 302 and _on_site(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", [*OFF_SITE, "admin:index", "logout", "evil"])
def test_organization_switch_never_redirects_off_site(tenancy: Tenancy, target: str) -> None:
    Membership.objects.create(organization=tenancy.org_b, user=tenancy.annotator_a, role=Role.ANNOTATOR)
    client = signed_in(tenancy.annotator_a)
    response = client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk, "next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("home"), response["Location"]


def test_organization_switch_returns_to_the_page_it_came_from(tenancy: Tenancy) -> None:
    Membership.objects.create(organization=tenancy.org_b, user=tenancy.annotator_a, role=Role.ANNOTATOR)
    client = signed_in(tenancy.annotator_a)
    response = client.post(reverse("organization-switch"), {"organization": tenancy.org_b.pk, "next": "/work/?x=1"})
    assert response.status_code == 302 and response["Location"] == "/work/?x=1"


def test_a_same_site_next_is_reflected_only_escaped(tenancy: Tenancy) -> None:
    page = Client().get(reverse("login"), {"next": '/work/"><script>alert(1)</script>'}).content.decode()
    assert "<script>alert(1)" not in page
    assert 'value="/work/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page


# --- Security headers ----------------------------------------------------------------------------------------------
def _header_pages(tenancy: Tenancy, api_a: KeyClient) -> list[tuple[str, Any]]:
    annotator = signed_in(tenancy.annotator_a)
    return [
        ("home", Client().get("/", secure=True)),
        ("login", Client().get(reverse("login"), secure=True)),
        ("annotate", annotator.get(reverse("annotate", args=[tenancy.project_a.pk]), secure=True)),
        ("quality", signed_in(tenancy.admin_a).get(reverse("quality", args=[tenancy.project_a.pk]), secure=True)),
        ("admin", signed_in(tenancy.admin_a).get(reverse("admin:index"), secure=True)),
        ("api", api_a.get(reverse("api-projects"), secure=True)),
        ("api error", api_a.get(reverse("api-projects") + "?ordering=x", secure=True)),
        ("not found", annotator.get("/no/such/page", secure=True)),
    ]


def test_security_headers_on_every_kind_of_response(tenancy: Tenancy, api_a: KeyClient) -> None:
    for name, response in _header_pages(tenancy, api_a):
        assert response.status_code in (200, 400, 404), name
        headers = response.headers
        assert "Content-Security-Policy-Report-Only" not in headers, name
        policy = headers.get("Content-Security-Policy", "")
        directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
        assert directives.get("default-src") == ["'self'"], (name, policy)
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"] and directives["form-action"] == ["'self'"], name
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy and "*" not in policy, name
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload", name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert headers["Referrer-Policy"] == "same-origin", name
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin", name


def test_page_scripts_carry_the_policy_nonce(tenancy: Tenancy) -> None:
    response = signed_in(tenancy.annotator_a).get(reverse("annotate", args=[tenancy.project_a.pk]), secure=True)
    policy = response.headers["Content-Security-Policy"]
    scripts = _Tags.read(response.content.decode()).tags_named("script")
    assert scripts, "the annotation page loads its script"
    for attrs in scripts:
        assert attrs.get("src", "").startswith("/static/"), attrs
        assert "nonce" not in attrs or f"'nonce-{attrs['nonce']}'" in policy


def test_production_redirects_plain_http_and_marks_cookies_secure(settings: Any, tenancy: Tenancy) -> None:
    from config import settings as production

    assert production.SECURE_SSL_REDIRECT is not production.DEBUG  # on unless DEBUG (the test settings turn it off)
    assert production.SESSION_COOKIE_SECURE and production.CSRF_COOKIE_SECURE and production.SESSION_COOKIE_HTTPONLY
    assert not getattr(production, "SECURE_CSP_REPORT_ONLY", None)
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/work/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/work/"


PRODUCTION_PROBE = """
import json
import re
import django
django.setup()
from django.test import Client
answers = {}
pages = (("healthz", "/healthz", True), ("api", "/api/v1/projects/", True), ("http", "/work/", False))
for name, path, secure in pages:
    response = Client().get(path, secure=secure)
    answers[name] = {"status": response.status_code, "headers": dict(response.headers)}
print(json.dumps(answers))
"""


def test_the_production_settings_module_sends_the_headers(tmp_path: Any) -> None:
    """``config.settings`` itself (DEBUG off, as deployed), not the test settings built on it."""
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    keep = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PRODUCTION_PROBE],
        cwd=root,
        env={
            **keep,
            "PYTHONPATH": str(root),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "testserver",
            "CONCORD_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["http"]["status"] == 301 and answers["http"]["headers"]["Location"] == "https://testserver/work/"
    for name in ("healthz", "api"):
        status, headers = answers[name]["status"], answers[name]["headers"]
        assert status == (200 if name == "healthz" else 401), name
        assert "Content-Security-Policy-Report-Only" not in headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin" and headers["Cross-Origin-Opener-Policy"] == "same-origin"


# --- Markup is shown as text ---------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the text inside each ``<script>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    @classmethod
    def read(cls, html: str) -> _Tags:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {key: value or "" for key, value in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)

    def tags_named(self, name: str) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def assert_inert(html: str, *, escaped: bool = True) -> None:
    """No live script, event handler, ``javascript:``/``data:`` URL or injected image on the page; the hostile text
    is on it, escaped."""
    page = _Tags.read(html)
    assert not any("alert" in text for text in page.script_text), "an injected script runs"
    for tag, attrs in page.tags:
        assert tag != "img" or attrs.get("src") != "x", "an injected image"
        for name, value in attrs.items():
            assert not name.startswith("on"), f"<{tag} {name}=...>"
            if name in ("href", "src", "action", "formaction", "xlink:href"):
                assert not value.strip().lower().startswith(("javascript:", "data:", "vbscript:")), f"<{tag} {name}>"
    if escaped:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.fixture
def hostile(tenancy: Tenancy) -> Tenancy:
    """Organization A with markup in every name people type: organization, projects, instructions, labels, task
    text, annotator names, pause and skip reasons, qualification names, model names."""
    org = tenancy.org_a
    org.name = f"Org {HOSTILE}"
    org.save()
    Project.objects.filter(pk=tenancy.project_a.pk).update(name=f"Pairs {HOSTILE}", instructions=MARKDOWN)
    tenancy.project_a.refresh_from_db()
    Task.objects.filter(pk=tenancy.task_a.pk).update(
        external_id=f"t-{HOSTILE}",
        payload={
            "prompt": MARKDOWN,
            "response_a": f"A {MARKDOWN}",
            "response_b": f"B {MARKDOWN}",
            "model_a": f"m-{HOSTILE}",
            "model_b": "m-2",
        },
    )
    user = tenancy.annotator_a
    user.first_name, user.last_name = "Annie", HOSTILE
    user.save()
    Membership.objects.filter(user=user, organization=org).update(pause_reason=f"paused {HOSTILE}")
    return tenancy


def test_judgment_pages_show_markup_as_text(hostile: Tenancy) -> None:
    Membership.objects.filter(user=hostile.annotator_a).update(pause_reason="")
    client = signed_in(hostile.annotator_a)
    page = client.get(reverse("annotate", args=[hostile.project_a.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert_inert(html)
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6  # title, name, instructions, prompt, A, B
    assert "[click me](javascript:alert(1))" in html  # an unsafe link stays text

    categorical = factories.make_project(
        hostile.org_a, "categorical", name=f"Cats {HOSTILE}", labels=[("x", f"X {HOSTILE}"), ("y", "Y")]
    )
    factories.make_task(categorical, "c-1", payload={"text": MARKDOWN})
    html = client.get(reverse("annotate", args=[categorical.pk])).content.decode()
    assert_inert(html)
    assert f"X {HOSTILE_ESCAPED}" in html


def test_work_done_and_consent_pages_show_markup_as_text(hostile: Tenancy) -> None:
    client = signed_in(hostile.annotator_a)
    assert_inert(client.get(reverse("work")).content.decode())  # organization name, pause reason
    Membership.objects.filter(user=hostile.annotator_a).update(pause_reason="")
    html = client.get(reverse("work")).content.decode()
    assert_inert(html)  # project name
    assert f"Pairs {HOSTILE_ESCAPED}" in html
    Task.objects.filter(project=hostile.project_a).update(status="complete")
    assert_inert(client.get(reverse("annotate", args=[hostile.project_a.pk])).content.decode())
    qualification = qualification_create(organization=hostile.org_a, code="sensitive:x", name=f"Q {HOSTILE}")
    grant = qualification_grant(annotator=hostile.annotator_a, qualification=qualification)
    assert_inert(client.get(reverse("consent")).content.decode())
    response = client.post(reverse("consent"), {"grant": grant.pk, "opted_in": "1"}, follow=True)
    assert_inert(response.content.decode())  # the flash message names the qualification


def test_organization_switcher_shows_markup_as_text(hostile: Tenancy) -> None:
    Membership.objects.create(organization=hostile.org_b, user=hostile.annotator_a, role=Role.ANNOTATOR)
    html = signed_in(hostile.annotator_a).get("/").content.decode()
    assert "org-switch" in html
    assert_inert(html)
    assert f"Org {HOSTILE_ESCAPED}" in html


def test_quality_dashboard_shows_markup_as_text(hostile: Tenancy) -> None:
    project = hostile.project_a
    from django.utils import timezone

    AnnotatorScore.objects.create(
        organization=hostile.org_a,
        project=project,
        annotator=hostile.annotator_a,
        n_judgments=3,
        computed_at=timezone.now(),
        paused_at=timezone.now(),
        pause_reason=f"careless {HOSTILE}",
    )
    for rank, name in enumerate((f"m-{HOSTILE}", "m-2"), start=1):
        ModelRanking.objects.create(
            organization=hostile.org_a,
            project=project,
            model_name=name,
            rank=rank,
            theta=1.0 - rank,
            low=-1.0 - rank,
            high=2.0 - rank,
            battles=3,
            wins=1,
            losses=1,
            ties=1,
            computed_at=timezone.now(),
        )
    Label.objects.filter(project=project, value="a").update(title=f"A {HOSTILE}")
    client = signed_in(hostile.admin_a)
    html = client.get(reverse("quality", args=[project.pk]) + f"?sort={HOSTILE}&dir={HOSTILE}").content.decode()
    assert_inert(html)
    assert f"Annie {HOSTILE_ESCAPED}" in html and f"m-{HOSTILE_ESCAPED}" in html and "careless" in html
    csv_text = client.get(reverse("quality-csv", args=[project.pk, "annotators"])).content.decode()
    assert f"careless {HOSTILE}" in csv_text  # a CSV is data, not a page: the text as it is
    unpaused = client.post(
        reverse("quality-unpause", args=[project.pk, AnnotatorScore.objects.get(project=project).pk]), follow=True
    )
    assert_inert(unpaused.content.decode())  # the flash message names the annotator
    assert f"Annie {HOSTILE_ESCAPED} may work" in unpaused.content.decode()


def test_admin_pages_show_markup_as_text(hostile: Tenancy) -> None:
    leased = next_task(annotator=hostile.admin_a, project=hostile.project_a)
    assert leased is not None
    Lease.objects.filter(pk=leased.pk).update(state=LeaseState.SKIPPED, skip_reason=f"skip {HOSTILE}")
    from django.utils import timezone

    from routing.services import judgment_record

    judgment = judgment_record(
        task=hostile.task_a, annotator=hostile.annotator_a, label="a", client_id="hostile-1", a_left=True
    )
    score = AnnotatorScore.objects.create(
        organization=hostile.org_a, project=hostile.project_a, annotator=hostile.annotator_a, computed_at=timezone.now()
    )
    categorical = factories.make_project(hostile.org_a, "categorical", labels=[("x", f"X {HOSTILE}"), ("y", "Y")])
    client = signed_in(hostile.admin_a)
    pages = [
        reverse("admin:index"),
        reverse("admin:labeling_project_changelist") + f"?q={SCRIPT}",
        reverse("admin:labeling_project_change", args=[hostile.project_a.pk]),
        reverse("admin:labeling_project_change", args=[categorical.pk]),
        reverse("admin:labeling_task_changelist"),
        reverse("admin:labeling_task_change", args=[hostile.task_a.pk]),
        reverse("admin:labeling_membership_changelist"),
        reverse("admin:labeling_judgment_changelist"),
        reverse("admin:labeling_judgment_change", args=[judgment.pk]),
        reverse("admin:quality_annotatorscore_changelist"),
        reverse("admin:quality_annotatorscore_change", args=[score.pk]),
        reverse("admin:routing_lease_changelist"),
        reverse("admin:routing_lease_change", args=[leased.pk]),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_inert(response.content.decode())
    assert f"skip {HOSTILE_ESCAPED}" in client.get(reverse("admin:routing_lease_changelist")).content.decode()
    created = client.post(reverse("admin:labeling_apikey_add"), {"name": f"key {HOSTILE}"})
    assert created.status_code == 200 and "key-" not in created.content.decode().split("<code")[0]
    assert_inert(created.content.decode())


def test_posted_skip_reasons_come_only_from_the_list(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.annotator_a)
    leased = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    assert leased is not None
    client.post(reverse("annotate-skip", args=[tenancy.project_a.pk, leased.pk]), {"reason": HOSTILE})
    leased.refresh_from_db()
    assert leased.state == LeaseState.SKIPPED and leased.skip_reason == ""


def test_nothing_in_templates_or_code_marks_user_text_safe() -> None:
    """``|safe``, ``mark_safe`` and ``{% autoescape off %}`` appear only where sanitised or built by format_html."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    templates = [path for path in (root / "templates").rglob("*.html")]
    for path in templates:
        text = path.read_text()
        assert "|safe" not in text and "autoescape off" not in text and "safeseq" not in text, path
    marked = {
        str(path.relative_to(root))
        for folder in (
            "numeric",
            "labeling",
            "quality",
            "routing",
            "api",
            "exchange",
            "pages",
            "backoffice",
            "demo",
            "config",
        )
        for path in (root / folder).rglob("*.py")
        if "mark_safe(" in path.read_text() or "SafeString(" in path.read_text().replace('SafeString("")', "")
    }
    assert marked == {"pages/rendering.py"}, marked
    for path in (root / "static").rglob("*.js"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, (path, sink)  # the page's script writes text (textContent), never markup


# --- JSON keys and text are data, stored and returned exactly --------------------------------------------------------
HOSTILE_KEYS = [
    'a"b',
    "it's",
    "'; DROP TABLE labeling_task; --",
    '"); DELETE FROM labeling_task WHERE ("1"="1',
    "x__y",
    "annotator__password",
    "payload__regex",
    "meta->>'k'",
    "$where",
    "%s",
    "%(name)s",
    "?",
    ":name",
    "{}",
    "",
    " ",
    "\\",
    "\\u0041",
    "ключ 🔑",
    "\u2028\u2029",
    "\t\r\n",
    HOSTILE,
    "__proto__",
    "constructor",
]
HOSTILE_TEXT = "'); DROP TABLE labeling_task; -- %s %(x)s \\ \" ' `rm -rf` {{ 7*7 }} ${7*7} " + HOSTILE


def _meta() -> dict[str, Any]:
    meta: dict[str, Any] = {key: f"value of {key}" for key in HOSTILE_KEYS}
    meta["nested"] = {key: [key, {key: None}] for key in HOSTILE_KEYS[:6]}
    meta["numbers"] = [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5e308, 5e-324, -0.0, 0.1]
    return meta


def same_json(stored: Any, sent: Any) -> bool:
    """Equal as JSON: the same keys, text and whole numbers exactly; a float equal in value (PostgreSQL's jsonb keeps
    numbers as decimals and writes 1.5e308 out as 150…0, which Python reads back as a whole number)."""
    if isinstance(sent, float):
        return isinstance(stored, int | float) and not isinstance(stored, bool) and float(stored) == sent
    if isinstance(sent, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == sent.keys()
            and all(same_json(stored[k], v) for k, v in sent.items())
        )
    if isinstance(sent, list):
        return isinstance(stored, list) and len(stored) == len(sent) and all(map(same_json, stored, sent))
    return type(stored) is type(sent) and stored == sent


def _import_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"{HOSTILE_KEYS[i % len(HOSTILE_KEYS)]}|{i}",
            "prompt": HOSTILE_TEXT,
            "response_a": f"A {HOSTILE_TEXT}",
            "response_b": f"B {HOSTILE_TEXT}",
            "model_a": "x__y'\"",
            "meta": _meta(),
        }
        for i in range(n)
    ]


def _csv(rows: list[dict[str, Any]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "meta": json.dumps(row["meta"], ensure_ascii=False)})
    return out.getvalue().encode()


def _read_tasks(api: KeyClient, project: Project) -> dict[str, dict[str, Any]]:
    response = api.get(reverse("api-tasks", args=[project.pk]) + "?limit=1000")
    assert response.status_code == 200
    return {row["external_id"]: row for row in response.json()["results"]}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_hostile_keys_and_text_round_trip_exactly(api_a: KeyClient, tenancy: Tenancy, fmt: str) -> None:
    project = factories.make_project(tenancy.org_a, name=f"Keys {fmt}")
    rows = _import_rows(len(HOSTILE_KEYS))
    body = {
        "jsonl": "\n".join(json.dumps(row) for row in rows).encode(),
        "json": json.dumps(rows, ensure_ascii=False).encode(),
        "csv": _csv(rows),
    }[fmt]
    response = api_a.post(reverse("api-tasks-import", args=[project.pk]) + f"?format={fmt}", body, "text/plain")
    assert response.status_code == 200, response.json()
    assert response.json()["created"] == len(rows)
    stored = _read_tasks(api_a, project)
    assert set(stored) == {row["external_id"] for row in rows}
    for row in rows:
        task = stored[row["external_id"]]
        assert same_json(task["meta"], row["meta"])  # (PostgreSQL's jsonb keeps keys in an order of its own)
        assert task["payload"] == {name: row[name] for name in ("prompt", "response_a", "response_b", "model_a")}
    assert Task.objects.filter(project=tenancy.project_a).count() == 1  # nothing leaked into another project
    # A filter on the stored keys is still only a parameter error, however the keys look.
    assert api_a.get(reverse("api-tasks", args=[project.pk]) + "?meta__x__y=1").status_code == 400


def test_hostile_text_round_trips_through_the_export(api_a: KeyClient, tenancy: Tenancy, settings: Any) -> None:
    from quality.services import project_quality_recompute
    from routing.services import judgment_record

    settings.EXPORT_SETTLE_SECONDS = 0
    project = factories.make_project(tenancy.org_a, name="Export keys")
    rows = _import_rows(3)
    body = "\n".join(json.dumps(row) for row in rows)
    assert api_a.post(reverse("api-tasks-import", args=[project.pk]), body, "application/x-ndjson").status_code == 200
    judges = [factories.make_member(tenancy.org_a, Role.ANNOTATOR) for _ in range(3)]
    for task in Task.objects.filter(project=project):
        for judge in judges:
            judgment_record(task=task, annotator=judge, label="a", client_id=f"{task.pk}-{judge.pk}", a_left=True)
    project_quality_recompute(project_id=project.pk)
    response = api_a.get(reverse("api-export", args=[project.pk]), {"format": "dpo"})
    assert response.status_code == 200
    exported = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(exported) == 3
    for row in exported:
        assert (row["prompt"], row["chosen"], row["rejected"]) == (
            HOSTILE_TEXT,
            f"A {HOSTILE_TEXT}",
            f"B {HOSTILE_TEXT}",
        )


# --- Oversized bodies: 413, nothing written ------------------------------------------------------------------------
@pytest.fixture
def small_bodies(settings: Any) -> int:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    return 4096


def test_an_oversized_api_json_body_is_413_and_creates_nothing(
    api_a: KeyClient, tenancy: Tenancy, small_bodies: int
) -> None:
    body = {"name": "Huge", "kind": "pairwise", "instructions": "x" * small_bodies}
    response = api_a.post(reverse("api-projects"), body, content_type="application/json")
    assert response.status_code == 413, response.content
    assert "larger than" in response.json()["detail"]
    assert not Project.objects.filter(name="Huge").exists()
    response = api_a.patch(
        reverse("api-project", args=[tenancy.project_a.pk]),
        {"instructions": "y" * small_bodies},
        content_type="application/json",
    )
    assert response.status_code == 413
    tenancy.project_a.refresh_from_db()
    assert "y" * 100 not in tenancy.project_a.instructions
    small = api_a.post(reverse("api-projects"), {"name": "Small", "kind": "pairwise"}, content_type="application/json")
    assert small.status_code == 201


def test_an_oversized_import_is_413_and_writes_nothing(api_a: KeyClient, tenancy: Tenancy, settings: Any) -> None:
    settings.IMPORT_MAX_BYTES = 2000
    project = tenancy.project_a
    rows = _import_rows(20)
    url = reverse("api-tasks-import", args=[project.pk])
    body = "\n".join(json.dumps(row) for row in rows).encode()
    for params in ("", "?async=1"):
        assert api_a.post(url + params, body, content_type="application/x-ndjson").status_code == 413
        upload = SimpleUploadedFile("tasks.jsonl", body, content_type="application/x-ndjson")
        response = api_a.post(url + params, {"file": upload})
        assert response.status_code == 413 and "larger than" in response.json()["detail"]
    for route in ("api-annotations-import", "api-predictions-import"):
        response = api_a.post(reverse(route, args=[project.pk]), body, content_type="application/x-ndjson")
        assert response.status_code == 413
    assert Task.objects.filter(project=project).count() == 1
    assert not ImportJob.objects.exists()


def test_an_oversized_form_field_in_a_multipart_import_is_413(
    api_a: KeyClient, tenancy: Tenancy, small_bodies: int
) -> None:
    upload = SimpleUploadedFile("tasks.jsonl", json.dumps(_import_rows(1)[0]).encode())
    url = reverse("api-tasks-import", args=[tenancy.project_a.pk])
    response = api_a.post(url, {"file": upload, "padding": "p" * small_bodies})
    assert response.status_code == 413
    assert response.json()["detail"]
    assert Task.objects.filter(project=tenancy.project_a).count() == 1


def test_oversized_page_posts_are_413_and_write_nothing(tenancy: Tenancy, small_bodies: int) -> None:
    padding = "p" * small_bodies
    client = signed_in(tenancy.annotator_a)
    leased = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    assert leased is not None
    submit = reverse("annotate-submit", args=[tenancy.project_a.pk, leased.pk])
    response = client.post(submit, {"choice": "first", "client_id": "c1", "padding": padding})
    assert response.status_code == 413
    assert "text/html" in response["Content-Type"] and b"too large" in response.content
    assert not Judgment.objects.exists()
    skip = reverse("annotate-skip", args=[tenancy.project_a.pk, leased.pk])
    assert client.post(skip, {"reason": padding}).status_code == 413
    leased.refresh_from_db()
    assert leased.state == LeaseState.ACTIVE
    response = Client().post(reverse("login"), {"username": "x@a.example", "password": padding})
    assert response.status_code == 413
    admin_client = signed_in(tenancy.admin_a)
    response = admin_client.post(reverse("admin:labeling_project_add"), {"name": "Huge page", "instructions": padding})
    assert response.status_code == 413
    assert not Project.objects.filter(name="Huge page").exists()
    assert client.post(submit, {"choice": "first", "client_id": "c2"}).status_code == 302  # a normal post still works
    assert Judgment.objects.count() == 1


# --- Malformed files: 400 with the row, nothing written ------------------------------------------------------------
GOOD = b'{"external_id": "g1", "prompt": "Q", "response_a": "A", "response_b": "B"}\n'
TASK = b'"external_id": "t", "prompt": "Q", "response_a": "A", "response_b": "B"'  # a good row's fields


def line(extra: bytes) -> bytes:
    """A JSON Lines row: a good task plus ``extra`` fields."""
    return b"{" + TASK + b", " + extra + b"}\n"


def array(extra: bytes) -> bytes:
    """A JSON array of one good task plus ``extra`` fields."""
    return b"[{" + TASK + b", " + extra + b"}]"


CSV_HEADER = b"external_id,prompt,response_a,response_b,meta\r\n"


def _deep(depth: int) -> str:
    return '{"k": ' * depth + "1" + "}" * depth


MALFORMED = [
    # (id, body, format, row, words in the message)
    ("json-invalid-utf8", b'[{"external_id": "x", "prompt": "\xff\xfe"}]', "json", 1, "UTF-8"),
    ("jsonl-invalid-utf8-later-row", GOOD + b'{"external_id": "y\xc3\x28"}\n', "jsonl", 2, "UTF-8"),
    ("jsonl-utf16", '{"external_id": "u"}\n'.encode("utf-16"), "jsonl", 1, "UTF-8"),
    ("csv-utf16", "external_id,prompt\r\nx,y\r\n".encode("utf-16"), "csv", 1, "UTF-8"),
    ("csv-truncated-utf8", CSV_HEADER + b"x,Q,A,B \xe2\x82", "csv", 1, "UTF-8"),
    (
        "jsonl-raw-nul",
        GOOD + b'{"external_id": "n\x00", "prompt": "Q", "response_a": "A", "response_b": "B"}\n',
        "jsonl",
        2,
        "JSON",
    ),
    (
        "jsonl-escaped-nul",
        GOOD + b'{"external_id": "n", "prompt": "Q\\u0000", "response_a": "A", "response_b": "B"}\n',
        "jsonl",
        2,
        "NUL",
    ),
    (
        "jsonl-nul-in-meta-key",
        GOOD + line(b'"meta": {"\\u0000": 1}'),
        "jsonl",
        2,
        "NUL",
    ),
    (
        "json-escaped-nul",
        b'[{"external_id": "n\\u0000", "prompt": "Q", "response_a": "A", "response_b": "B"}]',
        "json",
        1,
        "NUL",
    ),
    ("csv-raw-nul", CSV_HEADER + b"n,Q\x00,A,B,{}\r\n", "csv", 1, "NUL"),
    ("csv-nul-in-meta", CSV_HEADER + b'n,Q,A,B,"{""k"": ""\\u0000""}"\r\n', "csv", 1, "NUL"),
    (
        "jsonl-nested-too-deep",
        GOOD + line(b'"meta": ' + _deep(80).encode()),
        "jsonl",
        2,
        "nested",
    ),
    ("jsonl-nested-past-parser", GOOD + ("[" * 5000 + "]" * 5000).encode() + b"\n", "jsonl", 2, "JSON"),
    (
        "json-nested-too-deep",
        array(b'"meta": ' + _deep(80).encode()),
        "json",
        1,
        "nested",
    ),
    ("json-nested-past-parser", ("[" + "[" * 100_000 + "]" * 100_000 + "]").encode(), "json", 1, "nested"),
    (
        "csv-meta-nested-too-deep",
        CSV_HEADER + b'd,Q,A,B,"' + _deep(80).replace('"', '""').encode() + b'"\r\n',
        "csv",
        1,
        "nested",
    ),
    (
        "jsonl-huge-integer",
        GOOD + line(b'"meta": {"n": 123456789012345678901234567890}'),
        "jsonl",
        2,
        "whole number",
    ),
    (
        "jsonl-huge-negative",
        GOOD + line(b'"meta": {"n": -9300000000000000000}'),
        "jsonl",
        2,
        "whole number",
    ),
    (
        "json-huge-integer",
        array(b'"meta": {"n": 123456789012345678901234567890}'),
        "json",
        1,
        "whole number",
    ),
    (
        "json-huge-external-id",
        b'[{"external_id": 123456789012345678901234567890, "prompt": "Q", "response_a": "A", "response_b": "B"}]',
        "json",
        1,
        "whole number",
    ),
    (
        "csv-huge-integer-in-meta",
        CSV_HEADER + b'h,Q,A,B,"{""n"": 123456789012345678901234567890}"\r\n',
        "csv",
        1,
        "whole number",
    ),
    (
        "jsonl-overflowing-float",
        GOOD + b'{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": {"x": 1e400}}\n',
        "jsonl",
        2,
        "JSON",
    ),
    (
        "json-overflowing-float",
        b'[{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": {"x": -1e400}}]',
        "json",
        1,
        "finite",
    ),
    (
        "jsonl-nan",
        GOOD + b'{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": {"x": NaN}}\n',
        "jsonl",
        2,
        "JSON",
    ),
    (
        "json-nan",
        b'[{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": {"x": NaN}}]',
        "json",
        1,
        "NaN",
    ),
    (
        "json-infinity",
        b'[{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": {"x": Infinity}}]',
        "json",
        1,
        "Infinity",
    ),
    (
        "json-minus-infinity-later-row",
        b"[{" + TASK + b'}, {"external_id": "f", "meta": {"x": -Infinity}}]',
        "json",
        2,
        "Infinity",
    ),
    ("csv-nan-in-meta", CSV_HEADER + b'f,Q,A,B,"{""x"": NaN}"\r\n', "csv", 1, "JSON"),
    (
        "jsonl-nan-prediction",
        GOOD + b'{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "predictions": NaN}\n',
        "jsonl",
        2,
        "JSON",
    ),
    (
        "json-nan-prediction",
        b'[{"external_id": "f", "prompt": "Q", "response_a": "A", "response_b": "B", "predictions": NaN}]',
        "json",
        1,
        "NaN",
    ),
    (
        "jsonl-lone-surrogate",
        GOOD + b'{"external_id": "s", "prompt": "\\ud800", "response_a": "A", "response_b": "B"}\n',
        "jsonl",
        2,
        "JSON",
    ),
    (
        "json-lone-surrogate",
        b'[{"external_id": "s", "prompt": "\\ud800", "response_a": "A", "response_b": "B"}]',
        "json",
        1,
        "surrogate",
    ),
    ("json-bom-in-the-middle", b'[{"external_id": "x"},\xef\xbb\xbf{"external_id": "y"}]', "json", 2, "JSON"),
]


@pytest.mark.parametrize(
    ("body", "fmt", "row", "words"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_files_are_400_with_the_row_and_write_nothing(
    api_a: KeyClient, tenancy: Tenancy, body: bytes, fmt: str, row: int, words: str
) -> None:
    before = set(Task.objects.values_list("id", flat=True))
    for on_error in ("abort", "skip"):
        url = reverse("api-tasks-import", args=[tenancy.project_a.pk]) + f"?format={fmt}&on_error={on_error}"
        response = api_a.post(url, body, content_type="text/plain")
        report = response.json()
        if on_error == "skip" and response.status_code == 200:
            assert report["skipped"] >= 1 and any(e["row"] == row for e in report["errors"]), report
            Task.objects.exclude(id__in=before).delete()
            continue
        assert response.status_code == 400, report
        assert not report["committed"], report
        assert any(e["row"] == row and words.lower() in e["message"].lower() for e in report["errors"]), report
        assert set(Task.objects.values_list("id", flat=True)) == before


@pytest.mark.parametrize(
    ("body", "fmt"),
    [
        (b"\xef\xbb\xbf" + GOOD, "jsonl"),
        (b"\xef\xbb\xbf[" + GOOD.strip() + b"]", "json"),
        (b"\xef\xbb\xbfexternal_id,prompt,response_a,response_b\r\ng1,Q,A,B\r\n", "csv"),
    ],
    ids=["jsonl", "json", "csv"],
)
def test_a_leading_byte_order_mark_is_not_part_of_the_data(
    api_a: KeyClient, tenancy: Tenancy, body: bytes, fmt: str
) -> None:
    url = reverse("api-tasks-import", args=[tenancy.project_a.pk]) + f"?format={fmt}"
    response = api_a.post(url, body, content_type="text/plain")
    assert response.status_code == 200, response.json()
    assert Task.objects.get(project=tenancy.project_a, external_id="g1").payload["prompt"] == "Q"


def test_numbers_at_the_edges_of_the_range_are_kept_exactly(api_a: KeyClient, tenancy: Tenancy) -> None:
    numbers = {"max": 2**63 - 1, "min": -(2**63), "u64": 2**64 - 1, "big": 1.7976931348623157e308, "tiny": 5e-324}
    rows = [{"external_id": "edges", "prompt": "Q", "response_a": "A", "response_b": "B", "meta": numbers}]
    for fmt, body in (("jsonl", json.dumps(rows[0])), ("json", json.dumps(rows))):
        url = reverse("api-tasks-import", args=[tenancy.project_a.pk]) + f"?format={fmt}&mode=upsert"
        assert api_a.post(url, body, content_type="text/plain").status_code == 200
        stored = _read_tasks(api_a, tenancy.project_a)["edges"]["meta"]
        assert same_json(stored, numbers)
        assert {name: stored[name] for name in ("max", "min", "u64")} == {n: numbers[n] for n in ("max", "min", "u64")}


def test_judgment_and_prediction_imports_refuse_the_same_malformed_rows(api_a: KeyClient, tenancy: Tenancy) -> None:
    project = tenancy.project_a
    task = tenancy.task_a.external_id
    cases = [
        ("api-annotations-import", f'{{"external_id": "{task}", "annotator": "a\\u0000@x.example", "label": "a"}}\n'),
        ("api-annotations-import", f'[{{"external_id": "{task}", "annotator": "x@x.example", "label": NaN}}]'),
        ("api-predictions-import", f'{{"external_id": "{task}\\u0000", "predictions": 0.5}}\n'),
        ("api-predictions-import", f'[{{"external_id": "{task}", "predictions": Infinity}}]'),
        ("api-predictions-import", f'[{{"external_id": "{task}", "predictions": 1e400}}]'),
    ]
    for route, body in cases:
        fmt = "json" if body.startswith("[") else "jsonl"
        response = api_a.post(reverse(route, args=[project.pk]) + f"?format={fmt}", body, content_type="text/plain")
        assert response.status_code == 400, (route, body, response.content)
        assert response.json()["errors"][0]["row"] == 1
    assert not Judgment.objects.exists()
    tenancy.task_a.refresh_from_db()
    assert tenancy.task_a.predictions is None


def test_the_admin_task_form_refuses_what_the_database_cannot_store(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.admin_a)
    base = {"project": tenancy.project_a.pk, "external_id": "admin-1", "status": "open", "predictions": ""}
    payload = {"prompt": "Q", "response_a": "A", "response_b": "B"}
    cases = [
        {"payload": json.dumps({**payload, "prompt": "Q\u0000"}), "meta": "{}"},
        {"payload": json.dumps(payload), "meta": '{"x": NaN}'},
        {"payload": json.dumps(payload), "meta": '{"x": 1e400}'},
        {"payload": json.dumps(payload), "meta": '{"\\u0000": 1}'},
        {"payload": json.dumps(payload), "meta": _deep(80)},
        {"payload": json.dumps(payload), "meta": '{"n": 123456789012345678901234567890}'},
        {"payload": json.dumps(payload), "meta": "{}", "external_id": "admin\u0000"},
    ]
    for case in cases:
        response = client.post(reverse("admin:labeling_task_add"), {**base, **case})
        assert response.status_code == 200, (case, response.status_code)  # the form again, with its errors
        assert response.context["adminform"].form.errors, case
    assert not Task.objects.filter(external_id__startswith="admin").exists()


def test_a_byte_order_mark_split_across_reads_is_still_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange import reading

    monkeypatch.setattr(reading, "READ_CHUNK", 1)
    records = list(reading.jsonl_records(io.BytesIO(b"\xef\xbb\xbf" + GOOD + GOOD)))
    assert [record["external_id"] for _, record in records] == ["g1", "g1"]
    (only,) = list(reading.jsonl_records(io.BytesIO(b"\xef\xbb")))  # a partial mark is not UTF-8
    assert isinstance(only[1], reading.RowError) and "UTF-8" in only[1].message


# --- NUL characters in what people post (PostgreSQL cannot hold them: an error, never a 500) ------------------------
def test_nul_characters_in_page_posts_are_refused(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.annotator_a)
    leased = next_task(annotator=tenancy.annotator_a, project=tenancy.project_a)
    assert leased is not None
    submit = reverse("annotate-submit", args=[tenancy.project_a.pk, leased.pk])
    for field in ("client_id", "choice", "strength", "active_seconds"):
        response = client.post(submit, {"choice": "first", "client_id": "c1", field: "x\x00y"})
        assert response.status_code == 400, (field, response.status_code)
        fetched = client.post(
            submit, {"choice": "first", "client_id": "c1", field: "x\x00y"}, headers={"X-Requested-With": "fetch"}
        )
        assert fetched.status_code == 400 and fetched.json()["error"], field
    assert not Judgment.objects.exists()
    assert client.post(reverse("consent"), {"grant": "1\x00", "opted_in": "1"}).status_code == 404
    switched = client.post(reverse("organization-switch"), {"organization": "\x00", "next": "/work/\x00"})
    assert switched.status_code == 404
    assert Client().post(reverse("login"), {"username": "a\x00", "password": "x"}).status_code == 200  # form error


def test_nul_characters_in_admin_searches_match_nothing(tenancy: Tenancy) -> None:
    client = signed_in(tenancy.admin_a)
    for changelist in ("admin:labeling_task_changelist", "admin:labeling_membership_changelist"):
        response = client.get(reverse(changelist), {"q": "a\x00"})
        assert response.status_code in (200, 302), changelist
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "labeling", "model_name": "task", "field_name": "project", "term": "Alpha\x00"},
    )
    assert response.status_code == 200 and response.json()["results"] == []


def test_nul_characters_in_api_json_are_refused(api_a: KeyClient, tenancy: Tenancy) -> None:
    for body in (
        {"name": "N\x00", "kind": "pairwise"},
        {"name": "N", "kind": "pairwise", "instructions": "\x00"},
        {"name": "N", "kind": "categorical", "labels": [{"value": "a", "title": "\x00"}, {"value": "b", "title": "B"}]},
        {"name": "N", "kind": "pairwise\x00"},
    ):
        response = api_a.post(reverse("api-projects"), body, content_type="application/json")
        assert response.status_code == 400, (body, response.content)
    response = api_a.patch(reverse("api-project", args=[tenancy.project_a.pk]), {"name": "x\x00"}, "application/json")
    assert response.status_code == 400
    for raw in (
        b'{"name": "N", "kind": "pairwise", "gold_rate": NaN}',
        b'{"name": "N", "kind": "pairwise", "gold_rate": 1e400}',
    ):
        assert api_a.post(reverse("api-projects"), raw, content_type="application/json").status_code == 400
    assert not Project.objects.filter(name__startswith="N").exists()


# --- Deep nesting in every JSON body the API accepts: 400 naming the body, never a RecursionError ---------------------
def _nested(depth: int, kind: str) -> str:
    """JSON ``depth`` levels deep: arrays, or objects in an array (an import's body is an array)."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return "[" + '{"k": ' * (depth - 2) + "{}" + "}" * (depth - 2) + "]"


def _json_body_operations(client: KeyClient, project: Project) -> list[tuple[str, str]]:
    """Every (method, URL) of ``/api/v1/`` whose schema takes an ``application/json`` body, with real ids: a new
    endpoint with a JSON body is covered by the tests below without being named in them."""
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    operations = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method == "parameters" or "application/json" not in operation.get("requestBody", {}).get("content", {}):
                continue
            assert set(re.findall(r"{(\w+)}", path)) <= {"project_id"}, f"give {path} an object to send to"
            operations.append((method, path.replace("{project_id}", str(project.pk))))
    return operations


@pytest.mark.parametrize("depth", [3_000, 100_000])
@pytest.mark.parametrize("kind", ["array", "object"])
def test_json_nested_thousands_deep_is_refused_by_every_json_body(
    api_a: KeyClient, tenancy: Tenancy, depth: int, kind: str
) -> None:
    # Python's json (DRF's parser) recursed once per level: a RecursionError, a 500, for projects create/update.
    operations = _json_body_operations(api_a, tenancy.project_a)
    assert {("post", "/api/v1/projects/"), ("patch", f"/api/v1/projects/{tenancy.project_a.pk}/")} <= set(operations)
    body = _nested(depth, kind)
    for method, url in operations:
        response = getattr(api_a, method)(url, body, content_type="application/json")
        assert response.status_code == 400, (method, url, response.content[:300])
        assert b"nested more than 64 levels deep" in response.content, (method, url, response.content[:300])
    assert Project.objects.filter(organization=tenancy.org_a).count() == 1
    assert not Judgment.objects.exists() and Task.objects.filter(project=tenancy.project_a).count() == 1


def test_a_project_body_may_nest_64_levels_but_not_65(api_a: KeyClient, tenancy: Tenancy) -> None:
    url = reverse("api-projects")
    too_deep = api_a.post(
        url,
        '{"name": "Deep", "kind": "pairwise", "labels": ' + _nested(64, "array") + "}",
        content_type="application/json",
    )
    assert too_deep.status_code == 400 and too_deep.json() == {"body": ["is JSON nested more than 64 levels deep"]}
    deepest = api_a.post(
        url,
        '{"name": "Deep", "kind": "pairwise", "labels": ' + _nested(63, "array") + "}",
        content_type="application/json",
    )
    assert deepest.status_code == 400 and "body" not in deepest.json(), deepest.content  # the field's own error
    # What DRF's parser answered before stays: NaN and broken JSON are parse errors, big whole numbers exact.
    for bad in ('{"name": NaN}', '{"name": "x",'):
        response = api_a.post(url, bad, content_type="application/json")
        assert response.status_code == 400 and response.json()["detail"].startswith("JSON parse error"), bad
    huge = api_a.post(url, '{"name": "N", "kind": "pairwise", "min_judgments": 123456789012345678901234567890}',
                      content_type="application/json")  # fmt: skip
    assert huge.status_code == 400 and "min_judgments" in huge.json()
    assert not Project.objects.filter(name__in=["Deep", "N"]).exists()


@pytest.mark.parametrize("field", ["payload", "meta", "predictions"])
def test_json_nested_thousands_deep_in_the_admin_task_form_is_a_form_error(tenancy: Tenancy, field: str) -> None:
    # The admin's JSON fields read with Python's json too: RecursionError, a 500.
    client = signed_in(tenancy.admin_a)
    payload = json.dumps({"prompt": "Q", "response_a": "A", "response_b": "B"})
    good = {"payload": payload, "meta": "{}", "predictions": ""}
    form = {"project": tenancy.project_a.pk, "external_id": "admin-deep", "status": "open", **good}
    response = client.post(reverse("admin:labeling_task_add"), {**form, field: _nested(5_000, "array")})
    assert response.status_code == 200
    assert "nested more than 64 levels deep" in str(response.context["adminform"].form.errors[field])
    assert not Task.objects.filter(external_id="admin-deep").exists()
