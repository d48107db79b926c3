"""Single-use ``jti`` values shared by every replica: client assertions (RFC 7523 §3) and DPoP proofs
(RFC 9449 §11.1).

RFC 7523 §3: "the authorization server MAY ensure that JWTs are not replayed by maintaining the set
of used 'jti' values for the length of time for which the JWT would be considered valid". A value
is remembered until it expires, in Redis (``SET NX EX``: one round trip, atomic across replicas)
when the server has Redis, else in the ``used_jtis`` table every replica shares (one conditional
upsert whose unique key decides who won). Each kind of value has its own key prefix.
:meth:`ReplayCache.group_commit` is the same cache for many concurrent requests at once (the
DPoP proofs of the token endpoint): one multi-row upsert or one Redis pipeline per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from authz.core.settings import Settings
from authz.oauth.group_commit import GroupCommit
from authz.storage.protocols import ReplayStore

__all__ = ["RedisReplayCache", "ReplayCache", "SqlReplayCache", "replay_cache"]


class ReplayCache(Protocol):
    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Remember ``key`` until ``expires_at``; False when it is already remembered (a replay)."""

    def group_commit(self) -> GroupCommit:
        """The same cache for concurrent requests of an event loop: their keys written together
        (:mod:`authz.oauth.group_commit`); close it when the server stops."""


class SqlReplayCache:
    """The ``used_jtis`` table (shared by every replica; one upsert per value)."""

    def __init__(self, store: ReplayStore) -> None:
        self._store = store

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        return self._store.remember_jti(key, expires_at, now)

    def group_commit(self) -> GroupCommit:
        """One multi-row upsert and one commit per batch, on a connection of the writer's own."""
        writer = self._store.jti_writer()
        return GroupCommit(writer.remember, inline=writer.local, on_close=writer.close)


class RedisReplayCache:
    """``SET key 1 NX EX ttl``: one round trip, atomic across replicas."""

    def __init__(self, client: Any, prefix: str = "authz:dpop:") -> None:
        self._redis, self._prefix = client, prefix

    def first_use(self, key: str, expires_at: int, now: int) -> bool:
        return bool(self._redis.set(self._prefix + key, b"1", nx=True, ex=max(1, expires_at - now)))

    def first_use_many(self, rows: Sequence[tuple[str, int]], now: int) -> set[str]:
        """One pipeline (one round trip) of ``SET NX EX``, not a transaction: each key is decided alone."""
        pipe = self._redis.pipeline(transaction=False)
        for key, expires_at in rows:
            pipe.set(self._prefix + key, b"1", nx=True, ex=max(1, expires_at - now))
        return {key for (key, _), ok in zip(rows, pipe.execute(), strict=True) if ok}

    def group_commit(self) -> GroupCommit:
        return GroupCommit(self.first_use_many)


def replay_cache(settings: Settings, store: ReplayStore, prefix: str = "authz:dpop:") -> ReplayCache:
    """Redis when the server has it (``redis_url``), else the SQL table."""
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return RedisReplayCache(client, prefix)
    return SqlReplayCache(store)
