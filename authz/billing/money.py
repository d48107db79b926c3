"""Money: ISO 4217 currencies with their minor-unit exponents, exact Decimal parsing, one rounding rule.

ISO 4217 gives each currency a number of minor-unit digits (its *exponent*): USD 2, JPY 0, KWD 3,
CLF 4. Amounts are :class:`~decimal.Decimal` end to end; a line is rounded once, half away from zero
(``ROUND_HALF_UP`` on Decimals), to its currency's exponent, and an invoice total is the sum of its
rounded lines (never the rounding of a sum). No float ever holds money here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, getcontext

# The active ISO 4217 codes (list one, 2026) whose exponent is not 2; every other listed code has 2.
_EXPONENTS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ "
    "GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK "
    "MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB "
    "SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD "
    "USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)
EXPONENTS: dict[str, int] = {**dict.fromkeys(_TWO.split(), 2), **_EXPONENTS}
MAX_DIGITS = 18  # integers this long still fit a signed 64-bit column in minor units


class MoneyError(ValueError):
    """A bad currency or amount; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError("currency", f"{currency!r} is not an ISO 4217 currency code") from None


def check_currency(currency: object, field: str = "currency") -> str:
    if not isinstance(currency, str) or currency not in EXPONENTS:
        raise MoneyError(field, f"{currency!r} is not an ISO 4217 currency code (e.g. USD, EUR, JPY)")
    return currency


def decimal(value: object, field: str, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    """An exact Decimal from a JSON string or number (floats only through their shortest text)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MoneyError(field, "must be a decimal number or a decimal string")
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise MoneyError(field, f"{value!r} is not a decimal number") from None
    if not d.is_finite():
        raise MoneyError(field, "must be finite")
    if minimum is not None and d < minimum:
        raise MoneyError(field, f"must be at least {minimum}" if minimum else "must not be negative")
    if d.adjusted() >= MAX_DIGITS:
        raise MoneyError(field, "is too large")
    return d


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-exponent(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half away from zero to the currency's minor unit (the one rounding of a line)."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    """An amount already rounded to the currency, as an integer count of minor units."""
    return int(round_money(amount, currency).scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def text(amount: Decimal, currency: str) -> str:
    """Fixed-point text with exactly the currency's digits: ``"231.80"``, ``"1500"`` (JPY)."""
    return f"{round_money(amount, currency):f}"


def plain(d: Decimal) -> str:
    """Exact text of a Decimal without exponent or trailing zeros (``"0.5"``, ``"12000000"``): its
    ``str()`` when that is already so (most values; no normalized copy made), else normalized to the
    context's precision and formatted. Not memoized: hashing a fresh Decimal (most values of an
    invoice are) costs more than formatting it."""
    if not d:
        return "0"
    out = str(d)
    if len(out) > getcontext().prec or "E" in out or ("." in out and out[-1] == "0"):
        return f"{d.normalize():f}"
    return out
