"""A newcomer's first minutes: what ``make demo`` installs and prints, what the server logs, and the pages a browser
meets besides the app itself (the favicon, a refused or missing page)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import Tenancy

ROOT = Path(__file__).resolve().parents[2]


def _make_dry_run(*arguments: str) -> list[str]:
    """The commands ``make`` would run for ``arguments``, every target considered out of date (``-B``)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()


def test_make_demo_installs_only_what_runs_the_app() -> None:
    commands = _make_dry_run("demo")

    assert any("-r requirements.txt" in command for command in commands)
    assert not any("requirements-dev.txt" in command for command in commands)


def test_make_test_adds_the_development_requirements() -> None:
    commands = _make_dry_run("test")

    installs = [command for command in commands if "pip install" in command and " -r " in command]
    assert [command.rsplit(" ", 1)[-1] for command in installs] == ["requirements.txt", "requirements-dev.txt"]


def test_make_demo_tells_the_demo_data_where_it_is_served() -> None:
    commands = _make_dry_run("demo", "PORT=8011", "HOST=127.0.0.2")

    seed = next(command for command in commands if "seed_demo" in command)
    assert seed.endswith("seed_demo --base-url http://127.0.0.2:8011/")
    assert not any(":8000" in command for command in commands)


LOGGING_PROBE = textwrap.dedent(
    """
    import logging
    import django
    django.setup()
    from django.core.exceptions import PermissionDenied
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.utils.log import log_response

    request = RequestFactory().get("/projects/1/quality/")
    try:
        raise PermissionDenied("Only managers see quality.")
    except PermissionDenied as error:
        log_response("Forbidden (Permission denied): %s", request.path, response=HttpResponse(status=403),
                     request=request, exception=error)
    logging.getLogger("django.utils.autoreload").info("Watching for file changes with StatReloader")
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError as error:
        log_response("Internal Server Error: %s", "/boom", response=HttpResponse(status=500), request=request,
                     exception=error)
    """
)


def test_server_logs_each_line_once_and_a_refusal_without_traceback() -> None:
    """Django's ``django`` logger printed every line twice under DEBUG (its own console handler, then the root's),
    and a 403 printed a full traceback each time. A 500 keeps its traceback, once."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "DEBUG": "1", "LOG_LEVEL": "INFO"}
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    log = result.stderr

    assert log.count("Forbidden (Permission denied): /projects/1/quality/") == 1
    assert log.count("Watching for file changes with StatReloader") == 1
    assert "PermissionDenied" not in log
    assert log.count("Internal Server Error: /boom") == 1
    assert log.count("Traceback (most recent call last)") == 1
    assert "ZeroDivisionError: boom" in log


def test_favicon_is_served_at_the_site_root(client: Client, db: None) -> None:
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content if response.streaming else [response.content])[:4] == b"\0\0\1\0"


def test_pages_name_their_icon(client: Client, db: None) -> None:
    page = client.get(reverse("login")).text

    assert 'rel="icon"' in page
    assert client.get("/static/concord/favicon.svg").status_code == 200


def test_a_refused_page_explains_itself_in_the_site_layout(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.annotator_a)

    response = client.get(reverse("quality", args=[tenancy.project_a.pk]))

    assert response.status_code == 403
    assert 'class="topbar"' in response.text
    assert "Only the organization&#x27;s managers and admins see quality." in response.text
    assert reverse("work") in response.text


@pytest.mark.parametrize("path", ["/no-such-page/", "/projects/999999/annotate/"])
def test_a_missing_page_is_a_page_of_the_site(client: Client, tenancy: Tenancy, path: str) -> None:
    client.force_login(tenancy.annotator_a)

    response = client.get(path)

    assert response.status_code == 404
    assert 'class="topbar"' in response.text
    assert "Not found" in response.text


def test_an_api_miss_stays_json(client: Client, db: None) -> None:
    response = client.get("/api/v1/no-such-route/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_expired_form_says_what_to_do(db: None) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("login"), {"username": "someone@example.com", "password": "x"})

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "Nothing was saved" in response.text


RUNTIME_IMPORTS_PROBE = textwrap.dedent(
    """
    import importlib, json, os, pkgutil, re, sys
    from importlib.metadata import packages_distributions

    def canonicalize_name(name):  # packaging's rule; packaging itself must not be imported before the finder
        return re.sub(r"[-_.]+", "-", name).lower()

    # Act as a virtualenv holding only the runtime requirements: a module of any other installed distribution
    # cannot be imported (an optional import falls back as it would there; a required one fails the probe).
    allowed = set(json.loads(os.environ["RUNTIME_CLOSURE"]))
    owners = packages_distributions()

    class OnlyRuntimeDistributions:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            dists = {canonicalize_name(dist) for dist in owners.get(top, [])}
            if dists and not dists & allowed:
                raise ModuleNotFoundError(f"No module named {top!r} (not in requirements.txt)", name=top)
            return None

    sys.meta_path.insert(0, OnlyRuntimeDistributions())
    import django
    django.setup()
    import config.urls, config.wsgi, config.celery  # noqa: F401  (the web process and the worker)
    for package in ("labeling", "routing", "quality", "config"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    print("imported")
    """
)


def _requirement_closure(path: Path) -> set[str]:
    """The distributions ``pip install -r path`` installs: its pins and, recursively, what they declare."""
    pending = [
        Requirement(line.split("#")[0].strip())
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip() and not line.startswith("-")
    ]
    closure: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        closure.add(key[0])
        try:
            declared = requires(requirement.name) or []
        except PackageNotFoundError:
            continue
        for text in declared:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(dependency.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return closure


def test_the_app_imports_nothing_outside_the_runtime_requirements() -> None:
    """``make demo`` installs requirements.txt alone: the web process, the worker and every module of the apps must
    import with only that file's closure installed (kombu's Redis transport imports ``packaging`` without declaring
    it, so a runtime-only install failed at start-up while the dev requirements hid it)."""
    closure = _requirement_closure(ROOT / "requirements.txt")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "RUNTIME_CLOSURE": json.dumps(sorted(closure)),
    }
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_IMPORTS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert "django" in closure and "celery" in closure
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("imported")
