"""Uniform sampling from streams too long to hold in memory (audits, spot checks)."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Iterable
from itertools import islice

__all__ = ["reservoir_sample"]


def _open_unit(rng: random.Random) -> float:
    """A uniform draw from the open interval (0, 1): ``random()`` may return 0.0, whose log is undefined."""
    while True:
        u = rng.random()
        if u > 0.0:
            return u


def _gap(u: float, w: float) -> int:
    """Items to skip before the next replacement: ``floor(log u / log(1 - w))``, geometric with success ``w``."""
    if w >= 1.0:  # exp() rounded a threshold just below 1 up to 1: the very next item gets in.
        return 0
    if w <= 0.0:  # Underflow after an astronomically long stream: nothing else gets in.
        return sys.maxsize - 1
    # log1p keeps the gap exact once w is tiny (very long streams); the cap keeps islice's bound valid.
    return int(min(math.log(u) / math.log1p(-w), sys.maxsize - 1))


def reservoir_sample[T](items: Iterable[T], k: int, *, rng: random.Random | int | None = None) -> list[T]:
    """``k`` items drawn uniformly without replacement from ``items``, in one pass and O(k) memory.

    Algorithm L (Li 1994, "Reservoir-sampling algorithms of time complexity O(n(1 + log(N/n)))"): instead of
    drawing a random number per item it draws how many items to skip before the next replacement, so a long stream
    costs O(k (1 + log(N/k))) random draws. Skipped items are consumed with ``itertools.islice`` and never stored;
    ``items`` is iterated exactly once, so a generator or a streamed queryset works.

    ``rng`` is a ``random.Random``, an int seed, or ``None`` (seeded from the OS). For a given seed the result,
    including its order, is deterministic; the order itself carries no meaning. With fewer than ``k`` items, all of
    them are returned in stream order. ``k < 1`` raises ``ValueError``.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    generator = rng if isinstance(rng, random.Random) else random.Random(rng)
    stream = iter(items)
    reservoir = list(islice(stream, k))
    if len(reservoir) < k:
        return reservoir
    # w is distributed as the largest of k uniforms: the bar an item's random key must fall below to get in.
    w = math.exp(math.log(_open_unit(generator)) / k)
    while True:
        skip = _gap(_open_unit(generator), w)
        accepted = list(islice(stream, skip, skip + 1))
        if not accepted:
            return reservoir
        reservoir[generator.randrange(k)] = accepted[0]
        w *= math.exp(math.log(_open_unit(generator)) / k)
