"""Usage metering from the MCP server: a token-use hook that reports events to the ``authz`` AS.

    reporter = UsageReporter(issuer="https://auth.example.com", resource="https://mcp.example.com/mcp",
                             client_id="mcp-meter", client_secret="...")
    app = protect_mcp_app(inner, config, hook=CompositeHook(budget_hook, reporter))
    app = with_reporter_lifespan(app, reporter)   # flush on shutdown (or ``await reporter.aclose()``)

For every token use that reached the application, ``after()`` queues a ``call.completed`` event
(agent/team/workflow from the token, ``mcp_server`` = the resource, ``tool``, ``status`` "ok" or
"error", ``latency_ms``; ``metadata`` holds the HTTP status and the MCP method) plus the events tool
code recorded during the request:

* :func:`record_tokens` (``provider``, ``model``, ``input_tokens``, ``output_tokens``,
  ``cache_read_tokens``, ``cache_write_tokens``) -> one ``tokens.consumed`` per provider/model.
  ``input_tokens`` INCLUDES the cache tokens (the AS prices with genai-prices' convention).
  Plain ``record_usage(input_tokens=..., output_tokens=...)`` works too when the reporter has a
  ``default_model`` (and ``default_provider``); without one those quantities are dropped (logged once).
* :func:`record_outcome` (``name``, ``quantity``; optionally ``outcome_id``, ``value``, ``attributes``)
  -> ``outcome.<name>`` (the ``outcome_id`` is its idempotency key; value and attributes in ``metadata``).

Nothing here blocks or fails the MCP request: ``after()`` only appends to an in-memory queue
(bounded by ``max_queue``; the oldest events are dropped and counted when it overflows). A
background task ships batches of up to ``batch_size`` events (and at most ``max_body_bytes``
serialized) every ``flush_interval`` seconds, or as soon as a full batch waits, to
``POST {issuer}/api/v1/metering/events`` with a ``metering:write`` token it gets (client_credentials,
``resource={issuer}/api/v1``) and caches. A failed POST (network error, 5xx, 429) is retried with
the same batch after an exponential backoff: every event carries an idempotency id fixed when it
was queued (``{jti}:{reporter instance}:{sequence}``), so the AS counts a retried event once.
Events the AS rejects as invalid are logged and dropped. ``aclose()`` ships what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resource_server.admin_token import AdminApiToken
from resource_server.context import record_usage
from resource_server.hooks import Refusal, UseContext, UseOutcome
from resource_server.outcomes import OUTCOME_PREFIX as _OUTCOME_PREFIX
from resource_server.outcomes import outcome_event, record_outcome

__all__ = [
    "TOKEN_KEYS",
    "UsageReporter",
    "record_outcome",
    "record_tokens",
    "tokens_by_model",
    "with_reporter_lifespan",
]

log = logging.getLogger(__name__)

TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
SCOPE = "metering:write"
EVENTS_PATH = "/metering/events"
_SEP = "\x1f"  # joins provider/model/quantity in record_usage keys (never in a real name)
_TOKENS_PREFIX = "tokens.consumed" + _SEP
_ID_PART = re.compile(r"[\x21-\x7e]{1,80}")
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def record_tokens(
    *,
    provider: str,
    model: str,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> None:
    """Inside a tool: this request consumed LLM tokens (``input_tokens`` includes the cache tokens).

    Several calls add up per provider/model; the reporter sends one ``tokens.consumed`` event per
    provider/model of the request. Raises :class:`~resource_server.NoTokenError` outside a request.
    """
    counts = dict(zip(TOKEN_KEYS, (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens), strict=True))
    record_usage(**{_SEP.join((_TOKENS_PREFIX + provider, model, k)): float(v) for k, v in counts.items() if v})


def tokens_by_model(usage: Mapping[str, float]) -> dict[tuple[str, str], dict[str, int]]:
    """What :func:`record_tokens` recorded, from ``UseOutcome.usage``: {(provider, model): {key: count}}
    (keys of :data:`TOKEN_KEYS` that were recorded). For other hooks, e.g. budgets settling tokens."""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for key, amount in usage.items():
        if key.startswith(_TOKENS_PREFIX):
            provider, model, name = key[len(_TOKENS_PREFIX) :].split(_SEP)
            bucket = out.setdefault((provider, model), {})
            bucket[name] = bucket.get(name, 0) + round(amount)
    return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id_part(value: str | None) -> str:
    if value and _ID_PART.fullmatch(value):
        return value
    return hashlib.sha256((value or secrets.token_hex(8)).encode()).hexdigest()[:32]


class UsageReporter:
    """A :class:`~resource_server.TokenUseHook` that meters every token use (see the module docs)."""

    def __init__(
        self,
        *,
        issuer: str,
        resource: str,
        client_id: str,
        client_secret: str,
        http: httpx2.AsyncClient | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_body_bytes: int = 60_000,
        max_queue: int = 100_000,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        timeout: float = 10.0,
        default_provider: str | None = None,
        default_model: str | None = None,
        clock: Any = time.time,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be 1..1000 (the AS takes at most 1,000 events per request)")
        self.issuer = issuer
        self.resource = resource
        self.client_id = client_id
        self._http = http or httpx2.AsyncClient(timeout=timeout)
        self._owns_http = http is None
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_body_bytes = max_body_bytes
        self.max_queue = max_queue
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.default_provider = default_provider
        self.default_model = default_model
        self._clock = clock
        self._instance = secrets.token_hex(6)
        self._seq = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._send_lock: asyncio.Lock | None = None
        self._token = AdminApiToken(self._http, issuer, client_id, client_secret, SCOPE, clock=clock)
        self.api_base = self._token.api_base
        self._closed = False
        self._warned_no_model = False
        # counters, for tests and operators
        self.sent = 0  # events the AS acknowledged (accepted + duplicates)
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.dropped = 0  # queue overflow or a batch the AS refused as a whole
        self.failures = 0  # failed POST attempts (each retried)

    # -- the hook ---------------------------------------------------------------------------

    async def before(self, ctx: UseContext) -> Refusal | None:
        return None

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        try:
            self._enqueue(self.events_for(ctx, outcome))
        except Exception:  # metering must never fail the MCP request
            log.exception("usage reporter: could not queue events")

    def events_for(self, ctx: UseContext, outcome: UseOutcome) -> list[dict[str, Any]]:
        """The events one token use produces (ids fixed here, so every retry sends the same ids)."""
        token = ctx.token
        now = self._clock()
        base: dict[str, Any] = {
            "timestamp": _iso(now),
            "agent": token.agent or token.client_id or token.subject or "unknown",
            "mcp_server": self.resource,
        }
        if token.team:
            base["team"] = token.team
        if token.workflow:
            base["workflow"] = token.workflow
        tool = ctx.tool
        if tool:
            base["tool"] = tool
        ok = outcome.error is None and outcome.status is not None and outcome.status < 400
        meta: dict[str, Any] = {"http_status": outcome.status}
        if ctx.method:
            meta["method"] = ctx.method
        events = [
            {
                **base,
                "id": self._next_id(token.jti),
                "type": "call.completed",
                "status": "ok" if ok else "error",
                "latency_ms": max(0, round(outcome.duration * 1000)),
                "metadata": meta,
            }
        ]
        tokens = tokens_by_model(outcome.usage)
        plain: dict[str, int] = {}
        for key, amount in outcome.usage.items():
            if key in TOKEN_KEYS:
                plain[key] = round(amount)
            elif key.startswith(_OUTCOME_PREFIX):
                events.append(outcome_event(base, key, amount, self._next_id(token.jti)))
        if plain:
            if self.default_model:
                bucket = tokens.setdefault((self.default_provider or "", self.default_model), {})
                for k, v in plain.items():
                    bucket[k] = bucket.get(k, 0) + v
            elif not self._warned_no_model:
                self._warned_no_model = True
                log.warning("usage reporter: token counts without a model are dropped (use record_tokens())")
        for (provider, model), counts in tokens.items():
            ev = {**base, "id": self._next_id(token.jti), "type": "tokens.consumed", "model": model}
            if provider:
                ev["provider"] = provider
            ev["usage"] = {k: counts.get(k, 0) for k in TOKEN_KEYS}
            events.append(ev)
        return events

    def _next_id(self, jti: str | None) -> str:
        self._seq += 1
        return f"{_id_part(jti)}:{self._instance}:{self._seq}"

    def _enqueue(self, events: list[dict[str, Any]]) -> None:
        if self._closed:
            log.warning("usage reporter is closed; %d events not reported", len(events))
            self.dropped += len(events)
            return
        self._queue.extend(events)
        overflow = len(self._queue) - self.max_queue
        if overflow > 0:
            for _ in range(overflow):
                self._queue.popleft()
            self.dropped += overflow
            log.warning("usage reporter queue full: dropped the %d oldest events", overflow)
        self._ensure_task()
        if len(self._queue) >= self.batch_size and self._wake is not None:
            self._wake.set()

    # -- shipping ---------------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._queue)

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._send_lock = asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-reporter")

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self.flush(only=len(self._queue))  # later arrivals wait: no small POST per round trip
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("usage reporter: flush failed")

    async def flush(self, *, max_attempts: int | None = None, only: int | None = None) -> None:
        """Ship what is queued (``only``: the oldest that many); a failed batch is retried (``max_attempts``)."""
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        left = len(self._queue) if only is None else only
        async with self._send_lock:
            while self._queue and (only is None or left > 0):
                batch, body = self._take(limit=None if only is None else left)
                left -= len(batch)
                delay = self.retry_initial
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        done = await self._send(batch, body)
                    except BaseException:  # cancelled mid-POST: keep the batch (a resend is deduplicated)
                        self._queue.extendleft(reversed(batch))
                        raise
                    if done:
                        break
                    self.failures += 1
                    if max_attempts is not None and attempt >= max_attempts:
                        self._queue.extendleft(reversed(batch))
                        return
                    try:
                        await asyncio.sleep(delay)
                    except BaseException:
                        self._queue.extendleft(reversed(batch))
                        raise
                    delay = min(delay * 2, self.retry_max)

    def _take(self, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
        """The next batch and its request body (each event serialised once: for its size and the body)."""
        batch: list[dict[str, Any]] = []
        parts: list[str] = []
        size = 16
        while self._queue and len(batch) < (self.batch_size if limit is None else min(self.batch_size, limit)):
            part = _compact(self._queue[0])
            if batch and size + len(part) + 1 > self.max_body_bytes:
                break
            batch.append(self._queue.popleft())
            parts.append(part)
            size += len(part) + 1
        return batch, '{"events":[' + ",".join(parts) + "]}"

    async def _send(self, batch: list[dict[str, Any]], body: str) -> bool:
        """POST one batch. True when it is done with (stored, or refused for good); False to retry."""
        try:
            token = await self._token.get()
            r = await self._http.post(
                self.api_base + EVENTS_PATH,
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
        except (httpx2.HTTPError, OSError, ValueError, KeyError) as exc:
            log.warning("usage reporter: cannot reach the AS (%s); will retry", exc)
            return False
        if r.status_code == 200:
            answer = r.json()
            self.accepted += int(answer.get("accepted", 0))
            self.duplicates += len(answer.get("duplicates", ()))
            rejected = answer.get("rejected", ())
            self.rejected += len(rejected)
            self.sent += len(batch) - len(rejected)
            for problem in rejected:
                log.error("usage reporter: the AS rejected an event: %s", problem)
            return True
        if r.status_code == 401:
            self._token.forget()  # expired or revoked: get a new one on the retry
            log.warning("usage reporter: the AS refused the metering token; will retry with a new one")
            return False
        if r.status_code in _RETRY_STATUSES:
            log.warning("usage reporter: the AS answered %d; will retry", r.status_code)
            return False
        self.dropped += len(batch)
        log.error("usage reporter: the AS refused a batch of %d events (%d): %s", len(batch), r.status_code, r.text)
        return True

    async def aclose(self, *, max_attempts: int = 5) -> None:
        """Stop the background task and ship what is queued (up to ``max_attempts`` tries per batch)."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            if self._wake is not None:
                self._wake.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush(max_attempts=max_attempts)
        finally:
            if self._queue:
                self.dropped += len(self._queue)
                log.error("usage reporter closed with %d unreported events", len(self._queue))
            if self._owns_http:
                await self._http.aclose()


_compact = json.JSONEncoder(separators=(",", ":")).encode  # what json.dumps(..., separators=...) does, minus its setup


def with_reporter_lifespan(app: ASGIApp, reporter: UsageReporter) -> ASGIApp:
    """Wrap ``app`` so the ASGI lifespan shutdown flushes ``reporter`` (before it completes)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                try:
                    await reporter.aclose()
                except Exception:
                    log.exception("usage reporter: flush on shutdown failed")
            await send(message)

        await app(scope, receive, send_wrapper)

    return wrapped
