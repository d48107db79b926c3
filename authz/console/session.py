"""The console's signed cookies: the signed-in session, and the sign-in state (PKCE verifier, state).

The session cookie holds who signed in (user id and name), the scopes of the console token the
code exchange returned, that token's ``jti``/``sid`` (grant id)/``iat``, and an expiry; never the
token itself. It is MACed with a key derived from the key-encryption key. Every request re-checks
the token's revocation facts (sign-out revokes the grant, so a copied cookie dies with it) and
that the user still exists and is enabled; the role is re-read from settings, so a demotion takes
effect at the next request. CSRF tokens are MACs of the session's ``sid``.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import dataclass

from authz.core.crypto import Keyring, b64url, b64url_decode
from authz.identity.console_roles import CONSOLE_CLIENT_ID

SESSION_COOKIE = "authz_console"
SIGNIN_COOKIE = "authz_console_signin"
SESSION_TTL = 8 * 3600
SIGNIN_TTL = 600


@dataclass(frozen=True)
class ConsoleSession:
    user_id: str
    username: str
    scopes: tuple[str, ...]
    jti: str
    sid: str
    iat: int
    expires_at: int

    def claims(self) -> dict[str, object]:
        """What the revocation view checks (as for the console token itself)."""
        return {"jti": self.jti, "sid": self.sid, "iat": self.iat, "client_id": CONSOLE_CLIENT_ID}


@dataclass(frozen=True)
class SignIn:
    state: str
    verifier: str
    next_path: str


class Codec:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def _mac(self, purpose: str, value: str) -> str:
        return self._keyring.digest(f"console|{purpose}|{value}")[:43]

    def _seal(self, purpose: str, data: dict[str, object]) -> str:
        body = b64url(json.dumps(data, separators=(",", ":")).encode())
        return body + "." + self._mac(purpose, body)

    def _open(self, purpose: str, cookie: str | None) -> dict[str, object] | None:
        if not cookie or "." not in cookie or len(cookie) > 4096:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return None
        try:
            data = json.loads(b64url_decode(body))
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("e"), int) or data["e"] <= time.time():
            return None
        return data

    def session(self, user_id: str, username: str, claims: dict[str, object]) -> tuple[str, ConsoleSession]:
        scopes = tuple(str(claims.get("scope", "")).split())
        iat = claims.get("iat")
        s = ConsoleSession(
            user_id=user_id,
            username=username,
            scopes=scopes,
            jti=str(claims.get("jti", "")),
            sid=str(claims.get("sid") or secrets.token_urlsafe(16)),
            iat=int(iat) if isinstance(iat, int) else int(time.time()),
            expires_at=int(time.time()) + SESSION_TTL,
        )
        data: dict[str, object] = {
            "u": s.user_id, "n": s.username, "sc": list(s.scopes), "j": s.jti, "s": s.sid, "i": s.iat,
            "e": s.expires_at,
        }  # fmt: skip
        return self._seal("session", data), s

    def decode_session(self, cookie: str | None) -> ConsoleSession | None:
        data = self._open("session", cookie)
        if data is None:
            return None
        try:
            scopes = data["sc"]
            assert isinstance(scopes, list)
            return ConsoleSession(
                user_id=str(data["u"]),
                username=str(data["n"]),
                scopes=tuple(str(x) for x in scopes),
                jti=str(data["j"]),
                sid=str(data["s"]),
                iat=int(str(data["i"])),
                expires_at=int(str(data["e"])),
            )
        except (KeyError, AssertionError, ValueError):
            return None

    def signin(self, next_path: str) -> tuple[str, SignIn]:
        s = SignIn(state=secrets.token_urlsafe(24), verifier=secrets.token_urlsafe(48), next_path=next_path)
        data: dict[str, object] = {"st": s.state, "v": s.verifier, "x": s.next_path, "e": int(time.time()) + SIGNIN_TTL}
        return self._seal("signin", data), s

    def decode_signin(self, cookie: str | None) -> SignIn | None:
        data = self._open("signin", cookie)
        if data is None:
            return None
        return SignIn(state=str(data.get("st")), verifier=str(data.get("v")), next_path=str(data.get("x")))

    def csrf(self, sid: str) -> str:
        return self._mac("csrf", sid)

    def check_csrf(self, sid: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(sid))
