"""``POST /api/v1/projects/{id}/tasks/import``: stream a JSON Lines, JSON array or CSV body (or a multipart upload
named ``file``) into ``exchange.task_import.tasks_import``."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import TenantAPIView, flag_parameter, parameters_check
from exchange.import_jobs import import_job_create, import_job_progress
from exchange.judgment_import import judgments_import, predictions_import
from exchange.reading import EXTENSIONS, FORMATS, MODES, ON_ERROR, ImportReport, ImportTimeout, import_seconds_estimate
from exchange.task_import import tasks_import
from labeling.models import ImportJob
from labeling.tenancy import access_object

CONTENT_TYPES = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
}


class PayloadTooLarge(Exception):
    pass


def import_source(request: Request) -> tuple[IO[bytes], str]:
    """The body to read and its format: ``?format=``, else the upload's file name, else the Content-Type."""
    django_request = request._request
    length = int(django_request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.IMPORT_MAX_BYTES:
        raise PayloadTooLarge
    chosen = request.query_params.get("format")
    content_type = (django_request.content_type or "").lower()
    if content_type == "multipart/form-data":
        upload = django_request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": ["A multipart import sends the file in a field named 'file'."]})
        name = (upload.name or "").lower()
        guessed = next((fmt for ext, fmt in EXTENSIONS.items() if name.endswith(ext)), None)
        fmt = chosen or guessed or CONTENT_TYPES.get((upload.content_type or "").lower())
        stream: IO[bytes] = upload.file
    else:
        fmt = chosen or CONTENT_TYPES.get(content_type)
        stream = django_request  # read as a stream: the body is never loaded whole
    if fmt not in FORMATS:
        raise ValidationError(
            {"format": [f"Send JSON Lines, a JSON array or CSV (?format={'|'.join(FORMATS)}, or its Content-Type)."]}
        )
    return stream, fmt


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based record number (0: the file as a whole).")
    field = serializers.CharField()
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    committed = serializers.BooleanField(help_text="Whether anything was written (false: nothing was).")
    mode = serializers.CharField()
    on_error = serializers.CharField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField(help_text="Rows whose external_id already existed (left as they were).")
    skipped = serializers.IntegerField(help_text="Bad rows left out (on_error=skip).")
    error_count = serializers.IntegerField()
    errors = ImportErrorSerializer(many=True, help_text="The first 1,000 problems.")
    errors_truncated = serializers.BooleanField()


class ImportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="tasks, annotations or predictions")
    status = serializers.CharField(help_text="queued, running, done or failed")
    size = serializers.IntegerField(help_text="Bytes received.")
    bytes_read = serializers.IntegerField()
    rows = serializers.IntegerField(help_text="Rows read so far.")
    progress = serializers.FloatField(help_text="0 to 1.")
    report = ImportReportSerializer(allow_null=True, help_text="The import's report once it is done.")
    error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    job = serializers.URLField(required=False, help_text="In the 202 that queues an import: where to follow the job.")


IMPORT_PARAMETERS = [
    OpenApiParameter(
        "async",
        bool,
        description="1: run as a background job (202 with its URL); 0: in the request (503 if it runs past the "
        "server's limit, nothing written). Without it, the server decides by the work the file holds.",
    ),
    OpenApiParameter("format", str, enum=list(FORMATS), description="Overrides the Content-Type / file name."),
    OpenApiParameter("mode", str, enum=list(MODES), description="upsert: update tasks whose external_id exists."),
    OpenApiParameter("on_error", str, enum=list(ON_ERROR), description="skip: write the good rows anyway."),
]


class ImportView(TenantAPIView):
    """Reads the body as a stream and answers with the import's report (200 when written, 400 when not), or spools
    it and answers 202 with the job's URL when the work is too much for a request (see :meth:`in_request`).

    An import in the request that runs past ``IMPORT_SYNC_MAX_SECONDS`` is rolled back and answered with 503 naming
    ``?async=1``: the client gets an answer before the web server's timeout could cut the connection."""

    kind = "tasks"
    parameters: tuple[str, ...] = ("format", "on_error", "async")

    def import_options(self, request: Request) -> dict[str, Any]:
        # Not ``options``: that name is the view's handler of HTTP OPTIONS (shadowing it made OPTIONS a 500).
        return {"on_error": request.query_params.get("on_error", "abort")}

    def run(
        self, project: Any, stream: IO[bytes], fmt: str, options: dict[str, Any], time_limit: float
    ) -> ImportReport:
        raise NotImplementedError

    def in_request(self, asked: bool | None, length: int) -> bool:
        """Whether to import in the request: ``?async=0`` / ``?async=1`` decide; otherwise the estimated work
        (``import_seconds_estimate``) must be within ``IMPORT_SYNC_SECONDS`` and the body within
        ``IMPORT_ASYNC_BYTES``."""
        if asked is not None:
            return not asked
        estimate = import_seconds_estimate(kind=self.kind, size=length)
        return estimate <= settings.IMPORT_SYNC_SECONDS and length <= settings.IMPORT_ASYNC_BYTES

    def post(self, request: Request, project_id: int) -> Response:
        project = self.project(project_id)
        parameters_check(request, self.parameters)
        asked = flag_parameter(request, "async")
        try:
            stream, fmt = import_source(request)
        except PayloadTooLarge:
            limit = settings.IMPORT_MAX_BYTES
            return Response({"detail": f"The file is larger than {limit:,} bytes."}, status=413)
        options = self.import_options(request) | {"format": fmt}
        length = int(request._request.META.get("CONTENT_LENGTH") or 0)
        if not self.in_request(asked, length):
            try:
                job = import_job_create(project=project, kind=self.kind, stream=stream, options=options)
            except OverflowError:
                limit = settings.IMPORT_MAX_BYTES
                return Response({"detail": f"The file is larger than {limit:,} bytes."}, status=413)
            url = request.build_absolute_uri(reverse("api-import-job", args=[job.pk]))
            return Response({"job": url, **import_job_progress(job)}, status=status.HTTP_202_ACCEPTED)
        limit = settings.IMPORT_SYNC_MAX_SECONDS
        try:
            report = self.run(project, stream, fmt, options, limit)
        except ImportTimeout:
            detail = (
                f"The import did not finish within {limit:,} seconds, the longest an import may run in the request; "
                "nothing was written. Send it again with ?async=1 to import it as a background job."
            )
            return Response({"detail": detail, "committed": False}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        code = status.HTTP_200_OK if report.committed else status.HTTP_400_BAD_REQUEST
        return Response(report.as_dict(), status=code)


class ImportJobView(TenantAPIView):
    @extend_schema(operation_id="import_job_retrieve", responses=ImportJobSerializer, tags=["tasks"])
    def get(self, request: Request, job_id: int) -> Response:
        parameters_check(request)
        job = access_object(ImportJob.objects.all(), self.caller.organization_id, job_id)
        return Response(import_job_progress(job))


_TEXT = {"type": "string"}
_PREDICTIONS = {
    "oneOf": [{"type": "number"}, {"type": "object", "additionalProperties": {"type": "number"}}],
    "description": 'Pairwise: P(A better) or {"a": p}; categorical: {label: p}.',
}
# The records of a JSON array (JSON Lines and CSV rows have the same fields; exchange.reading documents them). Any
# other field is refused.
TASK_ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["external_id"],
    "properties": {
        "external_id": {"type": "string", "description": "Unique in the project (text or a whole number)."},
        **{name: _TEXT for name in ("prompt", "response_a", "response_b", "model_a", "model_b", "text")},
        "meta": {"type": "object"},
        "gold": {"type": "string", "description": "The known answer (one of the project's labels)."},
        "requires": {"type": "array", "items": _TEXT, "description": "Qualification codes."},
        "predictions": _PREDICTIONS,
    },
}
JUDGMENT_ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["external_id", "annotator"],
    "properties": {
        "external_id": _TEXT,
        "annotator": {"type": "string", "description": "An e-mail address, or the other tool's annotator id."},
        "label": {
            "type": "string",
            "description": "Required for projects without questions; with questions it comes from the primary "
            "answer (when given, it must be that value).",
        },
        "answers": {
            "type": "object",
            "description": "Projects with questions (required there): {question key: answer}, checked against the "
            "row's task as a submit is (errors name answers.<key>). In CSV, a JSON object.",
        },
        "a_left": {"type": "boolean"},
        "strength": {"type": "integer"},
        "seconds": {"type": "number"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
PREDICTION_ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["external_id", "predictions"],
    "properties": {"external_id": _TEXT, "predictions": _PREDICTIONS},
}


def import_body(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "application/x-ndjson": OpenApiTypes.BINARY,
        "application/json": {"type": "array", "items": row},
        "text/csv": OpenApiTypes.BINARY,
        "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
    }


class ImportTimeoutSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why: the import ran past IMPORT_SYNC_MAX_SECONDS; send it with ?async=1.")
    committed = serializers.BooleanField(help_text="Always false: nothing was written.")


IMPORT_RESPONSES = {
    200: ImportReportSerializer,
    202: ImportJobSerializer,
    400: ImportReportSerializer,
    413: OpenApiTypes.OBJECT,
    503: ImportTimeoutSerializer,
}


class TaskImportView(ImportView):
    kind = "tasks"
    parameters = ("format", "on_error", "mode", "async")

    def import_options(self, request: Request) -> dict[str, Any]:
        return super().import_options(request) | {"mode": request.query_params.get("mode", "create")}

    def run(
        self, project: Any, stream: IO[bytes], fmt: str, options: dict[str, Any], time_limit: float
    ) -> ImportReport:
        return tasks_import(
            project=project,
            stream=stream,
            fmt=fmt,
            mode=options["mode"],
            on_error=options["on_error"],
            time_limit=time_limit,
        )

    @extend_schema(
        operation_id="tasks_import",
        parameters=IMPORT_PARAMETERS,
        request=import_body(TASK_ROW),
        responses=IMPORT_RESPONSES,
        tags=["tasks"],
    )
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)


class JudgmentImportView(ImportView):
    kind = "annotations"
    parameters = ("format", "on_error", "create_annotators", "async")

    def import_options(self, request: Request) -> dict[str, Any]:
        create = flag_parameter(request, "create_annotators") or False
        return super().import_options(request) | {"create_annotators": create}

    def run(
        self, project: Any, stream: IO[bytes], fmt: str, options: dict[str, Any], time_limit: float
    ) -> ImportReport:
        return judgments_import(
            project=project,
            stream=stream,
            fmt=fmt,
            on_error=options["on_error"],
            create_annotators=options["create_annotators"],
            time_limit=time_limit,
        )

    @extend_schema(
        operation_id="annotations_import",
        parameters=[
            *(parameter for parameter in IMPORT_PARAMETERS if parameter.name != "mode"),
            OpenApiParameter(
                "create_annotators",
                bool,
                description="An annotator who is not a member becomes this organization's own pseudonymous "
                "annotator (named by the file's identifier; never an existing account).",
            ),
        ],
        request=import_body(JUDGMENT_ROW),
        responses=IMPORT_RESPONSES,
        tags=["judgments"],
    )
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)


class PredictionImportView(ImportView):
    kind = "predictions"

    def run(
        self, project: Any, stream: IO[bytes], fmt: str, options: dict[str, Any], time_limit: float
    ) -> ImportReport:
        return predictions_import(
            project=project, stream=stream, fmt=fmt, on_error=options["on_error"], time_limit=time_limit
        )

    @extend_schema(
        operation_id="predictions_import",
        parameters=[parameter for parameter in IMPORT_PARAMETERS if parameter.name != "mode"],
        request=import_body(PREDICTION_ROW),
        responses=IMPORT_RESPONSES,
        tags=["tasks"],
    )
    def post(self, request: Request, project_id: int) -> Response:
        return super().post(request, project_id)
