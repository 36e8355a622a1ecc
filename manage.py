#!/usr/bin/env python
import os
import sys
from pathlib import Path


def load_dotenv(path: Path) -> None:
    """Developer convenience: ``KEY=VALUE`` lines from a git-ignored ``.env`` (``make demo`` writes one).

    Only ``manage.py`` reads it, and never over a variable already set; production (gunicorn, Celery) does not.
    """
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


def main() -> None:
    load_dotenv(Path(__file__).resolve().parent / ".env")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
