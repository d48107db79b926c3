"""``BudgetHook``: enforce the AS's budgets on every token use without a network round
trip on the request's path in the common case: the hook **leases budget slices**.

A lease is one ordinary reservation at the AS (``POST {issuer}/api/v1/budgets/reserve`` with
``units``: up to *n* uses of the per-use estimate, ``calls=1`` plus an optional token estimate,
held on every budget of the token's agent, team and workflow, all or none). The hook hands the
units out locally to the uses of that agent/team/workflow, one per request, and settles the lease
once, in the background, with what was actually used (``calls`` admitted and answered, ``tokens``
recorded by tool code with ``record_usage(tokens=...)``); units not used are freed by that settle.

Sizing: a lease covers about ``lease_window`` seconds of the traffic last seen for its subject
(at least the requests waiting for it, at most ``lease_max``); the first use of a subject leases
one unit. A lease is returned after ``lease_idle`` seconds without use, or ``lease_age`` seconds
after it was granted, whichever is first, and when exhausted once its last use finished. When a
lease of 8 units or more is in its last quarter, the next one is leased **ahead**, in the
background (at most ``lease_max`` units held per subject, both together): the uses that come after
its last unit take units of the next one instead of all waiting for a round trip to the AS. Near the
cap the AS grants what still fits (at least one unit), so a hard cap is spent to the last unit and
never beyond: every admitted use holds a unit of a reservation the ledger made all or none.

What leasing costs, by design (docs/budgets.md, "Leases"): another replica may see a budget
exhausted while units leased here are still unused (at most ``lease_max`` per subject, for at most
``lease_idle`` seconds after the last use); and if this process dies with a lease out, the uses
it admitted under that lease are not charged to the budget (the hold expires on the AS after
``lease_hold`` seconds; metering remains the durable record of the calls). ``lease_max=1`` turns
leasing off: one reservation per use, settled in background batches.

Refusals: not even one unit fits a hard budget -> 429 with ``Retry-After`` (seconds until the period
ends) and an RFC 9457 problem body naming the budget; the AS unreachable -> 503 (hard caps fail
closed; pass ``fail_closed=False`` to admit instead).

The resource server never imports ``authz``: it authenticates to the admin API as itself, with a
``client_credentials`` token for the resource ``{issuer}/api/v1`` and scope ``budgets:use``
(``authz admin-client create --name my-mcp --scopes budgets:use``), cached until shortly before expiry.

Combine it with other hooks (metering) by composition: it keeps no state on the ``UseContext``
beyond a private map keyed by the context object, so a composite hook calling ``before``/``after``
of each member in turn works unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from resource_server.admin_token import AdminApiToken
from resource_server.hooks import Refusal, UseContext, UseOutcome
from resource_server.lease import Lease, Slot, Subject

__all__ = ["BudgetHook"]

log = logging.getLogger(__name__)

SCOPE = "budgets:use"
EXHAUSTED = "urn:authz:problem:budget-exhausted"
UNAVAILABLE = "urn:authz:problem:budget-unavailable"


class BudgetHook:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        admin_api: str | None = None,
        fail_closed: bool = True,
        timeout: float = 2.0,
        retry_after: int = 5,
        estimate_tokens: int = 0,
        lease_max: int = 64,
        lease_window: float = 0.25,
        lease_idle: float = 1.0,
        lease_age: float = 10.0,
        lease_hold: float = 60.0,
        settle_batch: int = 500,
        settle_delay: float = 0.02,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        if lease_max < 1 or lease_max > 10_000:
            raise ValueError("lease_max must be in [1, 10000]")
        self.issuer = issuer
        self.fail_closed = fail_closed
        self.retry_after = retry_after
        self.estimate_tokens = estimate_tokens
        self.lease_max = lease_max
        self.lease_window = lease_window
        self.lease_idle = lease_idle
        self.lease_age = min(lease_age, lease_hold / 2)
        self.lease_hold = lease_hold
        self.settle_batch = settle_batch
        self.settle_delay = settle_delay
        self._own_client = http_client is None
        self._http = http_client or httpx2.AsyncClient(
            timeout=timeout, limits=httpx2.Limits(max_connections=200, max_keepalive_connections=100)
        )
        self._token = AdminApiToken(self._http, issuer, client_id, client_secret, SCOPE, api_base=admin_api)
        self.admin_api = self._token.api_base
        self._slots: dict[Subject, Slot] = {}
        self._held: dict[int, Lease] = {}  # id(UseContext) -> its lease, between before and after
        self._queue: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _post(self, path: str, payload: Mapping[str, Any]) -> httpx2.Response:
        r = await self._http.post(self.admin_api + path, json=payload, headers=await self._bearer())
        if r.status_code == 401:  # revoked or rotated keys: one fresh token, one retry
            self._token.forget()
            r = await self._http.post(self.admin_api + path, json=payload, headers=await self._bearer())
        return r

    async def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self._token.get()}"}

    # -- TokenUseHook ---------------------------------------------------------------------------
    async def before(self, ctx: UseContext) -> Refusal | None:
        token = ctx.token
        subject: Subject = (token.agent, token.team, token.workflow)
        if not any(subject):
            return None  # nobody to charge: no budget can apply, no round trip
        slot = self._slots.get(subject)
        if slot is None:
            slot = self._slots[subject] = Slot()
        now = time.monotonic()
        lease = slot.lease
        if lease is not None and not slot.waiters and now - lease.granted < self.lease_age:
            self._take(slot, lease, ctx, now)  # the hot path: a unit of a lease already held
            last_quarter = lease.units - lease.taken <= lease.units // 4 and lease.units >= 8
            if last_quarter and slot.lease is lease and slot.ahead is None and not slot.acquiring:
                slot.acquiring = True  # lease the next one now, so that nobody waits for it
                self._spawn(self._acquire(subject, slot, ahead=lease))
            return None
        waiter: asyncio.Future[Lease | Refusal | None] = asyncio.get_running_loop().create_future()
        slot.waiters.append(waiter)
        if not slot.acquiring:
            slot.acquiring = True
            self._spawn(self._acquire(subject, slot))
        try:
            got = await waiter
        except asyncio.CancelledError:
            given = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if isinstance(given, Lease):
                self._finish(given, None)  # the unit was ours: hand it back uncharged
            raise
        if isinstance(got, Lease):
            self._held[id(ctx)] = got
            return None
        return got

    def _take(self, slot: Slot, lease: Lease, ctx: UseContext | None, now: float) -> None:
        lease.taken += 1
        lease.inflight += 1
        lease.last_used = now
        if ctx is not None:
            self._held[id(ctx)] = lease
        if lease.taken >= lease.units:
            self._retire(slot, lease, now)

    async def _acquire(self, subject: Subject, slot: Slot, ahead: Lease | None = None) -> None:
        """Lease units for every use waiting on ``slot`` (one reserve per lease), then hand them out.

        ``ahead``: ``slot``'s lease is in its last quarter; lease the next one now (sized from the
        current one's rate, at most ``lease_max`` minus what is left of it) as ``slot.ahead``.
        """
        try:
            if ahead is not None:
                rate = ahead.taken / max(time.monotonic() - ahead.granted, 1e-3)
                want = min(self.lease_max - (ahead.units - ahead.taken), math.ceil(rate * self.lease_window))
                got = await self._lease(subject, max(1, want))
                if isinstance(got, Lease):  # a refusal is handed to nobody: uses finding no unit ask again
                    got.last_used = got.granted
                    if slot.lease is None:  # the current lease ran out meanwhile
                        self._install(slot, got, got.granted)
                    elif slot.ahead is None:
                        slot.ahead = got
                    else:  # cannot happen (one acquire at a time); never leak a hold
                        got.retired = True
                        self._settle_lease(got)
            while slot.waiters:
                if slot.lease is not None:
                    self._retire(slot, slot.lease, time.monotonic())
                    if slot.lease is not None:  # the lease leased ahead took over
                        self._install(slot, slot.lease, time.monotonic())
                        continue
                units = min(self.lease_max, max(slot.size, len(slot.waiters)))
                got = await self._lease(subject, units)
                now = time.monotonic()
                if not isinstance(got, Lease):  # a refusal, or None: admitted without a hold (fail open)
                    slot.size = 1
                    while slot.waiters:
                        waiter = slot.waiters.popleft()
                        if not waiter.done():
                            waiter.set_result(got)
                    break
                self._install(slot, got, now)
            self._ensure_sweeper()
        except BaseException as exc:
            refusal = self._unreachable(f"{type(exc).__name__}: {exc}")
            while slot.waiters:
                waiter = slot.waiters.popleft()
                if not waiter.done():
                    waiter.set_result(refusal)
            if not isinstance(exc, Exception):
                raise
        finally:
            slot.acquiring = False

    def _install(self, slot: Slot, lease: Lease, now: float) -> None:
        """``lease`` is the subject's current one: a unit of it to each use waiting, while it lasts."""
        slot.lease = lease
        while slot.waiters and slot.lease is lease:
            waiter = slot.waiters.popleft()
            if not waiter.done():
                self._take(slot, lease, None, now)
                waiter.set_result(lease)
        if lease.taken == 0:  # every waiter went away
            lease.last_used = now

    async def _lease(self, subject: Subject, units: int) -> Lease | Refusal | None:
        estimate: dict[str, Any] = {"calls": 1}
        if self.estimate_tokens:
            estimate["tokens"] = self.estimate_tokens
        agent, team, workflow = subject
        payload = {
            "agent": agent,
            "team": team,
            "workflow": workflow,
            "request_id": secrets.token_hex(12),
            "estimate": estimate,
            "units": units,
            "ttl": self.lease_hold,
        }
        try:
            r = await self._post("/budgets/reserve", payload)
            if r.status_code == 200:
                doc = r.json()
                granted = int(doc.get("units", 1)) if doc.get("reservation_id") else units
                return Lease(handle=doc.get("reservation_id"), units=max(1, granted), granted=time.monotonic())
        except (httpx2.HTTPError, ValueError, KeyError, TypeError) as exc:
            return self._unreachable(f"{type(exc).__name__}: {exc}")
        if r.status_code == 429:
            return _refusal(r, 429)
        if r.status_code == 503 and r.headers.get("content-type", "").startswith("application/problem+json"):
            return _refusal(r, 503) if self.fail_closed else None
        return self._unreachable(f"budget reserve answered {r.status_code}")

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        lease = self._held.pop(id(ctx), None)
        if lease is not None:
            self._finish(lease, outcome)

    def _finish(self, lease: Lease, outcome: UseOutcome | None) -> None:
        """One use of ``lease`` is over: count it unless it did not happen (or failed on our side)."""
        lease.inflight -= 1
        if outcome is not None and outcome.status is not None and outcome.status < 500:
            lease.calls += 1
            lease.tokens += int(outcome.usage.get("tokens", 0) or 0)
        if lease.retired and lease.inflight == 0:
            self._settle_lease(lease)

    def _retire(self, slot: Slot, lease: Lease, now: float) -> None:
        """No more units from ``lease``: learn the subject's rate from it, settle once it is idle."""
        if lease.retired:
            return
        lease.retired = True
        slot.returned = now
        if slot.lease is lease:
            slot.lease, slot.ahead = slot.ahead, None
        age = max(now - lease.granted, 1e-3)
        slot.size = max(1, min(self.lease_max, math.ceil(lease.taken / age * self.lease_window)))
        if lease.inflight == 0:
            self._settle_lease(lease)

    def _settle_lease(self, lease: Lease) -> None:
        if lease.settled or lease.handle is None:
            return
        lease.settled = True
        item: dict[str, Any] = {"reservation_id": lease.handle}
        if lease.calls == 0 and lease.tokens == 0:
            item["release"] = True  # no use happened: charge nothing
        else:
            item["actual"] = {"calls": lease.calls, "tokens": lease.tokens}
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    # -- returning idle leases ------------------------------------------------------------------
    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while self._slots:
            await asyncio.sleep(min(self.lease_idle, self.lease_age) / 2)
            self.sweep(time.monotonic())

    def sweep(self, now: float, *, everything: bool = False) -> None:
        """Return leases idle for ``lease_idle`` seconds or older than ``lease_age`` (all: ``everything``)."""
        for subject, slot in list(self._slots.items()):
            lease = slot.lease
            if lease is not None and (
                everything or now - lease.last_used >= self.lease_idle or now - lease.granted >= self.lease_age
            ):
                self._retire(slot, lease, now)  # the lease leased ahead (if any) takes over, idle since granted
                if everything and slot.lease is not None:
                    self._retire(slot, slot.lease, now)
            idle = slot.lease is None and not slot.waiters and not slot.acquiring
            if idle and (everything or now - slot.returned >= 3 * self.lease_age):
                del self._slots[subject]  # forget the rate of a subject gone quiet

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _unreachable(self, why: str) -> Refusal | None:
        if not self.fail_closed:
            log.warning("budget service unreachable, admitting (fail open): %s", why)
            return None
        log.warning("budget service unreachable, refusing (hard caps fail closed): %s", why)
        return Refusal.problem(
            503,
            "Budget service unavailable",
            detail="The budget service cannot be reached; budgets with hard caps fail closed.",
            type_=UNAVAILABLE,
            retry_after=self.retry_after,
        )

    # -- background settles -------------------------------------------------------------------
    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.settle_delay)  # let concurrent uses join the batch
        while self._queue:
            batch, self._queue = self._queue[: self.settle_batch], self._queue[self.settle_batch :]
            self._spawn(self._settle(batch))

    async def _settle(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                r = await self._post("/budgets/settle", {"settlements": batch})
                if r.status_code == 200:
                    return
                log.warning("budget settle answered %s: %s", r.status_code, r.text[:200])
            except (httpx2.HTTPError, ValueError) as exc:
                log.warning("budget settle failed (attempt %d): %s", attempt + 1, exc)
            await asyncio.sleep(0.2 * 2**attempt)  # settle is idempotent: retrying is safe
        log.error("giving up on %d budget settles; their holds expire on the AS", len(batch))

    async def drain(self) -> None:
        """Return every lease (once its uses finished) and wait until every settle has been sent
        (tests, shutdown)."""
        self.sweep(time.monotonic(), everything=True)
        while (self._flusher is not None and not self._flusher.done()) or self._tasks:
            if self._flusher is not None and not self._flusher.done():
                await self._flusher
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._own_client:
            await self._http.aclose()


def _refusal(r: httpx2.Response, status: int) -> Refusal:
    try:
        doc: dict[str, Any] = r.json()
    except ValueError:
        doc = {}
    retry = r.headers.get("retry-after")
    extra: dict[str, Any] = {k: doc[k] for k in ("budget_id", "period_end") if k in doc}
    return Refusal.problem(
        status,
        str(doc.get("title") or ("Budget exhausted" if status == 429 else "Budget service unavailable")),
        detail=str(doc["detail"]) if "detail" in doc else None,
        type_=EXHAUSTED if status == 429 else UNAVAILABLE,
        retry_after=int(retry) if retry and retry.isdigit() else None,
        extra=extra,
    )
