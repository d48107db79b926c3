"""Security Event Tokens (RFC 8417) for revocation facts, in the CAEP 1.0 vocabulary, signed by the AS.

Every revocation fact (``authz.identity.revocations``: a token ``jti``, a grant, a client, an agent)
becomes one CAEP ``session-revoked`` SET per stream; a fact that ends an agent for good (the agent is
``revoked``) is also sent as a ``credential-change`` with ``change_type: revoke`` under the same ``txn``.
``event_timestamp`` is the fact's time: receivers refuse every token of that subject whose ``iat`` is at
or before it, exactly as introspection does.

RFC 8417 §2.3: "it is RECOMMENDED that SETs be explicitly typed" with ``typ`` ``secevent+jwt``; SSF 1.0
§4.1.1 makes it a MUST ("SSF events MUST use explicit typing"). SSF §4.1.2: "The JWT "sub" claim MUST NOT
be present in any SET containing an SSF event"; §4.1.7: "The "exp" claim MUST NOT be used in SETs";
§3.1: "A top-level claim named `sub_id` MUST be used to describe the primary subject of the event" and
"SSF Transmitters MUST include the top-level `sub_id` claim even for these existing event types"
(CAEP's ``subject``, which we also include). §4.1.9: "Transmitters SHOULD set the "txn" claim value".
CAEP 1.0 §3.1 (Session Revoked): "When `event_timestamp` is included, its value MUST represent the time
at which the session revocation occurred."

Subjects (SSF §3.2-§3.5, RFC 9493), one per kind of fact:

- ``jti``: ``{"format": "jwt_id", "iss": ISSUER, "jti": ...}`` (SSF §3.5.1, the access token itself);
- ``grant``: complex ``session`` (the token's ``sid`` claim), ``opaque`` id;
- ``client``: complex ``application`` (the token's ``client_id``), ``opaque`` id;
- ``agent``: complex ``agent`` (the token's ``agent`` claim), ``opaque`` id: an additional member name
  (SSF §3.3: "Additional Subject Member names MAY be used in Complex Subjects"), listed in the
  transmitter's ``critical_subject_members`` so a receiver that cannot interpret it discards the event
  instead of reading it as a wildcard.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from authz.oauth.jws import Signer

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
EVENTS_SUPPORTED = (SESSION_REVOKED, CREDENTIAL_CHANGE, VERIFICATION)
CRITICAL_MEMBERS = ("agent",)
SET_TYP = "secevent+jwt"

_COMPLEX_MEMBER = {"grant": "session", "client": "application", "agent": "agent"}
_ADMIN_KINDS = ("client", "agent")  # changed by an administrator (or a license), never by the token holder


@dataclass(frozen=True)
class Fact:
    """One revocation fact as the transmitter sees it."""

    seq: int
    kind: str  # jti | grant | client | agent
    value: str
    created_at: int
    ends_agent: bool = False  # an agent revoked for good: credential-change too


def subject(issuer: str, kind: str, value: str) -> dict[str, Any]:
    if kind == "jti":
        return {"format": "jwt_id", "iss": issuer, "jti": value}
    member = _COMPLEX_MEMBER.get(kind)
    if member is None:
        raise ValueError(f"no subject for a {kind!r} fact")
    return {"format": "complex", member: {"format": "opaque", "id": value}}


def fact_events(fact: Fact) -> list[tuple[str, dict[str, Any]]]:
    """The (event type, event object) pairs one fact turns into."""
    body: dict[str, Any] = {"event_timestamp": fact.created_at}
    if fact.kind in _ADMIN_KINDS:
        body["initiating_entity"] = "admin"
    events = [(SESSION_REVOKED, dict(body))]
    if fact.ends_agent:
        events.append((CREDENTIAL_CHANGE, {**body, "credential_type": "agent_credentials", "change_type": "revoke"}))
    return events


def build_set(
    signer: Signer,
    *,
    issuer: str,
    audience: str,
    event_type: str,
    event: dict[str, Any],
    sub_id: dict[str, Any],
    now: int,
    txn: str | None = None,
) -> tuple[str, str]:
    """Sign one SET; returns (jti, compact JWS). The CAEP ``subject`` repeats ``sub_id`` for older receivers."""
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {"iss": issuer, "jti": jti, "iat": now, "aud": audience, "sub_id": sub_id}
    if txn is not None:
        claims["txn"] = txn
    body = dict(event)
    if event_type != VERIFICATION:
        body["subject"] = sub_id
    claims["events"] = {event_type: body}
    return jti, signer.sign(claims)


def fact_sets(signer: Signer, *, issuer: str, audience: str, fact: Fact, now: int) -> list[tuple[str, str, str]]:
    """(event type, jti, SET) for every event of ``fact``, sharing one ``txn`` (SSF §4.1.9)."""
    sub_id = subject(issuer, fact.kind, fact.value)
    txn = f"revocation-{fact.seq}"
    out = []
    for event_type, event in fact_events(fact):
        jti, token = build_set(
            signer,
            issuer=issuer,
            audience=audience,
            event_type=event_type,
            event=event,
            sub_id=sub_id,
            now=now,
            txn=txn,
        )
        out.append((event_type, jti, token))
    return out
