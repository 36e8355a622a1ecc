"""``manage.py export_dataset PROJECT --format dpo > out.jsonl``: the API's export, to standard output."""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.exports import CSV_FORMATS, FORMATS, csv_chunks, export_request, export_summary, jsonl_chunks
from labeling.models import Project


class Command(BaseCommand):
    help = "Write a project's dataset (" + ", ".join(FORMATS) + ") to standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int, metavar="PROJECT")
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--output", choices=("jsonl", "csv"), default="jsonl", help=f"csv: {CSV_FORMATS}")
        parser.add_argument("--min-confidence", type=float)
        parser.add_argument("--include-gold", action="store_true")
        parser.add_argument("--since", help="The cursor a previous export printed.")
        parser.add_argument("--question", help="rm_pairs: the ranking or per-response rating question's key.")

    def handle(self, *args: Any, project_id: int, **options: Any) -> None:
        # An operator's command: the project by id; every read is scoped to its organization.
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"Project {project_id} does not exist.")
        try:
            export = export_request(
                project=project,
                fmt=options["format"],
                min_confidence=options["min_confidence"],
                include_gold=options["include_gold"],
                since=options["since"],
                question=options["question"],
            )
            chunks = csv_chunks(export) if options["output"] == "csv" else jsonl_chunks(export)
            summary = export_summary(export)
            out = sys.stdout.buffer
            for chunk in chunks:
                out.write(chunk)
            out.flush()
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        excluded = ", ".join(f"{count} {label}" for label, count in summary.excluded.items())
        self.stderr.write(
            f"{summary.rows:,} rows from {summary.tasks:,} tasks" + (f" (left out: {excluded})" if excluded else "")
        )
        self.stderr.write(f"next --since {summary.next_since}")
