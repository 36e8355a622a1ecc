"""A manager lifts an annotator's quality pause (automatic pauses are set by ``quality.services.recompute``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Judgment
from quality.models import AnnotatorScore


@transaction.atomic
def annotator_unpause(*, score: AnnotatorScore, actor: Any) -> AnnotatorScore:
    """Lift a quality pause. Judgments made so far no longer count towards a new automatic pause."""
    score = AnnotatorScore.objects.select_for_update().get(pk=score.pk)
    if score.paused_at is None:
        raise ValidationError({"paused": "This annotator is not paused in this project."})
    last = (
        Judgment.objects.for_org(score.organization_id)
        .filter(project_id=score.project_id, annotator_id=score.annotator_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    score.paused_at = None
    score.pause_reason = ""
    score.unpaused_at = timezone.now()
    score.unpaused_by = actor
    score.evidence_after_id = max(score.evidence_after_id, last or 0)
    score.save(update_fields=["paused_at", "pause_reason", "unpaused_at", "unpaused_by", "evidence_after_id"])
    return score
