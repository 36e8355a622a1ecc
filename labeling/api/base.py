"""The one base class of every API view: authentication, the organization scope, throttling, error shapes.

Views get the caller's organization from :attr:`TenantAPIView.caller` and reach tenant rows only through
``labeling.tenancy``'s ``access_*`` helpers or ``for_org`` querysets: another organization's object and a missing
one both answer 404. A Django ``ValidationError`` raised by a service becomes a 400 naming its fields.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from labeling.api.auth import (
    ApiKeyAuthentication,
    Caller,
    CallerRateThrottle,
    CsrfSessionAuthentication,
    OrganizationAccess,
    caller_for,
)
from labeling.middleware import OUTAGE_ERRORS, RETRY_AFTER_SECONDS, outage_log, outage_message
from labeling.models import Project
from labeling.tenancy import access_project


class BoundedJSONParser(JSONParser):
    """DRF reads a JSON body straight from the request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked
    on ``request.body`` and form data) never applies: a larger body is refused here before it is read, with
    Django's ``RequestDataTooBig``, which ``labeling.views.bad_request`` answers with 413."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        return super().parse(stream, media_type, parser_context)


class TenantAPIView(APIView):
    parser_classes = [BoundedJSONParser]
    authentication_classes = [ApiKeyAuthentication, CsrfSessionAuthentication]
    permission_classes = [OrganizationAccess]
    throttle_classes = [CallerRateThrottle]

    @property
    def caller(self) -> Caller:
        caller = caller_for(self.request)
        assert caller is not None, "OrganizationAccess runs first"
        return caller

    def project(self, project_id: Any) -> Project:
        """The caller's project ``project_id``; 404 when it is missing or another organization's."""
        return access_project(self.caller.organization_id, project_id)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know (a typo must not be silently ignored): 400 naming each of them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({name: ["is not a field of this request"] for name in unknown})
        return super().to_internal_value(data)


def parameters_check(request: Request, allowed: tuple[str, ...] = ()) -> None:
    """Query parameters come from an allow-list: anything else (an ORM path such as ``annotator__password``, an
    ``ordering``, a typo) is a 400 naming it, never silently ignored or passed to a filter."""
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ValidationError({name: ["is not a parameter of this endpoint"] for name in unknown})


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus services' Django ``ValidationError`` as a 400 with the same ``{field: [messages]}``, and
    a dependency outage (the database; Redis or the broker where the work cannot go on without them, such as
    queueing an import) as a 503 with ``Retry-After`` (``labeling.middleware``)."""
    if isinstance(exc, OUTAGE_ERRORS):
        outage_log(context["request"], exc)
        body = {"detail": outage_message(exc), "retry_after": RETRY_AFTER_SECONDS}
        return Response(body, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = ValidationError(detail=detail)
    return exception_handler(exc, context)
