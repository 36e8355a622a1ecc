"""Realistic, deterministic demo content for ``seed_demo``: LLM chat comparisons and customer support tickets.

Pure Python, no Django: every item comes from a seeded ``random.Random``, so the same seed always yields the same
items (the command relies on that to recognise what it created on an earlier run). Nothing is downloaded.

Pairwise items put a thorough, correct answer next to a weaker one (terse, evasive, padded or factually wrong),
randomly placed as A or B. Gold items are only taken from pairs whose weaker answer is unambiguously wrong, so the
known answer is beyond dispute. Tickets are filled-in templates per triage label; gold only from unambiguous ones.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

MODELS: tuple[str, ...] = ("atlas-7b", "borealis-13b", "cirrus-70b", "dune-8x7b", "ember-3b")
# Relative chance that a model wrote the better answer of a pair (bigger models win more often).
MODEL_STRENGTH: dict[str, int] = {"atlas-7b": 3, "borealis-13b": 4, "cirrus-70b": 8, "dune-8x7b": 6, "ember-3b": 1}
GOLD_SHARE = 0.05
SOURCE = "seed_demo"
MUL = "\N{MULTIPLICATION SIGN}"

TICKET_LABELS: tuple[tuple[str, str], ...] = (
    ("billing", "Billing"),
    ("bug", "Bug report"),
    ("feature", "Feature request"),
    ("account", "Account access"),
    ("other", "Other"),
)

# How the weaker answer of a pair falls short, and how often each kind is picked.
WEAKER_STYLES: dict[str, int] = {"wrong": 5, "terse": 3, "verbose": 2, "evasive": 1}


# --- Items ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairItem:
    """One pairwise comparison: a prompt, two responses, which one is better and (for gold) the known answer."""

    external_id: str
    prompt: str
    response_a: str
    response_b: str
    model_a: str
    model_b: str
    better: str  # "a" or "b": the thorough, correct response
    weaker_style: str  # how the other response falls short (see WEAKER_STYLES)
    topic: str
    template: str
    gold_label: str | None = None

    @property
    def payload(self) -> dict[str, str]:
        return {
            "prompt": self.prompt,
            "response_a": self.response_a,
            "response_b": self.response_b,
            "model_a": self.model_a,
            "model_b": self.model_b,
        }

    @property
    def meta(self) -> dict[str, Any]:
        return {"topic": self.topic, "template": self.template, "source": SOURCE}


@dataclass(frozen=True)
class TicketItem:
    """One support ticket and the label it should get."""

    external_id: str
    text: str
    label: str
    channel: str
    plan: str
    template: str
    ambiguous: bool = False
    gold_label: str | None = None

    @property
    def payload(self) -> dict[str, str]:
        return {"text": self.text}

    @property
    def meta(self) -> dict[str, Any]:
        return {"topic": "support", "channel": self.channel, "plan": self.plan, "source": SOURCE}


@dataclass(frozen=True)
class _Scenario:
    """What one prompt template produced: the prompt, a good answer and the ways to answer it worse."""

    topic: str
    prompt: str
    good: str
    terse: str
    wrong: str | None = None
    gold_safe: bool = False  # ``wrong`` is unambiguously incorrect, so the pair can serve as gold


_Template = Callable[[random.Random], _Scenario]
_TEMPLATES: list[tuple[str, int, _Template]] = []


def _template(name: str, weight: int = 1) -> Callable[[_Template], _Template]:
    def register(function: _Template) -> _Template:
        _TEMPLATES.append((name, weight, function))
        return function

    return register


def _py(code: str) -> str:
    """A fenced Python code block (Markdown)."""
    return f"```python\n{code.strip()}\n```"


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _num(value: float) -> str:
    """A number without a trailing ``.0``."""
    return f"{value:g}" if float(value).is_integer() else f"{value:.2f}".rstrip("0").rstrip(".")


# --- Coding -------------------------------------------------------------------------------------------------
@_template("python_reverse_list", 2)
def _reverse_list(rng: random.Random) -> _Scenario:
    name = rng.choice(["numbers", "scores", "items", "prices", "queue", "readings"])
    values = [str(rng.randint(1, 99)) for _ in range(rng.randint(4, 6))]
    literal = "[" + ", ".join(values) + "]"
    backwards = "[" + ", ".join(reversed(values)) + "]"
    prompt = rng.choice(
        [
            f"How do I reverse a list in Python? I have `{name} = {literal}` and need it backwards.",
            f"What's the cleanest way to get `{name} = {literal}` in reverse order in Python without changing the "
            "original list?",
            f"python: how to reverse a list?? `{name} = {literal}`",
        ]
    )
    good = (
        "There are three common ways, depending on whether you want a new list or to change the existing one.\n\n"
        "**1. Slicing: returns a new list, the original is unchanged**\n\n"
        + _py(f"{name} = {literal}\nreversed_{name} = {name}[::-1]\nprint(reversed_{name})  # {backwards}")
        + "\n\n**2. `reversed()`: returns an iterator, handy in loops**\n\n"
        + _py(f"for value in reversed({name}):\n    print(value)")
        + "\n\nWrap it in `list(...)` if you need an actual list.\n\n"
        "**3. `list.reverse()`: reverses in place and returns `None`**\n\n"
        + _py(f"{name}.reverse()\nprint({name})  # {backwards}")
        + "\n\nSince you want to keep the original, use slicing (`[::-1]`)."
    )
    wrong = (
        "Use the built-in `reverse()` method, which returns a reversed copy of the list:\n\n"
        + _py(f"reversed_{name} = {name}.reverse()\nprint(reversed_{name})  # {backwards}")
        + f"\n\nThe original `{name}` stays exactly as it was."
    )
    return _Scenario("coding", prompt, good, f"`{name}[::-1]`", wrong, gold_safe=True)


@_template("python_palindrome")
def _palindrome(rng: random.Random) -> _Scenario:
    example = rng.choice(
        ["A man, a plan, a canal: Panama", "Never odd or even", "Was it a car or a cat I saw?", "Step on no pets"]
    )
    prompt = rng.choice(
        [
            "Write a Python function that checks whether a string is a palindrome, ignoring case, spaces and "
            f'punctuation. It should return True for "{example}".',
            f'I need an `is_palindrome(text)` function in Python for an interview. "{example}" should count as a '
            "palindrome.",
        ]
    )
    good = (
        "Normalise the text first (keep only letters and digits, lower-cased), then compare it with its reverse:\n\n"
        + _py(
            "def is_palindrome(text: str) -> bool:\n"
            '    cleaned = "".join(ch.lower() for ch in text if ch.isalnum())\n'
            "    return cleaned == cleaned[::-1]\n\n\n"
            f'print(is_palindrome("{example}"))  # True\n'
            'print(is_palindrome("Hello"))  # False'
        )
        + "\n\n- `str.isalnum()` drops spaces and punctuation.\n"
        "- `str.lower()` makes the check case-insensitive.\n"
        "- `[::-1]` reverses the string.\n\n"
        "It runs in O(n) time. In an interview you can mention a two-pointer version that avoids building the "
        "reversed copy and uses O(1) extra space."
    )
    wrong = (
        "Strings have a `reverse()` method, so this is a one-liner:\n\n"
        + _py("def is_palindrome(text):\n    return text == text.reverse()")
        + "\n\nThis handles capital letters and spaces automatically."
    )
    terse = _py("def is_palindrome(s):\n    return s == s[::-1]")
    return _Scenario("coding", prompt, good, terse, wrong, gold_safe=True)


@_template("python_read_csv")
def _read_csv(rng: random.Random) -> _Scenario:
    filename, column = rng.choice(
        [
            ("sales.csv", "revenue"),
            ("customers.csv", "email"),
            ("grades.csv", "final_score"),
            ("inventory.csv", "quantity"),
            ("survey_results.csv", "rating"),
        ]
    )
    prompt = f"How can I read `{filename}` in Python and print every value of the `{column}` column?"
    good = (
        "With only the standard library, use `csv.DictReader`, which maps each row to the header names:\n\n"
        + _py(
            "import csv\n\n"
            f'with open("{filename}", newline="", encoding="utf-8") as f:\n'
            "    reader = csv.DictReader(f)\n"
            "    for row in reader:\n"
            f'        print(row["{column}"])'
        )
        + "\n\nA few notes:\n\n"
        '- `newline=""` is what the `csv` docs recommend, so quoted fields with line breaks are read correctly.\n'
        "- Every value is a string; convert with `int()` or `float()` if you need numbers.\n"
        "- If you already use pandas, this is shorter:\n\n"
        + _py(f'import pandas as pd\n\ndf = pd.read_csv("{filename}")\nprint(df["{column}"].tolist())')
    )
    wrong = (
        "Just open the file and split it on commas:\n\n"
        + _py(f'data = open("{filename}").split(",")\nprint(data["{column}"])')
        + "\n\nThis gives you the column directly without needing any library."
    )
    return _Scenario("coding", prompt, good, f"Use pandas: `pd.read_csv('{filename}')`.", wrong, gold_safe=True)


@_template("python_dedupe")
def _dedupe(rng: random.Random) -> _Scenario:
    pool = ["python", "django", "sql", "css", "html", "rust", "go", "java"]
    picked = rng.sample(pool, 4)
    tags = [*picked, picked[1], picked[0]]
    literal = "[" + ", ".join(f'"{t}"' for t in tags) + "]"
    result = "[" + ", ".join(f'"{t}"' for t in picked) + "]"
    prompt = f"How do I remove duplicates from a list in Python but keep the original order? e.g. `tags = {literal}`"
    good = (
        "Use `dict.fromkeys()`: dictionary keys are unique and (since Python 3.7) keep insertion order:\n\n"
        + _py(f"tags = {literal}\nunique_tags = list(dict.fromkeys(tags))\nprint(unique_tags)  # {result}")
        + "\n\nIf the items are not hashable (for example lists), fall back to a loop with a `seen` list, or "
        "convert each item to a tuple first.\n\nAvoid `list(set(tags))` here: a set does **not** preserve order."
    )
    wrong = "Convert it to a set and back. Sets keep the order in which items were added:\n\n" + _py(
        f"tags = {literal}\nunique_tags = list(set(tags))\nprint(unique_tags)  # {result}, always"
    )
    return _Scenario("coding", prompt, good, "`list(dict.fromkeys(tags))`", wrong, gold_safe=True)


@_template("python_word_count")
def _word_count(rng: random.Random) -> _Scenario:
    top = rng.choice([3, 5, 10, 20])
    filename = rng.choice(["speech.txt", "book.txt", "reviews.txt", "notes.txt"])
    prompt = f"Write a Python script that prints the {top} most common words in a text file called `{filename}`."
    good = (
        "`collections.Counter` does the counting; a regular expression splits the text into words:\n\n"
        + _py(
            "import re\n"
            "from collections import Counter\n\n"
            f'with open("{filename}", encoding="utf-8") as f:\n'
            '    words = re.findall(r"[a-z\']+", f.read().lower())\n\n'
            f"for word, count in Counter(words).most_common({top}):\n"
            '    print(f"{word}: {count}")'
        )
        + "\n\nLower-casing first means *The* and *the* are counted together. To skip filler words, filter "
        'them out before counting, e.g. `words = [w for w in words if w not in {"the", "and", "a", "of"}]`.'
    )
    return _Scenario("coding", prompt, good, "Use `collections.Counter` and `most_common()`.")


@_template("python_fibonacci")
def _fibonacci(rng: random.Random) -> _Scenario:
    n = rng.choice([10, 15, 20, 25, 30, 40, 50])
    a, b = 0, 1
    for _ in range(n):
        a, b = a + b, a
    prompt = rng.choice(
        [
            f"Write a Python function that returns the nth Fibonacci number. It has to be fast for n = {n}.",
            f"fib(n) in python, needs to handle n={n} quickly",
        ]
    )
    good = (
        "An iterative loop runs in O(n) time and O(1) memory, so large *n* is no problem:\n\n"
        + _py(
            "def fib(n: int) -> int:\n"
            '    """Return the nth Fibonacci number, with fib(0) == 0 and fib(1) == 1."""\n'
            "    if n < 0:\n"
            '        raise ValueError("n must be non-negative")\n'
            "    a, b = 0, 1\n"
            "    for _ in range(n):\n"
            "        a, b = b, a + b\n"
            "    return a\n\n\n"
            f"print(fib({n}))  # {a}"
        )
        + "\n\nThe textbook recursive version (`fib(n - 1) + fib(n - 2)`) recomputes the same values over and over "
        "and takes exponential time; if you prefer recursion, add `@functools.cache`."
    )
    terse = _py("def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)")
    return _Scenario("coding", prompt, good, terse)


@_template("python_merge_dicts")
def _merge_dicts(rng: random.Random) -> _Scenario:
    key, default, override = rng.choice(
        [("font_size", 12, 14), ("timeout", 30, 60), ("retries", 3, 5), ("page_size", 20, 50)]
    )
    other, other_value = rng.choice([("theme", '"light"'), ("language", '"en"'), ("debug", "False")])
    defaults = f'{{"{other}": {other_value}, "{key}": {default}}}'
    user = f'{{"{key}": {override}}}'
    merged = f'{{"{other}": {other_value}, "{key}": {override}}}'
    prompt = f"What's the best way to merge two dicts in Python 3? I have `defaults = {defaults}` and `user = {user}`."
    good = (
        "On Python 3.9+ use the `|` operator; values from the right-hand dict win:\n\n"
        + _py(f"defaults = {defaults}\nuser = {user}\n\nmerged = defaults | user\nprint(merged)  # {merged}")
        + "\n\nOther options:\n\n"
        "- `{**defaults, **user}` does the same and works on Python 3.5+.\n"
        "- `defaults.update(user)` (or `defaults |= user`) changes `defaults` in place instead of making a new dict."
    )
    wrong = (
        "Dictionaries support `+` just like lists:\n\n"
        + _py(f"merged = defaults + user\nprint(merged)  # {merged}")
        + "\n\nThis has worked in every version of Python 3."
    )
    return _Scenario("coding", prompt, good, "`{**defaults, **user}`", wrong, gold_safe=True)


@_template("python_prints_none")
def _prints_none(rng: random.Random) -> _Scenario:
    function, arg, expression = rng.choice(
        [("add_tax", "price", "price * 1.2"), ("double", "x", "x * 2"), ("area", "r", "3.14159 * r * r")]
    )
    value = rng.choice([5, 10, 25])
    code = f"def {function}({arg}):\n    result = {expression}\n    print(result)\n\n"
    code += f"value = {function}({value})\nprint(value)"
    prompt = f"Why does my code print None at the end?\n\n{_py(code)}"
    good = (
        f"`{function}` prints the result but never **returns** it. A Python function without a `return` statement "
        f"returns `None`, so `value` is `None` and the last `print` shows it.\n\nReturn the value instead:\n\n"
        + _py(f"def {function}({arg}):\n    return {expression}\n\nvalue = {function}({value})\nprint(value)")
        + "\n\nAs a rule of thumb, let functions return values and let the caller decide whether to print them."
    )
    wrong = (
        "This is a known bug in `print()` in some Python 3 versions: when you print inside a function it also "
        "prints `None` afterwards. Upgrading to the latest Python release fixes it."
    )
    return _Scenario("coding", prompt, good, "Add a `return`.", wrong, gold_safe=True)


@_template("python_sort_dicts")
def _sort_dicts(rng: random.Random) -> _Scenario:
    variable, key = rng.choice([("people", "age"), ("products", "price"), ("players", "score"), ("files", "size")])
    prompt = (
        f"How do I sort a list of dictionaries by the `{key}` field in Python, highest first? The list is `{variable}`."
    )
    good = (
        "Pass a `key` function to `sorted()` and set `reverse=True` for descending order:\n\n"
        + _py(f'{variable}_sorted = sorted({variable}, key=lambda item: item["{key}"], reverse=True)')
        + "\n\n`sorted()` returns a new list; use `"
        + variable
        + ".sort(...)` with the same arguments to sort in place. `operator.itemgetter` is an equivalent, slightly "
        "faster key:\n\n"
        + _py(f'from operator import itemgetter\n\n{variable}.sort(key=itemgetter("{key}"), reverse=True)')
        + f'\n\nIf some dictionaries might lack `{key}`, use `key=lambda item: item.get("{key}", 0)`.'
    )
    wrong = "Lists have a sort method that takes the field name directly:\n\n" + _py(
        f'{variable}.sort("{key}", descending=True)'
    )
    terse = f"`sorted({variable}, key=lambda d: d['{key}'], reverse=True)`"
    return _Scenario("coding", prompt, good, terse, wrong, gold_safe=True)


# --- Math word problems ---------------------------------------------------------------------------------------
@_template("math_average_speed", 2)
def _average_speed(rng: random.Random) -> _Scenario:
    speed = rng.randrange(40, 125, 5)
    hours = rng.choice([1.5, 2, 2.5, 3, 4, 5])
    distance = speed * hours
    vehicle = rng.choice(["train", "car", "bus", "ferry"])
    prompt = (
        f"A {vehicle} travels {_num(distance)} km in {_num(hours)} hours. What is its average speed? Show the steps."
    )
    good = (
        "Average speed is total distance divided by total time: **speed = distance ÷ time**.\n\n"
        f"1. Distance: {_num(distance)} km\n"
        f"2. Time: {_num(hours)} h\n"
        f"3. {_num(distance)} ÷ {_num(hours)} = **{speed} km/h**\n\n"
        f"That is about {speed / 3.6:.1f} m/s."
    )
    wrong_speed = speed + rng.choice([-15, -10, 10, 20])
    wrong = (
        f"Divide the distance by the time: {_num(distance)} ÷ {_num(hours)} = **{wrong_speed} km/h**. "
        f"So the {vehicle} averages {wrong_speed} km/h."
    )
    return _Scenario("math", prompt, good, f"{speed} km/h.", wrong, gold_safe=True)


@_template("math_discount_tax", 2)
def _discount_tax(rng: random.Random) -> _Scenario:
    price = rng.choice([40, 60, 75, 80, 120, 150, 200, 250])
    discount = rng.choice([10, 15, 20, 25, 30, 40])
    tax = rng.choice([5, 8, 10])
    item = rng.choice(["jacket", "pair of headphones", "coffee maker", "desk chair", "backpack"])
    discounted = price * (100 - discount) / 100
    final = discounted * (100 + tax) / 100
    wrong_final = price * (100 - discount + tax) / 100
    prompt = (
        f"A {item} costs {_money(price)}. It's {discount}% off, and then {tax}% sales tax is added to the "
        "discounted price. What do I pay?"
    )
    good = (
        "Apply the discount first, then add tax on the discounted price:\n\n"
        f"1. Discount: {_money(price)} {MUL} {discount}% = {_money(price - discounted)}, so the sale price is "
        f"{_money(discounted)}.\n"
        f"2. Tax: {_money(discounted)} {MUL} {tax}% = {_money(final - discounted)}.\n"
        f"3. Total: {_money(discounted)} + {_money(final - discounted)} = **{_money(final)}**.\n\n"
        f"Shortcut: {_money(price)} {MUL} {1 - discount / 100:.2f} {MUL} {1 + tax / 100:.2f} = {_money(final)}."
    )
    wrong = (
        f"The discount and the tax partly cancel out: {discount}% off and {tax}% on is {discount - tax}% off "
        f"overall. {_money(price)} {MUL} {(100 - discount + tax) / 100:.2f} = **{_money(wrong_final)}**."
    )
    if abs(wrong_final - final) < 0.01:  # cannot happen for these numbers, but keep the pair unambiguous
        wrong = f"You pay **{_money(final + 5)}**."
    return _Scenario("math", prompt, good, f"{_money(final)}.", wrong, gold_safe=True)


@_template("math_recipe_scaling")
def _recipe_scaling(rng: random.Random) -> _Scenario:
    base = rng.choice([2, 4, 6])
    target = rng.choice([n for n in (3, 5, 8, 9, 10, 12) if n != base])
    flour = rng.choice([200, 240, 300, 360])
    sugar = rng.choice([90, 120, 150])
    milk = rng.choice([180, 240, 300])
    factor = target / base
    dish = rng.choice(["pancakes", "a sponge cake", "waffles", "muffins"])
    prompt = (
        f"My recipe for {dish} serves {base} and needs {flour} g flour, {sugar} g sugar and {milk} ml milk. "
        f"How much of each do I need for {target} people?"
    )
    good = (
        f"Scale every ingredient by {target} ÷ {base} = {factor:.3g}:\n\n"
        "| Ingredient | For " + str(base) + " | For " + str(target) + " |\n|---|---|---|\n"
        f"| Flour | {flour} g | {_num(round(flour * factor, 1))} g |\n"
        f"| Sugar | {sugar} g | {_num(round(sugar * factor, 1))} g |\n"
        f"| Milk | {milk} ml | {_num(round(milk * factor, 1))} ml |\n\n"
        "Leavening (baking powder, yeast) scales the same way; cooking time may need a few extra minutes if you "
        "use a bigger tin rather than several batches."
    )
    extra = target - base
    wrong = (
        f"You're cooking for {extra} more people, so add {extra} to each amount: "
        f"{flour + extra} g flour, {sugar + extra} g sugar and {milk + extra} ml milk."
    )
    terse = f"Multiply everything by {factor:.3g}."
    return _Scenario("math", prompt, good, terse, wrong, gold_safe=True)


@_template("math_percentage")
def _percentage(rng: random.Random) -> _Scenario:
    total = rng.randint(20, 40)
    passed = rng.randint(total // 2, total - 2)
    share = passed / total * 100
    group = rng.choice(["students passed the exam", "survey respondents said yes", "seedlings sprouted"])
    prompt = f"Out of {total}, {passed} {group}. What percentage is that?"
    good = (
        f"Divide the part by the whole and multiply by 100:\n\n{passed} ÷ {total} = {passed / total:.4f}\n\n"
        f"{passed / total:.4f} {MUL} 100 = **{share:.1f}%**\n\n"
        f"So about {share:.0f}% ({total - passed} out of {total}, or {100 - share:.1f}%, did not)."
    )
    wrong = f"{total - passed} ÷ {total} {MUL} 100 = **{(total - passed) / total * 100:.1f}%**."
    return _Scenario("math", prompt, good, f"{share:.1f}%", wrong, gold_safe=True)


@_template("math_split_bill")
def _split_bill(rng: random.Random) -> _Scenario:
    bill = rng.choice([48, 64, 90, 120, 156, 180, 240])
    people = rng.choice([2, 3, 4, 5, 6])
    tip = rng.choice([10, 15, 18, 20])
    total = bill * (100 + tip) / 100
    each = total / people
    prompt = (
        f"Our dinner bill is {_money(bill)}. We want to leave a {tip}% tip and split it evenly {people} ways. "
        "How much does each person pay?"
    )
    good = (
        f"1. Tip: {_money(bill)} {MUL} {tip}% = {_money(total - bill)}\n"
        f"2. Total with tip: {_money(bill)} + {_money(total - bill)} = {_money(total)}\n"
        f"3. Per person: {_money(total)} ÷ {people} = **{_money(each)}**\n\n"
        "If that doesn't divide evenly, round up to the next cent so the server isn't short-changed."
    )
    wrong_each = bill / people + (total - bill)
    wrong = (
        f"Each person pays their share of the bill plus the tip: {_money(bill)} ÷ {people} = {_money(bill / people)}, "
        f"plus the {_money(total - bill)} tip = **{_money(wrong_each)}** each."
    )
    return _Scenario("math", prompt, good, f"{_money(each)} each.", wrong, gold_safe=True)


@_template("math_fence")
def _fence(rng: random.Random) -> _Scenario:
    length = rng.randint(6, 25)
    width = rng.randint(3, length - 1)
    place = rng.choice(["vegetable garden", "dog run", "chicken coop yard", "backyard"])
    prompt = (
        f"My {place} is a rectangle, {length} m by {width} m. How much fencing do I need to go all the way around, "
        "and what is the area?"
    )
    good = (
        f"**Fencing (perimeter)** = 2 {MUL} (length + width) = 2 {MUL} ({length} + {width}) "
        f"= **{2 * (length + width)} m**\n\n"
        f"**Area** = length {MUL} width = {length} {MUL} {width} = **{length * width} m²**\n\n"
        "Buy a little extra fencing (5-10%) for the gate posts and overlaps."
    )
    wrong = (
        f"Fencing = length + width = {length} + {width} = **{length + width} m**, "
        f"and the area is {length} {MUL} {width} = {length * width} m²."
    )
    return _Scenario(
        "math", prompt, good, f"{2 * (length + width)} m of fence, {length * width} m².", wrong, gold_safe=True
    )


@_template("math_savings")
def _savings(rng: random.Random) -> _Scenario:
    weekly = rng.choice([25, 35, 40, 45, 60, 75])
    goal = weekly * rng.randint(10, 40) + rng.choice([5, 10, 15, 20])
    weeks = math.ceil(goal / weekly)
    thing = rng.choice(["a new laptop", "a bike", "a trip to Portugal", "a camera", "an emergency fund"])
    prompt = (
        f"I want to save {_money(goal)} for {thing} and can put away {_money(weekly)} a week. "
        "How many weeks will it take?"
    )
    good = (
        f"{_money(goal)} ÷ {_money(weekly)} = {goal / weekly:.2f} weeks. You can't save for part of a week, so round "
        f"up: **{weeks} weeks** (about {weeks / 4.345:.1f} months).\n\n"
        f"After {weeks - 1} weeks you'd have {_money((weeks - 1) * weekly)}, just short; week {weeks} gets you to "
        f"{_money(weeks * weekly)}."
    )
    wrong = (
        f"{_money(goal)} ÷ {_money(weekly)} = {weeks - 1} weeks exactly, so after {weeks - 1} weeks you'll have the "
        "full amount."
    )
    return _Scenario("math", prompt, good, f"{weeks} weeks.", wrong, gold_safe=True)


@_template("math_unit_conversion")
def _unit_conversion(rng: random.Random) -> _Scenario:
    if rng.random() < 0.5:
        miles = rng.choice([3, 5, 10, 13.1, 26.2, 50, 100])
        km = miles * 1.609344
        prompt = rng.choice([f"How many kilometres is {_num(miles)} miles?", f"convert {_num(miles)} mi to km"])
        good = (
            f"1 mile = 1.609344 km, so {_num(miles)} miles {MUL} 1.609344 = **{km:.2f} km**."
            + (" That's the length of a marathon." if miles == 26.2 else "")
            + "\n\nQuick mental estimate: multiply miles by 1.6 (or by 8 and divide by 5)."
        )
        wrong = f"Divide by 1.6: {_num(miles)} ÷ 1.609 = **{miles / 1.609344:.2f} km**."
        return _Scenario("math", prompt, good, f"{km:.1f} km", wrong, gold_safe=True)
    fahrenheit = rng.choice([32, 50, 68, 77, 86, 98.6, 212, 350, 400])
    celsius = (fahrenheit - 32) * 5 / 9
    prompt = rng.choice([f"What is {_num(fahrenheit)}°F in Celsius?", f"{_num(fahrenheit)} F to C?"])
    good = (
        f"Subtract 32, then multiply by 5/9:\n\n({_num(fahrenheit)} - 32) {MUL} 5/9 "
        f"= {_num(fahrenheit - 32)} {MUL} 5/9 = **{celsius:.1f} °C**"
        + ("\n\nThat's normal body temperature." if fahrenheit == 98.6 else "")
        + ("\n\nFor oven settings people usually round to the nearest 5 or 10 degrees." if fahrenheit >= 350 else "")
    )
    wrong = f"Multiply by 9/5 and add 32: {_num(fahrenheit)} {MUL} 9/5 + 32 = **{fahrenheit * 9 / 5 + 32:.1f} °C**."
    return _Scenario("math", prompt, good, f"{celsius:.1f} °C", wrong, gold_safe=True)


# --- Cooking ------------------------------------------------------------------------------------------------
@_template("cooking_boiled_egg")
def _boiled_egg(rng: random.Random) -> _Scenario:
    style, minutes, wrong_minutes = rng.choice(
        [("runny, dippy", "6", "15"), ("jammy, just-set", "7", "16"), ("fully hard-boiled", "10-11", "3")]
    )
    prompt = rng.choice(
        [
            f"How long do I boil an egg if I want a {style} yolk?",
            f"egg timing for a {style} yolk? large eggs straight from the fridge",
        ]
    )
    good = (
        f"For a {style} yolk with a large egg from the fridge:\n\n"
        "1. Bring a pan of water to a rolling boil.\n"
        "2. Lower the eggs in gently with a spoon, then turn the heat down to a steady simmer.\n"
        f"3. Cook for **{minutes} minutes**.\n"
        "4. Move them straight into a bowl of ice water for 2-3 minutes to stop the cooking and make peeling "
        "easier.\n\n"
        "Room-temperature eggs cook about 30 seconds faster; extra-large eggs need about 30 seconds more."
    )
    wrong = f"Boil it for **{wrong_minutes} minutes** and you'll get a perfectly {style} yolk every time."
    return _Scenario("cooking", prompt, good, f"About {minutes} minutes.", wrong, gold_safe=True)


_SUBSTITUTES: list[tuple[str, str, str, str | None]] = [
    (
        "buttermilk",
        "pancakes",
        "Make a quick buttermilk substitute:\n\n"
        "- Put **1 tablespoon of lemon juice or white vinegar** in a measuring jug.\n"
        "- Top up with milk to **1 cup (240 ml)** and stir.\n"
        "- Let it stand for 5-10 minutes until it thickens slightly and curdles a little.\n\n"
        "Plain yogurt or kefir thinned with a splash of milk also works. The acidity is what reacts with the baking "
        "soda, so don't just use plain milk or the pancakes will be flatter.",
        None,
    ),
    (
        "baking powder",
        "muffins",
        "You can make your own: for each **1 teaspoon of baking powder**, mix **¼ teaspoon baking soda** with "
        "**½ teaspoon cream of tartar**.\n\n"
        "No cream of tartar? Use ¼ teaspoon baking soda and replace ½ cup of the recipe's milk with buttermilk or "
        "yogurt, so there's acid for the soda to react with. Bake straight away: homemade mixes start working as "
        "soon as they get wet.",
        "Baking soda and baking powder are the same thing, so swap it 1:1: if the recipe says 2 teaspoons of baking "
        "powder, use 2 teaspoons of baking soda.",
    ),
    (
        "eggs",
        "brownies",
        "For brownies, each egg can be replaced with one of these:\n\n"
        "- **Flax egg:** 1 tablespoon ground flaxseed + 3 tablespoons water, rested for 5 minutes. Best all-rounder.\n"
        "- **¼ cup (60 g) unsweetened applesauce:** makes them a bit more cakey.\n"
        "- **¼ cup mashed banana:** works, but you'll taste it.\n\n"
        "Brownies are forgiving because eggs mostly add moisture and binding here. Expect a slightly fudgier, "
        "denser result.",
        None,
    ),
    (
        "heavy cream",
        "a pasta sauce",
        "For a sauce (not for whipping), combine **¾ cup whole milk + ¼ cup melted butter** for 1 cup of cream.\n\n"
        "Other options:\n\n"
        "- Half-and-half thickened with 1 teaspoon of flour or cornstarch per cup.\n"
        "- Crème fraîche or mascarpone loosened with a little pasta water: richer, and less likely to split.\n\n"
        "Keep the sauce at a gentle simmer after adding milk-based substitutes so they don't curdle.",
        None,
    ),
]


@_template("cooking_substitute")
def _substitute(rng: random.Random) -> _Scenario:
    missing, dish, good, wrong = rng.choice(_SUBSTITUTES)
    prompt = rng.choice(
        [
            f"I'm making {dish} and just realised I'm out of {missing}. What can I use instead?",
            f"substitute for {missing} in {dish}?",
        ]
    )
    terse = {
        "buttermilk": "Milk with some lemon juice.",
        "baking powder": "Baking soda and cream of tartar.",
        "eggs": "Use applesauce.",
        "heavy cream": "Milk and butter.",
    }[missing]
    return _Scenario("cooking", prompt, good, terse, wrong, gold_safe=wrong is not None)


@_template("cooking_quick_dinner", 2)
def _quick_dinner(rng: random.Random) -> _Scenario:
    protein, method = rng.choice(
        [
            ("chicken thighs", "sear the chicken, skin side down, for 6-7 minutes until golden, then flip"),
            ("a can of chickpeas", "drain and pat the chickpeas dry, then fry them until they start to crisp"),
            ("a block of firm tofu", "press the tofu, cut it into cubes and fry until golden on two sides"),
            ("two salmon fillets", "season the salmon and cook it skin side down for 4 minutes, then flip"),
            ("some ground beef", "brown the beef over high heat, breaking it up, and pour off excess fat"),
        ]
    )
    veg = rng.sample(["spinach", "bell peppers", "broccoli", "zucchini", "cherry tomatoes", "an onion", "mushrooms"], 2)
    minutes = rng.choice([20, 25, 30])
    prompt = f"I have {protein}, {veg[0]}, {veg[1]} and rice. Give me a dinner idea I can make in {minutes} minutes."
    good = (
        f"**{minutes}-minute garlicky rice bowl**\n\n"
        "**Start the rice first** (white rice takes about 15 minutes).\n\n"
        "1. Heat a tablespoon of oil in a large pan over medium-high heat.\n"
        f"2. {method.capitalize()}.\n"
        f"3. Push it to one side, add {veg[0]} and {veg[1]} with 2 sliced garlic cloves and cook for 4-5 minutes.\n"
        "4. Stir in a sauce of 2 tbsp soy sauce, 1 tbsp honey, 1 tsp chilli flakes and a squeeze of lime.\n"
        "5. Simmer for a minute until glossy, then serve over the rice.\n\n"
        "Top with sesame seeds or spring onions if you have them. Leftovers keep for 2 days in the fridge."
    )
    return _Scenario("cooking", prompt, good, f"Make a stir-fry with the {protein.split()[-1]} and serve it on rice.")


@_template("cooking_food_safety")
def _food_safety(rng: random.Random) -> _Scenario:
    meat, celsius, fahrenheit, note, unsafe = rng.choice(
        [
            (
                "chicken",
                74,
                165,
                "Check the thickest part of the thigh or breast, away from the bone.",
                "49 °C (120 °F)",
            ),
            ("pork chops", 63, 145, "Then let them rest for 3 minutes before cutting.", "40 °C (104 °F)"),
            ("ground beef", 71, 160, "Unlike a whole steak, mince must be cooked through.", "50 °C (122 °F)"),
            ("turkey", 74, 165, "Measure in the thickest part of the thigh and the breast.", "54 °C (130 °F)"),
        ]
    )
    prompt = f"What internal temperature should {meat} reach to be safe to eat?"
    good = (
        f"Cook {meat} to an internal temperature of **{celsius} °C ({fahrenheit} °F)**, measured with an instant-read "
        f"thermometer. {note}\n\nColour is not a reliable test: meat can look done before it is safe. "
        "Clean the thermometer probe between readings."
    )
    wrong = f"{meat.capitalize()} is safe once the centre reaches about {unsafe}; any higher and it dries out."
    return _Scenario("cooking", prompt, good, f"{fahrenheit} °F.", wrong, gold_safe=True)


@_template("cooking_troubleshoot")
def _troubleshoot(rng: random.Random) -> _Scenario:
    problem, good, terse = rng.choice(
        [
            (
                "Why does my homemade bread come out dense and heavy?",
                "Dense bread usually comes down to one of these:\n\n"
                "1. **Under-proofing.** The dough should roughly double in the first rise; in a cold kitchen that can "
                "take 2 hours rather than 1.\n"
                "2. **Not enough kneading.** Knead until the dough passes the windowpane test (a small piece stretches "
                "thin without tearing).\n"
                "3. **Too much flour.** Weigh it rather than using cups; scooping packs in up to 20% extra.\n"
                "4. **Old yeast.** Proof it in warm water with a pinch of sugar; it should foam within 10 minutes.\n\n"
                "Fix one thing at a time so you know which one made the difference.",
                "Knead it more.",
            ),
            (
                "My chocolate chip cookies spread into thin flat discs. What am I doing wrong?",
                "Cookies spread when the fat melts before the structure sets. Try:\n\n"
                "- **Chill the dough** for at least 30 minutes (overnight is even better).\n"
                "- **Check the butter:** soft but still cool, not melted or greasy.\n"
                "- **Measure flour by weight;** too little flour means too little structure.\n"
                "- **Use a cool baking sheet** for every batch and line it with parchment rather than greasing it.\n"
                "- **Check your oven temperature** with an oven thermometer; a cool oven gives the butter time to melt "
                "before the edges set.",
                "Chill the dough.",
            ),
            (
                "Why is my rice always mushy?",
                "Mushy rice almost always means too much water or too much stirring:\n\n"
                "1. **Rinse the rice** until the water runs mostly clear to remove surface starch.\n"
                "2. **Use less water:** for long-grain white rice about 1 : 1.25 by volume on the stove.\n"
                "3. **Don't stir** once it's simmering, and keep the lid on.\n"
                "4. **Rest it** off the heat, covered, for 10 minutes before fluffing with a fork.",
                "Use less water.",
            ),
        ]
    )
    return _Scenario("cooking", problem, good, terse)


# --- Travel ---------------------------------------------------------------------------------------------------
_CITIES: dict[str, list[str]] = {
    "Lisbon": [
        "wander the Alfama district and climb to the Miradouro de Santa Luzia viewpoint",
        "ride the historic Tram 28 through Graça and Baixa",
        "visit Belém Tower and the Jerónimos Monastery, then try pastéis de nata at Pastéis de Belém",
        "browse LX Factory's bookshops and cafés",
        "take the train to Sintra for Pena Palace and the Quinta da Regaleira gardens",
        "catch a fado performance in a small Alfama restaurant",
    ],
    "Kyoto": [
        "hike through the torii gates of Fushimi Inari early, before the crowds",
        "walk up to Kiyomizu-dera and down the old lanes of Sannenzaka",
        "see the Arashiyama bamboo grove and Tenryū-ji garden",
        "graze your way through Nishiki Market",
        "stroll Gion and Hanamikoji Street in the evening",
        "visit Kinkaku-ji, the Golden Pavilion, and the Ryōan-ji rock garden",
    ],
    "Mexico City": [
        "explore the Centro Histórico, the Zócalo and the Templo Mayor ruins",
        "spend a morning at the Museo Nacional de Antropología",
        "walk through Chapultepec Park and up to the castle",
        "visit Coyoacán and the Frida Kahlo Museum (book tickets ahead)",
        "take a day trip to the pyramids of Teotihuacán",
        "eat tacos al pastor in Roma Norte and Condesa",
    ],
    "Edinburgh": [
        "walk the Royal Mile from Holyrood Palace up to Edinburgh Castle",
        "climb Arthur's Seat for the view over the city",
        "wander through Dean Village and along the Water of Leith",
        "explore Victoria Street and the Grassmarket",
        "visit the National Museum of Scotland (free entry)",
        "have dinner at the Shore in Leith",
    ],
    "Vancouver": [
        "cycle the Stanley Park seawall",
        "browse the Granville Island Public Market",
        "walk around Gastown and the steam clock",
        "cross the suspension bridge at Lynn Canyon (a free alternative to Capilano)",
        "spend an afternoon at Kitsilano Beach",
        "take the gondola up Grouse Mountain",
    ],
}


@_template("travel_itinerary", 3)
def _itinerary(rng: random.Random) -> _Scenario:
    city = rng.choice(sorted(_CITIES))
    days = rng.choice([2, 3])
    interest = rng.choice(["food", "history", "walking", "photography", "museums"])
    prompt = rng.choice(
        [
            f"Plan a {days}-day trip to {city} for someone who loves {interest}.",
            f"I'm going to {city} for {days} days. I'm into {interest}. What should I do each day?",
        ]
    )
    sights = rng.sample(_CITIES[city], days * 2)
    lines = [f"Here's a relaxed {days}-day plan for {city} with a {interest} slant:\n"]
    for day in range(days):
        lines.append(f"**Day {day + 1}**\n")
        lines.append(f"- *Morning:* {sights[2 * day]}.")
        lines.append(f"- *Afternoon:* {sights[2 * day + 1]}.")
        lines.append(
            "- *Evening:* "
            + rng.choice(
                [
                    "find a local restaurant away from the main squares",
                    "book a table somewhere the locals recommend",
                    "take an evening walk and have a late dinner",
                ]
            )
            + ".\n"
        )
    lines.append(
        "**Tips:** get a transit card on day one, book the popular sights online a few days ahead, and keep one "
        "afternoon unplanned, because that's often the best part of a trip."
    )
    first, second = sights[0].split(",")[0], sights[1].split(",")[0]
    terse = f"{first.capitalize()} and {second}. Also try the local food."
    return _Scenario("travel", prompt, "\n".join(lines), terse)


@_template("travel_packing")
def _packing(rng: random.Random) -> _Scenario:
    place, weather, extras = rng.choice(
        [
            (
                "Iceland in October",
                "cold (0-8 °C), windy and often wet",
                "a waterproof shell, a warm hat and gloves, swimwear for the hot springs",
            ),
            (
                "Bali in July",
                "hot and humid (around 30 °C) but the dry season",
                "light breathable clothes, reef-safe sunscreen, a sarong for temple visits",
            ),
            (
                "New York in January",
                "freezing (often below 0 °C) with occasional snow",
                "an insulated coat, waterproof boots with grip, thermal layers",
            ),
            (
                "Morocco in April",
                "warm days (20-25 °C) and cool nights",
                "a light scarf, clothes that cover shoulders and knees, a fleece for the evenings",
            ),
        ]
    )
    length = rng.choice(["a week", "10 days", "5 days"])
    prompt = f"What should I pack for {length} in {place}?"
    good = (
        f"{place} is usually {weather}, so pack for that:\n\n"
        "**Clothes**\n"
        "- Layers you can combine rather than bulky single items\n"
        f"- Specifically: {extras}\n"
        "- Comfortable walking shoes you have already broken in\n\n"
        "**Essentials**\n"
        "- Passport, a copy of your travel insurance, and a bank card without foreign transaction fees\n"
        "- Universal plug adapter and a power bank\n"
        "- A small daypack and a refillable water bottle\n\n"
        f"**Tip:** for {length}, plan to do laundry once rather than packing an outfit per day."
    )
    return _Scenario("travel", prompt, good, "Layers, comfortable shoes and a rain jacket.")


@_template("travel_jet_lag")
def _jet_lag(rng: random.Random) -> _Scenario:
    origin, destination, direction = rng.choice(
        [
            ("New York", "Tokyo", "west"),
            ("London", "Singapore", "east"),
            ("San Francisco", "Paris", "east"),
            ("Sydney", "Los Angeles", "east"),
            ("Berlin", "Chicago", "west"),
        ]
    )
    prompt = f"I'm flying from {origin} to {destination} next week. How do I beat jet lag?"
    if direction == "east":
        difficulty = "usually harder, because you have to shift your body clock earlier"
    else:
        difficulty = "a little easier, because staying up later comes more naturally"
    good = (
        f"Flying {direction} is {difficulty}. "
        "What helps most:\n\n"
        "1. **Shift gradually before you go:** move bedtime 1 hour per day towards destination time for 2-3 days.\n"
        "2. **Switch to local time on the plane:** sleep or stay awake according to the destination's clock.\n"
        "3. **Get daylight on arrival**, especially in the morning after an eastward flight.\n"
        "4. **Avoid long naps;** if you must, keep it to 20-30 minutes before 3 pm local time.\n"
        "5. **Go easy on alcohol and caffeine**, and drink plenty of water during the flight.\n\n"
        "A low dose of melatonin at local bedtime helps some people; ask a pharmacist if it suits you."
    )
    return _Scenario("travel", prompt, good, "Sleep on the plane and drink water.")


# --- Writing ------------------------------------------------------------------------------------------------
_EMAILS: list[tuple[str, str, str, str]] = [
    (
        "my landlord asking them to fix a leaking kitchen tap",
        "Leaking kitchen tap at [address]",
        "Dear [Landlord's name],\n\n"
        "I hope you're well. I'm writing to let you know that the kitchen tap in the flat has started leaking "
        "steadily, even when fully closed. It has been getting worse over the past week, and I'm concerned it could "
        "damage the cabinet underneath.\n\n"
        "Could you arrange for a plumber to take a look? I'm available most weekday evenings and on Saturday "
        "mornings, and I'm happy to let them in at a time that suits them.\n\n"
        "Thank you for your help.\n\nBest regards,\n[Your name]",
        "hey the kitchen tap is leaking again can someone come fix it thx",
    ),
    (
        "my manager asking for a day off next Friday",
        "Day off request: Friday [date]",
        "Hi [Manager's name],\n\n"
        "I'd like to request a day of annual leave on Friday, [date]. I've checked the team calendar and there are no "
        "deadlines that day; I'll finish the [project] update by Thursday afternoon and hand over anything urgent to "
        "[colleague].\n\n"
        "Please let me know if that works, or if another day would be better for the team.\n\n"
        "Thanks,\n[Your name]",
        "Can I take Friday off?",
    ),
    (
        "a recruiter following up after a job interview",
        "Following up: [Job title] interview",
        "Dear [Recruiter's name],\n\n"
        "Thank you again for taking the time to speak with me on [day] about the [Job title] role. I enjoyed learning "
        "more about the team's plans for [project or product], and the conversation confirmed how much I'd like to "
        "contribute.\n\n"
        "I wanted to check whether there are any updates on the next steps, and whether I can provide anything else "
        "to help with your decision.\n\n"
        "Kind regards,\n[Your name]\n[Phone number]",
        "Hi, any news about the job?",
    ),
    (
        "a colleague, politely declining a meeting I don't need to attend",
        "Re: [Meeting name]",
        "Hi [Name],\n\n"
        "Thanks for the invitation. I don't think I can add much to this one, since my part of the project is "
        "already wrapped up, so I'll sit it out to focus on the [deadline] deliverables.\n\n"
        "If anything comes up that needs my input, feel free to message me, and I'd be grateful if you could share "
        "the notes afterwards.\n\n"
        "Best,\n[Your name]",
        "I won't be coming.",
    ),
    (
        "my professor asking for a short extension on an essay",
        "Extension request: [Course code] essay",
        "Dear Professor [Name],\n\n"
        "I'm writing to ask whether I could have a short extension on the [Course code] essay due on [date]. I've "
        "been unwell this week (I can provide a doctor's note) and have fallen behind, although the research and "
        "outline are done.\n\n"
        "Would an extension until [new date] be possible? I'd be happy to share my outline now to show my "
        "progress.\n\nThank you for considering this.\n\nSincerely,\n[Your name]\n[Student ID]",
        "can i have more time for the essay",
    ),
    (
        "an airline about a suitcase that didn't arrive",
        "Delayed baggage: flight [number], file reference [reference]",
        "Dear Customer Relations team,\n\n"
        "My checked suitcase did not arrive on flight [number] from [city] on [date]. I reported it at the airport "
        "and received file reference [reference], but I haven't had an update in three days.\n\n"
        "Could you please tell me where the bag is and when it will be delivered to [address]? I'd also like to "
        "know how to claim for the essentials I've had to buy in the meantime; I have kept the receipts.\n\n"
        "Thank you,\n[Your name]\n[Phone number]",
        "Where is my bag??? This is ridiculous.",
    ),
]


@_template("writing_email", 3)
def _email(rng: random.Random) -> _Scenario:
    purpose, subject, body, terse = rng.choice(_EMAILS)
    tone = rng.choice(["polite", "friendly but professional", "short and polite", "formal"])
    prompt = rng.choice(
        [f"Write a {tone} email to {purpose}.", f"Can you draft an email to {purpose}? Keep it {tone}."]
    )
    good = f"**Subject:** {subject}\n\n{body}"
    return _Scenario("writing", prompt, good, terse)


@_template("writing_rewrite_professional")
def _rewrite(rng: random.Random) -> _Scenario:
    original, good, terse = rng.choice(
        [
            (
                "hey can u send me the report asap, i needed it yesterday",
                "Hi [Name], could you send me the report as soon as you can? I'm a little behind on it, so I'd "
                "really appreciate it today if possible. Thanks!",
                "Hey, can you send me the report ASAP? I needed it yesterday.",
            ),
            (
                "this meeting was a total waste of time and we didnt decide anything",
                "I don't think we reached any decisions in today's meeting. Could we agree on a clear agenda and the "
                "decisions we need before the next one?",
                "This meeting was a waste of time and we didn't decide anything.",
            ),
            (
                "i cant make it thursday something came up",
                "Unfortunately I won't be able to make it on Thursday because something has come up. Could we find "
                "another time later this week?",
                "I can't make it Thursday, something came up.",
            ),
            (
                "your app keeps crashing and its super annoying",
                "I've been having repeated crashes with the app, which is making it hard to use. Could you help me "
                "find out what's going wrong?",
                "Your app keeps crashing and it's very annoying.",
            ),
        ]
    )
    prompt = f'Rewrite this to sound more professional: "{original}"'
    good = (
        f"Here's a more professional version:\n\n> {good}\n\n"
        "Changes: full sentences and punctuation, a specific request instead of a complaint, and a polite close."
    )
    return _Scenario("writing", prompt, good, terse)


# --- Science ------------------------------------------------------------------------------------------------
_SCIENCE: list[tuple[str, str, str]] = [
    (
        "why the sky is blue",
        "Sunlight looks white but is a mix of all colours. When it enters the atmosphere it bumps into tiny gas "
        "molecules, mostly nitrogen and oxygen. These molecules scatter short wavelengths (blue and violet) much "
        "more strongly than long ones (red and orange); this is called **Rayleigh scattering**.\n\n"
        "So wherever you look in the sky, scattered blue light is coming towards you. (There's violet too, but the "
        "Sun emits less of it and our eyes are less sensitive to it.) At sunset the light travels through much "
        "more air, most of the blue is scattered away before it reaches you, and the reds and oranges are left.",
        "The sky is blue because it reflects the colour of the oceans, which cover most of the Earth. That's also "
        "why the sky looks less blue over deserts.",
    ),
    (
        "what causes the seasons",
        "The seasons are caused by the **tilt of Earth's axis** (about 23.5°), not by our distance from the Sun.\n\n"
        "As Earth orbits the Sun, the tilt stays pointed the same way in space. For part of the year the Northern "
        "Hemisphere leans towards the Sun: sunlight hits it more directly and days are longer, so it's summer "
        "there, while the Southern Hemisphere leans away and has winter. Six months later it's the other way "
        "round.\n\nIn fact, Earth is closest to the Sun in early January, in the middle of northern winter.",
        "Seasons happen because Earth's orbit is an oval: in summer we are much closer to the Sun, so it's hotter, "
        "and in winter we are farther away. It's summer at the same time all over the world.",
    ),
    (
        "why ice floats on water",
        "Ice floats because it is **less dense** than liquid water, which is unusual: most substances are denser as "
        "solids.\n\nWater molecules form hydrogen bonds with each other. When water freezes, those bonds lock the "
        "molecules into an open, hexagonal lattice with more empty space than in the liquid, where molecules "
        "tumble closer together. Ice is about 9% less dense than water, which is why roughly 90% of an iceberg "
        "sits below the surface.\n\nThis matters for life: lakes freeze from the top down, and the ice layer "
        "insulates the water beneath.",
        "Ice floats because of the tiny air bubbles trapped inside it when it freezes. Ice with no air bubbles "
        "would sink to the bottom.",
    ),
    (
        "how photosynthesis works",
        "Photosynthesis is how plants make food from light. In the chloroplasts of their leaves, the green pigment "
        "**chlorophyll** absorbs sunlight and uses its energy to combine **carbon dioxide** (from the air) and "
        "**water** (from the roots) into **glucose**, a sugar the plant uses for energy and growth. **Oxygen** is "
        "released as a by-product.\n\n"
        "In one line: 6 CO₂ + 6 H₂O + light → C₆H₁₂O₆ + 6 O₂.",
        "During photosynthesis plants breathe in oxygen and breathe out carbon dioxide, just like animals, and they "
        "get their food from the soil through their roots.",
    ),
    (
        "what causes ocean tides",
        "Tides are caused mainly by the **Moon's gravity**, with help from the Sun.\n\n"
        "The Moon pulls hardest on the side of Earth facing it, so the ocean bulges towards the Moon. On the far "
        "side, the Moon pulls on the water least, leaving a second bulge. As Earth rotates through both bulges, "
        "most coasts get two high tides and two low tides a day.\n\n"
        "When the Sun and Moon line up (new and full moon) their pulls add up and we get bigger *spring tides*; "
        "when they're at right angles we get smaller *neap tides*.",
        "Tides are caused by the wind pushing water towards the shore during the day and away from it at night.",
    ),
    (
        "what causes thunder",
        "Thunder is the sound of **lightning heating the air**. A lightning bolt heats the air along its path to "
        "around 30,000 °C in a fraction of a second. The air expands explosively, creating a shock wave that we "
        "hear as a crack or rumble.\n\n"
        "Light travels much faster than sound, so you see the flash first. Count the seconds until the thunder and "
        "divide by 3 to get the distance in kilometres (or by 5 for miles).",
        "Thunder is the noise clouds make when they bump into each other.",
    ),
]


@_template("science_explain", 3)
def _science(rng: random.Random) -> _Scenario:
    concept, good, wrong = rng.choice(_SCIENCE)
    audience = rng.choice(["a 10-year-old", "a high-school student", "someone with no science background", "me"])
    prompt = rng.choice([f"Explain {concept} to {audience}.", f"Can you explain {concept}? I'm asking for {audience}."])
    terse = {
        "why the sky is blue": "Rayleigh scattering.",
        "what causes the seasons": "The tilt of the Earth.",
        "why ice floats on water": "It's less dense.",
        "how photosynthesis works": "Plants turn light into sugar.",
        "what causes ocean tides": "The Moon.",
        "what causes thunder": "Lightning.",
    }[concept]
    return _Scenario("science", prompt, good, terse, wrong, gold_safe=True)


# --- Summarising ----------------------------------------------------------------------------------------------
_PASSAGES: list[tuple[str, str, str]] = [
    (
        "The city council voted 7-2 on Tuesday to convert two downtown traffic lanes on Main Street into protected "
        "bike lanes. Supporters said the change would improve safety after three cyclist injuries last year, while "
        "local business owners worried about losing parking. Construction is expected to begin in March and take "
        "about six weeks.",
        "The council voted 7-2 to turn two Main Street lanes into protected bike lanes, citing cyclist safety "
        "despite business owners' parking concerns, with six weeks of construction starting in March.",
        "The council unanimously voted to close Main Street to cars completely, and construction finished last March.",
    ),
    (
        "A study of 1,200 office workers found that those who took a short walk every 90 minutes reported 20% less "
        "afternoon fatigue than those who stayed at their desks. The researchers cautioned that the results were "
        "self-reported and that the study could not show the walks caused the difference.",
        "Office workers who walked briefly every 90 minutes reported 20% less afternoon fatigue, though the "
        "self-reported study can't prove the walks were the cause.",
        "A study proved that walking every 90 minutes cures fatigue in all office workers.",
    ),
    (
        "Our Q3 revenue grew 12% year over year to $48 million, driven mainly by the new subscription tier. "
        "Operating costs rose 18% due to hiring in the support team, so margins narrowed slightly. We expect growth "
        "to continue in Q4 and will slow hiring until margins recover.",
        "Q3 revenue rose 12% to $48 million thanks to the new subscription tier, but 18% higher costs from support "
        "hiring squeezed margins, so hiring will slow while growth continues.",
        "Revenue fell 12% to $48 million in Q3, so the company is laying off its support team.",
    ),
    (
        "The library will close its main branch for renovations from June 1 to August 31. During that time, the "
        "two neighbourhood branches will extend their opening hours until 8 pm on weekdays, and the online catalogue "
        "and e-book lending will remain available. Books due during the closure can be returned to any branch.",
        "The main library branch closes for renovations June 1 to August 31; neighbourhood branches will stay open "
        "until 8 pm on weekdays, online services continue, and returns go to any branch.",
        "The library is closing permanently on June 1, and all e-book lending will stop.",
    ),
]


@_template("summarise_passage", 2)
def _summarise(rng: random.Random) -> _Scenario:
    passage, good, wrong = rng.choice(_PASSAGES)
    prompt = rng.choice(["Summarise this in one sentence:", "TL;DR this please:", "Give me a one-line summary:"])
    prompt = f"{prompt}\n\n> {passage}"
    terse = passage.split(". ")[0] + "."
    return _Scenario("summarising", prompt, good, terse, wrong, gold_safe=True)


# --- General knowledge ----------------------------------------------------------------------------------------
_FACTS: list[tuple[str, str, str, str]] = [
    (
        "What is the capital of Australia?",
        "The capital of Australia is **Canberra**. Many people guess Sydney or Melbourne, the two largest cities; "
        "Canberra was purpose-built as a compromise between them and became the seat of government in 1927.",
        "The capital of Australia is Sydney, its largest and best-known city.",
        "Canberra.",
    ),
    (
        "Who wrote *Pride and Prejudice*?",
        "*Pride and Prejudice* was written by **Jane Austen** and published in 1813. It follows Elizabeth Bennet "
        "and Mr Darcy, and is her most popular novel.",
        "*Pride and Prejudice* was written by Charlotte Brontë in 1847, the same year as *Jane Eyre*.",
        "Jane Austen.",
    ),
    (
        "What is the largest planet in our solar system?",
        "**Jupiter** is the largest planet: about 11 times Earth's diameter and more than twice as massive as all "
        "the other planets combined. It's a gas giant, mostly hydrogen and helium.",
        "Saturn is the largest planet in the solar system; its rings make it even bigger than Jupiter.",
        "Jupiter.",
    ),
    (
        "How many bones are in the adult human body?",
        "An adult human has **206 bones**. Babies are born with around 270, but many fuse together as they grow, "
        "for example in the skull and the base of the spine.",
        "The adult human body has 312 bones; we lose some of them in childhood.",
        "206.",
    ),
    (
        "In what year did humans first land on the Moon?",
        "Humans first landed on the Moon on **20 July 1969**, during NASA's Apollo 11 mission. Neil Armstrong and "
        "Buzz Aldrin walked on the surface while Michael Collins orbited above.",
        "The first Moon landing was in 1972, during Apollo 17.",
        "1969.",
    ),
    (
        "What is the chemical symbol for gold?",
        "The chemical symbol for gold is **Au**, from the Latin word *aurum*. Its atomic number is 79.",
        "The chemical symbol for gold is Ag, from the Latin *argentum*.",
        "Au.",
    ),
    (
        "At what temperature does water boil at sea level, in Fahrenheit?",
        "At sea level, water boils at **212 °F** (100 °C). At higher altitudes the air pressure is lower, so it boils "
        "at a lower temperature, about 203 °F (95 °C) in Denver, for example.",
        "Water boils at 180 °F at sea level.",
        "212 °F.",
    ),
]


@_template("general_knowledge", 2)
def _facts(rng: random.Random) -> _Scenario:
    question, good, wrong, terse = rng.choice(_FACTS)
    return _Scenario("general knowledge", question, good, terse, wrong, gold_safe=True)


# --- Advice -------------------------------------------------------------------------------------------------
_ADVICE: list[tuple[str, str, str, str]] = [
    (
        "personal finance",
        "What is an index fund, and is it a good option for a beginner investor?",
        "An **index fund** is a mutual fund or ETF that simply holds all (or a representative sample) of the stocks "
        "in a market index such as the S&P 500, instead of paying a manager to pick winners.\n\n"
        "Why beginners often start there:\n\n"
        "- **Diversification:** one purchase spreads your money across hundreds of companies.\n"
        "- **Low fees:** expense ratios are often below 0.1% a year, and fees compound just like returns.\n"
        "- **Simplicity:** no need to research individual companies.\n\n"
        "Things to keep in mind: the value still goes up and down with the market, so money you need within a few "
        "years is better kept in savings. This is general information, not personal financial advice.",
        "It's a fund that tracks the market. They're fine.",
    ),
    (
        "personal finance",
        "How big should my emergency fund be?",
        "A common rule of thumb is **3 to 6 months of essential expenses**: rent or mortgage, utilities, food, "
        "insurance, minimum debt payments, not your total spending.\n\n"
        "Aim for the higher end if your income is irregular, you're the only earner in the household, or you work "
        "in an industry with frequent layoffs. If saving that much feels out of reach, start with a first goal of "
        "$1,000 or one month's expenses.\n\nKeep it somewhere safe and easy to access, like a high-yield savings "
        "account, rather than invested in stocks.",
        "About 3 months of salary.",
    ),
    (
        "fitness",
        "Give me a simple 3-day beginner full-body workout I can do at the gym.",
        "**Monday, Wednesday, Friday**: rest at least a day between sessions.\n\n"
        "| Exercise | Sets x reps |\n|---|---|\n"
        "| Goblet squat | 3 x 10 |\n| Dumbbell bench press | 3 x 10 |\n| Seated cable row | 3 x 10 |\n"
        "| Romanian deadlift (dumbbells) | 3 x 10 |\n| Overhead press | 2 x 10 |\n| Plank | 3 x 30 s |\n\n"
        "- Warm up with 5 minutes of easy cardio.\n"
        "- Pick weights where the last 2 reps are hard but your form stays clean.\n"
        "- When you can do all sets comfortably, add a little weight the next week.\n\n"
        "If you have any injuries or health conditions, check with a doctor or a qualified trainer first.",
        "Do squats, bench press and rows three times a week.",
    ),
    (
        "fitness",
        "I've never run before. How do I start without getting hurt?",
        "Start with **run-walk intervals** and build up slowly:\n\n"
        "- **Weeks 1-2:** 1 minute jogging, 2 minutes walking, repeated 8 times, 3 days a week.\n"
        "- **Weeks 3-4:** 2 minutes jogging, 2 minutes walking.\n"
        "- **Weeks 5-8:** keep lengthening the jogging and shortening the walks until you can jog 20-30 minutes.\n\n"
        "Go slowly enough that you could hold a conversation, increase your weekly total by no more than about 10%, "
        "and take a rest day between runs. Comfortable running shoes matter more than any gadget.",
        "Just start running a little every day.",
    ),
    (
        "productivity",
        "How can I stop procrastinating when I work from home?",
        "A few techniques that work for a lot of people:\n\n"
        "1. **Start with 10 minutes.** Commit to just 10 minutes on the task; starting is the hardest part.\n"
        "2. **Plan tomorrow tonight.** Write down the one most important task so you don't decide in the morning.\n"
        "3. **Separate work space from rest space,** even if it's only a particular corner of a table.\n"
        "4. **Block distractions:** phone in another room, website blockers during focus sessions.\n"
        "5. **Use timeboxes** like the Pomodoro technique: 25 minutes of focus, 5 minutes of break.\n\n"
        "If procrastination comes from the task feeling vague, break it down until the next step is obvious.",
        "Use the Pomodoro technique.",
    ),
]


@_template("advice", 3)
def _advice(rng: random.Random) -> _Scenario:
    topic, prompt, good, terse = rng.choice(_ADVICE)
    return _Scenario(topic, prompt, good, terse)


# --- Weaker answers that fit any prompt ------------------------------------------------------------------------
_EVASIVE: list[str] = [
    "That's a great question, but the answer really depends on your specific situation. I'd recommend doing some "
    "further research or consulting an expert before making any decisions.",
    "I'm not able to help with that request. Is there anything else I can assist you with?",
    "There are many different opinions on this, and it's hard to give a single answer. You might want to search "
    "online for more information.",
    "As an AI language model, I don't have personal experience with this, so I can't really give a definitive "
    "answer. Different sources may say different things.",
]
_VERBOSE_INTROS: list[str] = [
    "Great question! This is something a lot of people wonder about, and it's definitely worth taking the time to "
    "think it through carefully before jumping to any conclusions.",
    "Thank you so much for your question. Before I answer, it's important to note that there are many factors to "
    "consider here, and every situation is a little bit different.",
    "Absolutely, I'd be happy to help with that! There's quite a lot to unpack here, so let's take it step by step "
    "and look at it from several different angles.",
]
_VERBOSE_FILLER: list[str] = [
    "It's also worth keeping in mind that what works for one person may not work for another, so you may want to "
    "experiment a little and see what fits your needs best.",
    "Of course, there are always exceptions, and it's important to remember that context matters a great deal in "
    "situations like this one.",
    "Many experts have written about this topic over the years, and while they don't always agree on every detail, "
    "there is a general consensus on the basics.",
    "Taking a moment to step back and consider the bigger picture can often be really helpful here, as it allows you "
    "to see things from a different perspective.",
]
_VERBOSE_OUTROS: list[str] = [
    "I hope this helps! Let me know if you have any other questions, and good luck!",
    "In conclusion, there are many things to consider, but with a bit of patience you'll get there. Feel free to "
    "ask if anything is unclear!",
]


def _verbose(rng: random.Random, terse: str) -> str:
    filler = rng.sample(_VERBOSE_FILLER, 2)
    return "\n\n".join(
        [rng.choice(_VERBOSE_INTROS), f"To put it simply: {terse}", *filler, rng.choice(_VERBOSE_OUTROS)]
    )


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    names = sorted(weights)
    return rng.choices(names, weights=[weights[name] for name in names])[0]


def _pick_models(rng: random.Random) -> tuple[str, str]:
    """(model of the better answer, model of the weaker one): stronger models tend to win."""
    better = _weighted(rng, MODEL_STRENGTH)
    others = {model: 10 - strength for model, strength in MODEL_STRENGTH.items() if model != better}
    return better, _weighted(rng, others)


# --- Generators ---------------------------------------------------------------------------------------------
def pairwise_items(count: int = 300, seed: int | str = "concord-demo") -> list[PairItem]:
    """``count`` pairwise comparisons (``pair-0001``…), about ``GOLD_SHARE`` of them gold."""
    rng = random.Random(f"pairwise:{seed}")
    names = [name for name, _, _ in _TEMPLATES]
    weights = [weight for _, weight, _ in _TEMPLATES]
    functions = {name: function for name, _, function in _TEMPLATES}
    items: list[PairItem] = []
    gold_candidates: list[int] = []
    seen: set[str] = set()
    for index in range(count):
        for _attempt in range(25):  # prefer prompts not used yet; templates have many variants
            template = rng.choices(names, weights=weights)[0]
            scenario = functions[template](rng)
            if scenario.prompt not in seen:
                break
        seen.add(scenario.prompt)
        styles = dict(WEAKER_STYLES)
        if scenario.wrong is None:
            del styles["wrong"]
        style = _weighted(rng, styles)
        weaker = {
            "wrong": scenario.wrong,
            "terse": scenario.terse,
            "verbose": _verbose(rng, scenario.terse),
            "evasive": rng.choice(_EVASIVE),
        }[style]
        assert weaker and weaker != scenario.good
        better_model, weaker_model = _pick_models(rng)
        a_is_better = rng.random() < 0.5
        items.append(
            PairItem(
                external_id=f"pair-{index + 1:04d}",
                prompt=scenario.prompt,
                response_a=scenario.good if a_is_better else weaker,
                response_b=weaker if a_is_better else scenario.good,
                model_a=better_model if a_is_better else weaker_model,
                model_b=weaker_model if a_is_better else better_model,
                better="a" if a_is_better else "b",
                weaker_style=style,
                topic=scenario.topic,
                template=template,
            )
        )
        if style == "wrong" and scenario.gold_safe:
            gold_candidates.append(index)
    wanted = min(round(count * GOLD_SHARE), len(gold_candidates))
    for index in sorted(rng.sample(gold_candidates, wanted)):
        items[index] = replace(items[index], gold_label=items[index].better)
    return items


# --- Support tickets ------------------------------------------------------------------------------------------
def _customer(rng: random.Random) -> dict[str, Any]:
    """Made-up details of one customer, the fields the ticket templates fill in."""
    plan, other_plan = rng.sample(["Starter", "Pro", "Team", "Business"], 2)
    price = {"Starter": 12, "Pro": 29, "Team": 79, "Business": 249}[plan]
    seats = rng.randint(4, 30)
    return {
        "name": rng.choice(
            ["Maria", "James", "Aisha", "Chen", "Lukas", "Fatima", "Diego", "Hannah", "Ravi", "Sophie", "Tom", "Yara"]
        ),
        "company": rng.choice(
            [
                "Northwind Traders",
                "Blue Fern Studio",
                "Keystone Dental",
                "Harbor & Pine",
                "Quantum Bakery",
                "Orbit Labs",
            ]
        ),
        "plan": plan,
        "other_plan": other_plan,
        "amount": _money(price * rng.choice([1, 1, 1, 12])),
        "last4": f"{rng.randint(0, 9999):04d}",
        "date": f"{rng.choice(['March', 'April', 'May', 'June'])} {rng.randint(1, 28)}",
        "invoice": f"INV-{rng.randint(10000, 99999)}",
        "device": rng.choice(["iPhone 15", "Pixel 8", "Galaxy S23", "Windows 11 laptop", "MacBook Air", "iPad"]),
        "browser": rng.choice(["Chrome", "Firefox", "Safari", "Edge"]),
        "version": f"4.{rng.randint(10, 19)}.{rng.randint(0, 5)}",
        "integration": rng.choice(["Slack", "Google Calendar", "Zapier", "Salesforce", "Notion", "Microsoft Teams"]),
        "seats": seats,
        "seats_billed": seats + rng.randint(2, 5),
        "items": seats * rng.choice([10, 20, 40]),
        "upload_mb": rng.choice([10, 20, 25, 50]),
    }


@dataclass(frozen=True)
class _TicketTemplate:
    name: str
    label: str
    weight: int  # how common this kind of ticket is
    text: str  # a ``str.format`` template over the fields of ``_customer``
    ambiguous: bool = False  # could reasonably get another label too: never used as gold


_TICKETS: list[_TicketTemplate] = [
    # Billing
    _TicketTemplate(
        "double_charge",
        "billing",
        3,
        "I was charged twice for my {plan} subscription this month: two charges of {amount} on {date} on "
        "my card ending in {last4}. Can you refund the duplicate?",
    ),
    _TicketTemplate(
        "invoice_details",
        "billing",
        2,
        "Could you reissue invoice {invoice} with our company name ({company}) and VAT number on it? Our "
        "accounting team can't process it otherwise.",
    ),
    _TicketTemplate(
        "charged_after_cancel",
        "billing",
        2,
        "I cancelled our {plan} plan on {date} but was still billed {amount} today. Please refund it and "
        "confirm the cancellation went through.",
    ),
    _TicketTemplate(
        "proration",
        "billing",
        2,
        "We're thinking of moving from {plan} to {other_plan} in the middle of our billing cycle. Will "
        "we be charged the full price for the month or a prorated amount?",
    ),
    _TicketTemplate(
        "card_declined",
        "billing",
        2,
        "Our payment keeps failing with 'card declined', but the card (ending {last4}) works everywhere "
        "else and I updated the billing address yesterday. Please don't suspend the workspace while we "
        "sort this out.",
    ),
    _TicketTemplate(
        "seat_count",
        "billing",
        1,
        "Our latest invoice ({invoice}) bills us for {seats_billed} seats, but we only have {seats} "
        "active users. Can you check the count and adjust the invoice?",
    ),
    _TicketTemplate(
        "nonprofit_discount",
        "billing",
        1,
        "We're a registered nonprofit currently on the {plan} plan. Do you offer any discount for "
        "charities, and if so, what do you need from us?",
        ambiguous=True,
    ),
    # Bugs
    _TicketTemplate(
        "app_crash",
        "bug",
        3,
        "Since updating to version {version}, the app crashes on my {device} every time I open the "
        "Reports screen. Reinstalling didn't help. Steps: open app > Reports > it closes immediately.",
    ),
    _TicketTemplate(
        "csv_dates",
        "bug",
        2,
        "When I export the monthly report to CSV, every date in the file comes out as 01/01/1970. The "
        "same report looks correct on screen.",
    ),
    _TicketTemplate(
        "upload_error",
        "bug",
        2,
        "I get 'Error 500: something went wrong' whenever I upload a file bigger than about {upload_mb} "
        "MB. Smaller files are fine. Tried in {browser} and on the desktop app.",
    ),
    _TicketTemplate(
        "notifications_stopped",
        "bug",
        2,
        "I stopped getting email notifications for new comments around {date}. My settings say they're "
        "on and nothing is in spam. Two colleagues have the same problem.",
    ),
    _TicketTemplate(
        "button_hidden",
        "bug",
        1,
        "In {browser}, the Save button on the settings page is covered by the chat widget, so I "
        "literally can't click it. Screenshot attached.",
    ),
    _TicketTemplate(
        "timezone_due_dates",
        "bug",
        1,
        "All due dates show up one day early for everyone on our team in Auckland. Looks like a time "
        "zone bug: the dates are correct for our US colleagues.",
    ),
    _TicketTemplate(
        "search_accents",
        "bug",
        1,
        "Search returns nothing for words with accents. Searching 'café' or 'Müller' finds no results "
        "even though there are dozens of items with those words.",
    ),
    # Feature requests
    _TicketTemplate(
        "dark_mode",
        "feature",
        2,
        "Any plans to add a dark mode? A lot of us work late and the bright white background is rough on the eyes.",
    ),
    _TicketTemplate(
        "integration",
        "feature",
        3,
        "It would be great if you integrated with {integration}, so our team gets updates there without "
        "checking the app all day. Is that on the roadmap?",
    ),
    _TicketTemplate(
        "bulk_edit",
        "feature",
        2,
        "Please add a way to select several items and change their status or assignee at once. Right now "
        "we edit them one by one, which takes ages with {items} items.",
    ),
    _TicketTemplate(
        "webhooks",
        "feature",
        1,
        "Could you add webhooks for when an item is closed? We currently poll your API every minute to "
        "catch changes, which feels wasteful on both sides.",
    ),
    _TicketTemplate(
        "pdf_export",
        "feature",
        1,
        "Would love an option to export dashboards as PDF for our monthly board meeting. Screenshots "
        "look unprofessional.",
    ),
    _TicketTemplate(
        "sso_request",
        "feature",
        1,
        "We'd like to use single sign-on with Okta for our {seats} users. Is that possible on the {plan} "
        "plan, or is it planned?",
        ambiguous=True,
    ),
    # Account access
    _TicketTemplate(
        "reset_email_missing",
        "account",
        3,
        "I requested a password reset three times but the email never arrives. I've checked spam. My "
        "login is my work email.",
    ),
    _TicketTemplate(
        "lost_2fa_phone",
        "account",
        2,
        "I lost my phone, which had my two-factor authentication app on it, and now I can't log in. I "
        "don't have the backup codes. How can I get back into my account?",
    ),
    _TicketTemplate(
        "owner_left",
        "account",
        2,
        "The person who owned our {company} workspace has left the company, and nobody else is an admin. "
        "How can we transfer ownership to me?",
    ),
    _TicketTemplate(
        "account_locked",
        "account",
        2,
        "It says my account is locked after too many login attempts. It's been over an hour. Can you unlock it?",
    ),
    _TicketTemplate(
        "change_login_email",
        "account",
        1,
        "Our company changed its domain name. How do I change the email address I log in with without "
        "losing my history?",
    ),
    _TicketTemplate(
        "sso_loop",
        "account",
        1,
        "Since this morning, logging in through Google sends me back to the login page in an endless "
        "loop. Tried {browser} and incognito mode, same thing.",
        ambiguous=True,
    ),
    # Other
    _TicketTemplate(
        "data_residency",
        "other",
        1,
        "Where are your servers located? Our legal team is asking whether our data stays in the EU.",
    ),
    _TicketTemplate(
        "praise",
        "other",
        1,
        "No problem to report, just wanted to say the new timeline view in {version} is fantastic. Thanks!",
    ),
    _TicketTemplate(
        "partner_program",
        "other",
        1,
        "Do you have a partner or reseller program? We set up tools like yours for small businesses.",
    ),
    _TicketTemplate(
        "status_page",
        "other",
        1,
        "Is there a public status page we can subscribe to for outages and maintenance windows?",
    ),
]
_GREETINGS = ["Hi,", "Hello support team,", "Hey there,", "Hi there,", "Good morning,", ""]
_CLOSINGS = ["Thanks,", "Thanks in advance,", "Best regards,", "Cheers,", "Kind regards,"]


def _ticket_text(rng: random.Random, template: str, customer: dict[str, Any], channel: str) -> str:
    body = template.format(**customer)
    if channel == "chat":  # people type differently in a chat box
        text = body[0].lower() + body[1:] if rng.random() < 0.5 else body
        return text.replace("Can you", "can u") if rng.random() < 0.3 else text
    greeting = rng.choice(_GREETINGS)
    closing = f"{rng.choice(_CLOSINGS)}\n{customer['name']}"
    if channel == "email":
        closing += f"\n{customer['company']}"
    return "\n\n".join(part for part in (greeting, body, closing) if part)


def ticket_items(count: int = 150, seed: int | str = "concord-demo") -> list[TicketItem]:
    """``count`` support tickets (``ticket-0001``…), about ``GOLD_SHARE`` of them gold (unambiguous ones only)."""
    rng = random.Random(f"tickets:{seed}")
    weights = [template.weight for template in _TICKETS]
    items: list[TicketItem] = []
    seen: set[str] = set()
    for index in range(count):
        for _attempt in range(25):
            template = rng.choices(_TICKETS, weights=weights)[0]
            customer = _customer(rng)
            channel = rng.choice(["email", "email", "web form", "chat"])
            text = _ticket_text(rng, template.text, customer, channel)
            if text not in seen:
                break
        seen.add(text)
        items.append(
            TicketItem(
                external_id=f"ticket-{index + 1:04d}",
                text=text,
                label=template.label,
                channel=channel,
                plan=customer["plan"],
                template=template.name,
                ambiguous=template.ambiguous,
            )
        )
    candidates = [index for index, item in enumerate(items) if not item.ambiguous]
    wanted = min(round(count * GOLD_SHARE), len(candidates))
    for index in sorted(rng.sample(candidates, wanted)):
        items[index] = replace(items[index], gold_label=items[index].label)
    return items


# --- Rankings of four responses -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankItem:
    """One prompt with four responses (a thorough answer, a terse one, a padded one, and a wrong or evasive one) and
    their true order, best first, as indexes of ``responses``."""

    external_id: str
    prompt: str
    responses: tuple[tuple[str, str], ...]  # (text, model)
    best_first: tuple[int, ...]
    topic: str
    template: str
    gold_label: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return {
            "messages": [{"role": "user", "content": self.prompt}],
            "responses": [{"text": text, "model": model} for text, model in self.responses],
        }

    @property
    def meta(self) -> dict[str, Any]:
        return {"topic": self.topic, "template": self.template, "source": SOURCE}


def ranking_items(count: int = 60, seed: int | str = "concord-demo") -> list[RankItem]:
    """``count`` four-response items (``rank-0001``…): the same scenarios as the pairs, every style at once."""
    rng = random.Random(f"ranking:{seed}")
    names = [name for name, _, _ in _TEMPLATES]
    weights = [weight for _, weight, _ in _TEMPLATES]
    functions = {name: function for name, _, function in _TEMPLATES}
    items: list[RankItem] = []
    for index in range(count):
        template = rng.choices(names, weights=weights)[0]
        scenario = functions[template](rng)
        worst = scenario.wrong if scenario.wrong is not None else rng.choice(_EVASIVE)
        quality = [scenario.good, _verbose(rng, scenario.terse), scenario.terse, worst]  # best first
        models = rng.sample(list(MODELS), 4)
        models.sort(key=lambda model: -MODEL_STRENGTH[model] - rng.random() * 4)  # stronger models tend to rank higher
        shown = rng.sample(range(4), 4)  # response i of the task is quality[shown[i]]
        responses = tuple((quality[shown[i]], models[shown[i]]) for i in range(4))
        best_first = tuple(sorted(range(4), key=lambda i: shown[i]))
        gold = str(best_first[0]) if scenario.gold_safe and rng.random() < GOLD_SHARE * 2 else None
        items.append(
            RankItem(
                external_id=f"rank-{index + 1:04d}",
                prompt=scenario.prompt,
                responses=responses,
                best_first=best_first,
                topic=scenario.topic,
                template=template,
                gold_label=gold,
            )
        )
    return items
