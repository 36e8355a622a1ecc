"""Reads for routing. Each selector takes keyword-only arguments and scopes every query to one organization."""

from __future__ import annotations

from typing import Any

from labeling.models import Annotation, Project
from routing.sampling import reservoir_sample

# Streamed in chunks so an audit of a project with millions of judgments holds only the sample in memory.
AUDIT_CHUNK_SIZE = 2000


def audit_sample(*, project: Project, k: int, seed: int | None) -> list[dict[str, Any]]:
    """A uniform sample of ``k`` of the project's judgments (all of them when it has fewer), by annotation id.

    One pass over the project's annotations in id order, so a given seed draws the same sample as long as the
    rows are unchanged. Rows are JSON-ready: ``created_at`` is an ISO 8601 string. ``k < 1`` raises ``ValueError``.
    """
    rows = (
        Annotation.objects.for_org(project.organization_id)
        .filter(project=project)
        .order_by("id")
        .values(
            "id",
            "task_id",
            "task__external_id",
            "task__payload",
            "annotator__username",
            "label",
            "a_left",
            "seconds_on_task",
            "created_at",
        )
        .iterator(chunk_size=AUDIT_CHUNK_SIZE)
    )
    sample = reservoir_sample(rows, k, rng=seed)
    return [
        {
            "annotation_id": row["id"],
            "task_id": row["task_id"],
            "external_id": row["task__external_id"],
            "annotator": row["annotator__username"],
            "label": row["label"],
            "a_left": row["a_left"],
            "seconds_on_task": row["seconds_on_task"],
            "created_at": row["created_at"].isoformat(),
            "payload": row["task__payload"],
        }
        for row in sorted(sample, key=lambda row: row["id"])
    ]
