"""The token verifier for each mode, and the factory that wires one from a config.

- ``introspection``: every token is checked at the AS (RFC 7662), through the cache.
- ``jwt``: local RFC 9068 validation against the AS's JWKS; no per-request AS traffic.
- ``hybrid``: local validation first (forgeries never reach the AS), then a revocation check by
  introspection whose "still active" answer is reused for at most ``revocation_staleness``
  seconds: a revoked token stops working within that bound.

With ``revocation_signals`` every mode also consumes the AS's Shared Signals stream
(:mod:`resource_server.signals`): a revocation event drops the matching cache entries and a
:class:`~resource_server.revocation.RevocationGuard` refuses every token it kills, cached or new, at once.
"""

from __future__ import annotations

from typing import Protocol

import httpx2

from resource_server.cache import TokenCache
from resource_server.context import TokenInfo
from resource_server.discovery import Discovery
from resource_server.introspection import IntrospectionClient, IntrospectionVerifier
from resource_server.jwt import JwksCache, JwtVerifier
from resource_server.revocation import RevocationGuard, RevocationList, token_matches
from resource_server.settings import ResourceServerConfig
from resource_server.signals import SignalReceiver

__all__ = ["ConfiguredVerifier", "HybridVerifier", "TokenVerifier", "build_verifier", "evict_revoked"]


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> TokenInfo:
        """Return the token's facts, or raise ``InvalidToken`` / ``UpstreamUnavailable``."""
        ...


class HybridVerifier:
    def __init__(self, local: JwtVerifier, revocation: IntrospectionVerifier) -> None:
        self.local = local
        self.revocation = revocation

    async def verify(self, token: str) -> TokenInfo:
        info = await self.local.verify(token)
        await self.revocation.verify(token)
        return info


def build_verifier(config: ResourceServerConfig, http: httpx2.AsyncClient) -> TokenVerifier:
    discovery = Discovery(config.issuer, http, ttl=config.metadata_ttl)

    def introspection(ttl: float) -> IntrospectionVerifier:
        assert config.client_id is not None and config.client_secret is not None  # checked by the config
        client = IntrospectionClient(discovery, http, client_id=config.client_id, client_secret=config.client_secret)
        cache = TokenCache(ttl=ttl, negative_ttl=config.negative_cache_ttl, max_entries=config.cache_max_entries)
        return IntrospectionVerifier(client, cache, resource=config.resource, issuer=config.issuer)

    def local() -> JwtVerifier:
        jwks = JwksCache(discovery, http, min_refetch_interval=config.jwks_min_refetch_interval)
        return JwtVerifier(
            jwks,
            resource=config.resource,
            issuer=config.issuer,
            algorithms=config.algorithms,
            leeway=config.leeway,
            memo_max_entries=config.cache_max_entries,
        )

    if config.mode == "jwt":
        return local()
    if config.mode == "hybrid":
        return HybridVerifier(local(), introspection(min(config.cache_ttl, config.revocation_staleness)))
    return introspection(config.cache_ttl)


def _parts(verifier: object) -> list[object]:
    if isinstance(verifier, HybridVerifier):
        return [verifier.local, verifier.revocation]
    if isinstance(verifier, RevocationGuard):
        return _parts(verifier.inner)
    return [verifier]


def evict_revoked(verifier: object, kind: str, value: str, cutoff: float) -> int:
    """Drop what every cache of ``verifier`` holds for tokens a revocation kills (introspection cache,
    JWT memo, both in hybrid mode); returns how many entries went."""
    dropped = 0
    for part in _parts(verifier):
        if isinstance(part, IntrospectionVerifier):
            dropped += part.cache.evict(lambda info: token_matches(info, kind, value, cutoff))
        elif isinstance(part, JwtVerifier) and part.memo is not None:
            dropped += part.memo.evict(lambda info: token_matches(info, kind, value, cutoff))
    return dropped


class ConfiguredVerifier:
    """The verifier for ``config``, built on first use inside the serving event loop.

    Owns its pooled ``httpx2.AsyncClient`` unless one is given; :meth:`aclose` releases it.
    """

    def __init__(self, config: ResourceServerConfig, http_client: httpx2.AsyncClient | None = None) -> None:
        self._config = config
        self._http = http_client
        self._owns_http = http_client is None
        self._inner: TokenVerifier | None = None
        self.receiver: SignalReceiver | None = None

    @property
    def inner(self) -> TokenVerifier:
        """Built on first use (inside the serving loop); with ``revocation_signals`` the SSF receiver starts."""
        if self._inner is None:
            config = self._config
            if self._http is None:
                self._http = httpx2.AsyncClient(timeout=config.http_timeout, follow_redirects=False)
            verifier = build_verifier(config, self._http)
            if config.revocation_signals:
                revocations = RevocationList(memory=config.revocation_memory)
                local = next((p for p in _parts(verifier) if isinstance(p, JwtVerifier)), None)
                jwks = local.jwks if local is not None else JwksCache(Discovery(config.issuer, self._http), self._http)
                plain = verifier

                def drop(kind: str, value: str, cutoff: float) -> None:
                    evict_revoked(plain, kind, value, cutoff)

                self.receiver = SignalReceiver(config, self._http, jwks, revocations, on_revoked=drop)
                self.receiver.start()
                verifier = RevocationGuard(verifier, revocations)
            self._inner = verifier
        return self._inner

    def start(self) -> None:
        """Build the verifier now (at server start-up) so the revocation stream opens before traffic."""
        _ = self.inner

    async def verify(self, token: str) -> TokenInfo:
        return await self.inner.verify(token)

    async def aclose(self) -> None:
        if self.receiver is not None:
            await self.receiver.aclose()
            self.receiver = None
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None
        self._inner = None
