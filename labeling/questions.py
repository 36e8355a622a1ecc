"""A project's form: its ordered questions, and the answers a judgment gives them.

Pure functions over plain data (``QuestionSpec``), shared by the services (the submit, the judgments import), the
API and the admin, so that every caller names the bad question the same way. A project without stored questions has
one implied question (pairwise A/B, or one of the categorical labels) whose answer is the judgment's label; its
judgments keep ``answers`` empty and its exports do not change.

Answer values, by kind (``K`` is the task's number of responses; indexes are 0-based, in the task's own order):

- ``pairwise``: ``a``, ``b``, ``tie`` or ``both_bad``;
- ``choice``: one option value; ``multi_choice``: a list of distinct option values;
- ``rating``: an integer from ``min`` to ``max``; with ``per_response``, a list of ``K`` such integers;
- ``ranking``: a permutation of ``0 … K-1``, best first; with ``allow_ties``, an element may be a list of indexes
  tied at that place (``[[0, 2], 1]``);
- ``text``: a string of ``min_length`` to ``max_length`` characters;
- ``rewrite``: ``{"text": …, "source": i}`` — the improved answer, and the response it started from (``null``: written
  from scratch).

The primary question's answer also fills the judgment's ``label`` (``primary_label``): the pairwise or choice value,
the rating as text, or a ranking's best response index as text (with ties: the lowest index of the first place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

from labeling.validation import MAX_RESPONSES, label_value_error, text_problem

PAIRWISE_VALUES: Final = ("a", "b", "tie", "both_bad")
KINDS: Final = ("pairwise", "choice", "multi_choice", "rating", "ranking", "text", "rewrite")
PRIMARY_KINDS: Final = ("pairwise", "choice", "rating", "ranking")
#: The project kind a primary question makes (the payload shape and the label column's meaning).
PROJECT_KIND_OF_PRIMARY: Final = {
    "pairwise": "pairwise",
    "choice": "categorical",
    "rating": "rating",
    "ranking": "ranking",
}
#: Project kinds whose tasks carry a list of responses, shown in a per-lease random order.
K_RESPONSE_KINDS: Final = ("ranking", "rating")
MAX_QUESTIONS: Final = 20
MAX_OPTIONS: Final = 50
RATING_BOUNDS: Final = (-100, 100)
RATING_MAX_STEPS: Final = 101
TEXT_MAX_CHARS: Final = 20_000
KEY_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SHORTCUT_KEYS: Final = "123456789"


@dataclass(frozen=True)
class Option:
    value: str
    title: str
    shortcut: str = ""


@dataclass(frozen=True)
class QuestionSpec:
    """One question of a form, as plain data (``labeling.models.Question`` rows become these)."""

    key: str
    kind: str
    title: str
    help: str = ""
    required: bool = True
    primary: bool = False
    options: tuple[Option, ...] = ()
    min: int | None = None
    max: int | None = None
    anchors: dict[str, str] = field(default_factory=dict)
    per_response: bool = False
    allow_ties: bool = False
    min_length: int = 0
    max_length: int = TEXT_MAX_CHARS

    @property
    def option_values(self) -> tuple[str, ...]:
        return tuple(option.value for option in self.options)

    def as_dict(self) -> dict[str, Any]:
        """The question as the API shows it: only the settings of its kind."""
        data: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "help": self.help,
            "required": self.required,
            "primary": self.primary,
        }
        if self.kind in ("choice", "multi_choice"):
            data["options"] = [
                {"value": option.value, "title": option.title, "shortcut": option.shortcut} for option in self.options
            ]
        elif self.kind == "rating":
            data |= {"min": self.min, "max": self.max, "anchors": dict(self.anchors), "per_response": self.per_response}
        elif self.kind == "ranking":
            data["allow_ties"] = self.allow_ties
        elif self.kind in ("text", "rewrite"):
            data |= {"min_length": self.min_length, "max_length": self.max_length}
        return data


# ---------------------------------------------------------------------------------------------------- the form


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _options(raw: Any, errors: dict[str, str], where: str) -> tuple[Option, ...]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_OPTIONS:
        errors[f"{where}.options"] = f"must be a list of 2 to {MAX_OPTIONS} options"
        return ()
    options: list[Option] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = {"value": item, "title": item}
        if not isinstance(item, dict) or set(item) - {"value", "title", "shortcut"}:
            errors[f"{where}.options[{index}]"] = "must be an object with value, title and an optional shortcut"
            return ()
        value, title = item.get("value"), item.get("title", item.get("value"))
        if (problem := label_value_error(value)) is not None:
            errors[f"{where}.options[{index}].value"] = problem
            return ()
        if not isinstance(title, str) or not title.strip() or len(title) > 100 or text_problem(title):
            errors[f"{where}.options[{index}].title"] = "must be non-empty text of at most 100 characters"
            return ()
        shortcut = item.get("shortcut", SHORTCUT_KEYS[index] if index < len(SHORTCUT_KEYS) else "")
        if not isinstance(shortcut, str) or len(shortcut) > 1:
            errors[f"{where}.options[{index}].shortcut"] = "must be one character (or empty)"
            return ()
        options.append(Option(value, title.strip(), shortcut))
    values = [option.value for option in options]
    if len(set(values)) != len(values):
        errors[f"{where}.options"] = "each option needs a value of its own (a value is given twice)"
    shortcuts = [option.shortcut for option in options if option.shortcut]
    if len(set(shortcuts)) != len(shortcuts):
        errors[f"{where}.options"] = "each option needs a shortcut of its own (a shortcut is given twice)"
    return tuple(options)


_SETTINGS: Final = {
    "pairwise": set(),
    "choice": {"options"},
    "multi_choice": {"options"},
    "rating": {"min", "max", "anchors", "per_response"},
    "ranking": {"allow_ties"},
    "text": {"min_length", "max_length"},
    "rewrite": {"min_length", "max_length"},
}
_COMMON: Final = {"key", "kind", "title", "help", "required", "primary"}


def _question(raw: Any, index: int, errors: dict[str, str]) -> QuestionSpec | None:
    where = f"questions[{index}]"
    if not isinstance(raw, dict):
        errors[where] = "must be an object with key, kind and title"
        return None
    kind = raw.get("kind")
    if kind not in KINDS:
        errors[f"{where}.kind"] = f"must be one of {', '.join(KINDS)}"
        return None
    unknown = sorted(set(raw) - _COMMON - _SETTINGS[kind])
    if unknown:
        errors[f"{where}.{unknown[0]}"] = f"is not a setting of a {kind} question"
        return None
    before = len(errors)
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors[f"{where}.key"] = "must be 1-40 characters: lower-case letters, digits or '_', starting with a letter"
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200 or text_problem(title):
        errors[f"{where}.title"] = "must be non-empty text of at most 200 characters"
    help_text = raw.get("help", "")
    if not isinstance(help_text, str) or len(help_text) > 2000 or text_problem(help_text):
        errors[f"{where}.help"] = "must be text of at most 2,000 characters"
    flags = {name: raw.get(name, default) for name, default in (("required", True), ("primary", False))}
    flags |= {name: raw.get(name, False) for name in ("per_response", "allow_ties")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            errors[f"{where}.{name}"] = "must be true or false"
    if flags["primary"] is True and kind not in PRIMARY_KINDS:
        errors[f"{where}.primary"] = f"a primary question is one of {', '.join(PRIMARY_KINDS)}"
    options: tuple[Option, ...] = ()
    if kind in ("choice", "multi_choice"):
        options = _options(raw.get("options"), errors, where)
    low, high = raw.get("min", 1), raw.get("max")
    if kind == "rating":
        if not _int(low) or not RATING_BOUNDS[0] <= low <= RATING_BOUNDS[1]:
            errors[f"{where}.min"] = f"must be a whole number from {RATING_BOUNDS[0]} to {RATING_BOUNDS[1]}"
        elif flags["primary"] is True and low < 0:
            # A primary rating's values become the project's labels, which are identifiers (no minus sign).
            errors[f"{where}.min"] = "must be 0 or more on the primary question (its ratings become the labels)"
        elif not _int(high) or not low < high <= RATING_BOUNDS[1] or high - low + 1 > RATING_MAX_STEPS:
            errors[f"{where}.max"] = f"is required: a whole number above min, at most {RATING_BOUNDS[1]}"
        anchors = raw.get("anchors", {})
        if not isinstance(anchors, dict) or not all(
            isinstance(text, str) and len(text) <= 100 and not text_problem(text) for text in anchors.values()
        ):
            errors[f"{where}.anchors"] = "must map ratings to texts of at most 100 characters"
        elif _int(low) and _int(high) and not all(_rating_key(k, low, high) for k in anchors):
            errors[f"{where}.anchors"] = f"keys must be ratings from {low} to {high}"
        if flags["primary"] is True and flags["per_response"] is True:
            errors[f"{where}.per_response"] = "a primary rating asks one rating per task (rate each response in "
            "another question)"
    min_length, max_length = raw.get("min_length", 0), raw.get("max_length", TEXT_MAX_CHARS)
    if kind in ("text", "rewrite"):
        if not _int(min_length) or not 0 <= min_length <= TEXT_MAX_CHARS:
            errors[f"{where}.min_length"] = f"must be a whole number from 0 to {TEXT_MAX_CHARS:,}"
        elif not _int(max_length) or not max(min_length, 1) <= max_length <= TEXT_MAX_CHARS:
            errors[f"{where}.max_length"] = f"must be a whole number from min_length (and 1) to {TEXT_MAX_CHARS:,}"
    if len(errors) > before:
        return None
    return QuestionSpec(
        key=key,
        kind=kind,
        title=title.strip(),
        help=help_text,
        required=flags["required"],
        primary=flags["primary"],
        options=options,
        min=low if kind == "rating" else None,
        max=high if kind == "rating" else None,
        anchors={str(k): v for k, v in raw.get("anchors", {}).items()} if kind == "rating" else {},
        per_response=flags["per_response"],
        allow_ties=flags["allow_ties"],
        min_length=min_length if kind in ("text", "rewrite") else 0,
        max_length=max_length if kind in ("text", "rewrite") else TEXT_MAX_CHARS,
    )


def _rating_key(key: Any, low: int, high: int) -> bool:
    try:
        return low <= int(key) <= high and str(int(key)) == str(key)
    except (TypeError, ValueError):
        return False


def questions_parse(raw: Any, *, kind: str | None = None) -> tuple[list[QuestionSpec], dict[str, str]]:
    """The form from the API's or the admin's ``questions`` list, and every problem with it by its place
    (``questions[2].max``). ``kind``, when the caller also gave the project's kind, must be the primary's."""
    errors: dict[str, str] = {}
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_QUESTIONS:
        return [], {"questions": f"must be a list of 1 to {MAX_QUESTIONS} questions"}
    specs = [spec for index, item in enumerate(raw) if (spec := _question(item, index, errors)) is not None]
    if errors:
        return [], errors
    keys = [spec.key for spec in specs]
    duplicate = next((key for key in keys if keys.count(key) > 1), None)
    if duplicate is not None:
        errors["questions"] = f"each question needs a key of its own ({duplicate!r} is given twice)"
    primaries = [spec for spec in specs if spec.primary]
    if len(primaries) != 1:
        errors["questions"] = (
            f"exactly one question must be primary (one of {', '.join(PRIMARY_KINDS)}); {len(primaries)} are"
        )
    elif not primaries[0].required:
        errors["questions"] = f"the primary question {primaries[0].key!r} must be required"
    else:
        derived = PROJECT_KIND_OF_PRIMARY[primaries[0].kind]
        if kind is not None and kind != derived:
            errors["kind"] = f"must be {derived!r}, the kind of the primary question {primaries[0].key!r}"
        if any(spec.kind == "pairwise" for spec in specs) and derived != "pairwise":
            errors["questions"] = "a pairwise question needs a pairwise project (its primary question is pairwise)"
        if derived == "categorical" and (
            bad := next((s for s in specs if s.kind == "ranking" or (s.kind == "rating" and s.per_response)), None)
        ):
            errors["questions"] = f"{bad.key!r} needs responses, which a categorical task does not have"
    return ([] if errors else specs), errors


def response_count(payload: dict[str, Any]) -> int:
    """How many responses a task shows: its ``responses``, 2 for a pairwise task, none for a categorical one."""
    responses = payload.get("responses")
    if isinstance(responses, list):
        return len(responses)
    return 2 if "response_a" in payload else 0


def shown_order(lease_order: list[int] | None, n_responses: int) -> list[int] | None:
    """The response indexes in the order a lease shows them: its permutation of 0-8, restricted to the task's."""
    return None if lease_order is None else [index for index in lease_order if index < n_responses]


def primary_of(questions: list[QuestionSpec]) -> QuestionSpec:
    return next(spec for spec in questions if spec.primary)


def primary_labels(spec: QuestionSpec) -> list[tuple[str, str, str]]:
    """The project's label rows (value, title, shortcut) that the primary question's answers map to."""
    if spec.kind == "pairwise":
        return [(value, value, "") for value in PAIRWISE_VALUES]
    if spec.kind == "choice":
        return [(option.value, option.title, option.shortcut) for option in spec.options]
    if spec.kind == "rating":
        assert spec.min is not None and spec.max is not None
        return [(str(value), spec.anchors.get(str(value), str(value)), "") for value in range(spec.min, spec.max + 1)]
    return [(str(index), f"Response {index + 1} best", "") for index in range(MAX_RESPONSES)]


# ---------------------------------------------------------------------------------------------------- answers


def _ranking_problem(value: Any, n: int, allow_ties: bool) -> str | None:
    if not isinstance(value, list):
        return f"must be a list of the {n} response indexes (0 to {n - 1}), best first"
    flat: list[Any] = []
    for place in value:
        if isinstance(place, list) and allow_ties:
            if not place:
                return "has an empty place"
            flat.extend(place)
        else:
            flat.append(place)
    if not all(_int(index) for index in flat) or sorted(flat) != list(range(n)):
        ties = " (a place may be a list of tied indexes)" if allow_ties else ""
        return f"must be a permutation of the response indexes 0 to {n - 1}, best first{ties}"
    return None


def _text_problem(value: Any, spec: QuestionSpec) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value.strip()) < spec.min_length or (spec.required and not value.strip()):
        return f"must have at least {max(spec.min_length, 1)} characters"
    if len(value) > spec.max_length:
        return f"must have at most {spec.max_length:,} characters"
    return text_problem(value)


def answer_problem(spec: QuestionSpec, value: Any, *, n_responses: int) -> str | None:
    """Why ``value`` is not an answer to ``spec`` on a task with ``n_responses`` responses, or ``None``."""
    kind = spec.kind
    if kind == "pairwise":
        return None if value in PAIRWISE_VALUES else f"must be one of {', '.join(PAIRWISE_VALUES)}"
    if kind == "choice":
        ok = isinstance(value, str) and value in spec.option_values
        return None if ok else f"must be one of {', '.join(spec.option_values)}"
    if kind == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "must be a list of option values"
        if len(set(value)) != len(value) or not set(value) <= set(spec.option_values):
            return f"must be distinct values among {', '.join(spec.option_values)}"
        return "must choose at least one option" if spec.required and not value else None
    if kind == "rating":
        assert spec.min is not None and spec.max is not None
        in_range = f"a whole number from {spec.min} to {spec.max}"
        if spec.per_response:
            if not isinstance(value, list) or len(value) != n_responses:
                return f"must be a list of {n_responses} ratings, one per response, each {in_range}"
            bad = next((i for i, v in enumerate(value) if not _int(v) or not spec.min <= v <= spec.max), None)
            return None if bad is None else f"response {bad}: must be {in_range}"
        return None if _int(value) and spec.min <= value <= spec.max else f"must be {in_range}"
    if kind == "ranking":
        return _ranking_problem(value, n_responses, spec.allow_ties)
    if kind == "text":
        return _text_problem(value, spec)
    if not isinstance(value, dict) or set(value) - {"text", "source"} or "text" not in value:
        return 'must be {"text": …, "source": response index or null}'
    source = value.get("source")
    if source is not None and (not _int(source) or not 0 <= source < n_responses):
        return f"source must be a response index from 0 to {n_responses - 1}, or null"
    return _text_problem(value["text"], spec)


def answers_errors(questions: list[QuestionSpec], answers: Any, *, n_responses: int) -> dict[str, str]:
    """Every problem with ``answers`` (``{question key: value}``), each named ``answers.<key>``."""
    if not isinstance(answers, dict):
        return {"answers": "must be an object mapping each question's key to its answer"}
    errors: dict[str, str] = {}
    known = {spec.key for spec in questions}
    for key in sorted(set(answers) - known, key=str):
        errors[f"answers.{key}"] = f"is not a question of this project (questions: {', '.join(sorted(known))})"
    for spec in questions:
        value = answers.get(spec.key)
        if value is None:
            if spec.required:
                errors[f"answers.{spec.key}"] = "is required"
        elif (problem := answer_problem(spec, value, n_responses=n_responses)) is not None:
            errors[f"answers.{spec.key}"] = problem
    return errors


def primary_label(spec: QuestionSpec, value: Any) -> str:
    """The ``label`` column's value for the primary question's (valid) answer."""
    if spec.kind == "ranking":
        first = value[0]
        return str(min(first) if isinstance(first, list) else first)
    return str(value)


def answers_clean(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers as stored: unanswered optional questions dropped."""
    return {key: value for key, value in answers.items() if value is not None}
