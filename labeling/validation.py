"""Validation of task payloads and labels, shared by the admin, the services and (later) the import API.

Pure functions: they take plain data and return a ``{field: message}`` dict of problems, empty when valid, so
every caller can report each bad field precisely (a form error, an import row's field, a 400 body).
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_TEXT_CHARS = 200_000
# JSON that PostgreSQL's jsonb stores and orjson (the import's COPY, the exports) writes back exactly: no NUL
# character (jsonb refuses \u0000, text columns refuse NUL), no unpaired surrogate (not UTF-8), whole numbers
# within orjson's range (it would round a larger one to a float, or fail to write it), finite numbers only
# (Python's json reads NaN and Infinity, which are not JSON), and a sane depth (orjson writes at most 254 levels).
MAX_JSON_DEPTH = 64
JSON_INT_RANGE = (-(2**63), 2**64 - 1)
NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
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
        elif (problem := text_problem(value)) is not None:
            errors[field] = problem
    for field in optional:
        value = payload.get(field)
        if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200):
            errors[field] = "must be non-empty text of at most 200 characters when given"
        elif value is not None and (problem := text_problem(value)) is not None:
            errors[field] = problem
    for field in sorted(set(payload) - set(required) - set(optional)):
        errors[field] = f"is not a {kind} field (allowed: {', '.join(required + optional)}); put extra data in meta"
    return errors


def label_value_error(value: Any) -> str | None:
    """Label values are short identifiers (``a``, ``both_bad``, ``toxic``) so that exports stay stable."""
    if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
        return "must be 1-64 characters: lower-case letters, digits, '_' or '-', starting with a letter or digit"
    return None


def text_problem(text: str) -> str | None:
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and _SURROGATE.search(text):
        return "contains an unpaired UTF-16 surrogate (not valid Unicode)"
    return None


def _scalar_problem(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return text_problem(value)
    if kind is int and not JSON_INT_RANGE[0] <= value <= JSON_INT_RANGE[1]:
        return f"has a whole number outside -2^63 to 2^64-1 ({value}): send it as text"
    if kind is float and not math.isfinite(value):
        return "has NaN, Infinity or a number out of range: JSON numbers must be finite"
    return None


def json_value_problem(value: Any) -> str | None:
    """Why a decoded JSON value cannot be stored and returned exactly (see ``MAX_JSON_DEPTH`` above), or ``None``.
    Run on every row of an import: containers are walked without recursion, scalars checked by type."""
    if type(value) is not dict and type(value) is not list:
        return _scalar_problem(value)
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"is nested more than {MAX_JSON_DEPTH} levels deep"
        if type(item) is dict:
            for key in item:
                if (problem := text_problem(key)) is not None:
                    return f"has a key that {problem}"
            item = item.values()
        for child in item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif kind is not bool and child is not None and (problem := _scalar_problem(child)) is not None:
                return problem
    return None
