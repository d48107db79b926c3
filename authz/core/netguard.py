"""The address guard for every outbound request to a URL a client gave us: which addresses may be
reached (no private, loopback, link-local or metadata ranges), and httpx2 transports that resolve, check
and connect to the checked address in one step (no DNS rebinding between check and connect).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_LIMITS = httpx2.Limits(max_connections=32, max_keepalive_connections=0)


class FetchError(Exception):
    """A fetch that failed. ``reason`` is a short code safe to log and audit; no response content."""

    REASONS = frozenset(
        {
            "bad_url",
            "forbidden_address",
            "resolve_failed",
            "connect_failed",
            "timeout",
            "redirect",
            "http_status",
            "too_large",
            "not_json",
            "too_deep",
            "not_object",
        }
    )

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in self.REASONS
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- address policy ---------------------------------------------------------------------------
def address_allowed(ip: IPAddress, allow_loopback: bool = False) -> bool:
    """True when ``ip`` is a public unicast address (or loopback, when loopback is allowed).

    RFC 6890 special-use addresses are refused: ``is_global`` is False for private, shared (CGNAT),
    loopback, link-local, documentation, benchmarking and reserved ranges; multicast and unspecified
    are refused explicitly. Embedded IPv4 addresses (IPv4-mapped, 6to4, Teredo) are checked too.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_allowed(embedded, allow_loopback)
    if ip.is_loopback:
        return allow_loopback
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip.is_link_local or ip.is_private:
        return False
    return ip.is_global


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, allow_loopback: bool = False) -> None:
    """Refuse a URL by its shape alone (scheme, userinfo, fragment, IP-literal host): no traffic."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("bad_url", "unparsable URL") from exc
    host = parts.hostname or ""
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        raise FetchError("bad_url", "URL needs a host and no userinfo or fragment")
    literal = _literal(host)
    loopback_host = host == "localhost" or (literal is not None and literal.is_loopback)
    if parts.scheme == "http":
        if not (allow_loopback and loopback_host):
            raise FetchError("bad_url", "only https URLs are fetched")
    elif parts.scheme != "https":
        raise FetchError("bad_url", "only https URLs are fetched")
    if host == "localhost" and not allow_loopback:
        raise FetchError("forbidden_address", "loopback host")
    if literal is not None and not address_allowed(literal, allow_loopback):
        raise FetchError("forbidden_address", "special-use IP address")
    if port == 0:
        raise FetchError("bad_url", "port 0")


def _checked(infos: Iterable[tuple[Any, ...]], allow_loopback: bool) -> str:
    """The first resolved address, after checking that *every* resolved address is allowed."""
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError("resolve_failed", "no addresses")
    for address in addresses:
        ip = _literal(address.split("%")[0])
        if ip is None or not address_allowed(ip, allow_loopback):
            raise FetchError("forbidden_address", "host resolves to a special-use IP address")
    return addresses[0]


# -- network backends that resolve, check, and connect to the checked address -----------------
class _GuardedAsyncBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise FetchError("resolve_failed", "name resolution failed") from exc
        address = _checked(infos, self._allow_loopback)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise FetchError("bad_url", "unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedSyncBackend(httpcore2.NetworkBackend):
    def __init__(self, allow_loopback: bool) -> None:
        self._allow_loopback = allow_loopback
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise FetchError("resolve_failed", "name resolution failed") from exc
        address = _checked(infos, self._allow_loopback)
        return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        raise FetchError("bad_url", "unix sockets are never fetched")


class _GuardedAsyncTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, allow_loopback: bool) -> None:
        super().__init__(trust_env=False, limits=_LIMITS)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            network_backend=_GuardedAsyncBackend(allow_loopback),
        )


class _GuardedSyncTransport(httpx2.HTTPTransport):
    def __init__(self, allow_loopback: bool) -> None:
        super().__init__(trust_env=False, limits=_LIMITS)
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            network_backend=_GuardedSyncBackend(allow_loopback),
        )
