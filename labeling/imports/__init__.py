"""Bulk imports through the API and the management commands: tasks (``tasks``), and judgments and model
predictions for existing tasks (``history``), all read as streams by ``reading``."""

from labeling.imports.reading import FORMATS, MODES, ON_ERROR, ImportReport
from labeling.imports.tasks import tasks_import

__all__ = ["FORMATS", "MODES", "ON_ERROR", "ImportReport", "tasks_import"]
