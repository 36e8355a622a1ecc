"""E-mail settings: Django 6.1's MAILERS from EMAIL_* variables (console with DEBUG, SMTP otherwise), the sender
and the site's public address for links, each refused at start-up with a clear message when malformed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config import settings as config_settings
from config.env import env_email_address, env_site_url, env_smtp_options

ROOT = Path(__file__).resolve().parents[2]


def test_smtp_options_come_from_the_email_variables() -> None:
    assert env_smtp_options(environ={}) == {
        "host": "localhost",
        "port": 25,
        "username": "",
        "password": "",
        "use_tls": False,
        "use_ssl": False,
        "timeout": 20,
    }
    options = env_smtp_options(
        environ={
            "EMAIL_HOST": "smtp.example.com",
            "EMAIL_HOST_USER": "concord",
            "EMAIL_HOST_PASSWORD": "s3cret",
            "EMAIL_USE_TLS": "1",
            "EMAIL_TIMEOUT": "5",
        }
    )
    assert options == options | {"host": "smtp.example.com", "port": 587, "username": "concord", "use_tls": True}
    assert options["password"] == "s3cret" and options["timeout"] == 5
    assert env_smtp_options(environ={"EMAIL_USE_SSL": "yes"})["port"] == 465
    assert env_smtp_options(environ={"EMAIL_USE_SSL": "yes", "EMAIL_PORT": "2465"})["port"] == 2465


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "use one"),
        ({"EMAIL_PORT": "70000"}, "EMAIL_PORT=70000 is above the maximum"),
        ({"EMAIL_USE_TLS": "maybe"}, "EMAIL_USE_TLS='maybe' is not a boolean"),
    ],
)
def test_bad_smtp_values_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        env_smtp_options(environ=environ)


def test_sender_and_site_address_are_checked() -> None:
    assert env_email_address("F", "a@b.example", environ={}) == "a@b.example"
    assert env_email_address("F", "x", environ={"F": "Concord <labels@example.com>"}) == "Concord <labels@example.com>"
    with pytest.raises(ImproperlyConfigured, match="F='labels' is not an e-mail address"):
        env_email_address("F", "x", environ={"F": "labels"})
    assert env_site_url("S", environ={}) is None
    assert env_site_url("S", environ={"S": "https://labels.example.com/"}) == "https://labels.example.com"
    for bad in ("labels.example.com", "ftp://labels.example.com", "https://labels.example.com/app?x=1"):
        with pytest.raises(ImproperlyConfigured, match="is not an address like"):
            env_site_url("S", environ={"S": bad})


def test_the_settings_use_mailers_and_no_deprecated_email_setting() -> None:
    """Django 6.1 deprecates the EMAIL_* settings for MAILERS, and refuses both together."""
    assert "default" in settings.MAILERS
    assert not {"EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS"} & set(vars(config_settings))


def _settings_in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    code = (
        "import django, warnings; warnings.simplefilter('error');"
        "django.setup(); from django.conf import settings; from django.core import mail;"
        "print(settings.MAILERS['default']['BACKEND'], getattr(mail.mailers.default, 'host', '-'))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "CONCORD_VAR_DIR": str(ROOT / "var" / "test-deploy"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_console_with_debug_smtp_without_and_no_deprecation_warning() -> None:
    with warnings.catch_warnings():
        debug = _settings_in_subprocess({"DEBUG": "1"})
        production = _settings_in_subprocess(
            {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "EMAIL_HOST": "smtp.example.com"}
        )
    assert debug.returncode == 0, debug.stderr
    assert debug.stdout.split()[0] == "django.core.mail.backends.console.EmailBackend"
    assert production.returncode == 0, production.stderr
    assert production.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend", "smtp.example.com"]
