"""Token prices from ``genai-prices`` (offline bundled snapshot), behind one small interface.

The price in force at the *event's* timestamp is used (genai-prices selects historical prices by
``genai_request_timestamp``). The cost is kept exactly: the Decimal as text, plus integer pico-USD
(1e-12 USD) for the rollup sums. genai-prices' rates are per million tokens; rates with at most six
decimals (all but a handful of table entries) give costs that are exact in pico-USD; the text form
is always exact. Unknown providers or models are never priced 0: the cost is NULL with a reason.

Speed: a genai-prices call per event capped the flusher at a few thousand token events
per second. So the book caches, per (provider, model), genai-prices' model lookup; per (provider,
model, UTC day, time-of-day segment) the ``ModelPrice`` in force (prices change by UTC date or by
time of day, nothing finer); and per price the exact affine rates of :mod:`authz.metering.rates`,
measured with genai-prices itself. Anything those cannot pin is priced by genai-prices per event.
Provenance belongs to the price, not the event: one record per distinct price (library version,
provider id, model id, the rates used), named by ``price_id`` (a digest of the record).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, Inexact
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices import types as gp_types

from authz.metering import rates

PICO = Decimal("1e12")
VERSION = str(genai_prices.__version__)
DAY_MS = 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BUCKETS = 10_000  # (provider, model, day, segment) entries kept before the bucket cache starts over


@dataclass(frozen=True, slots=True)
class Priced:
    """The outcome of pricing one token event: a cost (exact) or the reason there is none."""

    cost_usd: Decimal | None
    cost_pusd: int | None
    reason: str | None
    provenance: dict[str, Any] | None  # the price's record, shared by every event priced with it
    price_id: str | None = None


@dataclass(slots=True)
class _Model:
    provider: Any  # genai_prices.types.Provider
    info: Any  # genai_prices.types.ModelInfo
    cuts: tuple[int, ...] | None  # microseconds of the UTC day where a price starts or ends; None: unknown


@dataclass(slots=True)
class _Price:
    model_price: Any  # genai_prices.types.ModelPrice
    price_id: str
    provenance: dict[str, Any]
    starts: tuple[int, ...]  # input-token tier thresholds
    pieces: dict[tuple[int, bool, bool, bool], rates.Affine | None] = field(default_factory=dict)


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, gp_types.TieredPrices):
        return {"base": str(value.base), "tiers": [[t.start, str(t.price)] for t in value.tiers]}
    return str(value)


def price_components(model_price: object) -> dict[str, object]:
    """The rates of a genai-prices ``ModelPrice`` as JSON (Decimals as text)."""
    return {k: _jsonable(v) for k, v in vars(model_price).items() if not k.startswith("_") and v is not None}


def usd_text(value: Decimal) -> str:
    """Exact decimal text without exponent or trailing zeros (``Decimal(text) == value``)."""
    return f"{value.normalize():f}" if value else "0"


def _usage(counts: rates.Counts) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=counts[0], output_tokens=counts[1], cache_read_tokens=counts[2], cache_write_tokens=counts[3]
    )


def _micros(t: time) -> int:
    if t.tzinfo is not None:  # genai-prices compares in UTC; naive times are UTC
        t = datetime.combine(datetime(1970, 1, 1).date(), t).astimezone(UTC).time()
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def day_cuts(info: Any) -> tuple[int, ...] | None:
    """Where in a UTC day the price in force can change, or None for constraints we do not know."""
    conditional = info.prices if isinstance(info.prices, list) else []
    cuts: set[int] = set()
    for cp in conditional:
        constraint = cp.constraint
        if isinstance(constraint, gp_types.TimeOfDateConstraint):
            cuts.update((_micros(constraint.start_time), _micros(constraint.end_time)))
        elif constraint is not None and not isinstance(constraint, gp_types.StartDateConstraint):
            return None  # a constraint kind newer than this code: look the price up for every event
    return tuple(sorted(cuts))


class PriceBook:
    """Price token usage with genai-prices, exactly, with the lookups and rates cached (see module doc).

    Thread-safe: the caches are plain dicts; two threads missing at once only compute an entry twice.
    """

    def __init__(self) -> None:
        self._snapshot: object = None
        self._models: dict[tuple[str, str], _Model | str] = {}
        self._buckets: dict[tuple[str, str, int, int], _Price] = {}
        self._prices: dict[int, _Price] = {}  # by id() of the ModelPrice (the entry keeps it alive)

    def refresh(self) -> None:
        """Drop every cache if genai-prices' data was replaced (``UpdatePrices``); the sink calls it per chunk."""
        snapshot = data_snapshot.get_snapshot()
        if snapshot is not self._snapshot:
            self._models, self._buckets, self._prices = {}, {}, {}
            self._snapshot = snapshot

    def _model(self, provider: str, model: str) -> _Model | str:
        if self._snapshot is None:
            self.refresh()
        try:
            prov, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider or None, None)
        except LookupError as exc:
            found: _Model | str = f"unknown to genai-prices {VERSION}: {exc}"[:255]
        else:
            found = _Model(prov, info, day_cuts(info))
        self._models[(provider, model)] = found
        return found

    def _price(self, model: _Model, key: tuple[str, str, int, int], at: datetime) -> _Price:
        model_price = model.info.get_prices(at)
        price = self._prices.get(id(model_price))
        if price is None or price.model_price is not model_price:
            record = {
                "source": "genai-prices",
                "version": VERSION,
                "provider_id": model.provider.id,
                "model_id": model.info.id,
                "rates_per_mtok": price_components(model_price),
            }
            canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
            price_id = hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
            price = _Price(model_price, price_id, record, rates.tier_starts(model_price))
            self._prices[id(model_price)] = price
        if model.cuts is not None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets = {}
            self._buckets[key] = price
        return price

    def _calc(self, model: _Model, at: datetime, counts: rates.Counts) -> Decimal:
        usage = _usage(counts)
        return Decimal(model.info.calc_price(usage, model.provider, genai_request_timestamp=at).total_price)

    def price(
        self,
        provider: str,
        model: str,
        at_ms: int,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Priced:
        if not model:
            return Priced(None, None, "no model given", None)
        found = self._models.get((provider, model)) or self._model(provider, model)
        if isinstance(found, str):
            return Priced(None, None, found, None)
        at: datetime | None = None  # built only when genai-prices is asked
        key = (provider, model, 0, 0)
        if found.cuts:
            day, in_day = divmod(at_ms, DAY_MS)
            key = (provider, model, day, bisect.bisect_right(found.cuts, in_day * 1000))
        elif found.cuts is not None:
            key = (provider, model, at_ms // DAY_MS, 0)
        price = self._buckets.get(key) if found.cuts is not None else None
        if price is None:
            at = EPOCH + timedelta(milliseconds=at_ms)
            price = self._price(found, key, at)
        counts = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)
        total: Decimal | None = None
        if input_tokens > 0:
            piece = rates.piece(price.starts, counts)
            affine = price.pieces.get(piece, rates.MISSING)
            if affine is rates.MISSING:
                when = at = at or EPOCH + timedelta(milliseconds=at_ms)
                affine = price.pieces[piece] = rates.probe(lambda c: self._calc(found, when, c), price.starts, counts)
            if affine is not None:
                try:
                    total = affine.total(counts)
                except Inexact:
                    total = None
        if total is None:
            try:
                total = self._calc(found, at or EPOCH + timedelta(milliseconds=at_ms), counts)
            except Exception as exc:  # a data or usage shape genai-prices cannot price: never guess
                reason = f"genai-prices {VERSION} could not price it: {type(exc).__name__}"[:255]
                return Priced(None, None, reason, None)
        pusd = int((total * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))
        return Priced(total, pusd, None, price.provenance, price.price_id)


def format_usd(pusd: int | None) -> str | None:
    """Integer pico-USD -> exact decimal text (trailing zeros dropped, at least 2 decimals).

    Integer arithmetic: exact at any size, and ~5x faster than going through Decimal (a usage
    query formats one cost per row, and may return hundreds of thousands of rows).
    """
    if pusd is None:
        return None
    whole, frac = divmod(abs(pusd), 10**12)
    digits = f"{frac:012d}".rstrip("0").ljust(2, "0")
    return f"{'-' if pusd < 0 else ''}{whole}.{digits}"
