"""What is revoked: tokens by ``jti``, grants (refresh families), clients and agents.

Every revocation is one append-only row (``revocations``) kept until the tokens it kills have
expired. A fact kills the tokens issued at or before it (``iat <= created_at``), so reinstating an
agent or re-enabling a client lets new tokens work while the old ones stay dead. Each replica holds
the unexpired facts in memory, so introspection checks revocation with dictionary lookups; it
applies its own revocations at once and other replicas' within ``cache_staleness``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from authz.core.settings import Settings
from authz.storage.protocols import GrantStore, RevocationStore

KINDS = ("jti", "grant", "client", "agent")


class RevocationView:
    def __init__(self, store: RevocationStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._seq = 0
        # kind -> value -> (expires_at, cutoff): tokens with iat <= cutoff are revoked until expires_at
        self._facts: dict[str, dict[str, tuple[int, int]]] = {kind: {} for kind in KINDS}
        # Called (from any thread) after a new fact is stored here or seen from another replica:
        # the Shared Signals transmitter wakes its waiting polls (``authz.signals``).
        self.listeners: list[Callable[[], None]] = []

    def refresh(self) -> None:
        now = int(time.time())
        rows = self._store.revocations_since(self._seq, now)
        with self._lock:
            seen = self._seq
            for row in rows:
                self._merge(row.kind, row.value, row.expires_at, row.created_at)
                self._seq = max(self._seq, row.seq)
            for facts in self._facts.values():
                for value in [v for v, (exp, _) in facts.items() if exp <= now]:
                    del facts[value]
            changed = self._seq != seen
        if changed:
            self._notify()

    def revoke(self, kind: str, value: str, expires_at: int, now: int | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        now = int(time.time()) if now is None else now
        self._store.add_revocation(kind, value, expires_at, now)
        with self._lock:
            self._merge(kind, value, expires_at, now)
        self._notify()

    def _notify(self) -> None:
        for listener in self.listeners:
            listener()

    def _merge(self, kind: str, value: str, expires_at: int, cutoff: int) -> None:
        old = self._facts[kind].get(value)
        if old is not None:
            expires_at, cutoff = max(expires_at, old[0]), max(cutoff, old[1])
        self._facts[kind][value] = (expires_at, cutoff)

    def is_revoked(self, kind: str, value: str | None, iat: int) -> bool:
        if not value:
            return False
        fact = self._facts[kind].get(value)
        return fact is not None and fact[0] > time.time() and iat <= fact[1]

    def token_revoked(self, claims: dict[str, object]) -> bool:
        iat = claims.get("iat")
        issued = int(iat) if isinstance(iat, int | float) else 0
        return (
            self.is_revoked("jti", _s(claims.get("jti")), issued)
            or self.is_revoked("grant", _s(claims.get("sid")), issued)
            or self.is_revoked("client", _s(claims.get("client_id")), issued)
            or self.is_revoked("agent", _s(claims.get("agent")), issued)
        )


def _s(value: object) -> str | None:
    return value if isinstance(value, str) else None


class GrantRevoker(Protocol):
    """The part of the server's context :func:`revoke_grant` uses (:class:`authz.context.Context` has it)."""

    @property
    def store(self) -> GrantStore: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def revocations(self) -> RevocationView: ...


def revoke_grant(ctx: GrantRevoker, grant_id: str, now: int) -> None:
    """Revoke a grant everywhere: its refresh tokens are spent and every access token it issued dies.

    The revocation fact outlives the longest-lived token of the family (the grant's own expiry), so
    introspection refuses any of them on every replica.
    """
    grant = ctx.store.revoke_grant(grant_id, now)
    expires = grant.expires_at if grant is not None else now + ctx.settings.refresh_family_ttl
    ctx.revocations.revoke("grant", grant_id, max(expires, now + ctx.settings.access_token_ttl))
