"""Forms of the account pages: creating an account through an invitation, asking for a password reset."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction
from django.http import HttpRequest

from labeling.accounts import site_url
from labeling.jobs import send_password_reset_job
from labeling.queueing import job_enqueue

logger = logging.getLogger("concord.security")


class AccountFromInvitationForm(forms.Form):
    """The invitee's name and password; the e-mail address is the invited one."""

    name = forms.CharField(max_length=301, strip=True)
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(render_value=False))
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(render_value=False))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password2") and cleaned["password1"] != cleaned["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class PasswordResetRequestForm(PasswordResetForm):
    """Django's reset form, except that ``save`` only queues the job that looks the address up and mails the link:
    the request does the same work whether or not the address has an account."""

    def save(self, *args: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        email = self.cleaned_data["email"]
        base_url = site_url(request)

        def enqueue() -> None:
            # Not job_enqueue_on_commit: its warning would log the address asked for.
            if not job_enqueue(send_password_reset_job, (email, base_url)):
                logger.warning("a password-reset e-mail was not queued (the broker is unavailable)")

        transaction.on_commit(enqueue)
