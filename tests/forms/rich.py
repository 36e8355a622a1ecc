"""The rich form of issue 17: a 4-response ranking (primary), three per-response ratings, a rationale and a
rewrite; shared by the form tests, the browser test and the benchmark."""

from __future__ import annotations

from typing import Any

RICH_QUESTIONS: list[dict[str, Any]] = [
    {"key": "rank", "kind": "ranking", "title": "Rank the responses, best first", "primary": True},
    *(
        {
            "key": aspect,
            "kind": "rating",
            "title": f"{aspect.title()} of each response",
            "min": 1,
            "max": 7,
            "anchors": {"1": "Very poor", "7": "Excellent"},
            "per_response": True,
        }
        for aspect in ("helpfulness", "honesty", "harmlessness")
    ),
    {"key": "why", "kind": "text", "title": "Why is the best one best?", "min_length": 10, "max_length": 2000},
    {"key": "better", "kind": "rewrite", "title": "Rewrite the best response into a better one", "required": False},
]


def rich_task(index: int, k: int = 4) -> dict[str, Any]:
    return {
        "external_id": f"rich-{index}",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": f"Question {index}: how do I reverse a list in Python?"},
            {"role": "assistant", "content": "Do you mean in place?"},
            {"role": "user", "content": "Either is fine."},
        ],
        "responses": [
            {"text": f"Answer {r} to {index}: use `reversed(xs)` or\n\n```python\nxs[::-1]\n```", "model": f"m{r}"}
            for r in range(k)
        ],
        "meta": {"domain": "code"},
    }


def rich_answers(best_first: list[int], ratings: list[int] | None = None) -> dict[str, Any]:
    if ratings is None:
        ratings = [7 - best_first.index(response) for response in range(len(best_first))]
    return {
        "rank": best_first,
        "helpfulness": ratings,
        "honesty": ratings,
        "harmlessness": ratings,
        "why": "The best one is correct and shows both ways.",
        "better": {"text": "Use xs[::-1] for a copy, or xs.reverse() in place.", "source": best_first[0]},
    }
