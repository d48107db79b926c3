"""A background metering batcher: ``record()`` returns at once, a worker thread sends batches.

::

    with Client(url, api_key=token) as authz, MeteringBatcher(authz) as meter:
        meter.record("call.completed", agent="agt_1", tool="search")

- **Never double-counts.** Each event gets its ``id`` and ``timestamp`` when recorded, before any
  attempt: the id is the millisecond, this batcher's random 64-bit prefix and a counter
  (time-ordered like a UUIDv7, unique without a random draw per event). A batch whose answer is
  lost is sent again with the same ids (the client's retries, then the worker's own), and the
  server stores each id once.
- **Bounded memory.** At most ``max_queue`` events wait (plus the batches in flight). When the queue
  is full, ``when_full="block"`` (the default) makes ``record()`` wait for room — back-pressure,
  nothing lost; ``when_full="drop"`` discards the new event and counts it in ``stats.dropped``.
- **Flushes** when ``max_batch`` events are waiting, every ``flush_interval`` seconds, on
  :meth:`flush`, on :meth:`close`, and at interpreter exit (``atexit``, bounded by ``exit_timeout``).
- **Failures.** A batch the server could not be reached for (after the client's retries) goes back
  to the front of the queue and is retried after a backoff; a batch the server refused (a 4xx other
  than 429) is counted in ``stats.failed`` and dropped; events the server rejected one by one are
  counted in ``stats.rejected``.
- Thread-safe: any thread may call :meth:`record`.
- **Cheap per event.** ``record()`` builds the event once (no copy, no UUID draw, the timestamp text
  reused within its millisecond); a batch is encoded to JSON once and sent as is, over the client's
  kept-alive connections.
"""

from __future__ import annotations

import atexit
import itertools
import json
import secrets
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from agent_client.sdk.client import Client
from agent_client.sdk.errors import ApiError

MAX_BATCH = 1000  # the server's limit per request
# The encoding httpx applies to ``json=`` bodies; one encoder object instead of one per call.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


@dataclass
class BatcherStats:
    """Counters since the batcher started (events, not requests, except ``batches``)."""

    recorded: int = 0
    sent: int = 0  # stored now by the server
    duplicates: int = 0  # already stored (a retry of a batch whose answer was lost)
    rejected: int = 0  # invalid events, refused one by one
    failed: int = 0  # in batches the server refused as a whole
    dropped: int = 0  # discarded because the queue was full (when_full="drop")
    batches: int = 0
    retries: int = 0  # batches requeued after the server could not be reached


class MeteringBatcher:
    """Queue metering events and send them in batches from ``concurrency`` worker threads."""

    def __init__(
        self,
        client: Client,
        *,
        max_batch: int = MAX_BATCH,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        when_full: Literal["block", "drop"] = "block",
        concurrency: int = 2,
        exit_timeout: float = 10.0,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH or max_queue < max_batch or concurrency < 1:
            raise ValueError("need 1 <= max_batch <= 1000 <= ..., max_queue >= max_batch and concurrency >= 1")
        self.client, self.max_batch, self.flush_interval = client, max_batch, flush_interval
        self.max_queue, self.when_full, self.exit_timeout = max_queue, when_full, exit_timeout
        self.stats = BatcherStats()
        self._queue: deque[dict[str, Any]] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._flush_wanted = False
        self._closed = False
        self._prefix = secrets.token_hex(8)
        self._serial = itertools.count()  # next() is atomic under the GIL: no lock needed for ids
        self._stamp = (-1, "")  # (Unix ms, its RFC 3339 text): one formatting per millisecond
        self._workers = [
            threading.Thread(target=self._run, name=f"authz-metering-{i}", daemon=True) for i in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (b := ref()) is not None and b.close(b.exit_timeout)
        atexit.register(self._atexit)

    # -- the caller's side ----------------------------------------------------------------------
    def record(self, type: str, *, agent: str, **fields: Any) -> str | None:
        """Queue one event; its id, or None when it was dropped (queue full and ``when_full="drop"``)."""
        return self._enqueue(self._prepared({"type": type, "agent": agent, **fields}))

    def add(self, event: Mapping[str, Any]) -> str | None:
        """Queue one event (an ``id`` and a ``timestamp`` are added now when absent)."""
        return self._enqueue(self._prepared(dict(event)))

    def _prepared(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` with an ``id`` and a ``timestamp`` (each kept when present).

        The id is time-ordered, as a UUIDv7 is: the millisecond (12 hex digits), this batcher's random
        64-bit prefix, a counter. Unique without a random draw per event, and the server's unique
        indexes grow at their right edge instead of touching a random page per event.
        """
        if "id" in event and "timestamp" in event:
            return event
        now_ms = time.time_ns() // 1_000_000
        if "id" not in event:
            event["id"] = f"{now_ms:012x}{self._prefix}{next(self._serial) & 0xFFFFFFFF:08x}"
        if "timestamp" not in event:
            stamp = self._stamp
            if stamp[0] != now_ms:  # RFC 3339 UTC with milliseconds, formatted once per millisecond
                text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000)) + f".{now_ms % 1000:03d}Z"
                stamp = self._stamp = (now_ms, text)
            event["timestamp"] = stamp[1]
        return event

    def _enqueue(self, prepared: dict[str, Any]) -> str | None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            while len(self._queue) >= self.max_queue:
                if self.when_full == "drop":
                    self.stats.dropped += 1
                    return None
                self._cond.wait()
            self._queue.append(prepared)
            self.stats.recorded += 1
            if len(self._queue) >= self.max_batch:
                self._cond.notify_all()
        return str(prepared["id"])

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now; True once the queue is empty and nothing is in flight."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flush_wanted = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._flush_wanted = False
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush (up to ``timeout`` seconds), stop the workers; True if everything was sent."""
        with self._cond:
            if self._closed:
                return not self._queue
        done = self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout)
        atexit.unregister(self._atexit)
        return done

    def __enter__(self) -> MeteringBatcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the workers ----------------------------------------------------------------------------
    def _take(self) -> list[dict[str, Any]] | None:
        """The next batch, waiting for a full one, the interval, a flush or close; None to stop."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            while not self._closed and not (self._flush_wanted and self._queue) and len(self._queue) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    if self._queue:
                        break
                    deadline, left = time.monotonic() + self.flush_interval, self.flush_interval
                self._cond.wait(left)
            if not self._queue:
                return None if self._closed else []
            n = min(self.max_batch, len(self._queue))
            batch = [self._queue.popleft() for _ in range(n)]
            self._in_flight += 1
            self._cond.notify_all()  # room for blocked producers
            return batch

    def _run(self) -> None:
        backoff = 0.0
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            requeue = self._send(batch)
            with self._cond:
                self._in_flight -= 1
                if requeue:
                    self._queue.extendleft(reversed(batch))  # first out again, ids unchanged
                    self.stats.retries += 1
                self._cond.notify_all()
            backoff = min(5.0, max(0.1, backoff * 2)) if requeue else 0.0
            if requeue and not self._closed:
                time.sleep(backoff)
            elif requeue:
                return  # closing and the server is unreachable: what is left stays unsent

    def _send(self, batch: list[dict[str, Any]]) -> bool:
        """Send one batch; True when it must be sent again (no answer, 429 or 5xx)."""
        body = _ENCODE({"events": batch}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        try:
            out = self.client.request("POST", "/metering/events", content=body, headers=headers)
        except ApiError as err:
            if err.status == 0 or err.status == 429 or err.status >= 500:
                return True
            with self._cond:
                self.stats.failed += len(batch)
            return False
        with self._cond:
            self.stats.batches += 1
            self.stats.sent += int(out.get("accepted", 0))
            self.stats.duplicates += len(out.get("duplicates", []))
            self.stats.rejected += len(out.get("rejected", []))
        return False
