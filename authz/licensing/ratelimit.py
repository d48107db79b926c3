"""Fixed-window rate limits per license key and per client IP, shared by replicas through SQL or Redis.

Counting every request in a shared store would cost a write per validation, more than the validation
itself. Instead each process counts locally and exact, and a background thread pushes its deltas
to the shared store every ``sync_interval`` seconds (one upsert per bucket: SQL ``INSERT ... ON
CONFLICT DO UPDATE ... RETURNING`` or Redis ``INCRBY``), learning the other replicas' counts in the
same call. A bucket's count is (shared total at the last sync) + (local requests since), so one
process is exact and N replicas overshoot by at most what they served in one sync interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from authz.storage.models.licensing import LicenseRateRow

log = logging.getLogger("authz.licensing.ratelimit")
Bucket = tuple[str, int]  # (kind:identifier, window start)


class SharedCounts(Protocol):
    def add(self, deltas: dict[Bucket, int]) -> dict[Bucket, int]:
        """Add the deltas; the new totals of those buckets."""

    def prune(self, before: int) -> None: ...


class SqlCounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = sqlite_insert if engine.dialect.name == "sqlite" else pg_insert
        self.table: Any = LicenseRateRow.__table__

    def add(self, deltas: dict[Bucket, int]) -> dict[Bucket, int]:
        out: dict[Bucket, int] = {}
        with self.engine.begin() as conn:
            for (bucket, window), n in sorted(deltas.items()):  # one lock order for every replica
                insert = self._insert(self.table).values(bucket=bucket, window_start=window, count=n)
                stmt = insert.on_conflict_do_update(
                    index_elements=["bucket", "window_start"], set_={"count": self.table.c.count + n}
                ).returning(self.table.c.count)
                out[(bucket, window)] = int(conn.execute(stmt).scalar_one())
        return out

    def prune(self, before: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.table).where(self.table.c.window_start < before))


class RedisCounts:
    def __init__(self, client: Any, ttl: int) -> None:
        self.client, self.ttl = client, ttl

    def add(self, deltas: dict[Bucket, int]) -> dict[Bucket, int]:
        pipe = self.client.pipeline(transaction=False)
        keys = list(deltas)
        for bucket, window in keys:
            key = f"authz:license-rate:{{{bucket}}}:{window}"
            pipe.incrby(key, deltas[(bucket, window)])
            pipe.expire(key, self.ttl)
        replies = pipe.execute()
        return {k: int(replies[2 * i]) for i, k in enumerate(keys)}

    def prune(self, before: int) -> None:
        """Redis keys expire by themselves."""


@dataclass(frozen=True)
class Limit:
    requests: int  # per window; 0 disables the limit
    window: int  # seconds


class RateLimiter:
    def __init__(
        self,
        shared: SharedCounts,
        limits: dict[str, Limit],
        *,
        sync_interval: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.shared, self.limits, self.sync_interval, self.clock = shared, limits, sync_interval, clock
        self._lock = threading.Lock()
        self._seen: dict[Bucket, int] = {}  # shared totals at the last sync (our pushed deltas included)
        self._pending: dict[Bucket, int] = {}  # local requests not pushed yet
        self._announced: set[Bucket] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _bucket(self, kind: str, ident: str, now: float) -> tuple[Bucket, Limit] | None:
        limit = self.limits.get(kind)
        if limit is None or limit.requests <= 0:
            return None
        return (f"{kind}:{ident}", int(now // limit.window) * limit.window), limit

    def over(self, kind: str, ident: str) -> tuple[int, bool] | None:
        """Without counting: None when under the limit, else (seconds until the window ends, first time)."""
        now = self.clock()
        found = self._bucket(kind, ident, now)
        if found is None:
            return None
        bucket, limit = found
        with self._lock:
            count = self._seen.get(bucket, 0) + self._pending.get(bucket, 0)
            if count < limit.requests:
                return None
            first = bucket not in self._announced
            self._announced.add(bucket)
        return max(1, int(bucket[1] + limit.window - now + 0.999)), first

    def hit(self, kind: str, ident: str) -> tuple[int, bool] | None:
        """Count one request; None when allowed, else (Retry-After seconds, first refusal of the window)."""
        refused = self.over(kind, ident)
        if refused is not None:
            return refused
        found = self._bucket(kind, ident, self.clock())
        if found is not None:
            with self._lock:
                self._pending[found[0]] = self._pending.get(found[0], 0) + 1
        return None

    def count(self, kind: str, ident: str) -> None:
        """Count one event without a check (a failed lookup counted after the fact)."""
        found = self._bucket(kind, ident, self.clock())
        if found is not None:
            with self._lock:
                self._pending[found[0]] = self._pending.get(found[0], 0) + 1

    def sync(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            totals = self.shared.add(pending)
        except Exception:
            with self._lock:  # keep counting locally; push again next time
                for k, n in pending.items():
                    self._pending[k] = self._pending.get(k, 0) + n
            raise
        oldest = int(self.clock()) - max((lim.window for lim in self.limits.values()), default=60)
        with self._lock:
            self._seen.update(totals)
            for k in [k for k in self._seen if k[1] < oldest]:
                del self._seen[k]
            self._announced = {k for k in self._announced if k[1] >= oldest}

    def start(self) -> None:
        def run() -> None:
            last_prune = 0.0
            while not self._stop.wait(self.sync_interval):
                try:
                    self.sync()
                    if self.clock() - last_prune > 300:
                        last_prune = self.clock()
                        self.shared.prune(int(last_prune) - 3600)
                except Exception:
                    log.exception("rate limit sync failed; counting locally until it works again")

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="authz-license-rate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        try:
            self.sync()
        except Exception:
            log.exception("final rate limit sync failed")
