"""Usage metering: validated events, a durable buffer, exactly-once flush, rollups, cost.

Public API: :class:`MeteringService` (``ingest``, ``flush``, ``usage``, ``start``, ``close``),
:class:`MeteringConfig`, :func:`service_from_settings`. See ``docs/metering.md``.
"""

from __future__ import annotations

from typing import Any

from authz.metering.config import MeteringConfig
from authz.metering.events import Event, FieldError, validate_batch
from authz.metering.pricing import PriceBook, Priced
from authz.metering.service import BatchTooLarge, FlushResult, IngestResult, MeteringService
from authz.metering.usage import GRANULARITIES, GROUPS, UsageQueryError, usage

__all__ = [
    "GRANULARITIES",
    "GROUPS",
    "BatchTooLarge",
    "Event",
    "FieldError",
    "FlushResult",
    "IngestResult",
    "MeteringConfig",
    "MeteringService",
    "PriceBook",
    "Priced",
    "UsageQueryError",
    "service_from_settings",
    "usage",
    "validate_batch",
]


def service_from_settings(settings: Any, engine: Any, config: MeteringConfig | None = None) -> MeteringService:
    """The service the app wires: the Redis Stream buffer when ``settings.redis_url`` is set, else SQL."""
    client = None
    if getattr(settings, "redis_url", ""):
        import redis

        client = redis.Redis.from_url(settings.redis_url)
    return MeteringService(engine, config or MeteringConfig.from_env(), redis_client=client)
