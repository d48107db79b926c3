"""Shared Signals receiver: polls the AS's SSF stream (RFC 8936) and applies revocation SETs at once.

On start it reads the transmitter configuration (SSF 1.0 §7.2, ``/.well-known/ssf-configuration`` inserted
before the issuer's path), creates a poll stream as this resource server (HTTP Basic with the introspection
credentials), then long-polls: each answer's SETs are verified, applied to the :class:`RevocationList`,
matching cache entries are dropped, and the SETs are acknowledged in the next poll. Errors back off
(0.5 s doubling to ``signals_retry_max``); while the stream is down the caches' own bounds are the fallback.

Checks (SSF 1.0): §7.2.4 "The "issuer" value returned MUST be identical to the Issuer URL that was directly
used to retrieve the configuration information"; §8.1.1 "The Receiver MUST check the response and confirm
that the `iss` value matches the Issuer"; §4.1.6 "Receivers MUST validate that this claim [iss] matches the
"iss" in the Stream Configuration data"; §4.1.1 explicit ``typ: secevent+jwt``; §3.6 "An SSF Receiver MUST
discard any event that contains a Subject with a Critical member that it is unable to process"; §4.2.3
"Receivers MUST ignore any fields they do not understand". SETs are signed with the AS's access-token keys
(its ``jwks_uri``). RFC 8936 §2.2 ``setErrs`` reports a SET that failed validation (RFC 8935 §2.4 codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx2
from joserfc import jws
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError

from guard.jsonload import JsonRefused, load_json
from resource_server.errors import AuthError
from resource_server.jwt import JwksCache
from resource_server.revocation import RevocationList
from resource_server.settings import ResourceServerConfig

__all__ = ["SignalReceiver", "ssf_configuration_url"]

log = logging.getLogger(__name__)

POLL = "urn:ietf:rfc:8936"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
REVOKING = (SESSION_REVOKED, CREDENTIAL_CHANGE)
MAX_ANSWER = 4 * 1024 * 1024  # bytes of one transmitter answer (100 SETs of a few hundred bytes fit easily)
_COMPLEX = {"session": "sid", "application": "client_id", "agent": "agent"}  # subject member -> token claim


def ssf_configuration_url(issuer: str) -> str:
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/.well-known/ssf-configuration{parts.path.rstrip('/')}"


class _Refused(Exception):
    """A SET that fails validation: reported in ``setErrs`` with an RFC 8935 §2.4 code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err, self.description = err, description


def subject_key(sub_id: Any, issuer: str, critical: frozenset[str]) -> tuple[str, str] | None:
    """(token claim, value) named by a subject; None for a subject this receiver does not act on."""
    if not isinstance(sub_id, dict):
        return None
    fmt = sub_id.get("format")
    if fmt == "jwt_id":
        jti = sub_id.get("jti")
        return ("jti", jti) if sub_id.get("iss") == issuer and isinstance(jti, str) else None
    if fmt != "complex":
        return None
    members = {k: v for k, v in sub_id.items() if k != "format"}
    unknown = set(members) - set(_COMPLEX)
    if unknown & critical:  # SSF §3.6: discard, never read it as a wildcard
        log.info("SSF event with an unprocessable critical subject member discarded")
        return None
    if len(members) != 1:  # all members must match: more than one cannot be checked from a token alone
        return None
    ((member, ident),) = members.items()
    claim = _COMPLEX.get(member)
    if claim is None or not isinstance(ident, dict) or ident.get("format") != "opaque":
        return None
    value = ident.get("id")
    return (claim, value) if isinstance(value, str) and value else None


class SignalReceiver:
    def __init__(
        self,
        config: ResourceServerConfig,
        http: httpx2.AsyncClient,
        jwks: JwksCache,
        revocations: RevocationList,
        *,
        on_revoked: Callable[[str, str, float], None] = lambda kind, value, cutoff: None,
    ) -> None:
        assert config.client_id is not None and config.client_secret is not None  # checked by the config
        self._config = config
        self._http = http
        self._jwks = jwks
        self._auth = httpx2.BasicAuth(config.client_id, config.client_secret)
        self.revocations = revocations
        self._on_revoked = on_revoked
        self._critical: frozenset[str] = frozenset()
        self._configuration_endpoint: str | None = None
        self.stream_id: str | None = None
        self._poll_url: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = False  # the stream is open and the last poll (if any) succeeded
        self.verified = 0  # SETs accepted (for metrics and tests)
        self.deferred = 0  # SETs left unacknowledged because their key could not be resolved yet

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="ssf-receiver")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.stream_id is not None and self._configuration_endpoint is not None:
            with contextlib.suppress(httpx2.HTTPError):  # best effort: an abandoned stream times out at the AS
                await self._http.request(
                    "DELETE",
                    self._configuration_endpoint,
                    params={"stream_id": self.stream_id},
                    auth=self._auth,
                    timeout=2.0,
                )
            self.stream_id = None

    async def run(self) -> None:
        delay = 0.5
        acks: list[str] = []
        errs: dict[str, dict[str, str]] = {}
        while True:
            try:
                if self._poll_url is None:
                    await self._open_stream()
                    self.connected = True  # events from now on are delivered by the next poll
                deferred = self.deferred
                acks, errs = await self._poll_once(acks, errs)
                self.connected = True
                delay = 0.5
                if self.deferred != deferred:  # they come back at once: do not spin on them
                    await asyncio.sleep(self._config.jwks_min_refetch_interval / 2)
            except (httpx2.HTTPError, AuthError, _StreamGone, ValueError) as exc:
                if self.connected or delay == 0.5:
                    log.warning("SSF stream unavailable (%s): caches fall back to their bounds; retrying", exc)
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._config.signals_retry_max)

    # -- the stream -----------------------------------------------------------------------------
    async def _open_stream(self) -> None:
        issuer = self._config.issuer
        r = await self._http.get(ssf_configuration_url(issuer), headers={"accept": "application/json"})
        doc = _json_object(r, 200, "SSF configuration")
        if doc.get("issuer") != issuer:
            raise ValueError("SSF configuration issuer mismatch")
        endpoint = doc.get("configuration_endpoint")
        if not isinstance(endpoint, str) or POLL not in (doc.get("delivery_methods_supported") or [POLL]):
            raise ValueError("the transmitter offers no poll stream")
        critical = doc.get("critical_subject_members")
        names = critical if isinstance(critical, list) else []
        self._critical = frozenset(c for c in names if isinstance(c, str))
        body = {
            "delivery": {"method": POLL},
            "events_requested": [SESSION_REVOKED, CREDENTIAL_CHANGE, VERIFICATION],
            "description": f"resource_server for {self._config.resource}",
        }
        r = await self._http.post(endpoint, json=body, auth=self._auth)
        stream = _json_object(r, 201, "SSF stream creation")
        delivery = stream.get("delivery")
        if stream.get("iss") != issuer:
            raise ValueError("SSF stream issuer mismatch")
        aud = stream.get("aud")
        if self._config.resource not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
            raise ValueError("SSF stream audience is not this resource")
        if (
            not isinstance(delivery, dict)
            or delivery.get("method") != POLL
            or not isinstance(delivery.get("endpoint_url"), str)
        ):
            raise ValueError("SSF stream has no poll endpoint")
        self._configuration_endpoint = endpoint
        self.stream_id = str(stream.get("stream_id"))
        self._poll_url = delivery["endpoint_url"]
        log.info("SSF stream %s open: revocations reach this server at once", self.stream_id)

    async def _poll_once(
        self, acks: list[str], errs: dict[str, dict[str, str]]
    ) -> tuple[list[str], dict[str, dict[str, str]]]:
        assert self._poll_url is not None
        request: dict[str, Any] = {"maxEvents": 100, "returnImmediately": False, "ack": acks}
        if errs:
            request["setErrs"] = errs
        timeout = httpx2.Timeout(self._config.http_timeout, read=self._config.signals_poll_timeout)
        r = await self._http.post(self._poll_url, json=request, auth=self._auth, timeout=timeout)
        if r.status_code == 404:
            self._poll_url = None  # the AS forgot the stream (inactivity): open a new one
            raise _StreamGone("the SSF stream is gone")
        body = _json_object(r, 200, "SSF poll")
        sets = body.get("sets")
        if not isinstance(sets, dict):
            raise ValueError("SSF poll answer has no sets")
        next_acks: list[str] = []
        next_errs: dict[str, dict[str, str]] = {}
        for jti, token in sets.items():
            if not isinstance(jti, str) or len(jti) > 64:
                continue
            try:
                await self._apply(jti, token)
            except _Deferred as deferred:
                log.warning("SET %s deferred: %s", jti, deferred)
                self.deferred += 1
            except _Refused as refused:
                log.warning("SET %s refused: %s", jti, refused.description)
                next_errs[jti] = {"err": refused.err, "description": refused.description}
            else:
                next_acks.append(jti)
        return next_acks, next_errs

    # -- one SET --------------------------------------------------------------------------------
    async def _apply(self, jti: str, token: object) -> None:
        claims = await self._verify(jti, token)
        events = claims.get("events")
        if not isinstance(events, dict):
            raise _Refused("invalid_request", "the SET has no events")
        for event_type, event in events.items():
            if event_type not in REVOKING or not isinstance(event, dict):
                continue  # verification and unknown events: nothing to do
            key = subject_key(claims.get("sub_id", event.get("subject")), self._config.issuer, self._critical)
            if key is None:
                continue
            stamp = event.get("event_timestamp", claims.get("iat"))
            if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                raise _Refused("invalid_request", "the event has no time")
            kind, value = key
            self.revocations.add(kind, value, float(stamp))
            self._on_revoked(kind, value, float(stamp))

    async def _verify(self, jti: str, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise _Refused("invalid_request", "the SET is not a compact JWS")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise _Refused("invalid_request", "the SET is malformed") from exc
        typ, alg, kid = header.get("typ"), header.get("alg"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in ("secevent+jwt", "application/secevent+jwt"):
            raise _Refused("invalid_request", "the SET is not explicitly typed secevent+jwt")
        if alg not in self._config.algorithms or not isinstance(kid, str):
            raise _Refused("invalid_key", "the SET's algorithm or key is not accepted")
        try:
            keys = await self._jwks.key_set_for(kid)
            claims: dict[str, Any] = dict(jose_jwt.decode(token, keys, algorithms=[alg]).claims)
        except AuthError as exc:
            # The key set cannot be read now, or the key is newer than our copy (refetches are rate-limited):
            # leave the SET unacknowledged, so the transmitter sends it again, rather than lose a revocation.
            raise _Deferred("the SET's signing key cannot be resolved yet") from exc
        except (JoseError, ValueError) as exc:
            raise _Refused("invalid_key", "the SET signature is invalid") from exc
        if claims.get("iss") != self._config.issuer:
            raise _Refused("invalid_issuer", "the SET was issued by another transmitter")
        aud = claims.get("aud")
        if self._config.resource not in ([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
            raise _Refused("invalid_audience", "the SET is not for this resource")
        if claims.get("jti") != jti or "sub" in claims or "exp" in claims:
            raise _Refused("invalid_request", "the SET's jti, sub or exp is not as SSF requires")
        self.verified += 1
        return claims


class _StreamGone(Exception):
    pass


class _Deferred(Exception):
    """A SET that cannot be checked yet: neither acknowledged nor reported; it comes again."""


def _json_object(response: httpx2.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise ValueError(f"{what} answered {response.status_code}")
    try:
        doc: Any = load_json(response.content, max_bytes=MAX_ANSWER, max_depth=64)
    except JsonRefused as exc:
        raise ValueError(f"{what} is not acceptable JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{what} is not a JSON object")
    return doc
