"""Invitations: list, create, read, resend, revoke (``/api/v1/invitations/``).

A full API key or an admin's session invites; read-only keys and managers' sessions list and read. The link is only
ever e-mailed, never answered here, and the answer to an invitation does not depend on whether the address has an
account anywhere (``labeling.invitations``).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import StrictSerializer, TenantAPIView, parameters_check
from labeling.accounts import site_url
from labeling.invitations import invitation_create, invitation_resend, invitation_revoke
from labeling.models import Invitation, InvitationStatus, Role
from labeling.tenancy import access_object, membership_for_request


class InvitationCreateSerializer(StrictSerializer):
    email = serializers.CharField(max_length=320, help_text="The address invited (compared NFKC, casefolded).")
    role = serializers.ChoiceField(choices=Role.choices, required=False, default=Role.ANNOTATOR)


class InvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    status = serializers.ChoiceField(choices=InvitationStatus.choices)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_sent_at = serializers.DateTimeField(allow_null=True)
    send_count = serializers.IntegerField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class InvitationListSerializer(serializers.Serializer):
    results = InvitationSerializer(many=True)


def _output(invitation: Invitation) -> dict[str, Any]:
    fields = ("id", "email", "role", "created_at", "expires_at", "last_sent_at", "send_count")
    return InvitationSerializer(
        {
            **{name: getattr(invitation, name) for name in fields},
            "status": invitation.status_at(timezone.now()),
            "accepted_at": invitation.accepted_at,
            "revoked_at": invitation.revoked_at,
        }
    ).data


class InvitationAPIView(TenantAPIView):
    """Writes need a full key or an organization admin's session (managers read, as in the admin)."""

    def inviter_check(self) -> None:
        """Before any id is read: a manager's session is refused alike for any invitation, or none."""
        if self.caller.api_key is not None:
            return  # OrganizationAccess already refused a read-only key's write
        membership = membership_for_request(self.request._request)
        if membership is None or membership.role != Role.ADMIN:
            raise PermissionDenied("Only the organization's admins invite people.")

    def invitation(self, invitation_id: Any) -> Invitation:
        """The caller's invitation; 404 when it is missing or another organization's."""
        return access_object(Invitation.objects.all(), self.caller.organization_id, invitation_id)


class InvitationListView(InvitationAPIView):
    @extend_schema(operation_id="invitations_list", responses=InvitationListSerializer, tags=["invitations"])
    def get(self, request: Request) -> Response:
        parameters_check(request)
        rows = Invitation.objects.for_org(self.caller.organization_id).order_by("-created_at", "-id")
        return Response({"results": [_output(invitation) for invitation in rows]})

    @extend_schema(
        operation_id="invitations_create",
        request=InvitationCreateSerializer,
        responses={201: InvitationSerializer},
        tags=["invitations"],
        description="Invite an e-mail address with a role: the person receives a link to join, valid once, for "
        "INVITATION_MAX_AGE_DAYS days. The answer is the same whether or not the address has an account.",
    )
    def post(self, request: Request) -> Response:
        self.inviter_check()
        parameters_check(request)
        data = InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = invitation_create(
            organization=self.caller.organization,
            email=data.validated_data["email"],
            role=data.validated_data["role"],
            invited_by=self.caller.user,
            base_url=site_url(request._request),
        )
        return Response(_output(invitation), status=status.HTTP_201_CREATED)


class InvitationDetailView(InvitationAPIView):
    @extend_schema(operation_id="invitations_retrieve", responses=InvitationSerializer, tags=["invitations"])
    def get(self, request: Request, invitation_id: int) -> Response:
        parameters_check(request)
        return Response(_output(self.invitation(invitation_id)))


class InvitationResendView(InvitationAPIView):
    @extend_schema(
        operation_id="invitations_resend",
        request=None,
        responses=InvitationSerializer,
        tags=["invitations"],
        description="E-mail a new link (older links stop working) valid for the full period again. Refused for an "
        "accepted or revoked invitation, and within a minute of the last e-mail.",
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        self.inviter_check()
        invitation = self.invitation(invitation_id)
        parameters_check(request)
        invitation = invitation_resend(invitation=invitation, base_url=site_url(request._request))
        return Response(_output(invitation))


class InvitationRevokeView(InvitationAPIView):
    @extend_schema(
        operation_id="invitations_revoke",
        request=None,
        responses=InvitationSerializer,
        tags=["invitations"],
        description="End the invitation: its link stops working at once. Revoking twice changes nothing.",
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        self.inviter_check()
        invitation = self.invitation(invitation_id)
        parameters_check(request)
        return Response(_output(invitation_revoke(invitation=invitation)))
