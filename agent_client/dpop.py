"""DPoP for agents (RFC 9449): a proof key per agent, proofs for the token endpoint and every MCP request.

``DpopSession`` holds the agent's proof key (generated in memory, or kept in a file) and the latest
server nonce per origin. ``TokenSource(..., dpop=session)`` sends a proof with every token request
(RFC 9449 §5) and gets DPoP-bound tokens; ``DpopAuth`` is the ``httpx2.Auth`` that presents them —
``Authorization: DPoP <token>`` plus a fresh proof with ``ath`` (§7.1) — so it plugs into the MCP
SDK client like ``BearerAuth``::

    session = DpopSession.from_file("~/.agent/dpop.json")
    source = await TokenSource.for_server(url, PrivateKeyJwt("agt_123", pem), dpop=session)
    http = httpx2.AsyncClient(auth=DpopAuth(source))
    async with mcp.Client(streamable_http_client(url, http_client=http)) as client: ...

Nonces: a ``400 use_dpop_nonce`` from the token endpoint (§8) or a ``401`` with
``WWW-Authenticate: DPoP error="use_dpop_nonce"`` from the resource server (§9) carries a
``DPoP-Nonce``; the request is signed again with it and sent once more. Any ``DPoP-Nonce`` on a
response replaces the one remembered for that origin (§8.2: the server "MAY supply the new nonce").
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import httpx2

from dpop import DpopKey

__all__ = ["DpopSession", "is_nonce_challenge"]

_USE_NONCE = re.compile(r'(^|[\s,])DPoP\s[^\n]*error="use_dpop_nonce"', re.IGNORECASE)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_nonce_challenge(response: httpx2.Response) -> bool:
    """The server asks for (another) nonce: §8 at the token endpoint, §9 at a resource server."""
    if "dpop-nonce" not in response.headers:
        return False
    if response.status_code == 401:
        return any(_USE_NONCE.search(v) for v in response.headers.get_list("www-authenticate"))
    if response.status_code == 400:
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
    return False


class DpopSession:
    """One agent's proof key and the nonces its servers handed out."""

    def __init__(self, key: DpopKey | None = None, *, alg: str = "ES256") -> None:
        self.key = key or DpopKey.generate(alg)
        self._nonces: dict[str, str] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, alg: str = "ES256") -> DpopSession:
        """The key kept in ``path`` (a private JWK, mode 0600), created on first use."""
        return cls(DpopKey.load_or_create(os.path.expanduser(os.fspath(path)), alg))

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint: what bound tokens carry as ``cnf.jkt`` (and ``dpop_jkt``)."""
        return self.key.jkt

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A fresh proof (new ``jti``) for one request, with the origin's current nonce if any."""
        return self.key.proof(method, url, access_token=access_token, nonce=self._nonces.get(_origin(url)))

    def remember(self, url: str, response: httpx2.Response) -> bool:
        """Keep a ``DPoP-Nonce`` the server sent; True when it is a new value."""
        nonce = response.headers.get("dpop-nonce")
        if not nonce:
            return False
        origin = _origin(url)
        changed = self._nonces.get(origin) != nonce
        self._nonces[origin] = nonce
        return changed
