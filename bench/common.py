"""Shared by the benchmarks: a fresh PostgreSQL database per run, and Django configured as production runs it."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# As the run was started: the scripts point DATABASE_URL at their own database afterwards.
STARTED_WITH = {name: os.environ[name] for name in ("DATABASE_URL", "REDIS_URL") if name in os.environ}


def _from_root(path: str) -> str:
    relative = os.path.relpath(path, ROOT)
    return path if relative.startswith("..") else relative


def command(args: argparse.Namespace) -> str:
    """The command that reproduces this run, from the repository root, with every option spelled out (defaults
    too, so that a later change of a default does not change what the printed command runs)."""
    words = [f"{name}={value}" for name, value in STARTED_WITH.items()]
    words += [_from_root(sys.executable), _from_root(os.path.abspath(sys.argv[0]))]
    for name, value in vars(args).items():
        option = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(option)
        elif isinstance(value, list):
            words += [option, *map(str, value)]
        else:
            words += [option, str(value)]
    return shlex.join(words)


def print_command(args: argparse.Namespace) -> None:
    print(f"command (from {ROOT}): {command(args)}", flush=True)


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server of ``server_url``; the new database's URL."""
    import psycopg

    parts = urlsplit(server_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def bench_database(suffix: str) -> str:
    """A fresh ``<name>_<suffix>`` database next to ``$DATABASE_URL`` (PostgreSQL only), or exit with the reason."""
    server = os.environ.get("DATABASE_URL", "")
    if not server.startswith(("postgres://", "postgresql://")):
        sys.exit(f"{sys.argv[0]} measures PostgreSQL: set DATABASE_URL=postgres://user@host:port/dbname")
    return recreate_database(server, (urlsplit(server).path.strip("/") or "concord") + f"_{suffix}")


def configure_django(database_url: str, *, queue: str) -> None:
    """Point Django at ``database_url`` with production settings (DEBUG off) and migrate."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "0"  # DEBUG keeps every query in memory: not what production runs
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(64))
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    os.environ["CELERY_QUEUE"] = queue
    os.environ["QUALITY_RECOMPUTE_ON_COMMIT"] = "0"  # the benchmark runs the recompute itself
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
