"""``manage.py import_tasks PROJECT FILE``: the API's task import from a file, with a progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.reading import EXTENSIONS, FORMATS, MODES, ON_ERROR, CountingReader
from exchange.task_import import tasks_import
from labeling.models import Project


class Command(BaseCommand):
    help = "Import tasks into a project from a JSON Lines, JSON array or CSV file (all or nothing by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int, metavar="PROJECT", help="Id of the project.")
        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        parser.add_argument("--mode", choices=MODES, default="create", help="upsert: update existing external ids.")
        parser.add_argument("--on-error", choices=ON_ERROR, default="abort", help="skip: write the good rows.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, project_id: int, file: Path, **options: Any) -> None:
        # An operator's command: the project is looked up by id; the import writes inside its organization only.
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"Project {project_id} does not exist.")
        fmt = options["format"] or EXTENSIONS.get(file.suffix.lower())
        if fmt is None:
            raise CommandError(f"Cannot tell the format of {file.name}: pass --format {'|'.join(FORMATS)}.")
        try:
            size = file.stat().st_size
            handle = file.open("rb")
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        with handle:
            counting = CountingReader(handle)

            def bar(rows: int) -> None:
                if options["no_progress"]:
                    return
                fraction = counting.position / size if size else 1.0
                filled = round(fraction * 30)
                self.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {rows:,} rows", ending="")

            try:
                report = tasks_import(
                    project=project,
                    stream=counting,
                    fmt=fmt,
                    mode=options["mode"],
                    on_error=options["on_error"],
                    progress=bar,
                )
            except ValidationError as error:
                raise CommandError(str(error.message_dict)) from None
        if not options["no_progress"]:
            self.stderr.write("")
        summary = report.as_dict()
        errors = summary.pop("errors")
        for error in errors:
            self.stderr.write(f"row {error['row']}: {error['field']}: {error['message']}")
        self.stdout.write(json.dumps(summary))
        if not report.committed:
            raise CommandError(f"Nothing was imported: {report.error_count} problem(s) (listed above).")
