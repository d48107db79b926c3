"""The metering service: ``ingest`` (validate, durable append, report), ``flush``, ``usage``; a flusher.

The HTTP route and the CLI are thin adapters over this class. Nothing here imports Starlette.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from authz.metering.buffer import Buffer, SqlBuffer
from authz.metering.config import MeteringConfig
from authz.metering.events import TOKENS, Attribute, FieldError, validate_payloads
from authz.metering.pricing import PriceBook
from authz.metering.sink import Sink
from authz.metering.usage import usage

log = logging.getLogger("authz.metering")


class BatchTooLarge(ValueError):
    """More events than ``max_batch`` in one call: nothing was stored."""


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # newly stored events
    duplicates: list[str] = field(default_factory=list)  # ids already seen (accepted, not counted again)
    rejected: list[FieldError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [e.as_dict() for e in self.rejected],
        }


@dataclass(slots=True)
class FlushResult:
    taken: int = 0
    inserted: int = 0


class MeteringService:
    def __init__(
        self,
        engine: Engine,
        config: MeteringConfig | None = None,
        *,
        redis_client: Any = None,
        pricebook: PriceBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.config = config or MeteringConfig()
        self.clock = clock
        self.sink = Sink(engine, pricebook)
        self.after_flush: Callable[[], object] | None = None
        self.buffer: Buffer
        if redis_client is not None:
            from authz.metering.redis_buffer import RedisBuffer

            self.buffer = RedisBuffer(redis_client, self.sink, self.config)
        else:
            self.buffer = SqlBuffer(self.sink, self.config)
        self._flusher: Flusher | None = None
        self._flush_lock = threading.Lock()
        # Billing: an event's customer from its agent, and unknown customers refused (authz.billing).
        self.attribute: Attribute | None = None

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def ingest(self, raw_events: Sequence[Any]) -> IngestResult:
        """Validate each event, durably store the valid ones, report accepted/duplicates/rejected."""
        if len(raw_events) > self.config.max_batch:
            raise BatchTooLarge(f"at most {self.config.max_batch} events per batch, got {len(raw_events)}")
        now_ms = self._now_ms()
        payloads, errors = validate_payloads(
            list(raw_events), now_ms, self.config.late_window_s * 1000, self.config.max_future_s * 1000, self.attribute
        )
        result = IngestResult(rejected=errors)
        records: dict[str, list[Any]] = {}
        for payload in payloads:
            eid = payload[0]
            if eid in records:
                result.duplicates.append(eid)  # repeated inside this batch
            else:
                records[eid] = payload
        tokens = self.buffer.direct and any(p[1] == TOKENS for p in records.values())  # before append changes them
        new = self.buffer.append(list(records.values()), now_ms)
        result.accepted = len(new)
        result.duplicates.extend(eid for eid in records if eid not in new)
        if new and tokens:  # counted now (no flush will follow): charge the budgets as a flush would
            self._after_flush()
        elif self._flusher is not None and new:
            self._flusher.notify(len(new))
        return result

    def flush(self, limit: int | None = None) -> FlushResult:
        """Drain the buffer into SQL until it is empty (in chunks of ``flush_batch_size``)."""
        chunk = limit or self.config.flush_batch_size
        total = FlushResult()
        with self._flush_lock:
            while True:
                drained = self.buffer.drain(chunk, self._now_ms())
                total.taken += drained.taken
                total.inserted += drained.inserted
                if drained.taken < chunk:
                    break
        if total.inserted:
            self._after_flush()
        return total

    def _after_flush(self) -> None:
        if self.after_flush is not None:
            try:  # e.g. charge the budget rows the flush recorded; the reconciler retries what fails
                self.after_flush()
            except Exception:
                log.exception("after-flush callback failed; the budget reconciler will retry")

    def pending(self) -> int:
        return self.buffer.pending()

    def usage(
        self,
        start: datetime | int,
        end: datetime | int,
        granularity: str = "hour",
        group_by: Sequence[str] = (),
        filters: Mapping[str, str | Sequence[str]] | None = None,
    ) -> list[dict[str, Any]]:
        return usage(self.engine, start, end, granularity, group_by, filters)

    def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._flusher is None:
            self._flusher = Flusher(self)
            self._flusher.start()

    def close(self) -> None:
        """Stop the flusher and flush what is buffered (flush on shutdown)."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.stop()
        self.flush()


class Flusher:
    """Flushes on wall-clock-aligned ticks of ``flush_interval_s``, or once ``flush_batch_size`` wait."""

    def __init__(self, service: MeteringService) -> None:
        self.service = service
        self.interval = service.config.flush_interval_s
        self.batch_size = service.config.flush_batch_size
        self._waiting = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authz-metering-flusher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, n: int) -> None:
        self._waiting += n  # racy by design: only decides *when* to flush, never what
        if self._waiting >= self.batch_size:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            next_tick = (now // self.interval + 1) * self.interval
            self._wake.wait(next_tick - now)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._waiting = 0
            try:
                self.service.flush()
            except Exception:  # keep flushing on the next tick; the buffer still holds everything
                log.exception("metering flush failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
