"""DPoP at the protected resource (RFC 9449 §7, §9): the proof that goes with a DPoP-bound token.

RFC 9449 §7.1: "the access token is sent using the DPoP authentication scheme [...] Authorization:
DPoP <token>" with a proof in the ``DPoP`` header whose ``ath`` is the token's hash; "the resource
server MUST [...] check that the public key of the DPoP proof matches the public key to which the
access token is bound" (``cnf.jkt``, from the JWT or the introspection response). A token that is
not bound (no ``cnf``) is refused under the DPoP scheme.

RFC 9449 §7.2: "such a protected resource MUST reject a DPoP-bound access token received as a
bearer token per [RFC6750]" — :func:`refusal` checks it for every token, DPoP enabled or not.

The middleware calls three functions of this module and nothing else of DPoP: :func:`refusal` once
the token is valid, :func:`invalid_token` when it is not, :func:`unauthenticated` without one.

Challenges (§7.1): "WWW-Authenticate: DPoP algs="ES256 PS256"" for a request without credentials,
with ``error`` / ``error_description`` otherwise. Nonces (§9): a proof without a valid server
nonce gets 401 ``DPoP error="use_dpop_nonce"`` and a ``DPoP-Nonce`` header. ``jti`` replay (§11.1):
each accepted proof is remembered for the ``iat`` window, in memory (one process) or in Redis
(``RedisReplayCache``: every replica of the MCP server shares it).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dpop import NonceIssuer, ProofError, ProofVerifier, normalize_htu, single_proof
from resource_server import errors
from resource_server.context import TokenInfo
from resource_server.errors import HttpResponse, _json_error, _quote
from resource_server.settings import ResourceServerConfig

__all__ = [
    "DpopCheck",
    "DpopRejected",
    "MemoryReplayCache",
    "RedisReplayCache",
    "ReplayCache",
    "bound_jkt",
    "from_config",
    "invalid_token",
    "refusal",
    "unauthenticated",
]

log = logging.getLogger(__name__)

_URI_SETS_MAX = 256  # distinct (path, scheme, Host) triples remembered; a client controls the Host header


class DpopRejected(Exception):
    """A DPoP refusal: ``error`` is ``invalid_dpop_proof``, ``invalid_token`` or ``use_dpop_nonce``."""

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        super().__init__(description)
        self.error, self.description, self.nonce = error, description, nonce


class ReplayCache(Protocol):
    async def first_use(self, key: str, ttl: int) -> bool:
        """Remember ``key`` for ``ttl`` seconds; False when it is already remembered (a replay)."""


class MemoryReplayCache:
    """One process: keys with deadlines, oldest first, expired ones dropped as new ones come in."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._max, self._clock = max_entries, clock

    async def first_use(self, key: str, ttl: int) -> bool:
        now = self._clock()
        entries = self._entries
        while entries:
            oldest, oldest_deadline = next(iter(entries.items()))
            if oldest_deadline > now and len(entries) < self._max:
                break
            del entries[oldest]
        known = entries.get(key)
        if known is not None and known > now:
            return False
        entries[key] = now + ttl
        return True


class RedisReplayCache:
    """``SET key 1 NX EX ttl`` on a ``redis.asyncio`` client: shared by every replica of the server."""

    def __init__(self, client: Any, prefix: str = "rs:dpop:") -> None:
        self._redis, self._prefix = client, prefix

    async def first_use(self, key: str, ttl: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, b"1", nx=True, ex=max(1, ttl)))


def bound_jkt(info: TokenInfo) -> str | None:
    """The ``cnf.jkt`` the token is bound to (RFC 9449 §6), None for a bearer token."""
    cnf = info.claims.get("cnf")
    if cnf is None:  # a bearer token (the common case): no ABC isinstance check
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    return jkt if isinstance(jkt, str) else None


class DpopCheck:
    """Verifies the proof of one request that uses the DPoP scheme, and builds the DPoP challenges."""

    def __init__(
        self,
        resource: str,
        algorithms: tuple[str, ...],
        *,
        nonce_key: bytes | None = None,
        nonce: bool = False,
        required: bool = False,
        replay: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.required = required
        self.verifier = ProofVerifier(algorithms, clock=clock)
        self.algs = " ".join(algorithms)
        origin = normalize_htu(resource)
        assert origin is not None
        self._origin = origin.split("/", 3)[:3]  # scheme, "", host[:port]: the resource's own origin
        self.nonces = NonceIssuer(nonce_key or os.urandom(32), clock=clock) if nonce else None
        self.replay: ReplayCache = replay or MemoryReplayCache()
        self._clock = clock
        self._uri_sets: dict[tuple[str, str, str | None], frozenset[str]] = {}

    def _uris(self, path: str, scheme: str, host: str | None) -> frozenset[str]:
        """The request's URI as the resource names it, and as the client addressed it (Host header);
        remembered per (path, scheme, host): an MCP server answers on one or a few URIs."""
        key = (path, scheme, host)
        uris = self._uri_sets.get(key)
        if uris is None:
            found = {"/".join(self._origin) + (path or "/")}
            if host:
                seen = normalize_htu(f"{scheme}://{host}{path or '/'}")
                if seen is not None:
                    found.add(seen)
            uris = frozenset(found)
            if len(self._uri_sets) >= _URI_SETS_MAX:
                self._uri_sets.clear()
            self._uri_sets[key] = uris
        return uris

    async def check(
        self, proofs: list[str], *, method: str, path: str, scheme: str, host: str | None, token: str, info: TokenInfo
    ) -> None:
        """RFC 9449 §4.3 for a request with ``Authorization: DPoP <token>``; raises :class:`DpopRejected`."""
        now = self._clock()
        try:
            value = single_proof(proofs)
            if value is None:
                raise ProofError("A DPoP proof is required with the DPoP scheme")
            proof = self.verifier.verify(
                value, method=method, uris=self._uris(path, scheme, host), access_token=token, now=now
            )
        except ProofError as exc:
            raise DpopRejected("invalid_dpop_proof", exc.description) from None
        jkt = bound_jkt(info)
        if jkt is None:
            raise DpopRejected("invalid_token", "The access token is not DPoP-bound")
        if jkt != proof.jkt:  # check 12, second half
            raise DpopRejected("invalid_token", "The access token is bound to another key")
        if self.nonces is not None and not self.nonces.valid(proof.nonce):
            raise DpopRejected("use_dpop_nonce", "Resource server requires nonce in DPoP proof", self.nonces.issue())
        ttl = int(proof.iat + self.verifier.window + 1 - now) + 1
        if not await self.replay.first_use(proof.replay_key(), max(1, ttl)):
            raise DpopRejected("invalid_dpop_proof", "The DPoP proof was already used")

    # -- challenges ----------------------------------------------------------------------------
    def challenge(self, *, resource_metadata: str, error: str | None = None, description: str | None = None) -> str:
        """``DPoP algs="...", resource_metadata="..."`` (+ ``error``, ``error_description``)."""
        params: list[tuple[str, str]] = []
        if error is not None:
            params.append(("error", error))
            if description:
                params.append(("error_description", description))
        params.append(("algs", self.algs))
        params.append(("resource_metadata", resource_metadata))
        return "DPoP " + ", ".join(f"{k}={_quote(v)}" for k, v in params)

    def add_challenge(self, response: HttpResponse, resource_metadata: str) -> HttpResponse:
        """A 401 without credentials: the DPoP challenge beside the Bearer one, or instead of it when
        the server requires DPoP (then Bearer is not an accepted scheme)."""
        www = ("www-authenticate", self.challenge(resource_metadata=resource_metadata))
        kept = tuple(h for h in response.headers if not (self.required and h[0] == "www-authenticate"))
        return HttpResponse(response.status, (*kept, www), response.body)

    def rejected(self, exc: DpopRejected, *, resource_metadata: str) -> HttpResponse:
        """401 with a DPoP challenge naming the error (and the nonce to use, for ``use_dpop_nonce``)."""
        www = self.challenge(resource_metadata=resource_metadata, error=exc.error, description=exc.description)
        headers = [("www-authenticate", www)]
        if exc.nonce is not None:
            headers.append(("dpop-nonce", exc.nonce))
        return _json_error(401, exc.error, exc.description, headers)


# -- what the middleware calls -------------------------------------------------------------------


def from_config(config: ResourceServerConfig, replay: ReplayCache | None = None) -> DpopCheck | None:
    """The DPoP check of a resource server, None when DPoP is off (no ``dpop_algorithms``)."""
    if not config.dpop_algorithms:
        return None
    return DpopCheck(
        config.resource,
        config.dpop_algorithms,
        nonce=config.dpop_nonce,
        nonce_key=config.dpop_nonce_key,
        required=config.dpop_required,
        replay=replay,
    )


def _proofs(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Every ``DPoP`` header value (RFC 9449 §4.3 check 1 needs to see a repeated one)."""
    return [v.decode("latin-1") for k, v in headers if k.lower() == b"dpop"]


async def refusal(
    dpop: DpopCheck | None,
    scope: Mapping[str, Any],
    *,
    scheme: str,
    host: str | None,
    token: str,
    info: TokenInfo,
    resource_metadata: str,
) -> HttpResponse | None:
    """The 401 for a valid token whose DPoP side fails, None when it passes.

    Under the DPoP scheme: the proof of this request (RFC 9449 §4.3, §7.1). Under Bearer: a
    DPoP-bound token is refused (§7.2), with the plain Bearer challenge when DPoP is off here.
    """
    if scheme == "dpop" and dpop is not None:
        try:
            await dpop.check(
                _proofs(scope["headers"]), method=scope["method"], path=scope.get("path", ""),
                scheme=scope.get("scheme", "http"), host=host, token=token, info=info,
            )  # fmt: skip
        except DpopRejected as exc:
            log.info("rejected DPoP proof: %s", exc.description)
            return dpop.rejected(exc, resource_metadata=resource_metadata)
        return None
    if bound_jkt(info) is None:
        return None
    description = "The access token is DPoP-bound: use the DPoP scheme"
    if dpop is None:
        return errors.invalid_token(description, resource_metadata=resource_metadata, scopes=())
    return dpop.rejected(DpopRejected("invalid_token", description), resource_metadata=resource_metadata)


def invalid_token(
    dpop: DpopCheck | None, scheme: str, description: str, *, resource_metadata: str, scopes: Any
) -> HttpResponse:
    """The 401 for a token that failed validation: a DPoP challenge under the DPoP scheme."""
    if scheme == "dpop" and dpop is not None:
        return dpop.rejected(DpopRejected("invalid_token", description), resource_metadata=resource_metadata)
    return errors.invalid_token(description, resource_metadata=resource_metadata, scopes=scopes)


def unauthenticated(dpop: DpopCheck | None, response: HttpResponse, resource_metadata: str) -> HttpResponse:
    """A 401 without credentials (RFC 6750 §3), with the DPoP challenge too when DPoP is on (§7.1)."""
    return response if dpop is None else dpop.add_challenge(response, resource_metadata)
