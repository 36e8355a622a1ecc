"""Typed readers for environment variables.

Every setting Concord reads from the environment goes through one of these helpers, so a bad value stops the
process at start-up with a message naming the variable, what was found and what is expected — never a silent
fallback to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(name, environ)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool, *, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of 1/0, true/false, yes/no, on/off.")


def env_int(
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    value = _raw(name, environ)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum of {maximum}.")
    return number


def env_list(name: str, default: list[str], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """A comma-separated list; blank items are dropped."""
    value = _raw(name, environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(
    name: str,
    default: str | None,
    *,
    schemes: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A URL whose scheme is one of ``schemes``."""
    value = env_str(name, default, environ=environ)
    if value is None:
        return None
    scheme = urlparse(value).scheme
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with one of {', '.join(s + '://' for s in schemes)}; got scheme {scheme!r}."
        )
    return value


def env_origins(name: str, *, environ: Mapping[str, str] | None = None) -> list[str]:
    """Origins such as ``https://labels.example.com`` (scheme and host, nothing else)."""
    origins = env_list(name, [], environ=environ)
    for origin in origins:
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
            raise ImproperlyConfigured(f"{name} item {origin!r} is not an origin like https://labels.example.com.")
    return origins


def env_site_url(name: str, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The public address of the site, such as ``https://labels.example.com`` (scheme, host and port only), for links
    sent by e-mail; ``None`` when unset."""
    value = env_str(name, environ=environ)
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/") or parsed.query:
        raise ImproperlyConfigured(f"{name}={value!r} is not an address like https://labels.example.com.")
    return value.rstrip("/")


def env_email_address(name: str, default: str, *, environ: Mapping[str, str] | None = None) -> str:
    """An e-mail address, bare (``labels@example.com``) or with a display name (``Concord <labels@example.com>``)."""
    value = env_str(name, default, environ=environ) or default
    _, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    if not local or not domain or any(c in value for c in "\r\n"):
        raise ImproperlyConfigured(f"{name}={value!r} is not an e-mail address like Concord <labels@example.com>.")
    return value


def env_smtp_options(*, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The SMTP mailer's ``OPTIONS`` (Django's ``MAILERS``) from ``EMAIL_HOST`` (default localhost), ``EMAIL_PORT``
    (default 25, or 587 with TLS, 465 with SSL), ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD``, ``EMAIL_USE_TLS``
    (STARTTLS), ``EMAIL_USE_SSL`` (TLS from the start; not both) and ``EMAIL_TIMEOUT`` (seconds, default 20)."""
    use_tls = env_bool("EMAIL_USE_TLS", False, environ=environ)
    use_ssl = env_bool("EMAIL_USE_SSL", False, environ=environ)
    if use_tls and use_ssl:
        raise ImproperlyConfigured(
            "EMAIL_USE_TLS and EMAIL_USE_SSL are both on; use one: TLS (STARTTLS, port 587) or SSL (port 465)."
        )
    default_port = 465 if use_ssl else 587 if use_tls else 25
    return {
        "host": env_str("EMAIL_HOST", "localhost", environ=environ),
        "port": env_int("EMAIL_PORT", default_port, minimum=1, maximum=65535, environ=environ),
        "username": env_str("EMAIL_HOST_USER", "", environ=environ),
        "password": env_str("EMAIL_HOST_PASSWORD", "", environ=environ),
        "use_tls": use_tls,
        "use_ssl": use_ssl,
        "timeout": env_int("EMAIL_TIMEOUT", 20, minimum=1, environ=environ),
    }


def secret_key(*, debug: bool, fallback_file: str, environ: Mapping[str, str] | None = None) -> str:
    """``SECRET_KEY`` from the environment: required (≥ 50 characters) unless ``debug``.

    In debug mode without a key, a random key is generated once and kept in ``fallback_file`` (under the
    git-ignored ``var/``), so a laptop's sessions survive restarts and no secret ever lives in the repository.
    """
    value = env_str("SECRET_KEY", environ=environ)
    if value is not None:
        if len(value) < 50 or len(set(value)) < 5:
            raise ImproperlyConfigured(
                "SECRET_KEY must be at least 50 characters with at least 5 distinct ones; generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
            )
        return value
    if not debug:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    import secrets

    try:
        with open(fallback_file, encoding="utf-8") as handle:
            stored = handle.read().strip()
        if len(stored) >= 50:
            return stored
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(fallback_file), exist_ok=True)
    generated = secrets.token_urlsafe(64)
    fd = os.open(fallback_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(generated)
    return generated
