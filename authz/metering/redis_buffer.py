"""The Redis Stream buffer: dedupe with ``SET NX EX`` + ``XADD`` in one Lua call per batch.

Every key carries the same hash tag, so the script is Redis-Cluster-safe. Flushers form one
consumer group: each drain first claims entries a dead flusher left pending for longer than
``redis_claim_idle_ms`` (``XAUTOCLAIM``), re-reads its own pending entries, then reads new ones; the
SQL transaction commits before ``XACK`` + ``XDEL``, so a crash in between only causes a re-drain,
which the sink's unique idempotency ids turn into a no-op. Durability is Redis's: run it with
``appendonly yes`` (``appendfsync always`` to survive power loss, ``everysec`` loses <= 1 s).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

import redis

from authz.metering.buffer import Drained
from authz.metering.config import MeteringConfig
from authz.metering.events import encode_payload
from authz.metering.sink import Sink

APPEND = """
local ttl = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  if redis.call('SET', KEYS[2] .. ARGV[i], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[1], '*', 'p', ARGV[i + 1])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def _raw(reply: Any, **_options: Any) -> Any:
    """XREADGROUP's reply as the parser gives it: ``{stream: [[entry id, [field, value, ...]], ...]}``
    (RESP3), ``[[stream, [...]]]`` (RESP2), or None."""
    return reply


class RedisBuffer:
    def __init__(self, client: redis.Redis, sink: Sink, config: MeteringConfig, consumer: str | None = None) -> None:
        self.client = client
        self.sink = sink
        self.config = config
        self.stream = config.redis_stream
        self.group = config.redis_group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._append = client.register_script(APPEND)
        # The flusher reads with its own client on the same pool, whose XREADGROUP replies skip redis-py's
        # per-entry handling (pairs_to_dict, a dict per entry): the payload is the entry's last value.
        self._reader = redis.Redis(connection_pool=client.connection_pool)
        self._reader.set_response_callback("XREADGROUP", _raw)
        self._group_ready = False
        self.direct = False

    def append(self, payloads: Sequence[list[Any]], now_ms: int) -> set[str]:
        if not payloads:
            return set()
        args: list[Any] = [self.config.dedupe_s]
        for p in payloads:
            args += (p[0], encode_payload(p))
        flags = self._append(keys=[self.stream, self.config.redis_dedupe_prefix], args=args)
        return {p[0] for p, flag in zip(payloads, flags, strict=True) if int(flag) == 1}

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _take(self, limit: int) -> list[tuple[Any, Any]]:
        """Up to ``limit`` (entry id, payload) pairs: entries a dead flusher left, ours, then new ones."""
        self._ensure_group()
        # Entries a dead flusher left behind become ours (they then show up in our pending list).
        self.client.xautoclaim(
            self.stream, self.group, self.consumer, self.config.redis_claim_idle_ms, "0-0", count=limit, justid=True
        )
        taken: list[tuple[Any, Any]] = []
        for start in ("0", ">"):  # our own pending entries first (a failed earlier drain), then new ones
            if len(taken) >= limit:
                break
            reply: Any = self._reader.xreadgroup(
                self.group, self.consumer, {self.stream: start}, count=limit - len(taken)
            )
            for _stream, entries in reply.items() if isinstance(reply, dict) else reply or ():  # RESP3 | RESP2
                # An entry is [id, ["p", payload]] (earlier versions: [id, ["i", id, "p", payload]]);
                # one deleted while pending comes back without fields.
                taken.extend((entry_id, fields[-1]) for entry_id, fields in entries if fields)
        return taken

    def drain(self, limit: int, now_ms: int) -> Drained:
        entries = self._take(limit)
        if not entries:
            return Drained(0, 0)
        ids = [entry_id for entry_id, _ in entries]
        payloads = [payload for _, payload in entries]
        if isinstance(payloads[0], bytes):  # one json.loads for the chunk (see Sink.rows)
            decoded = json.loads(b"[" + b",".join(payloads) + b"]")
            received = [int(entry_id[: entry_id.index(b"-")]) for entry_id in ids]
        else:  # a client with decode_responses=True
            decoded = json.loads("[" + ",".join(payloads) + "]")
            received = [int(entry_id[: entry_id.index("-")]) for entry_id in ids]
        with self.sink.transaction() as conn:
            inserted = len(self.sink.insert(conn, *self.sink.rows_of(decoded, received, now_ms), now_ms))
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        return Drained(len(entries), inserted)

    def pending(self) -> int:
        return int(self.client.xlen(self.stream))
