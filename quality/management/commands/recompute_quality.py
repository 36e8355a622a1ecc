"""``manage.py recompute_quality PROJECT``: recompute a project's quality now, with a progress bar."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from quality.services import project_quality_recompute


class Command(BaseCommand):
    help = "Recompute a project's consensus, annotator scores and flags, agreement and model ranking."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project_id", type=int, metavar="PROJECT", help="Id of the project.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw the progress bar.")

    def handle(self, *args: Any, project_id: int, no_progress: bool, **options: Any) -> None:
        # An operator's command: the project is looked up by id alone; the service scopes every read to its
        # organization.
        if not Project.objects.filter(pk=project_id).exists():
            raise CommandError(f"Project {project_id} does not exist.")
        width = 30

        def bar(step: str, fraction: float) -> None:
            if no_progress:
                return
            filled = round(fraction * width)
            self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {step:<40}", ending="")
            self.stderr.flush()

        snapshot = project_quality_recompute(project_id=project_id, progress=bar)
        if not no_progress:
            self.stderr.write("")
        if snapshot is None:
            raise CommandError(f"Project {project_id} was deleted while it was being recomputed.")
        figures = {
            "judgments": snapshot.n_judgments,
            "annotators": snapshot.n_annotators,
            "fleiss_kappa": snapshot.fleiss_kappa,
            "krippendorff_alpha": snapshot.krippendorff_alpha,
            "percent_agreement": snapshot.percent_agreement,
            "seconds": snapshot.seconds,
        }
        self.stdout.write(" ".join(f"{name}={_show(value)}" for name, value in figures.items()))


def _show(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
