"""Signed session cookies and CSRF tokens for the sign-in and consent pages.

The session cookie carries only a user id, an expiry and a random session id, MACed with a key
derived from the key-encryption key. CSRF tokens are MACs of the session id (or, before sign-in,
of a random pre-login cookie), so a form posted from another site cannot carry a valid one.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass

from authz.core.crypto import Keyring, b64url, b64url_decode

SESSION_COOKIE = "authz_session"
LOGIN_COOKIE = "authz_login"
SESSION_TTL = 8 * 3600


@dataclass(frozen=True)
class Session:
    user_id: str
    sid: str
    expires_at: int


class SessionCodec:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def _mac(self, purpose: str, value: str) -> str:
        return self._keyring.digest(f"{purpose}|{value}")[:43]

    def encode(self, user_id: str) -> str:
        body = b64url(
            json.dumps({"u": user_id, "s": secrets.token_urlsafe(16), "e": int(time.time()) + SESSION_TTL}).encode()
        )
        return body + "." + self._mac("session", body)

    def decode(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            data = json.loads(b64url_decode(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or int(data.get("e", 0)) <= time.time():
            return None
        return Session(user_id=str(data["u"]), sid=str(data["s"]), expires_at=int(data["e"]))

    def csrf_token(self, binding: str) -> str:
        return self._mac("csrf", binding)

    def check_csrf(self, binding: str | None, token: str | None) -> bool:
        return bool(binding and token and hmac.compare_digest(token, self.csrf_token(binding)))
