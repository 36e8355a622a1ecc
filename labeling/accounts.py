"""Accounts: the e-mail identity of a person, the base of links sent by e-mail, and password-reset e-mails.

E-mail addresses are compared as Django's password reset compares them: Unicode NFKC, then casefolded (an address
typed in fullwidth or upper-case letters is the same address). Links in e-mails start at ``SITE_URL`` when it is
set (production: the public address behind any proxy), else at the address the request came to.

A password reset is sent by a job on commit (``labeling.jobs.send_password_reset_job``): the request that asks
for it does the same work, and takes as long, whether or not the address has an account.
"""

from __future__ import annotations

import email.policy
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.core.mail import EmailMessage
from django.http import HttpRequest
from django.template.loader import render_to_string

PASSWORD_RESET_SUBJECT = "registration/password_reset_subject.txt"
PASSWORD_RESET_EMAIL = "registration/password_reset_email.txt"


def email_normalise(email: str) -> str:
    """The comparable form of an address: stripped, NFKC, casefolded."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def email_of_account(user: Any) -> str:
    """The normalised e-mail of an account ("" when it has none)."""
    return email_normalise(getattr(user, get_user_model().get_email_field_name(), "") or "")


def site_url(request: HttpRequest | None) -> str:
    """Where links sent by e-mail point: ``SITE_URL``, else the scheme and host of ``request`` (no trailing
    slash). Without either, the development address."""
    if settings.SITE_URL:
        return settings.SITE_URL.rstrip("/")
    if request is not None:
        return f"{request.scheme}://{request.get_host()}"
    return "http://127.0.0.1:8000"


class LinkEmailMessage(EmailMessage):
    """A plain-text e-mail whose lines are kept whole up to RFC 5322's 998 characters: a link longer than 78
    characters (every signed one) would otherwise go out quoted-printable, cut with ``=`` at the end of each line,
    which a mail client decodes but a person copying it from the console (``make demo``) cannot."""

    def message(self, *, policy: email.policy.Policy = email.policy.default) -> Any:
        return super().message(policy=policy.clone(max_line_length=998))


class _PasswordResetMailer(PasswordResetForm):
    """Django's reset form as the job uses it: it picks the accounts and writes the link; the message keeps the
    link whole (:class:`LinkEmailMessage`)."""

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        LinkEmailMessage(subject, body, from_email, [to_email]).send()


def password_reset_send(*, email: str, base_url: str) -> int:
    """E-mail a password-reset link to every active account with a usable password whose address is ``email``
    (Django's ``PasswordResetForm`` picks them and writes the link); the number of accounts mailed. A mail server
    that does not answer raises, so that the job retries."""
    form = _PasswordResetMailer(data={"email": email})
    if not form.is_valid():
        return 0
    parts = urlsplit(base_url)
    accounts = len(list(form.get_users(form.cleaned_data["email"])))
    form.save(
        domain_override=parts.netloc,
        use_https=parts.scheme == "https",
        subject_template_name=PASSWORD_RESET_SUBJECT,
        email_template_name=PASSWORD_RESET_EMAIL,
        from_email=settings.DEFAULT_FROM_EMAIL,
    )
    return accounts
