"""The one base class of every API view: authentication, the organization scope, throttling, error shapes.

Views get the caller's organization from :attr:`TenantAPIView.caller` and reach tenant rows only through
``labeling.tenancy``'s ``access_*`` helpers or ``for_org`` querysets: another organization's object and a missing
one both answer 404. A Django ``ValidationError`` raised by a service becomes a 400 naming its fields.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.json import strict_constant
from rest_framework.views import APIView, exception_handler

from api.auth import (
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
from labeling.validation import MAX_JSON_DEPTH


class BoundedJSONParser(JSONParser):
    """DRF reads a JSON body straight from the request stream, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked
    on ``request.body`` and form data) never applies: a larger body is refused here before it is read, with
    Django's ``RequestDataTooBig``, which ``pages.site.bad_request`` answers with 413.

    DRF's parser is Python's ``json``, which recurses once per level: a body nested a few thousand levels deep
    raised ``RecursionError`` (a 500). Here the body is read by orjson first, whose parser stops at 1,024 levels,
    and its depth is measured without recursion; nesting deeper than the imports' limit (``MAX_JSON_DEPTH``) is a
    400 naming the body. The value itself is then read as DRF reads it (Python's ``json``: whole numbers exactly,
    NaN refused), which at that depth cannot recurse too far."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:  # a body sent without its length
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            text = data.decode(get_encoding(parser_context))  # DRF's: a text charset only (no bz2_codec bombs)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        try:
            _json_depth_check(orjson.loads(text))
            measured = True
        except orjson.JSONDecodeError as error:
            if "depth" in str(error):
                raise _too_deep() from None
            measured = False  # not JSON to orjson (NaN, a lone surrogate, bad syntax): json gives DRF's answer
        try:
            value = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except RecursionError:  # orjson stopped at something else before it reached the depth
            raise _too_deep() from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        if not measured:
            _json_depth_check(value)
        return value


def _too_deep() -> ParseError:
    return ParseError({"body": [f"is JSON nested more than {MAX_JSON_DEPTH} levels deep"]})


def _json_depth_check(value: Any) -> None:
    """``ParseError`` naming the body if ``value`` nests objects and arrays more than ``MAX_JSON_DEPTH`` levels deep
    (the top level is 1); walked with a stack, not recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            children = item.values()
        elif type(item) is list:
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children if type(child) is dict or type(child) is list)


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


_FLAG_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def flag_parameter(request: Request, name: str) -> bool | None:
    """The query parameter ``name`` as a boolean, or ``None`` when it is absent. Every flag of the API takes the
    same words, in any case: true/false, 1/0, yes/no; anything else (an empty value too) is a 400 naming it."""
    value = request.query_params.get(name)
    if value is None:
        return None
    flag = _FLAG_WORDS.get(value.lower())
    if flag is None:
        raise ValidationError({name: ["must be true or false"]})
    return flag


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
