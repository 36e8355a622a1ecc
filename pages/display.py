"""What an annotator sees of a task: "Response 1 / Response 2 / …", in the order drawn for their lease.

The page never says A or B, and never shows model names; a pairwise choice is mapped back to A/B here, on the
server; a form page maps the response numbers pressed back to the task's own indexes with the order it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labeling.questions import SHORTCUT_KEYS, QuestionSpec, shown_order

# (choice posted by the page, button text, key)
PAIRWISE_CHOICES: tuple[tuple[str, str, str], ...] = (
    ("first", "Response 1 is better", "1"),
    ("second", "Response 2 is better", "2"),
    ("tie", "Tie", "3"),
    ("both_bad", "Both bad", "4"),
)


def pairwise_sides(payload: dict[str, Any], *, a_left: bool) -> tuple[str, str]:
    """The texts shown as Response 1 and Response 2."""
    a, b = payload.get("response_a", ""), payload.get("response_b", "")
    return (a, b) if a_left else (b, a)


def pairwise_label(choice: str, *, a_left: bool) -> str | None:
    """The stored label (a, b, tie, both_bad) for the button pressed, or ``None`` for an unknown choice."""
    if choice == "first":
        return "a" if a_left else "b"
    if choice == "second":
        return "b" if a_left else "a"
    if choice in ("tie", "both_bad"):
        return choice
    return None


# ---------------------------------------------------------------------------------------------------- form pages

ROLE_TITLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class ShownResponse:
    """A response as the page shows it: its number on screen (1-based) and its index in the task (0-based)."""

    number: int
    index: int
    text: str


def conversation(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The payload's ``messages`` as turns (role, its title), or an empty list when it has none."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [
        {
            "role": str(m.get("role", "")),
            "title": ROLE_TITLES.get(str(m.get("role")), "Message"),
            "content": str(m.get("content", "")),
        }
        for m in messages
        if isinstance(m, dict)
    ]


def response_texts(payload: dict[str, Any]) -> list[str]:
    """The task's responses by their own index: ``responses``, or A then B for a pairwise task."""
    responses = payload.get("responses")
    if isinstance(responses, list):
        return [str(r.get("text", "")) if isinstance(r, dict) else str(r) for r in responses]
    if "response_a" in payload:
        return [str(payload.get("response_a", "")), str(payload.get("response_b", ""))]
    return []


def display_order(*, n_responses: int, a_left: bool | None, lease_order: list[int] | None) -> list[int]:
    """The task's response indexes in the order shown: the lease's permutation (K responses), A/B by ``a_left``
    (pairwise), else as stored."""
    if n_responses == 0:
        return []
    if lease_order is not None:
        return shown_order(lease_order, n_responses) or []
    if n_responses == 2 and a_left is not None:
        return [0, 1] if a_left else [1, 0]
    return list(range(n_responses))


def shown_responses(payload: dict[str, Any], order: list[int]) -> list[ShownResponse]:
    texts = response_texts(payload)
    return [ShownResponse(number=place + 1, index=index, text=texts[index]) for place, index in enumerate(order)]


def _rating_values(spec: QuestionSpec) -> list[dict[str, str]]:
    assert spec.min is not None and spec.max is not None
    values = list(range(spec.min, spec.max + 1))
    if spec.min >= 0 and spec.max <= 9:
        keys = [str(value) for value in values]  # the digit is the rating itself
    elif len(values) <= 9:
        keys = list(SHORTCUT_KEYS[: len(values)])  # the digit is the place on the scale
    else:
        keys = [""] * len(values)  # typed into a number box
    return [
        {"value": str(value), "key": key, "anchor": spec.anchors.get(str(value), "")}
        for value, key in zip(values, keys, strict=True)
    ]


def form_questions(questions: list[QuestionSpec], *, n_responses: int) -> list[dict[str, Any]]:
    """The questions as the form page renders them, with the keys each answers to."""
    shown = []
    for number, spec in enumerate(questions, start=1):
        item: dict[str, Any] = {"spec": spec, "number": number, "keys": []}
        if spec.kind == "pairwise":
            item["options"] = [{"value": v, "title": t, "key": k} for v, t, k in PAIRWISE_CHOICES]
        elif spec.kind in ("choice", "multi_choice"):
            item["options"] = [
                # An option's shortcut is a digit by default (``labeling.questions``); empty means none was wanted.
                {"value": o.value, "title": o.title, "key": o.shortcut}
                for o in spec.options
            ]
        elif spec.kind == "rating":
            item["values"] = _rating_values(spec)
            item["keyed"] = all(value["key"] for value in item["values"])
        elif spec.kind in ("ranking", "rewrite"):
            item["numbers"] = list(range(1, n_responses + 1))
        shown.append(item)
    return shown
