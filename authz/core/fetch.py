"""An SSRF-safe JSON fetcher for URLs that clients give us: CIMD documents and client ``jwks_uri``.

draft-ietf-oauth-client-id-metadata-document-02 §8.6: "Authorization servers MUST NOT fetch a Client
ID Metadata Document URL or any URLs contained within a Client ID Metadata Document that resolve to
special-use IP addresses as defined in [RFC6890]." and "Authorization servers deployed for development
or testing purposes MAY relax this restriction to allow fetching from loopback addresses ...
Authorization servers MUST NOT apply this exception in production deployments". §5: "The
authorization server MUST NOT automatically follow HTTP redirects". §8.7: "authorization servers
SHOULD limit the amount of data they read and process ... stopping after a maximum number of bytes
and treating the response as an error if that limit is reached". §5.2: "The authorization server
SHOULD respect HTTP cache headers [RFC9111] when caching client metadata, but MAY define its own
upper and/or lower bounds on an acceptable cache lifetime as well."

How the rules are kept:

- **Scheme**: ``https`` only; plain ``http`` only to a loopback host when ``allow_loopback`` is on
  (``settings.cimd_allow_loopback``, tests and local development only). No userinfo, no fragment.
- **Addresses**: the host is resolved inside the connection pool's network backend, *every* resolved
  address is checked (not global, private, loopback, link-local, multicast, reserved, unspecified,
  IPv4-mapped/6to4/Teredo forms of those are refused), and the socket is opened to the checked
  address itself — there is no second lookup, so no DNS-rebinding window between check and connect.
  TLS still verifies the certificate against the URL's host name (SNI is the original host). An IP
  literal is checked before any connection, so ``https://10.0.0.1/`` sends no packet.
- **No proxies from the environment** (``trust_env=False``): a proxy would do its own resolution.
- **No redirects**, status 200 only, ``Accept: application/json``, ``Accept-Encoding: identity``.
- **Size**: counted while streaming; the response is dropped as soon as it passes ``max_bytes``.
- **Depth**: parsed by :func:`guard.jsonload.load_json` (arrays and objects nested at most
  32 deep): a small document of 15,000 ``[`` is ``too_deep``, not a ``RecursionError``.
- **Time**: one total deadline for resolve + connect + TLS + headers + body (async: a cancel scope;
  sync: per-phase timeouts plus a deadline check between chunks).
- **Errors**: :class:`FetchError` with a short ``reason`` code; response bodies never leak into it.

Residual risk (documented in docs/client-registration.md): the sync variant resolves with the
blocking ``socket.getaddrinfo``, which has no timeout of its own (the OS resolver's applies).
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx2

from authz.core.netguard import FetchError as FetchError
from authz.core.netguard import _GuardedAsyncTransport, _GuardedSyncTransport
from authz.core.netguard import check_url as check_url
from guard.jsonload import JsonRefused, load_json

TIMEOUT = 5.0
MAX_BYTES = 64 * 1024
MIN_TTL, MAX_TTL, DEFAULT_TTL = 60, 24 * 3600, 300
HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity", "User-Agent": "authz-fetch/1"}


@dataclass(frozen=True)
class Fetched:
    """A fetched JSON object and how long it may be cached (seconds, already clamped)."""

    data: dict[str, Any]
    ttl: int
    fetched_at: float

    @property
    def expires_at(self) -> int:
        return int(self.fetched_at) + self.ttl


# -- HTTP caching -----------------------------------------------------------------------------
def cache_ttl(headers: httpx2.Headers, now: float | None = None) -> int:
    """Seconds a response may be cached (RFC 9111 §4.2.1 freshness), clamped to [MIN_TTL, MAX_TTL].

    ``no-store``/``no-cache`` and ``max-age=0`` give the lower bound: a client cannot make us fetch
    on every authorization request (draft §5.2 lets the AS define bounds; §9.1 privacy side channel).
    ``max-age`` (minus ``Age``) wins over ``Expires`` (RFC 9111 §5.3); neither gives DEFAULT_TTL.
    """
    now = time.time() if now is None else now
    directives: dict[str, str] = {}
    for part in headers.get("cache-control", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            directives[name.lower()] = value.strip().strip('"')
    ttl: float
    if "no-store" in directives or "no-cache" in directives:
        ttl = 0
    elif "max-age" in directives:
        try:
            ttl = int(directives["max-age"]) - _int(headers.get("age"))
        except ValueError:
            ttl = 0
    elif "expires" in headers:
        try:
            expires = parsedate_to_datetime(headers["expires"]).timestamp()
            date = parsedate_to_datetime(headers["date"]).timestamp() if "date" in headers else now
            ttl = expires - date
        except (TypeError, ValueError, IndexError, OverflowError):
            ttl = 0  # RFC 9111 §5.3: an invalid Expires means "already expired"
    else:
        ttl = DEFAULT_TTL
    return int(min(MAX_TTL, max(MIN_TTL, ttl)))


def _int(value: str | None) -> int:
    try:
        return max(0, int(value)) if value else 0
    except ValueError:
        return 0


def _decode(body: bytes | bytearray, max_bytes: int) -> dict[str, Any]:
    try:
        data = load_json(body, max_bytes=max_bytes)
    except JsonRefused as exc:
        if exc.reason == "too_deep":
            raise FetchError("too_deep", "response nests arrays and objects too deeply") from exc
        if exc.reason == "too_large":
            raise FetchError("too_large", f"more than {max_bytes} bytes") from exc
        raise FetchError("not_json", "response is not JSON") from exc
    if not isinstance(data, dict):
        raise FetchError("not_object", "response is not a JSON object")
    return data


def _check_status(response: httpx2.Response, max_bytes: int) -> None:
    if response.is_redirect or 300 <= response.status_code < 400:
        raise FetchError("redirect", f"status {response.status_code}")
    if response.status_code != 200:
        raise FetchError("http_status", f"status {response.status_code}")
    length = _int(response.headers.get("content-length"))
    if length > max_bytes:
        raise FetchError("too_large", f"more than {max_bytes} bytes")


# -- the fetcher ------------------------------------------------------------------------------
class Fetcher:
    """One async and one sync pooled client, both behind the same address policy.

    The async client belongs to the event loop it was created on (a new loop gets a new client).
    Idle connections are not kept: documents are fetched rarely, from many hosts, and keeping
    sockets to client-controlled hosts open buys nothing.
    """

    def __init__(self, *, allow_loopback: bool = False, timeout: float = TIMEOUT) -> None:
        self.allow_loopback, self.timeout = allow_loopback, timeout
        self._async: tuple[asyncio.AbstractEventLoop, httpx2.AsyncClient] | None = None
        self._sync: httpx2.Client | None = None

    def _async_client(self) -> httpx2.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            client = httpx2.AsyncClient(
                transport=_GuardedAsyncTransport(self.allow_loopback),
                follow_redirects=False,
                trust_env=False,
                timeout=self.timeout,
                headers=HEADERS,
            )
            self._async = (loop, client)
        return self._async[1]

    def _sync_client(self) -> httpx2.Client:
        if self._sync is None:
            self._sync = httpx2.Client(
                transport=_GuardedSyncTransport(self.allow_loopback),
                follow_redirects=False,
                trust_env=False,
                timeout=self.timeout,
                headers=HEADERS,
            )
        return self._sync

    async def fetch(self, url: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
        check_url(url, self.allow_loopback)
        client = self._async_client()
        try:
            with anyio.fail_after(self.timeout):
                async with client.stream("GET", url) as response:
                    _check_status(response, max_bytes)
                    body = bytearray()
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > max_bytes:
                            raise FetchError("too_large", f"more than {max_bytes} bytes")
                    ttl = cache_ttl(response.headers)
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError("timeout", f"no complete answer within {self.timeout:g}s") from exc
        except httpx2.TimeoutException as exc:
            raise FetchError("timeout", type(exc).__name__) from exc
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
            raise FetchError("connect_failed", type(exc).__name__) from exc
        return Fetched(_decode(body, max_bytes), ttl, time.time())

    def fetch_sync(self, url: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
        check_url(url, self.allow_loopback)
        client = self._sync_client()
        deadline = time.monotonic() + self.timeout
        try:
            with client.stream("GET", url) as response:
                _check_status(response, max_bytes)
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchError("too_large", f"more than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError("timeout", f"no complete answer within {self.timeout:g}s")
                ttl = cache_ttl(response.headers)
        except FetchError:
            raise
        except httpx2.TimeoutException as exc:
            raise FetchError("timeout", type(exc).__name__) from exc
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as exc:
            raise FetchError("connect_failed", type(exc).__name__) from exc
        return Fetched(_decode(body, max_bytes), ttl, time.time())

    async def aclose(self) -> None:
        if self._async is not None:
            client, self._async = self._async[1], None
            await client.aclose()

    def close(self) -> None:
        if self._sync is not None:
            client, self._sync = self._sync, None
            client.close()


@functools.lru_cache(maxsize=16)
def get_fetcher(allow_loopback: bool = False, timeout: float = TIMEOUT) -> Fetcher:
    """The shared fetcher for one policy (so each policy has one pooled client per flavour)."""
    return Fetcher(allow_loopback=allow_loopback, timeout=timeout)


async def fetch_json(
    url: str, *, allow_loopback: bool = False, timeout: float = TIMEOUT, max_bytes: int = MAX_BYTES
) -> Fetched:
    """GET ``url`` and return its JSON object with its cache lifetime, or raise :class:`FetchError`."""
    return await get_fetcher(allow_loopback, timeout).fetch(url, max_bytes=max_bytes)


def fetch_json_sync(
    url: str, *, allow_loopback: bool = False, timeout: float = TIMEOUT, max_bytes: int = MAX_BYTES
) -> Fetched:
    """The blocking twin of :func:`fetch_json`, for code running in worker threads (grants)."""
    return get_fetcher(allow_loopback, timeout).fetch_sync(url, max_bytes=max_bytes)
