"""``manage.py audit_sample PROJECT --k 200 --seed 1 [--output audit.jsonl]``: judgments to re-check by hand.

Draws a uniform random sample of a project's judgments in one streamed pass (``routing.selectors.audit_sample``)
and writes it as JSON Lines sorted by judgment id, to stdout or atomically to ``--output``. The same seed draws
the same sample while the project's judgments are unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from routing.selectors import audit_sample


class Command(BaseCommand):
    help = "Write a uniform random sample of a project's judgments as JSON Lines, for a manual audit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int, metavar="PROJECT", help="Id of the project to audit.")
        parser.add_argument("--k", type=int, default=200, help="How many judgments to draw (default 200).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed; the same seed draws the same sample.")
        parser.add_argument("--output", type=Path, default=None, help="Write to this file instead of stdout.")

    def handle(
        self, *args: Any, project_id: int, k: int, seed: int | None, output: Path | None, **options: Any
    ) -> None:
        if k < 1:
            raise CommandError(f"--k must be at least 1, got {k}.")
        # An operator's command: it acts across organizations, so the project is looked up by id alone and every
        # read after that is scoped to the project's own organization.
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            raise CommandError(f"Project {project_id} does not exist.")
        lines = [json.dumps(row, ensure_ascii=False) for row in audit_sample(project=project, k=k, seed=seed)]
        if output is None:
            for line in lines:
                self.stdout.write(line)
            return
        try:
            _write_atomically(output, lines)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror or error}.") from error
        self.stderr.write(f"Wrote {len(lines)} judgments of project {project.pk} to {output}.")


def _write_atomically(path: Path, lines: Iterable[str]) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``: readers never see half a file.

    The file is created readable by its owner only (``tempfile``'s mode): it holds task content.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            for line in lines:
                file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
