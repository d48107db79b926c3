"""Revocation cutoffs learned from the AS's Shared Signals stream, and the verifier guard that applies them.

A cutoff says: every token of this subject issued at or before ``cutoff`` (its ``iat``) is dead — the
same rule the AS's introspection applies to its revocation facts. Subjects are the four kinds the AS
revokes by: the token itself (``jti``), its grant (``sid``), its client (``client_id``) and its agent
(``agent``). The guard runs after every verification, cached or not, so a token already validated
(introspection cache, JWT memo, hybrid) *and* a token never seen before are both refused as soon as
the event arrives. A cutoff is forgotten ``memory`` seconds after its time: by then every token it
could match has expired (access tokens live at most an hour).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from resource_server.context import TokenInfo
from resource_server.errors import InvalidToken

__all__ = ["KINDS", "RevocationGuard", "RevocationList", "token_matches"]

KINDS = ("jti", "sid", "client_id", "agent")


def _value(info: TokenInfo, kind: str) -> str | None:
    if kind == "jti":
        return info.jti
    if kind == "client_id":
        return info.client_id
    if kind == "agent":
        return info.agent
    value = info.claims.get(kind)
    return value if isinstance(value, str) else None


def _iat(info: TokenInfo) -> float:
    iat = info.claims.get("iat")
    return float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else 0.0


def token_matches(info: TokenInfo, kind: str, value: str, cutoff: float) -> bool:
    """Whether a cutoff for (``kind``, ``value``) kills the token."""
    return _value(info, kind) == value and _iat(info) <= cutoff


class RevocationList:
    """Cutoffs by subject, bounded in time (``memory``) and in size (``max_entries``, oldest dropped)."""

    def __init__(
        self, *, memory: float = 3660.0, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._memory = memory
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cutoffs: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        self.applied = 0  # events applied (for metrics and tests)

    def __len__(self) -> int:
        return sum(len(v) for v in self._cutoffs.values())

    def add(self, kind: str, value: str, cutoff: float) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        with self._lock:
            facts = self._cutoffs[kind]
            facts[value] = max(cutoff, facts.get(value, cutoff))
            self.applied += 1
            if len(self) > self._max:
                self._prune(force=True)

    def refuses(self, info: TokenInfo) -> bool:
        cutoffs = self._cutoffs
        if not any(cutoffs.values()):
            return False
        iat = _iat(info)
        for kind in KINDS:
            facts = cutoffs[kind]
            if not facts:
                continue
            value = _value(info, kind)
            if value is not None:
                cutoff = facts.get(value)
                if cutoff is not None and iat <= cutoff:
                    return True
        return False

    def prune(self) -> None:
        with self._lock:
            self._prune(force=False)

    def _prune(self, *, force: bool) -> None:
        horizon = self._clock() - self._memory
        for facts in self._cutoffs.values():
            for value in [v for v, cutoff in facts.items() if cutoff < horizon]:
                del facts[value]
        if force and len(self) > self._max:  # still too many: drop the oldest cutoffs
            every = sorted((c, kind, v) for kind, facts in self._cutoffs.items() for v, c in facts.items())
            for _cutoff, kind, value in every[: len(every) - self._max]:
                del self._cutoffs[kind][value]


class _Verifier(Protocol):  # resource_server.verifier.TokenVerifier, without importing it (no cycle)
    async def verify(self, token: str) -> TokenInfo: ...


class RevocationGuard:
    """Wraps a verifier: a token the revocation list kills is refused like any invalid token (401)."""

    def __init__(self, inner: _Verifier, revocations: RevocationList) -> None:
        self.inner = inner
        self.revocations = revocations

    async def verify(self, token: str) -> TokenInfo:
        info = await self.inner.verify(token)
        if self.revocations.refuses(info):
            raise InvalidToken("The access token has been revoked")
        return info
