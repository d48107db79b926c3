"""Metering knobs, read from ``AUTHZ_METERING_*`` environment variables (listed by ``authz config-docs``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class MeteringConfig:
    late_window_s: int = 24 * 3600  # events older than this (by their timestamp) are refused
    max_future_s: int = 300  # clock skew allowed for events "from the future"
    dedupe_window_s: int = 0  # 0: late_window_s + max_future_s (covers every replay that is not refused)
    max_batch: int = 1000  # events per ingest call
    flush_interval_s: float = 1.0  # wall-clock aligned flush ticks
    flush_batch_size: int = 5000  # ...or as soon as this many events wait (in this process), and the chunk size
    sqlite_fsync: bool = True  # SQLite: ingest commits with synchronous=FULL (survives power loss)
    redis_stream: str = "{authz:metering}:events"  # the hash tag keeps every metering key in one cluster slot
    redis_dedupe_prefix: str = "{authz:metering}:id:"
    redis_group: str = "flushers"
    redis_claim_idle_ms: int = 30_000  # pending entries idle this long belong to a dead flusher: claim them
    prune_every_s: int = 60  # how often the flusher prunes inbox rows past the dedupe window

    @classmethod
    def doc_rows(cls) -> list[str]:
        """Markdown table rows for ``docs/configuration.md``: variable, default, description."""
        defaults = cls()
        return [
            f"| `AUTHZ_METERING_{name.upper()}` | `{getattr(defaults, name)}` | {text} |" for name, text in DOCS.items()
        ]

    @property
    def dedupe_s(self) -> int:
        return self.dedupe_window_s or self.late_window_s + self.max_future_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MeteringConfig:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"AUTHZ_METERING_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            if kind is bool:
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = kind(raw)
        return cls(**values)  # type: ignore[arg-type]


DOCS = {
    "late_window_s": "Events older than this many seconds (by their own timestamp) are refused.",
    "max_future_s": "Clock skew allowed for events timestamped in the future (seconds).",
    "dedupe_window_s": "Seconds an event id is remembered for deduplication (0: late_window_s + max_future_s).",
    "max_batch": "Most events in one `POST /api/v1/metering/events` (the body may be up to 2 MiB).",
    "flush_interval_s": "Seconds between flushes of accepted events into rollups (wall-clock aligned).",
    "flush_batch_size": "Flush at once when this many events wait in this process; also the flush chunk size.",
    "sqlite_fsync": "SQLite: each ingest commits with synchronous=FULL (survive power loss, not only crashes).",
    "redis_stream": "The Redis Stream accepted events wait in (with AUTHZ_REDIS_URL).",
    "redis_dedupe_prefix": "Key prefix of the Redis event-id dedupe keys.",
    "redis_group": "The Redis consumer group of the flushers.",
    "redis_claim_idle_ms": "After a crash, events a dead flusher had read are claimed by another after they sat "
    "this many milliseconds unacknowledged (so usage from a crashed replica appears up to this much later).",
    "prune_every_s": "How often (seconds) the flusher prunes inbox rows past the dedupe window.",
}
