"""How the agent authenticates at the token endpoint: ``private_key_jwt`` (recommended) or a secret.

RFC 7523 §2.2 and §3 (``private_key_jwt``): the assertion's ``iss`` and ``sub`` are the client_id,
``aud`` identifies the authorization server — its issuer identifier, as RFC 7523bis and the MCP
client-credentials extension recommend — and it carries ``exp``, ``iat`` and a unique ``jti``.
RFC 6749 §2.3.1 (``client_secret_basic``): the id and secret are form-urlencoded, then Basic.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import quote

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
PrivateKey = ECKey | RSAKey | OKPKey


class ClientCredential(Protocol):
    @property
    def client_id(self) -> str: ...

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        """Add this credential to a token request (form fields and/or headers)."""


@dataclass(frozen=True)
class PublicClient:
    """A public client (``token_endpoint_auth_method`` ``none``): it only names itself (RFC 6749 §3.2.1)."""

    client_id: str

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        form["client_id"] = self.client_id


@dataclass(frozen=True)
class ClientSecret:
    client_id: str
    client_secret: str = field(repr=False)
    method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        if self.method == "client_secret_post":
            form["client_id"], form["client_secret"] = self.client_id, self.client_secret
            return
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass(frozen=True)
class PrivateKeyJwt:
    """Sign a fresh client assertion per token request with the agent's private key."""

    client_id: str
    key: PrivateKey | str = field(repr=False)  # a joserfc key, or a PEM string
    algorithm: str = "ES256"
    lifetime: int = 60
    kid: str | None = None

    def _key(self) -> PrivateKey:
        if not isinstance(self.key, str):
            return self.key
        if self.algorithm.startswith(("RS", "PS")):
            return RSAKey.import_key(self.key)
        if self.algorithm in ("EdDSA", "Ed25519"):
            return OKPKey.import_key(self.key)
        return ECKey.import_key(self.key)

    def assertion(self, audience: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_urlsafe(24),
        }
        key = self._key()
        header = {"alg": self.algorithm, "typ": "JWT"}
        kid = self.kid or key.kid
        if kid:
            header["kid"] = kid
        return jwt.encode(header, claims, key, algorithms=[self.algorithm])

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = self.assertion(audience)
