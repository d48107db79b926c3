"""The Redis Stream buffer: dedupe with ``SET NX EX`` + ``XADD`` in one Lua call per batch.

Every key carries the same hash tag, so the script is Redis-Cluster-safe. Flushers form one
consumer group: each drain first claims entries a dead flusher left pending for longer than
``redis_claim_idle_ms`` (``XAUTOCLAIM``), re-reads its own pending entries, then reads new ones; the
SQL transaction commits before ``XACK`` + ``XDEL``, so a crash in between only causes a re-drain,
which the sink's unique idempotency ids turn into a no-op. Durability is Redis's: run it with
``appendonly yes`` (``appendfsync always`` to survive power loss, ``everysec`` loses <= 1 s).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

import redis

from authz.metering.buffer import Drained
from authz.metering.config import MeteringConfig
from authz.metering.sink import Sink, Staged

APPEND = """
local ttl = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('SET', KEYS[2] .. ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[1], '*', 'i', ARGV[i], 'p', ARGV[i + 1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBuffer:
    def __init__(self, client: redis.Redis, sink: Sink, config: MeteringConfig, consumer: str | None = None) -> None:
        self.client = client
        self.sink = sink
        self.config = config
        self.stream = config.redis_stream
        self.group = config.redis_group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._append = client.register_script(APPEND)
        self._group_ready = False

    def append(self, records: Sequence[tuple[str, str]], now_ms: int) -> set[str]:
        if not records:
            return set()
        args: list[Any] = [self.config.dedupe_s]
        for eid, payload in records:
            args += (eid, payload)
        flags = self._append(keys=[self.stream, self.config.redis_dedupe_prefix], args=args)
        return {eid for (eid, _), flag in zip(records, flags, strict=True) if int(flag) == 1}

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _take(self, limit: int) -> list[tuple[str, dict[Any, Any]]]:
        self._ensure_group()
        # Entries a dead flusher left behind become ours (they then show up in our pending list).
        self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.config.redis_claim_idle_ms, "0-0", count=limit, justid=True
        )
        taken: list[tuple[str, dict[Any, Any]]] = []
        for start in ("0", ">"):  # our own pending entries first (a failed earlier drain), then new ones
            if len(taken) >= limit:
                break
            reply: Any = self.client.xreadgroup(
                self.group, self.consumer, {self.stream: start}, count=limit - len(taken)
            )
            for _stream, entries in reply or ():
                taken.extend((_text(entry_id), fields) for entry_id, fields in entries if fields)
        return taken

    def drain(self, limit: int, now_ms: int) -> Drained:
        entries = self._take(limit)
        if not entries:
            return Drained(0, 0)
        staged = []
        for entry_id, fields in entries:
            eid = fields.get(b"i", fields.get("i"))
            payload = fields.get(b"p", fields.get("p"))
            staged.append(Staged(_text(eid), _text(payload), int(entry_id.split("-", 1)[0])))
        with self.sink.transaction() as conn:
            inserted = self.sink.write(conn, staged, now_ms)
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        return Drained(len(entries), inserted)

    def pending(self) -> int:
        return int(self.client.xlen(self.stream))
