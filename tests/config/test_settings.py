"""Settings come from the environment through typed helpers that refuse bad values with a clear message."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_origins, env_url, secret_key

ROOT = Path(__file__).resolve().parents[2]


def test_env_bool_accepts_common_spellings_and_rejects_others() -> None:
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ImproperlyConfigured, match="X='maybe' is not a boolean"):
        env_bool("X", False, environ={"X": "maybe"})


def test_env_int_checks_type_and_range() -> None:
    assert env_int("N", 5, environ={"N": "7"}) == 7
    assert env_int("N", 5, environ={}) == 5
    with pytest.raises(ImproperlyConfigured, match="N='seven' is not a whole number"):
        env_int("N", 5, environ={"N": "seven"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum of 0"):
        env_int("N", 5, minimum=0, environ={"N": "-1"})


def test_env_list_and_origins() -> None:
    assert env_list("H", ["a"], environ={"H": " x.example , ,y.example"}) == ["x.example", "y.example"]
    assert env_origins("O", environ={"O": "https://labels.example.com"}) == ["https://labels.example.com"]
    with pytest.raises(ImproperlyConfigured, match="is not an origin"):
        env_origins("O", environ={"O": "labels.example.com"})


def test_env_url_checks_scheme() -> None:
    assert env_url("U", None, schemes=("redis",), environ={}) is None
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL must be a URL starting with one of redis://"):
        env_url("REDIS_URL", None, schemes=("redis",), environ={"REDIS_URL": "127.0.0.1:6379"})


def test_secret_key_is_required_without_debug(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is required when DEBUG is off"):
        secret_key(debug=False, fallback_file=str(tmp_path / "k"), environ={})
    with pytest.raises(ImproperlyConfigured, match="at least 50 characters"):
        secret_key(debug=False, fallback_file=str(tmp_path / "k"), environ={"SECRET_KEY": "short"})
    good = secrets.token_urlsafe(64)
    assert secret_key(debug=False, fallback_file=str(tmp_path / "k"), environ={"SECRET_KEY": good}) == good


def test_debug_secret_is_generated_once_and_kept_out_of_the_repo(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    first = secret_key(debug=True, fallback_file=str(path), environ={})
    assert len(first) >= 50
    assert secret_key(debug=True, fallback_file=str(path), environ={}) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "CONCORD_VAR_DIR": str(ROOT / "var" / "test-deploy"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_values() -> None:
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "labels.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://labels.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_stops_start_up_with_a_clear_message() -> None:
    result = _manage(["check"], {"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_bad_value_stops_start_up_naming_the_variable() -> None:
    result = _manage(["check"], {"DEBUG": "sometimes"})
    assert result.returncode != 0
    assert "DEBUG='sometimes' is not a boolean" in result.stderr


def test_no_secret_key_committed_in_settings() -> None:
    text = (ROOT / "config" / "settings.py").read_text()
    assert "SECRET_KEY = secret_key(" in text
    assert "django-insecure" not in text


def test_migrations_are_complete() -> None:
    result = _manage(["makemigrations", "--check", "--dry-run"], {"DEBUG": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


@pytest.mark.django_db
def test_migrations_create_no_accounts_and_passwords_are_validated() -> None:
    """No default login exists outside ``seed_demo`` (which refuses without DEBUG: tests/labeling/test_seed_demo.py),
    and every password set through Django's forms and our admin meets the validators."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import get_default_password_validators, validate_password
    from django.core.exceptions import ValidationError

    assert get_user_model().objects.count() == 0
    assert {type(v).__name__ for v in get_default_password_validators()} == {
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    }
    for weak in ("password", "12345678901", "short1!", "alice@a.example1"):
        with pytest.raises(ValidationError):
            validate_password(weak, get_user_model()(username="alice@a.example1", email="alice@a.example1"))


def test_a_database_that_does_not_answer_is_given_up_on_within_the_connect_timeout() -> None:
    """A host that takes the TCP connection and then says nothing (a frozen server, a half-dead failover) held a
    request, a job or /healthz for as long as the operating system's TCP timeout allows."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever answers PostgreSQL's start-up message
    port = silent.getsockname()[1]
    probe = "from django.db import connection; connection.ensure_connection()"
    started = time.monotonic()
    try:
        result = _manage(
            ["shell", "-c", probe],
            {
                "DEBUG": "1",
                "DATABASE_URL": f"postgres://concord@127.0.0.1:{port}/concord",
                "DATABASE_CONNECT_TIMEOUT": "1",
            },
        )
    finally:
        silent.close()
    assert result.returncode != 0
    assert "timeout" in result.stderr.lower()
    assert time.monotonic() - started < 30
