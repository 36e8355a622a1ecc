"""``GET /api/v1/projects/{id}/export`` (streamed JSON Lines or CSV) and ``…/export/summary`` (what it holds)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import TenantAPIView, flag_parameter, parameters_check
from exchange.exports import (
    CSV_FORMATS,
    FORMATS,
    ExportRequest,
    csv_chunks,
    export_cursor,
    export_request,
    export_summary,
    jsonl_chunks,
)

PARAMETERS = ("format", "output", "min_confidence", "include_gold", "since", "question")
FORMAT_HELP = """The dataset to build from the project's completed tasks:

- `dpo`: preference rows for TRL's DPOTrainer (prompt, chosen, rejected, provenance). Pairwise projects: the
  consensus winner vs the loser (ties and "both bad" left out). Ranking projects: the best vs the worst response of
  the consensus ranking (by mean rank over the task's judgments, a tie broken by the lower response index), with
  `margin` (the difference of their mean ranks) and `messages` (the conversation, or null).
- `kto`: unpaired rows for TRL's KTOTrainer (prompt, completion, label). Pairwise: both responses (the preferred
  one true). Ranking: the consensus best (true) and worst (false).
- `consensus`: one row per task with its consensus label, confidence, posterior and agreement.
- `annotations`: one row per judgment; projects with questions add `answers` and `response_order`.
- `arena`: Chatbot-Arena battles (pairwise projects whose tasks name two models).
- `rm_pairs`: reward-model pairs: prompt (or `messages`), chosen, rejected, `margin`, external_id, the models and
  response indexes. From the ranking question (every pair i above j in the consensus ranking; margin = the
  difference of mean ranks), from per-response rating questions (every pair whose mean ratings differ; margin =
  the difference), or, on a pairwise project, the consensus winner vs the loser (margin = the mean strength, 1-3,
  of the judgments that chose it on a strength scale, else its vote share). `question` picks the ranking or rating
  question; by default the primary ranking, else the pairwise consensus, else the mean of all per-response rating
  questions. Pairs with no difference are left out.
- `sft`: each judgment's non-empty rewrite as a `messages` conversation for TRL's SFTTrainer (the task's
  conversation, or its prompt as a user turn, then the rewrite as the assistant's turn).
- `ratings`: one row per task and response: for each rating question `<key>_mean`, `<key>_std` (population) and
  `<key>_n` (a rating asked once per task: the task's figures on each of its rows)."""
EXPORT_PARAMETERS = [
    OpenApiParameter("format", str, enum=list(FORMATS), required=True, description=FORMAT_HELP),
    OpenApiParameter("output", str, enum=["jsonl", "csv"], description=f"csv: {', '.join(CSV_FORMATS)} only."),
    OpenApiParameter("min_confidence", float, description="Only tasks whose consensus posterior is at least this."),
    OpenApiParameter("include_gold", bool, description="Add gold tasks (default false; not with since)."),
    OpenApiParameter("since", str, description="The X-Concord-Next-Since cursor of a previous export."),
    OpenApiParameter(
        "question",
        str,
        description="rm_pairs only: the key of the ranking or per-response rating question the pairs come from.",
    ),
]


class ExportView(TenantAPIView):
    def export(self, request: Request, project_id: int) -> ExportRequest:
        project = self.project(project_id)
        parameters_check(request, PARAMETERS)
        params = request.query_params
        confidence: float | None = None
        if params.get("min_confidence") not in (None, ""):
            try:
                confidence = float(params["min_confidence"])
            except ValueError:
                raise ValidationError({"min_confidence": ["must be a number from 0 to 1"]}) from None
        return export_request(
            project=project,
            fmt=params.get("format", ""),
            min_confidence=confidence,
            include_gold=flag_parameter(request, "include_gold") or False,
            since=params.get("since") or None,
            question=params.get("question") or None,
        )


class SummarySerializer(serializers.Serializer):
    format = serializers.CharField()
    tasks = serializers.IntegerField(help_text="Tasks selected (completed, with a consensus).")
    by_label = serializers.DictField(child=serializers.IntegerField(), help_text="Tasks by consensus label.")
    rows = serializers.IntegerField(help_text="Rows the export will have.")
    excluded = serializers.DictField(child=serializers.IntegerField(), help_text="Tasks the format leaves out.")
    next_since = serializers.CharField(help_text="Pass as ?since= to pull only what completes after this export.")


class ProjectExportView(ExportView):
    @extend_schema(
        operation_id="export",
        parameters=EXPORT_PARAMETERS,
        responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.BINARY},
        tags=["export"],
    )
    def get(self, request: Request, project_id: int) -> Any:
        export = self.export(request, project_id)
        output = request.query_params.get("output", "jsonl")
        if output not in ("jsonl", "csv"):
            raise ValidationError({"output": ["must be jsonl or csv"]})
        if output == "csv" and export.fmt not in CSV_FORMATS:
            raise ValidationError({"output": [f"CSV is offered for {', '.join(CSV_FORMATS)}"]})
        # The counts (rows, what the format leaves out) are at /export/summary: counting first would hold back the
        # first byte. The cursor for the next pull costs nothing.
        chunks = csv_chunks(export) if output == "csv" else jsonl_chunks(export)
        content_type = "text/csv; charset=utf-8" if output == "csv" else "application/x-ndjson; charset=utf-8"
        response = StreamingHttpResponse(chunks, content_type=content_type)
        filename = f"project-{export.project.pk}-{export.fmt}.{output}"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["X-Concord-Next-Since"] = export_cursor(export)
        response["Cache-Control"] = "no-store"
        return response


class ProjectExportSummaryView(ExportView):
    @extend_schema(
        operation_id="export_summary", parameters=EXPORT_PARAMETERS, responses=SummarySerializer, tags=["export"]
    )
    def get(self, request: Request, project_id: int) -> Response:
        export = self.export(request, project_id)
        summary = export_summary(export)
        return Response(
            {
                "format": export.fmt,
                "tasks": summary.tasks,
                "by_label": summary.by_label,
                "rows": summary.rows,
                "excluded": summary.excluded,
                "next_since": summary.next_since,
            }
        )
