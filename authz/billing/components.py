"""Price components and their pure pricing: ``flat``, ``unit``, ``graduated``, ``volume``, ``package``.

A component prices one quantity: a fixed count, the customer's seats (active agents), or a meter
(an event type, a summed field, a filter on rollup dimensions), grouped by customer or by agent.
The quantity is first scaled (``unit_scale``, e.g. 1,000,000 = "per 1M tokens") with an explicit
``rounding`` (``exact``, ``ceil``, ``floor``), then priced:

* ``flat``: ``amount`` x quantity (a fixed fee: quantity ``fixed`` 1; per seat: ``seats``).
* ``unit``: ``unit_amount`` x quantity.
* ``graduated``: tiers ``(lo, up_to]`` (half-open, ``lo`` = the previous ``up_to``, decimals allowed):
  each tier prices the units inside it, plus its ``flat_amount`` when it holds any unit.
* ``volume``: the one tier whose ``(lo, up_to]`` holds the whole quantity prices all of it.
* ``package``: ``ceil(max(q - free_units, 0) / package_size)`` packages of ``package_amount``.

An allowance is a $0 first tier. With ``group_by: agent`` tiers apply per agent
(``allowance_scope: per_group``) or to the customer's total with every bound multiplied by the
number of agents (``pooled``). ``min_amount`` / ``max_amount`` bound the line's precise amount.
Everything is Decimal; the line is rounded once, later (:mod:`authz.billing.preview`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, NamedTuple

from authz.billing.money import MoneyError, decimal, plain

KINDS = ("flat", "unit", "graduated", "volume", "package")
SOURCES = ("fixed", "seats", "meter")
FIELDS = ("count", "quantity", "tokens", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
FILTER_DIMS = ("team", "workflow", "mcp_server", "tool", "provider", "model", "unit")
SEAT_POLICIES = ("max_active", "prorated_days")
ROUNDINGS = ("exact", "ceil", "floor")
ID_RE = re.compile(r"[a-z0-9][a-z0-9_\-]{0,62}")
TYPE_RE = re.compile(r"tokens\.consumed|call\.completed|outcome\.[a-z0-9_][a-z0-9_.\-]{0,62}")
MAX_TIERS = 32
ZERO, ONE = Decimal(0), Decimal(1)


class SpecError(MoneyError):
    """A plan spec that cannot be priced; ``field`` is its dotted path."""


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None  # None: no upper bound (the last tier)
    unit_amount: Decimal
    flat_amount: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Quantity:
    source: str  # fixed | seats | meter
    count: Decimal = Decimal(1)  # fixed
    policy: str = "max_active"  # seats
    event_type: str = ""  # meter
    field: str = "quantity"  # meter
    filter: tuple[tuple[str, tuple[str, ...]], ...] = ()  # meter: dimension -> allowed values
    when: tuple[tuple[str, str], ...] = ()  # outcome meter trigger: attribute -> canonical JSON value


@dataclass(frozen=True, slots=True)
class Component:
    id: str
    label: str
    kind: str
    quantity: Quantity
    group_by: str = "customer"  # customer | agent
    allowance_scope: str = "per_group"  # per_group | pooled (group_by agent only)
    unit_scale: Decimal = Decimal(1)
    rounding: str = "exact"
    amount: Decimal = Decimal(0)  # flat
    unit_amount: Decimal = Decimal(0)  # unit
    tiers: tuple[Tier, ...] = ()  # graduated | volume
    package_size: Decimal = Decimal(1)
    package_amount: Decimal = Decimal(0)
    free_units: Decimal = Decimal(0)
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None


class TierUse(NamedTuple):
    """The units one tier priced for one group (a tuple: a preview makes one or two per agent)."""

    lo: Decimal
    up_to: Decimal | None
    units: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal


def scale(q: Decimal, unit_scale: Decimal, rounding: str) -> Decimal:
    scaled = q / unit_scale
    if rounding == "ceil":
        return scaled.to_integral_value(rounding=ROUND_CEILING)
    if rounding == "floor":
        return scaled.to_integral_value(rounding=ROUND_FLOOR)
    return scaled


def graduated(q: Decimal, tiers: tuple[Tier, ...], factor: Decimal = ONE) -> list[TierUse]:
    """Each tier ``(lo, up_to]`` (bounds x ``factor``, for pooled allowances) prices its own units."""
    out: list[TierUse] = []
    lo = ZERO
    scaled = factor != 1
    for t in tiers:
        hi = t.up_to * factor if scaled and t.up_to is not None else t.up_to
        units = (q if hi is None or q <= hi else hi) - lo
        if units > 0:
            flat = t.flat_amount
        else:
            units = flat = ZERO
        out.append(TierUse(lo, hi, units, t.unit_amount, flat, units * t.unit_amount + flat))
        if hi is None or q <= hi:
            break
        lo = hi
    return out


def volume(q: Decimal, tiers: tuple[Tier, ...], factor: Decimal = ONE) -> TierUse:
    """The first tier with ``q <= up_to`` prices all of ``q`` (its flat amount once, when q > 0)."""
    lo = Decimal(0)
    for t in tiers:
        hi = None if t.up_to is None else t.up_to * factor
        if hi is None or q <= hi:
            flat = t.flat_amount if q > 0 else Decimal(0)
            return TierUse(lo, hi, q, t.unit_amount, flat, q * t.unit_amount + flat)
        lo = hi
    raise AssertionError("validated tiers end with an unbounded tier")


def package(q: Decimal, c: Component) -> tuple[Decimal, Decimal]:
    """(packages, amount): whole packages of what exceeds the free units."""
    billable = max(Decimal(0), q - c.free_units)
    packages = (billable / c.package_size).to_integral_value(rounding=ROUND_CEILING)
    return packages, packages * c.package_amount


def price(c: Component, q: Decimal, factor: Decimal = ONE) -> tuple[Decimal, list[TierUse]]:
    """The precise amount of one group's (already scaled) quantity, and the tiers it used."""
    if c.kind == "flat":
        return c.amount * q, []
    if c.kind == "unit":
        return c.unit_amount * q, []
    if c.kind == "graduated":
        uses = graduated(q, c.tiers, factor)
        amount = ZERO
        for u in uses:
            amount += u.amount
        return amount, uses
    if c.kind == "volume":
        use = volume(q, c.tiers, factor)
        return use.amount, [use]
    _packages, amount = package(q, c)
    return amount, []


def bound(c: Component, precise: Decimal) -> Decimal:
    """The line's precise amount within ``[min_amount, max_amount]``."""
    if c.min_amount is not None and precise < c.min_amount:
        precise = c.min_amount
    if c.max_amount is not None and precise > c.max_amount:
        precise = c.max_amount
    return precise


# -- parsing and validation (every error names its field) -------------------------------------------
def _obj(raw: object, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise SpecError(field, "must be an object")
    return raw


def _only(raw: dict[str, Any], allowed: set[str], field: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise SpecError(f"{field}.{extra[0]}" if field else extra[0], "unknown field")


def _choice(raw: dict[str, Any], name: str, choices: tuple[str, ...], default: str, field: str) -> str:
    value = raw.get(name, default)
    if value not in choices:
        raise SpecError(f"{field}.{name}", f"must be one of {', '.join(choices)}")
    return str(value)


def _dec(raw: dict[str, Any], name: str, field: str, default: Decimal | None = None, **kw: Any) -> Decimal:
    if name not in raw or raw[name] is None:
        if default is None:
            raise SpecError(f"{field}.{name}", "required")
        return default
    try:
        return decimal(raw[name], f"{field}.{name}", **kw)
    except MoneyError as exc:
        raise SpecError(exc.field, exc.message) from None


def _quantity(raw: object, field: str) -> Quantity:
    q = _obj(raw, field)
    source = _choice(q, "source", SOURCES, "fixed", field)
    if source == "fixed":
        _only(q, {"source", "count"}, field)
        return Quantity("fixed", count=_dec(q, "count", field, Decimal(1)))
    if source == "seats":
        _only(q, {"source", "policy"}, field)
        return Quantity("seats", policy=_choice(q, "policy", SEAT_POLICIES, "max_active", field))
    _only(q, {"source", "event_type", "field", "filter", "when"}, field)
    etype = q.get("event_type")
    if not isinstance(etype, str) or not TYPE_RE.fullmatch(etype):
        raise SpecError(f"{field}.event_type", "must be tokens.consumed, call.completed or outcome.<name>")
    fld = _choice(q, "field", FIELDS, "quantity", field)
    filters: list[tuple[str, tuple[str, ...]]] = []
    for dim, values in sorted(_obj(q.get("filter", {}), f"{field}.filter").items()):
        if dim not in FILTER_DIMS:
            raise SpecError(f"{field}.filter.{dim}", f"filter on one of {', '.join(FILTER_DIMS)}")
        vals = [values] if isinstance(values, str) else values
        if not isinstance(vals, list) or not vals or not all(isinstance(v, str) for v in vals):
            raise SpecError(f"{field}.filter.{dim}", "must be a string or a non-empty list of strings")
        filters.append((dim, tuple(sorted(set(vals)))))
    when = _when(q, etype, fld, filters, field)
    return Quantity("meter", event_type=etype, field=fld, filter=tuple(filters), when=when)


def _when(q: dict[str, Any], etype: str, fld: str, filters: list[Any], field: str) -> tuple[tuple[str, str], ...]:
    """An outcome trigger: ``{"qualified": true}`` (every attribute must hold its JSON scalar value)."""
    if "when" not in q:
        return ()
    raw = _obj(q["when"], f"{field}.when")
    if not etype.startswith("outcome."):
        raise SpecError(f"{field}.when", "a trigger applies to outcome.<name> meters only")
    if fld not in ("count", "quantity"):
        raise SpecError(f"{field}.field", "a triggered outcome meter counts (count) or nets reversals (quantity)")
    if filters:
        raise SpecError(f"{field}.filter", "a triggered outcome meter filters by its attributes (when) only")
    if not raw or len(raw) > 8:
        raise SpecError(f"{field}.when", "must name 1-8 attributes")
    out = []
    for name, value in sorted(raw.items()):
        if not 0 < len(name) <= 64 or (value is not None and not isinstance(value, str | int | float | bool)):
            raise SpecError(f"{field}.when.{name}", "must be a string, number, boolean or null")
        out.append((name, json.dumps(value, ensure_ascii=False)))
    return tuple(out)


def _tiers(raw: object, field: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(field, "must be a non-empty list of tiers")
    if len(raw) > MAX_TIERS:
        raise SpecError(field, f"at most {MAX_TIERS} tiers")
    tiers: list[Tier] = []
    previous = Decimal(0)
    for i, item in enumerate(raw):
        at = f"{field}.{i}"
        t = _obj(item, at)
        _only(t, {"up_to", "unit_amount", "flat_amount"}, at)
        up_to = None if t.get("up_to") is None else _dec(t, "up_to", at)
        last = i == len(raw) - 1
        if up_to is None and not last:
            raise SpecError(f"{at}.up_to", "only the last tier may be unbounded (null)")
        if up_to is not None and last:
            raise SpecError(f"{at}.up_to", "the last tier must be unbounded (null)")
        if up_to is not None and (up_to <= previous if i else up_to <= 0):
            raise SpecError(f"{at}.up_to", "tiers must be sorted with increasing, non-overlapping bounds")
        tiers.append(Tier(up_to, _dec(t, "unit_amount", at), _dec(t, "flat_amount", at, Decimal(0))))
        previous = up_to if up_to is not None else previous
    return tuple(tiers)


def parse_component(raw: object, field: str) -> Component:
    c = _obj(raw, field)
    kind = _choice(c, "kind", KINDS, "", field)
    common = {"id", "label", "kind", "quantity", "group_by", "allowance_scope", "unit_scale", "rounding"}
    common |= {"min_amount", "max_amount"}
    per_kind = {
        "flat": {"amount"},
        "unit": {"unit_amount"},
        "graduated": {"tiers"},
        "volume": {"tiers"},
        "package": {"package_size", "package_amount", "free_units"},
    }[kind]
    _only(c, common | per_kind, field)
    cid = c.get("id")
    if not isinstance(cid, str) or not ID_RE.fullmatch(cid):
        raise SpecError(f"{field}.id", "required: 1-63 of [a-z0-9_-], starting with a letter or digit")
    label = c.get("label", cid)
    if not isinstance(label, str) or not 0 < len(label) <= 255:
        raise SpecError(f"{field}.label", "must be 1-255 characters")
    quantity = _quantity(c.get("quantity", {"source": "fixed", "count": 1}), f"{field}.quantity")
    group_by = _choice(c, "group_by", ("customer", "agent"), "customer", field)
    if group_by == "agent" and quantity.source != "meter":
        raise SpecError(f"{field}.group_by", "group_by agent needs a meter quantity")
    scope = _choice(c, "allowance_scope", ("per_group", "pooled"), "per_group", field)
    unit_scale = _dec(c, "unit_scale", field, Decimal(1))
    if unit_scale <= 0:
        raise SpecError(f"{field}.unit_scale", "must be positive")
    out: dict[str, Any] = {}
    if kind == "flat":
        out["amount"] = _dec(c, "amount", field)
    elif kind == "unit":
        out["unit_amount"] = _dec(c, "unit_amount", field)
    elif kind in ("graduated", "volume"):
        out["tiers"] = _tiers(c.get("tiers"), f"{field}.tiers")
    else:
        out["package_size"] = _dec(c, "package_size", field)
        if out["package_size"] <= 0:
            raise SpecError(f"{field}.package_size", "must be positive")
        out["package_amount"] = _dec(c, "package_amount", field)
        out["free_units"] = _dec(c, "free_units", field, Decimal(0))
    lo = _dec(c, "min_amount", field) if c.get("min_amount") is not None else None
    hi = _dec(c, "max_amount", field) if c.get("max_amount") is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise SpecError(f"{field}.max_amount", "must not be below min_amount")
    return Component(
        id=cid,
        label=label,
        kind=kind,
        quantity=quantity,
        group_by=group_by,
        allowance_scope=scope,
        unit_scale=unit_scale,
        rounding=_choice(c, "rounding", ROUNDINGS, "exact", field),
        min_amount=lo,
        max_amount=hi,
        **out,
    )


def component_json(c: Component) -> dict[str, Any]:
    """The canonical JSON of a component (what a plan version stores; parses back to ``c``)."""
    q = c.quantity
    quantity: dict[str, Any] = {"source": q.source}
    if q.source == "fixed":
        quantity["count"] = plain(q.count)
    elif q.source == "seats":
        quantity["policy"] = q.policy
    else:
        quantity.update(event_type=q.event_type, field=q.field, filter={d: list(v) for d, v in q.filter})
        if q.when:
            quantity["when"] = {name: json.loads(value) for name, value in q.when}
    out: dict[str, Any] = {
        "id": c.id,
        "label": c.label,
        "kind": c.kind,
        "quantity": quantity,
        "group_by": c.group_by,
        "allowance_scope": c.allowance_scope,
        "unit_scale": plain(c.unit_scale),
        "rounding": c.rounding,
    }
    if c.kind == "flat":
        out["amount"] = plain(c.amount)
    elif c.kind == "unit":
        out["unit_amount"] = plain(c.unit_amount)
    elif c.kind in ("graduated", "volume"):
        out["tiers"] = [
            {
                "up_to": None if t.up_to is None else plain(t.up_to),
                "unit_amount": plain(t.unit_amount),
                "flat_amount": plain(t.flat_amount),
            }
            for t in c.tiers
        ]
    else:
        out.update(
            package_size=plain(c.package_size), package_amount=plain(c.package_amount), free_units=plain(c.free_units)
        )
    if c.min_amount is not None:
        out["min_amount"] = plain(c.min_amount)
    if c.max_amount is not None:
        out["max_amount"] = plain(c.max_amount)
    return out
