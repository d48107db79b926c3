"""``BudgetHook``: enforce the AS's budgets on every token use (issue 6), with at most one network
round trip on the request's path.

``before()`` reserves ``calls=1`` (plus an optional token estimate) on every budget of the token's
agent, team and workflow with one ``POST {issuer}/api/v1/budgets/reserve`` over a pooled httpx2
client. An exhausted hard budget -> 429 with ``Retry-After`` (seconds until the period ends) and an
RFC 9457 problem body naming the budget; the AS unreachable -> 503 (hard caps fail closed; pass
``fail_closed=False`` to admit instead). ``after()`` queues the settle (or a release when the
application failed before answering); a background task sends the queued settles in batches with
``POST /api/v1/budgets/settle`` — never on the response path. A settle that is lost is harmless for
the cap: the hold expires on the AS (the use is then not counted; metering is the durable record).

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
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx2

from resource_server.hooks import Refusal, UseContext, UseOutcome

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
        settle_batch: int = 500,
        settle_delay: float = 0.02,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.admin_api = (admin_api or self.issuer + "/api/v1").rstrip("/")
        self._auth = (client_id, client_secret)
        self.fail_closed = fail_closed
        self.retry_after = retry_after
        self.estimate_tokens = estimate_tokens
        self.settle_batch = settle_batch
        self.settle_delay = settle_delay
        self._own_client = http_client is None
        self._http = http_client or httpx2.AsyncClient(
            timeout=timeout, limits=httpx2.Limits(max_connections=200, max_keepalive_connections=100)
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._held: dict[int, str] = {}  # id(UseContext) -> reservation handle, between before and after
        self._queue: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the admin API token ------------------------------------------------------------------
    async def _access_token(self, renew: bool = False) -> str:
        if not renew and self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        async with self._token_lock:
            if not renew and self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            r = await self._http.post(
                self.issuer + "/token",
                data={"grant_type": "client_credentials", "resource": self.admin_api, "scope": SCOPE},
                auth=self._auth,
            )
            if r.status_code != 200:
                raise httpx2.HTTPError(f"admin API token refused: {r.status_code} {r.text[:200]}")
            body = r.json()
            self._token = str(body["access_token"])
            self._token_expires = time.monotonic() + max(5.0, float(body.get("expires_in", 60)) - 30.0)
            return self._token

    async def _post(self, path: str, payload: Mapping[str, Any]) -> httpx2.Response:
        token = await self._access_token()
        r = await self._http.post(self.admin_api + path, json=payload, headers={"Authorization": f"Bearer {token}"})
        if r.status_code == 401:  # revoked or rotated keys: one fresh token, one retry
            token = await self._access_token(renew=True)
            r = await self._http.post(self.admin_api + path, json=payload, headers={"Authorization": f"Bearer {token}"})
        return r

    # -- TokenUseHook ---------------------------------------------------------------------------
    async def before(self, ctx: UseContext) -> Refusal | None:
        token = ctx.token
        if not (token.agent or token.team or token.workflow):
            return None  # nobody to charge: no budget can apply, no round trip
        estimate: dict[str, Any] = {"calls": 1}
        if self.estimate_tokens:
            estimate["tokens"] = self.estimate_tokens
        payload = {
            "agent": token.agent,
            "team": token.team,
            "workflow": token.workflow,
            "request_id": secrets.token_hex(12),
            "estimate": estimate,
        }
        try:
            r = await self._post("/budgets/reserve", payload)
        except (httpx2.HTTPError, ValueError, KeyError) as exc:
            return self._unreachable(f"{type(exc).__name__}: {exc}")
        if r.status_code == 200:
            handle = r.json().get("reservation_id")
            if handle:
                self._held[id(ctx)] = handle
            return None
        if r.status_code == 429:
            return _refusal(r, 429)
        if r.status_code == 503 and r.headers.get("content-type", "").startswith("application/problem+json"):
            return _refusal(r, 503) if self.fail_closed else None
        return self._unreachable(f"budget reserve answered {r.status_code}")

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        handle = self._held.pop(id(ctx), None)
        if handle is None:
            return
        item: dict[str, Any] = {"reservation_id": handle}
        if outcome.status is None or outcome.status >= 500:
            item["release"] = True  # the use did not happen (or failed on our side): charge nothing
        else:
            tokens = int(outcome.usage.get("tokens", 0) or 0)
            if tokens or self.estimate_tokens:
                item["actual"] = {"calls": 1, "tokens": tokens}
        self._queue.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

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
            task = asyncio.get_running_loop().create_task(self._settle(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settle(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(3):
            try:
                r = await self._post("/budgets/settle", {"settlements": batch})
                if r.status_code == 200:
                    return
                log.warning("budget settle answered %s: %s", r.status_code, r.text[:200])
            except httpx2.HTTPError as exc:
                log.warning("budget settle failed (attempt %d): %s", attempt + 1, exc)
            await asyncio.sleep(0.2 * 2**attempt)  # settle is idempotent: retrying is safe
        log.error("giving up on %d budget settles; their holds expire on the AS", len(batch))

    async def drain(self) -> None:
        """Wait until every queued settle has been sent (tests, shutdown)."""
        while (self._flusher is not None and not self._flusher.done()) or self._tasks:
            if self._flusher is not None and not self._flusher.done():
                await self._flusher
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
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
