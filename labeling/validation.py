"""Validation of task payloads and labels, shared by the admin, the services and (later) the import API.

Pure functions: they take plain data and return a ``{field: message}`` dict of problems, empty when valid, so
every caller can report each bad field precisely (a form error, an import row's field, a 400 body).
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT_CHARS = 200_000
PAIRWISE_REQUIRED = ("prompt", "response_a", "response_b")
PAIRWISE_OPTIONAL = ("model_a", "model_b")
CATEGORICAL_REQUIRED = ("text",)
LABEL_VALUE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def payload_errors(kind: str, payload: Any) -> dict[str, str]:
    """Problems with ``payload`` for a project of ``kind`` (``pairwise`` or ``categorical``)."""
    if kind == "pairwise":
        required, optional = PAIRWISE_REQUIRED, PAIRWISE_OPTIONAL
    elif kind == "categorical":
        required, optional = CATEGORICAL_REQUIRED, ()
    else:
        return {"kind": f"unknown project kind {kind!r}"}
    if not isinstance(payload, dict):
        return {"payload": f"must be a JSON object with {', '.join(required)}; got {type(payload).__name__}"}
    errors: dict[str, str] = {}
    for field in required:
        value = payload.get(field)
        if value is None:
            errors[field] = "is required"
        elif not isinstance(value, str):
            errors[field] = f"must be text, not {type(value).__name__}"
        elif not value.strip():
            errors[field] = "must not be empty"
        elif len(value) > MAX_TEXT_CHARS:
            errors[field] = f"is longer than {MAX_TEXT_CHARS:,} characters"
    for field in optional:
        value = payload.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200):
            errors[field] = "must be non-empty text of at most 200 characters when given"
    for field in sorted(set(payload) - set(required) - set(optional)):
        errors[field] = f"is not a {kind} field (allowed: {', '.join(required + optional)}); put extra data in meta"
    return errors


def label_value_error(value: Any) -> str | None:
    """Label values are short identifiers (``a``, ``both_bad``, ``toxic``) so that exports stay stable."""
    if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
        return "must be 1-64 characters: lower-case letters, digits, '_' or '-', starting with a letter or digit"
    return None
