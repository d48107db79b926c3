"""Local validation of RFC 9068 JWT access tokens against the authorization server's JWKS.

RFC 9068 §4 (Validating JWT Access Tokens), abridged:

    Resource servers receiving a JWT access token MUST validate it in the following manner.
    - The resource server MUST verify that the "typ" header value is "at+jwt" or
      "application/at+jwt" and reject tokens carrying any other value.
    - The issuer identifier for the authorization server [...] MUST exactly match the value of
      the "iss" claim.
    - The resource server MUST validate that the "aud" claim contains a resource indicator value
      corresponding to an identifier the resource server expects for itself. The JWT access token
      MUST be rejected if "aud" does not contain a resource indicator of the current resource
      server as a valid audience.
    - The resource server MUST validate the signature of all incoming JWT access tokens according
      to [RFC7515] using the algorithm specified in the JWT "alg" Header Parameter. The resource
      server MUST reject any JWT in which the value of "alg" is "none". The resource server MUST
      use the keys provided by the authorization server.
    - The current time MUST be before the time represented by the "exp" claim. Implementers MAY
      provide for some small leeway, usually no more than a few minutes, to account for clock skew.

RFC 9068 §2.2 makes ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat`` and ``jti``
required claims; we insist on the ones this server relies on (``iss exp aud sub client_id iat``).
Only algorithms on the configured allow-list are accepted (never ``none``, never HS*).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any

import httpx2
from joserfc import jws
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from resource_server.context import TokenInfo
from resource_server.discovery import Discovery
from resource_server.errors import InvalidToken, UpstreamUnavailable

__all__ = ["JwksCache", "JwtVerifier", "VerifiedTokenMemo"]

log = logging.getLogger(__name__)

_ACCEPTED_TYP = ("at+jwt", "application/at+jwt")


class JwksCache:
    """The AS key set: fetched on first use, refetched on an unknown ``kid`` at most once per interval."""

    def __init__(
        self,
        discovery: Discovery,
        http: httpx2.AsyncClient,
        *,
        min_refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._discovery = discovery
        self._http = http
        self._interval = min_refetch_interval
        self._clock = clock
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS requests sent (for metrics and tests)
        self.generation = 0  # bumped whenever a fetched key set replaces the previous one

    async def key_set_for(self, kid: str) -> KeySet:
        if self._keys is not None and kid in self._kids:
            return self._keys
        async with self._lock:
            if self._keys is not None and kid in self._kids:
                return self._keys
            if self._fetched_at is None or self._clock() - self._fetched_at >= self._interval:
                await self._fetch()
            if self._keys is None or kid not in self._kids:
                raise InvalidToken("The access token is signed with an unknown key")
            return self._keys

    async def _fetch(self) -> None:
        metadata = await self._discovery.get()
        if metadata.jwks_uri is None:
            log.error("authorization server metadata has no jwks_uri")
            raise UpstreamUnavailable("authorization server publishes no keys")
        self.fetches += 1
        try:
            response = await self._http.get(metadata.jwks_uri, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            log.warning("JWKS unreachable: %s", type(exc).__name__)
            raise UpstreamUnavailable("JWKS unreachable") from exc
        if response.status_code != 200:
            log.warning("JWKS endpoint answered %d", response.status_code)
            raise UpstreamUnavailable("JWKS unavailable")
        try:
            doc: Any = response.json()
            keys = [k for k in doc["keys"] if isinstance(k, dict) and isinstance(k.get("kid"), str)]
            key_set = KeySet.import_key_set({"keys": keys})
        except (ValueError, KeyError, TypeError, JoseError) as exc:
            raise UpstreamUnavailable("JWKS is malformed") from exc
        self._keys = key_set
        self._kids = frozenset(k["kid"] for k in keys)
        self._fetched_at = self._clock()
        self.generation += 1


class VerifiedTokenMemo:
    """Tokens that passed every RFC 9068 check, remembered until they expire (bounded LRU).

    A JWT's validity in ``jwt`` mode depends only on its bytes, the key set and the clock: the
    signature and ``typ``/``alg``/``iss``/``aud``/``sub``/``client_id`` never change, and
    ``nbf``/``iat`` only become *more* acceptable with time. So a token that passed is served from
    here while ``now < exp + leeway`` (exactly the expiry check a full verification makes) and
    while the key set it was verified against is still the current one (any JWKS refetch, e.g. a
    rotation that dropped its key, sends it through the full verification again). Only tokens
    that passed every check enter: a token for another audience, a bad signature or an expired
    token is never stored. Keys are SHA-256 digests; the raw token is never stored.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._entries: OrderedDict[bytes, tuple[float, int, TokenInfo]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def evict(self, doomed: Callable[[TokenInfo], bool]) -> int:
        """Drop the tokens ``doomed`` selects (a revocation arrived); returns how many."""
        keys = [k for k, (_, _, info) in self._entries.items() if doomed(info)]
        for key in keys:
            del self._entries[key]
        return len(keys)

    def get(self, key: bytes, now: float, generation: int) -> TokenInfo | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, entry_generation, info = entry
        if now >= deadline or entry_generation != generation:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return info

    def put(self, key: bytes, deadline: float, generation: int, info: TokenInfo, now: float) -> None:
        if deadline <= now:
            return
        self._entries[key] = (deadline, generation, info)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)


class JwtVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        resource: str,
        issuer: str,
        algorithms: Collection[str] = ("ES256",),
        leeway: float = 30.0,
        clock: Callable[[], float] = time.time,
        memo_max_entries: int = 10_000,
    ) -> None:
        self.jwks = jwks
        self.memo: VerifiedTokenMemo | None = VerifiedTokenMemo(memo_max_entries) if memo_max_entries > 0 else None
        self._resource = resource
        self._issuer = issuer
        self._algorithms = tuple(a for a in algorithms if a.lower() != "none" and not a.upper().startswith("HS"))
        self._leeway = leeway
        self._clock = clock

    async def verify(self, token: str) -> TokenInfo:
        memo = self.memo
        if memo is None:
            return (await self._verify(token))[0]
        key = hashlib.sha256(token.encode()).digest()
        hit = memo.get(key, self._clock(), self.jwks.generation)
        if hit is not None:
            return hit
        info, generation = await self._verify(token)
        if info.expires_at is not None:
            memo.put(key, info.expires_at + self._leeway, generation, info, self._clock())
        return info

    async def _verify(self, token: str) -> tuple[TokenInfo, int]:
        """Full RFC 9068 validation: the token's facts and the key-set generation that verified it."""
        if token.count(".") != 2:
            raise InvalidToken("The access token is not a signed JWT")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError, RecursionError) as exc:  # a deeply nested header
            raise InvalidToken("The access token is malformed") from exc
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise InvalidToken("The token is not a JWT access token (typ)")
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("The access token algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("The access token names no key")
        keys = await self.jwks.key_set_for(kid)
        generation = self.jwks.generation  # the set `keys` belongs to (no await in between)
        try:
            decoded = jose_jwt.decode(token, keys, algorithms=list(self._algorithms))
        except (JoseError, ValueError) as exc:
            raise InvalidToken("The access token signature is invalid") from exc
        self._check_claims(decoded.claims)
        return TokenInfo.from_claims(decoded.claims), generation

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = self._clock()
        if claims.get("iss") != self._issuer:
            raise InvalidToken("The access token was issued by another authorization server")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._resource not in audiences:
            raise InvalidToken("The access token was not issued for this resource")
        exp: Any = claims.get("exp")
        nbf: Any = claims.get("nbf")
        iat: Any = claims.get("iat")
        if not _is_number(exp) or exp + self._leeway <= now:
            raise InvalidToken("The access token has expired")
        if nbf is not None and (not _is_number(nbf) or nbf - self._leeway > now):
            raise InvalidToken("The access token is not yet valid")
        if not _is_number(iat) or iat - self._leeway > now:
            raise InvalidToken("The access token has an invalid issue time")
        for name in ("sub", "client_id"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise InvalidToken(f"The access token lacks the {name} claim")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise InvalidToken("The access token scope claim is malformed")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
