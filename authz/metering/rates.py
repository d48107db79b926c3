"""Exact per-token rates read off genai-prices itself, so pricing an event is a few Decimal products.

Why: ``genai_prices.calc_price`` costs ~0.2 ms per call (unit decomposition and usage inference run
for every call), which capped the flusher at a few thousand token events per second.

Why it stays exact: for one ``ModelPrice``, genai-prices' total is ``sum(rate * leaf / per)`` over
the priced units (plus a per-request term). Each rate depends only on the input-token *tier
bracket* (cliff tiers compare the input tokens with each tier's start), and the leaf counts are
linear in the four counts we report once it is fixed which of them are zero (missing-usage
inference only looks at which reported counts are > 0). So for a fixed (price, bracket, zero
pattern) the total is affine in (input, output, cache_read, cache_write). :func:`probe` measures
that affine function with genai-prices' own ``calc_price`` (a base point plus one step per count),
then checks it against genai-prices at a further point of the same bracket and pattern; anything
that does not fit (a probe raises, the check disagrees, a bracket too narrow to probe) returns
``None`` and the caller asks genai-prices for every such event instead. Evaluation traps
``Inexact``: a product that would round (beyond 28 digits) also falls back.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact
from typing import Any

from genai_prices import types as gp_types

EXACT = Context(prec=28, traps=[Inexact])
MISSING: Any = object()  # a cache's "not probed yet" (None means "probed: ask genai-prices per event")
Counts = tuple[int, int, int, int]  # input (cache included), output, cache_read, cache_write
Calc = Callable[[Counts], Decimal]  # genai-prices' total for these counts (same price, same time)


@dataclass(frozen=True, slots=True)
class Affine:
    """``total = base + sum(coef[i] * counts[i])``, exactly, inside one bracket and zero pattern."""

    base: Decimal
    coef: tuple[Decimal, Decimal, Decimal, Decimal]

    def total(self, counts: Counts) -> Decimal:
        """Raises ``decimal.Inexact`` when a product or sum would be rounded (then ask genai-prices)."""
        total = self.base
        for coef, count in zip(self.coef, counts, strict=True):
            if count:
                total = EXACT.add(total, EXACT.multiply(coef, count))
        return total


def tier_starts(model_price: object) -> tuple[int, ...]:
    """Every tier threshold of a ``ModelPrice`` (sorted, distinct): the bracket boundaries."""
    starts = {
        tier.start
        for value in vars(model_price).values()
        if isinstance(value, gp_types.TieredPrices)
        for tier in value.tiers
    }
    return tuple(sorted(starts))


def bracket(starts: tuple[int, ...], input_tokens: int) -> int:
    """How many tier starts the input exceeds (genai-prices: a tier applies when ``input > start``)."""
    return bisect.bisect_left(starts, input_tokens)


def piece(starts: tuple[int, ...], counts: Counts) -> tuple[int, bool, bool, bool]:
    """Which affine piece holds ``counts``: (bracket, output > 0, cache_read > 0, cache_write > 0)."""
    return (bracket(starts, counts[0]), counts[1] > 0, counts[2] > 0, counts[3] > 0)


def probe(calc: Calc, starts: tuple[int, ...], counts: Counts) -> Affine | None:
    """The affine piece of genai-prices' total holding ``counts`` (input > 0), or None if it cannot be pinned."""
    k = bracket(starts, counts[0])
    lo = starts[k - 1] + 1 if k > 0 else 0
    hi = starts[k] if k < len(starts) else None
    base_in = max(lo, 3)  # room for cache_read + cache_write + 1 inside the input
    if hi is not None and base_in + 2 > hi:
        return None  # the bracket is too narrow to hold the probe points
    pattern = tuple(1 if c > 0 else 0 for c in counts[1:])
    base: Counts = (base_in, pattern[0], pattern[1], pattern[2])
    try:
        at_base = calc(base)
        steps = [
            EXACT.subtract(calc(_step(base, i)), at_base) if i == 0 or pattern[i - 1] else Decimal(0) for i in range(4)
        ]
        coef = (steps[0], steps[1], steps[2], steps[3])
        affine = Affine(EXACT.subtract(at_base, Affine(Decimal(0), coef).total(base)), coef)
        check: Counts = (base_in + 2, 3 * pattern[0], 2 * pattern[1], 2 * pattern[2])
        if affine.total(check) != calc(check):
            return None
    except Exception:  # genai-prices refuses these counts (or a product would round): price each event
        return None
    return affine


def _step(counts: Counts, index: int) -> Counts:
    out = list(counts)
    out[index] += 1
    return (out[0], out[1], out[2], out[3])
