"""The one base class of every API view: authentication, the organization scope, throttling, error shapes.

Views get the caller's organization from :attr:`TenantAPIView.caller` and reach tenant rows only through
``labeling.tenancy``'s ``access_*`` helpers or ``for_org`` querysets: another organization's object and a missing
one both answer 404. A Django ``ValidationError`` raised by a service becomes a 400 naming its fields.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
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
from labeling.models import Project
from labeling.tenancy import access_project


class TenantAPIView(APIView):
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


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus services' Django ``ValidationError`` as a 400 with the same ``{field: [messages]}``."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = ValidationError(detail=detail)
    return exception_handler(exc, context)
