"""``POST /api/v1/projects/{id}/tasks/import``: stream a JSON Lines, JSON array or CSV body (or a multipart upload
named ``file``) into ``labeling.imports.tasks_import``."""

from __future__ import annotations

from typing import IO

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from labeling.api.base import TenantAPIView
from labeling.imports import FORMATS, MODES, ON_ERROR, tasks_import

CONTENT_TYPES = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/jsonlines": "jsonl",
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
}
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}


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


IMPORT_PARAMETERS = [
    OpenApiParameter("format", str, enum=list(FORMATS), description="Overrides the Content-Type / file name."),
    OpenApiParameter("mode", str, enum=list(MODES), description="upsert: update tasks whose external_id exists."),
    OpenApiParameter("on_error", str, enum=list(ON_ERROR), description="skip: write the good rows anyway."),
]


class TaskImportView(TenantAPIView):
    @extend_schema(
        operation_id="tasks_import",
        parameters=IMPORT_PARAMETERS,
        request={
            "application/x-ndjson": OpenApiTypes.BINARY,
            "application/json": {"type": "array", "items": {"type": "object"}},
            "text/csv": OpenApiTypes.BINARY,
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
        },
        responses={200: ImportReportSerializer, 400: ImportReportSerializer, 413: OpenApiTypes.OBJECT},
        tags=["tasks"],
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = self.project(project_id)
        try:
            stream, fmt = import_source(request)
        except PayloadTooLarge:
            limit = settings.IMPORT_MAX_BYTES
            return Response({"detail": f"The file is larger than {limit:,} bytes."}, status=413)
        report = tasks_import(
            project=project,
            stream=stream,
            fmt=fmt,
            mode=request.query_params.get("mode", "create"),
            on_error=request.query_params.get("on_error", "abort"),
        )
        code = status.HTTP_200_OK if report.committed else status.HTTP_400_BAD_REQUEST
        return Response(report.as_dict(), status=code)
