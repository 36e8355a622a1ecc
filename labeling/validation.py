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
MAX_RESPONSES = 9
MAX_TURNS = 200
ROLES = ("system", "user", "assistant")
PAYLOAD_FIELDS = {
    "pairwise": ("prompt", "messages", "response_a", "response_b", "model_a", "model_b"),
    "categorical": ("text", "messages"),
    "ranking": ("prompt", "messages", "responses"),
    "rating": ("prompt", "messages", "responses"),
}
LABEL_VALUE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _text_error(value: Any) -> str | None:
    if value is None:
        return "is required"
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_TEXT_CHARS:
        return f"is longer than {MAX_TEXT_CHARS:,} characters"
    return text_problem(value)


def _model_error(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > 200):
        return "must be non-empty text of at most 200 characters when given"
    return None if value is None else text_problem(value)


def messages_errors(messages: Any, field: str = "messages") -> dict[str, str]:
    """A conversation: a list of ``{role, content}`` turns, roles ``system``, ``user``, ``assistant``."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_TURNS:
        return {field: f"must be a list of 1 to {MAX_TURNS} turns, each {{role, content}}"}
    for index, turn in enumerate(messages):
        if not isinstance(turn, dict) or set(turn) != {"role", "content"}:
            return {f"{field}[{index}]": "must be an object with exactly role and content"}
        if turn["role"] not in ROLES:
            return {f"{field}[{index}].role": f"must be one of {', '.join(ROLES)}"}
        if (problem := _text_error(turn["content"])) is not None:
            return {f"{field}[{index}].content": problem}
    if messages[-1]["role"] == "assistant" and len(messages) == 1:
        return {field: "must include the user's turn, not only an assistant's"}
    return {}


def responses_errors(responses: Any, *, least: int) -> dict[str, str]:
    """``responses``: a list of ``least`` to 9 ``{text, model?}``."""
    if not isinstance(responses, list) or not least <= len(responses) <= MAX_RESPONSES:
        return {"responses": f"must be a list of {least} to {MAX_RESPONSES} responses, each {{text, model}}"}
    for index, response in enumerate(responses):
        if not isinstance(response, dict) or "text" not in response or set(response) - {"text", "model"}:
            return {f"responses[{index}]": "must be an object with text and an optional model"}
        if (problem := _text_error(response["text"])) is not None:
            return {f"responses[{index}].text": problem}
        if (problem := _model_error(response.get("model"))) is not None:
            return {f"responses[{index}].model": problem}
    return {}


def _context_errors(payload: dict[str, Any], text_field: str) -> dict[str, str]:
    """Exactly one of ``text_field`` (a string) or ``messages`` (a conversation)."""
    has_text, has_messages = payload.get(text_field) is not None, payload.get("messages") is not None
    if has_text and has_messages:
        return {"messages": f"give either {text_field} or messages, not both"}
    if has_messages:
        return messages_errors(payload["messages"])
    error = _text_error(payload.get(text_field))
    return {} if error is None else {text_field: error if has_text else "is required (or give messages)"}


def payload_fields(kind: str) -> tuple[str, ...]:
    """Every field a task of ``kind`` may have."""
    return PAYLOAD_FIELDS.get(kind, ())


def payload_errors(kind: str, payload: Any) -> dict[str, str]:
    """Problems with ``payload`` for a project of ``kind`` (pairwise, categorical, ranking or rating)."""
    if kind not in PAYLOAD_FIELDS:
        return {"kind": f"unknown project kind {kind!r}"}
    allowed = PAYLOAD_FIELDS[kind]
    if not isinstance(payload, dict):
        needs = "text or messages" if kind == "categorical" else "prompt or messages, and the responses"
        return {"payload": f"must be a JSON object with {needs}; got {type(payload).__name__}"}
    errors: dict[str, str] = {}
    if kind == "categorical":
        errors |= _context_errors(payload, "text")
    else:
        errors |= _context_errors(payload, "prompt")
    if kind == "pairwise":
        for field in ("response_a", "response_b"):
            if (problem := _text_error(payload.get(field))) is not None:
                errors[field] = problem
        for field in PAIRWISE_OPTIONAL:
            if (problem := _model_error(payload.get(field))) is not None:
                errors[field] = problem
    elif kind in ("ranking", "rating"):
        errors |= responses_errors(payload.get("responses"), least=2 if kind == "ranking" else 1)
    for field in sorted(set(payload) - set(allowed)):
        errors[field] = f"is not a {kind} field (allowed: {', '.join(allowed)}); put extra data in meta"
    return errors


def gold_value(kind: str, gold: Any) -> Any:
    """A row's ``gold`` as the label it is stored as: a rating or a ranking's best index may come as a number, a
    ranking's gold as the whole order (its first place counts). Anything else is returned as given, to be refused
    by the label check."""
    if kind in ("rating", "ranking") and isinstance(gold, int) and not isinstance(gold, bool):
        return str(gold)
    if kind == "ranking" and isinstance(gold, list) and gold:
        first = gold[0]
        if isinstance(first, int) and not isinstance(first, bool):
            return str(first)
    return gold


def gold_label_error(kind: str, gold: Any, payload: Any, label_values: set[str]) -> str | None:
    """Why ``gold`` cannot be this task's known answer: not one of the project's labels, or (a ranking) not one of
    the task's responses; ``None`` when it can (or is absent)."""
    if gold is None:
        return None
    if gold not in label_values:
        return f"{gold!r} is not one of this project's labels"
    return gold_response_error(kind, gold, payload)


def gold_response_error(kind: str, gold: Any, payload: Any) -> str | None:
    """A ranking's gold names its best response: an index of this task's responses."""
    if kind != "ranking" or not isinstance(gold, str) or not isinstance(payload, dict):
        return None
    responses = payload.get("responses")
    if isinstance(responses, list) and gold.isdigit() and int(gold) >= len(responses):
        return f"response index {gold} is not one of this task's {len(responses)} responses (0 to {len(responses) - 1})"
    return None


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
