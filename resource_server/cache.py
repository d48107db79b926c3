"""A bounded, single-flight cache of token validation results, keyed by a SHA-256 digest.

The raw token is never a key and never stored. A positive entry never outlives the token's
``exp`` nor the configured bound; an inactive token is remembered briefly (negative cache);
errors reaching the authorization server are never cached. Concurrent lookups of one token share
one load (an ``asyncio.Future`` per digest), so N simultaneous requests cost one introspection.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from resource_server.context import TokenInfo
from resource_server.errors import InvalidToken, UpstreamUnavailable

__all__ = ["TokenCache", "token_digest"]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_Entry = tuple[float, TokenInfo | InvalidToken]  # (deadline, result)


class TokenCache:
    def __init__(
        self,
        *,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[TokenInfo]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def evict(self, doomed: Callable[[TokenInfo], bool]) -> int:
        """Drop the positive entries ``doomed`` selects (a revocation arrived); returns how many."""
        keys = [k for k, (_, result) in self._entries.items() if isinstance(result, TokenInfo) and doomed(result)]
        for key in keys:
            del self._entries[key]
        return len(keys)

    def _lookup(self, key: bytes) -> TokenInfo | InvalidToken | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, result = entry
        if self._clock() >= deadline:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return result

    def _store(self, key: bytes, result: TokenInfo | InvalidToken) -> None:
        now = self._clock()
        if isinstance(result, InvalidToken):
            deadline = now + self._negative_ttl
        else:
            deadline = now + self._ttl
            if result.expires_at is not None:
                deadline = min(deadline, float(result.expires_at))
        if deadline <= now:
            return
        self._entries[key] = (deadline, result)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def get_or_load(self, token: str, load: Callable[[], Awaitable[TokenInfo]]) -> TokenInfo:
        """Return the cached result for ``token`` or run ``load`` once for all concurrent callers.

        ``load`` raises :class:`InvalidToken` (cached negatively) or :class:`UpstreamUnavailable`
        (not cached).
        """
        key = token_digest(token)
        hit = self._lookup(key)
        if isinstance(hit, InvalidToken):
            raise InvalidToken(hit.description)
        if hit is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[TokenInfo] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            info = await load()
        except InvalidToken as exc:
            self._store(key, exc)
            future.set_exception(InvalidToken(exc.description))
            raise
        except UpstreamUnavailable as exc:
            future.set_exception(UpstreamUnavailable(exc.description))
            raise
        except BaseException:
            # Cancelled or crashed leader: followers must not hang, nor pass.
            future.set_exception(UpstreamUnavailable("token validation was interrupted"))
            raise
        else:
            self._store(key, info)
            future.set_result(info)
            return info
        finally:
            del self._inflight[key]
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: no "exception never retrieved" warnings
