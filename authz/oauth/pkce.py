"""PKCE (RFC 7636) with S256 only, for every client.

OAuth 2.1 §4.1.1: "Clients MUST use code_challenge and code_verifier" and §7.5.2 servers "MUST
support ... S256"; MCP 2026-07-28: "MCP clients MUST use the S256 code challenge method". Authlib
defaults the method to ``plain`` when it is omitted and verifies with plain semantics, so we do not
use its extension: a missing challenge, a missing method, or ``plain`` are all ``invalid_request``.
RFC 7636 §4.1: the verifier is 43-128 characters of ``[A-Za-z0-9-._~]``; §4.2 the S256 challenge is
BASE64URL(SHA256(verifier)), 43 characters.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError

from authz.core.crypto import b64url

VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def check_challenge(challenge: str | None, method: str | None) -> str:
    if not challenge:
        raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
    if method != "S256":
        raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
    if not CHALLENGE.fullmatch(challenge):
        raise InvalidRequestError("Malformed code_challenge.")
    return challenge


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def check_verifier(verifier: str | None, challenge: str) -> None:
    if not verifier:
        raise InvalidRequestError("Missing code_verifier.")
    if not VERIFIER.fullmatch(verifier):
        raise InvalidRequestError("Malformed code_verifier.")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrantError("The code_verifier does not match the code_challenge.")
