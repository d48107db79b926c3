"""A small but real authorization server for the resource-server tests.

Serves RFC 8414 metadata, a JWKS (ES256, joserfc), an RFC 7662 introspection endpoint that
requires client_secret_basic, counts calls, can revoke tokens, and can be switched "down".
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from typing import Any

import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

RS_CLIENT_ID = "rs-client"
RS_CLIENT_SECRET = "rs-secret-value"
_DELETE = object()


class FakeAS:
    def __init__(self, issuer: str, resource: str) -> None:
        self.issuer = issuer
        self.resource = resource
        self.keys: list[ECKey] = [ECKey.generate_key("P-256", parameters={"kid": "k1"})]
        self.published: list[ECKey] = list(self.keys)
        self.revoked: set[str] = set()
        self.down = False
        self.metadata_issuer: str | None = None  # override to test the issuer check
        self.introspection_calls = 0
        self.jwks_calls = 0
        self.metadata_calls = 0
        self.app = Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self._metadata),
                Route("/jwks", self._jwks),
                Route("/introspect", self._introspect, methods=["POST"]),
            ]
        )

    # -- minting ---------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.resource,
            "client_id": "agent-client",
            "scope": "tools:read",
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
        }
        for name, value in overrides.items():
            if value is _DELETE:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def mint(self, *, header: dict[str, Any] | None = None, key: Any = None, **overrides: Any) -> str:
        signing_key = key or self.keys[0]
        hdr: dict[str, Any] = {"alg": "ES256", "typ": "at+jwt", "kid": signing_key.kid}
        hdr.update(header or {})
        hdr = {k: v for k, v in hdr.items() if v is not _DELETE}
        return jwt.encode(hdr, self.claims(**overrides), signing_key, algorithms=[hdr["alg"]], default_type=None)

    def mint_hs256(self, secret: bytes, **overrides: Any) -> str:
        key = OctKey.import_key(secret, parameters={"kid": "k1"})
        return jwt.encode({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}, self.claims(**overrides), key)

    def mint_alg_none(self, **overrides: Any) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        import json

        header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "k1"}).encode())
        payload = b64(json.dumps(self.claims(**overrides)).encode())
        return f"{header}.{payload}."

    def rotate(self) -> ECKey:
        """Sign with a new key (published with the old one)."""
        key = ECKey.generate_key("P-256", parameters={"kid": f"k{len(self.keys) + 1}"})
        self.keys.insert(0, key)
        self.published.insert(0, key)
        return key

    def revoke(self, token: str) -> None:
        self.revoked.add(jwt.decode(token, KeySet([*self.keys])).claims["jti"])

    # -- endpoints -------------------------------------------------------------------------

    async def _metadata(self, request: Request) -> Response:
        self.metadata_calls += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse(
            {
                "issuer": self.metadata_issuer or self.issuer,
                "token_endpoint": f"{self.issuer}/token",
                "introspection_endpoint": f"{self.issuer}/introspect",
                "jwks_uri": f"{self.issuer}/jwks",
            }
        )

    async def _jwks(self, request: Request) -> Response:
        self.jwks_calls += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        return JSONResponse({"keys": [k.as_dict(private=False) for k in self.published]})

    async def _introspect(self, request: Request) -> Response:
        self.introspection_calls += 1
        if self.down:
            return JSONResponse({"error": "down"}, status_code=503)
        expected = "Basic " + base64.b64encode(f"{RS_CLIENT_ID}:{RS_CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        if form.get("token_type_hint") != "access_token":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        token = str(form.get("token", ""))
        try:
            claims = jwt.decode(token, KeySet([*self.keys]), algorithms=["ES256"]).claims
        except Exception:
            return JSONResponse({"active": False})
        if claims.get("jti") in self.revoked or claims.get("exp", 0) <= time.time():
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, "token_type": "Bearer", **claims})


class ServerThread:
    """Serves an ASGI app with uvicorn on a free loopback port, in a thread with its own loop."""

    def __init__(self, app: ASGIApp, *, lifespan: str = "off", sock: socket.socket | None = None) -> None:
        self.sock = sock or bound_socket()
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan=lifespan, ws="none", log_level="warning")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


DELETE = _DELETE
