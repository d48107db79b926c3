"""Token prices from ``genai-prices`` (offline bundled snapshot), behind one small interface.

The price in force at the *event's* timestamp is used (genai-prices selects historical prices by
``genai_request_timestamp``). The cost is kept exactly: the Decimal as text, plus integer pico-USD
(1e-12 USD) for the rollup sums. genai-prices' rates are per million tokens; rates with at most six
decimals (all but a handful of table entries) give costs that are exact in pico-USD; the text form
is always exact. Unknown providers or models are never priced 0: the cost is NULL with a reason.
Every priced event records its provenance (library version, provider id, model id, the rates used).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import genai_prices
from genai_prices import types as gp_types

PICO = Decimal("1e12")
VERSION = str(genai_prices.__version__)


@dataclass(frozen=True, slots=True)
class Priced:
    """The outcome of pricing one token event: a cost (exact) or the reason there is none."""

    cost_usd: Decimal | None
    cost_pusd: int | None
    reason: str | None
    provenance: dict[str, Any] | None


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, gp_types.TieredPrices):
        return {"base": str(value.base), "tiers": [[t.start, str(t.price)] for t in value.tiers]}
    return str(value)


def price_components(model_price: object) -> dict[str, object]:
    """The rates of a genai-prices ``ModelPrice`` as JSON (Decimals as text)."""
    return {k: _jsonable(v) for k, v in vars(model_price).items() if not k.startswith("_") and v is not None}


class PriceBook:
    """Price token usage with genai-prices. Thread-safe (genai-prices caches lookups internally)."""

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
        usage = genai_prices.Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
        at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        try:
            calc = genai_prices.calc_price(usage, model, provider_id=provider or None, genai_request_timestamp=at)
        except LookupError as exc:
            return Priced(None, None, f"unknown to genai-prices {VERSION}: {exc}"[:255], None)
        except Exception as exc:  # a data or usage shape genai-prices cannot price: never guess
            return Priced(None, None, f"genai-prices {VERSION} could not price it: {type(exc).__name__}"[:255], None)
        total = Decimal(calc.total_price)
        pusd = int((total * PICO).to_integral_value(rounding=ROUND_HALF_EVEN))
        provenance = {
            "source": "genai-prices",
            "version": VERSION,
            "provider_id": calc.provider.id,
            "model_id": calc.model.id,
            "model_ref": model,
            "rates_per_mtok": price_components(calc.model_price),
            "input_usd": str(calc.input_price),
            "output_usd": str(calc.output_price),
            "exact_in_pusd": Decimal(pusd) / PICO == total,
        }
        return Priced(total, pusd, None, provenance)


def format_usd(pusd: int | None) -> str | None:
    """Integer pico-USD -> exact decimal text (trailing zeros dropped, at least 2 decimals)."""
    if pusd is None:
        return None
    value = (Decimal(pusd) / PICO).normalize()
    if value == value.to_integral_value():
        return f"{value:.2f}"
    text = f"{value:f}"
    return text if len(text.split(".")[1]) >= 2 else f"{value:.2f}"
