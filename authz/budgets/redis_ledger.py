"""The Redis ledger: one Lua script per operation, every key of a call in one hash-tag slot.

Key design (see docs/budgets.md): all keys of one ledger partition share the hash tag ``{<tag>}``
(default ``authz``: the whole deployment, i.e. the tenant). A reservation over an agent, its team
and a workflow is then one script in one slot: atomic all-or-none without a two-phase protocol,
and it runs unchanged on Redis Cluster. The price: one partition's budget traffic is served by one
shard (a Lua reserve costs a few microseconds of that shard's CPU).

Per budget window ``<bid>``/``<pk>``:

* ``budget:{T}:w:<bid>:<pk>`` hash: ``spent``, ``reserved`` (integers);
* ``budget:{T}:z:<bid>:<pk>`` sorted set of holds ``<rid>|<amount>`` scored by expiry (ms): every
  script first subtracts and removes the holds whose expiry has passed (lazy, exact, no sweeper);

and per reservation ``budget:{T}:r:<rid>``: the string ``<state>|<exp_ms>|<bid>|<pk>|<amount>;...``,
kept ``retention`` after it ends so settle/release stay idempotent. Window keys expire
``window_retention`` after their period ends (lifetime windows never do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from authz.budgets.ledger import (
    DEFAULT_RETENTION,
    Charges,
    Clock,
    LedgerUnavailable,
    WindowCache,
    actual_for,
    plan,
    system_clock,
)
from authz.budgets.model import Budget, Exhausted, Item, Reservation, Settled, Status, WindowSpend
from authz.budgets.redis_scripts import FINISH, RESERVE, RESERVE_GROUP, STATUS

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisLedger:
    def __init__(
        self,
        client: redis.Redis,
        *,
        tag: str = "authz",
        now: Clock = system_clock,
        retention: float = DEFAULT_RETENTION,
        window_retention: float = 40 * 86_400.0,
    ) -> None:
        if any(c in tag for c in "{}"):
            raise ValueError("the hash tag must not contain braces")
        self.client = client
        self.prefix = f"budget:{{{tag}}}:"
        self.now = now
        self.retention = retention
        self.window_retention = window_retention
        self._windows = WindowCache()
        self._sha: dict[str, str] = {}

    # -- plumbing ---------------------------------------------------------------------------------
    def _keys(self, item: Item) -> tuple[str, str]:
        return (
            f"{self.prefix}w:{item.budget_id}:{item.period_key}",
            f"{self.prefix}z:{item.budget_id}:{item.period_key}",
        )

    def _load(self) -> None:
        """Load every script, then publish the complete table in one assignment: a thread that reads
        ``self._sha`` while another loads never sees it half filled."""
        scripts = (("reserve", RESERVE), ("group", RESERVE_GROUP), ("finish", FINISH), ("status", STATUS))
        self._sha = {name: str(self.client.script_load(source)) for name, source in scripts}

    def _eval(self, name: str, keys: list[str], args: list[Any]) -> Any:
        try:
            if not self._sha:
                self._load()
            try:
                return self.client.evalsha(self._sha[name], len(keys), *keys, *args)
            except NoScriptError:  # Redis restarted or SCRIPT FLUSH: reload once
                self._load()
                return self.client.evalsha(self._sha[name], len(keys), *keys, *args)
        except _UNAVAILABLE as exc:
            raise LedgerUnavailable(f"Redis ledger unreachable: {type(exc).__name__}") from exc

    @staticmethod
    def _parse_record(record: bytes | str) -> tuple[str, int, tuple[Item, ...]]:
        """``<state>|<exp_ms>|<bid>|<pk>|<amount>;...`` -> (state, exp_ms, items)."""
        text = record.decode() if isinstance(record, bytes) else record
        state, exp, raw = text.split("|", 2)
        out = []
        for part in raw.split(";") if raw else ():
            bid, pk, amount = part.split("|")
            out.append(Item(bid, pk, int(amount)))
        return state, int(exp), tuple(out)

    # -- reserve ----------------------------------------------------------------------------------
    def _reserve_call(self, request_id: str, charges: Charges, ttl: float) -> tuple[list[str], list[Any], Any]:
        at = self.now()
        planned = plan(charges, at, self._windows)
        at_ms = int(at * 1000)
        exp_ms = at_ms + int(ttl * 1000)
        keys = [f"{self.prefix}r:{request_id}"]
        args: list[Any] = [
            at_ms,
            exp_ms,
            int((ttl + self.retention) * 1000),
            request_id,
            ";".join(f"{i.budget_id}|{i.period_key}|{i.amount}" for _, i, _ in planned),
            len(planned),
        ]
        for budget, item, w in planned:
            keys.extend(self._keys(item))
            window_ttl = 0 if w.end is None else max(1, int(w.end - at + self.window_retention))
            args.extend((item.amount, budget.limit, 1 if budget.hard else 0, window_ttl))
        return keys, args, (request_id, planned, exp_ms)

    def _reserve_result(self, raw: Any, context: Any) -> Reservation | Exhausted:
        request_id, planned, exp_ms = context
        code = int(raw[0])
        if code == 1:
            return Reservation(request_id, tuple(i for _, i, _ in planned), exp_ms / 1000)
        if code == 0:
            budget, _, w = planned[int(raw[1]) - 1]
            return Exhausted(budget.id, w.end)
        _state, exp, items = self._parse_record(raw[1])
        return Reservation(request_id, items, exp / 1000)

    def reserve(self, request_id: str, charges: Charges, ttl: float) -> Reservation | Exhausted:
        keys, args, context = self._reserve_call(request_id, charges, ttl)
        return self._reserve_result(self._eval("reserve", keys, args), context)

    def reserve_many(self, requests: Sequence[tuple[str, Charges, float]]) -> list[Reservation | Exhausted]:
        """One round trip for the whole batch. Requests over the same set of budgets share one script
        (windows read once); each reservation is still all-or-none on its own, in batch order."""
        at = self.now()
        at_ms = int(at * 1000)
        groups: dict[tuple[str, ...], list[int]] = {}
        planned = []
        for n, (_rid, charges, _ttl) in enumerate(requests):
            p = plan(charges, at, self._windows)
            planned.append(p)
            groups.setdefault(tuple(f"{i.budget_id}:{i.period_key}" for _, i, _ in p), []).append(n)
        results: list[Reservation | Exhausted | None] = [None] * len(requests)
        for _attempt in range(2):
            try:
                if not self._sha:
                    self._load()
                pipe = self.client.pipeline(transaction=False)
                for members in groups.values():
                    pipe.evalsha(self._sha["group"], *self._group_call(members, requests, planned, at_ms))
                raws = pipe.execute(raise_on_error=False)
            except _UNAVAILABLE as exc:
                raise LedgerUnavailable(f"Redis ledger unreachable: {type(exc).__name__}") from exc
            if not any(isinstance(r, NoScriptError) for r in raws):
                break
            self._load()  # reserve is idempotent per id, so replaying the batch is safe
        for raw, members in zip(raws, groups.values(), strict=True):
            if isinstance(raw, Exception):
                raise raw
            for n, answer in zip(members, raw, strict=True):
                rid, _, ttl = requests[n]
                text = answer.decode() if isinstance(answer, bytes) else str(answer)
                if text == "":
                    items = tuple(i for _, i, _ in planned[n])
                    results[n] = Reservation(rid, items, (at_ms + int(ttl * 1000)) / 1000)
                elif text.startswith("x"):
                    budget, _, w = planned[n][int(text[1:]) - 1]
                    results[n] = Exhausted(budget.id, w.end)
                else:
                    _state, exp, items = self._parse_record(text)
                    results[n] = Reservation(rid, items, exp / 1000)
        return [r for r in results if r is not None]

    def _group_call(
        self,
        members: list[int],
        requests: Sequence[tuple[str, Charges, float]],
        planned: list[list[tuple[Budget, Item, Any]]],
        at_ms: int,
    ) -> list[Any]:
        first = planned[members[0]]
        keys: list[str] = []
        args: list[Any] = [at_ms, 0, len(first), len(members)]
        for budget, item, w in first:
            keys.extend(self._keys(item))
            window_ttl = 0 if w.end is None else max(1, int(w.end - at_ms / 1000 + self.window_retention))
            args.extend((budget.limit, 1 if budget.hard else 0, window_ttl))
        longest = 0.0
        for n in members:
            rid, _, ttl = requests[n]
            longest = max(longest, ttl)
            keys.append(f"{self.prefix}r:{rid}")
            items = planned[n]
            args.extend(
                (
                    rid,
                    at_ms + int(ttl * 1000),
                    ";".join(f"{i.budget_id}|{i.period_key}|{i.amount}" for _, i, _ in items),
                )
            )
            args.extend(i.amount for _, i, _ in items)
        args[1] = int((longest + self.retention) * 1000)
        return [len(keys), *keys, *args]

    # -- settle / release -------------------------------------------------------------------------
    def settle(self, reservation: Reservation | str, actual: Mapping[str, int] | None = None) -> Settled:
        return self._finish(reservation, actual, "settled")

    def release(self, reservation: Reservation | str) -> Settled:
        return self._finish(reservation, None, "released")

    def _finish(self, reservation: Reservation | str, actual: Mapping[str, int] | None, to: str) -> Settled:
        if isinstance(reservation, str):  # one extra round trip to learn the keys (pass the Reservation to avoid it)
            rid = reservation
            try:
                text = self.client.get(f"{self.prefix}r:{rid}")
            except _UNAVAILABLE as exc:
                raise LedgerUnavailable(f"Redis ledger unreachable: {type(exc).__name__}") from exc
            if text is None:
                return Settled(rid, "unknown")
            items = self._parse_record(text)[2]
        else:
            rid, items = reservation.id, reservation.items
        spends = [actual_for(i, actual) if to == "settled" else 0 for i in items]
        keys = [f"{self.prefix}r:{rid}"]
        args: list[Any] = [int(self.now() * 1000), int(self.retention * 1000), to, rid, len(items)]
        for item, spend in zip(items, spends, strict=True):
            keys.extend(self._keys(item))
            args.extend((item.amount, spend))
        raw = self._eval("finish", keys, args)
        code = int(raw[0])
        if code == -1:
            return Settled(rid, "unknown")
        if code == 0:
            return Settled(rid, "already")
        windows = tuple(
            WindowSpend(item.budget_id, item.period_key, int(raw[1 + 2 * n]), int(raw[2 + 2 * n]))
            for n, item in enumerate(items)
        )
        return Settled(rid, "settled" if to == "settled" else "released", windows)

    # -- status -------------------------------------------------------------------------------------
    def status(self, budget: Budget) -> Status:
        at = self.now()
        w = self._windows.get(budget, at)
        keys = list(self._keys(Item(budget.id, w.key, 0)))
        spent, reserved = (int(v) for v in self._eval("status", keys, [int(at * 1000)]))
        return Status(budget.id, w.key, spent, reserved, max(0, budget.limit - spent - reserved), w.start, w.end)
