"""What an annotator sees of a pairwise task: "Response 1 / Response 2", in the order drawn for their lease.

The page never says A or B, and never shows model names; the choice is mapped back to A/B here, on the server.
"""

from __future__ import annotations

from typing import Any

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
