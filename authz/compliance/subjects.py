"""GDPR rights of a person (a local user): access and portability (Art. 15/20), erasure (Art. 17).

Erasure revokes everything the person holds (every grant: its refresh tokens are spent and its
access tokens die at every resource server), deletes their consents, pending codes, refresh tokens
and account, detaches them from agents and licenses they created, destroys their profile key
(``SubjectVault``: crypto-shredding), and deletes the link between them and their pseudonym (and the
pseudonyms of their username, email and IP addresses). Audit, usage and billing records stay, under
a pseudonym nothing links to the person any more: Art. 17(3)(b) (a legal obligation: AI Act Art.
19/26(6) log retention, tax law for invoices) and 17(3)(e) (legal claims). The Merkle tree hashes
the pseudonym, so every proof and checkpoint stays valid.

The export holds what the person provided and what was observed about them (EDPB WP242 rev.01:
observed activity counts as provided; inferred data does not): profile, account, consents,
delegations (grants), agents they created, and the audit records under their pseudonym.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select, update

from authz.audit.store import AuditTreeStore
from authz.compliance.vault import SubjectVault
from authz.context import Context
from authz.identity.agents.errors import NotFound
from authz.identity.revocations import revoke_grant
from authz.storage.models import Agent, AuditEvent, AuthorizationCode, Consent, Grant, RefreshToken, User
from authz.storage.models.audit import SubjectPseudonym
from authz.storage.models.licensing import LicenseRow as License

SCHEMA = "https://authz.dev/schemas/subject-export/v1"
KEPT = [
    {"what": "audit records", "how": "under a pseudonym no longer linked to you",
     "why": "GDPR Art. 17(3)(b) and (e): logs kept for the legal retention period (EU AI Act Art. 19/26(6), "
            "security obligations) and for legal claims"},
    {"what": "usage and billing records", "how": "attributed to agents and customers, never to you by name",
     "why": "GDPR Art. 17(3)(b): tax and commercial record-keeping"},
    {"what": "agents and licenses you created", "how": "kept for their organisation, without you as owner",
     "why": "they belong to the organisation that runs them"},
]  # fmt: skip


def vault(ctx: Context) -> SubjectVault:
    return SubjectVault(ctx.store.engine, ctx.keyring)  # type: ignore[attr-defined]


def _audit(ctx: Context) -> AuditTreeStore:
    assert ctx.audit_store is not None
    return ctx.audit_store


def _user(ctx: Context, subject: str) -> User:
    with ctx.store.sessions() as s:  # type: ignore[attr-defined]
        user = s.get(User, subject)
        if user is None:
            raise NotFound(f"no user {subject!r}")
        s.expunge(user)
        return user  # type: ignore[no-any-return]


def export_subject(ctx: Context, subject: str, actor: str) -> dict[str, Any]:
    """Everything held about the person, as one JSON document (schema: ``SCHEMA``)."""
    user = _user(ctx, subject)
    ctx.audit.flush()
    pseudonym = _audit(ctx).pseudonym_of(subject)
    with ctx.store.sessions() as s:  # type: ignore[attr-defined]
        consents = s.scalars(select(Consent).where(Consent.user_id == subject)).all()
        grants = s.scalars(select(Grant).where(Grant.subject == subject)).all()
        agents = s.scalars(select(Agent).where(Agent.owner == subject)).all()
        records = s.scalars(select(AuditEvent).where(AuditEvent.subject == pseudonym).order_by(AuditEvent.seq)).all() \
            if pseudonym else []  # fmt: skip
        doc = {
            "$schema": SCHEMA,
            "subject": subject,
            "generated_at": int(time.time()),
            "account": {"username": user.username, "created_at": user.created_at, "disabled": user.disabled},
            "profile": vault(ctx).get(subject) or {},
            "consents": [{"client_id": c.client_id, "resource": c.resource, "scope": c.scope,
                          "created_at": c.created_at} for c in consents],
            "delegations": [{"grant_id": g.id, "client_id": g.client_id, "resource": g.resource, "scope": g.scope,
                             "created_at": g.created_at, "expires_at": g.expires_at, "revoked_at": g.revoked_at}
                            for g in grants],
            "agents_created": [{"id": a.id, "name": a.name, "status": a.status, "created_at": a.created_at}
                               for a in agents],
            "activity": {"pseudonym": pseudonym, "records": [
                {"seq": r.seq, "at": r.at, "event": r.event, "outcome": r.outcome, "client_id": r.client_id,
                 "resource": r.resource, "reason": r.reason, "detail": r.detail} for r in records]},
        }  # fmt: skip
    ctx.audit.record("subject.exported", actor=actor, pseudonym=pseudonym, records=len(records))
    ctx.audit.flush()
    return doc


def erase_subject(ctx: Context, subject: str, actor: str, reason: str | None = None) -> dict[str, Any]:
    """Erase the person; returns what was erased and what was kept, and why."""
    user = _user(ctx, subject)
    profile = vault(ctx).get(subject) or {}
    ctx.audit.flush()  # every record about them carries the pseudonym before the link goes
    audit = _audit(ctx)
    pseudonym = audit.pseudonym_of(subject)
    now = int(time.time())
    with ctx.store.sessions() as s:  # type: ignore[attr-defined]
        live = s.scalars(select(Grant.id).where(Grant.subject == subject, Grant.revoked_at.is_(None))).all()
    for grant_id in live:
        revoke_grant(ctx, grant_id, now)
    with ctx.store.sessions.begin() as s:  # type: ignore[attr-defined]
        ips = set()
        if pseudonym:
            for detail in s.scalars(select(AuditEvent.detail).where(AuditEvent.subject == pseudonym)):
                if isinstance(detail, dict) and isinstance(detail.get("ip"), str):
                    ips.add(detail["ip"])
        counts = {
            "refresh_tokens": _n(s.execute(delete(RefreshToken).where(RefreshToken.subject == subject))),
            "authorization_codes": _n(s.execute(delete(AuthorizationCode).where(AuthorizationCode.user_id == subject))),
            "consents": _n(s.execute(delete(Consent).where(Consent.user_id == subject))),
            "grants": _n(s.execute(delete(Grant).where(Grant.subject == subject))),
            "agents_detached": _n(s.execute(update(Agent).where(Agent.owner == subject).values(owner=None))),
            "licenses_detached": _n(s.execute(
                update(License).where(License.owner_user_id == subject).values(owner_user_id=None))),
            "account": _n(s.execute(delete(User).where(User.id == subject))),
            "pseudonym_links": _n(s.execute(delete(SubjectPseudonym).where(SubjectPseudonym.pseudonym.in_(ips)))),
        }  # fmt: skip
    counts["profile_key"] = int(vault(ctx).destroy(subject))
    erased = {k: v for k, v in counts.items() if k != "account"}
    ctx.audit.record(
        "subject.erased", reason=reason, actor=actor, pseudonym=pseudonym, grants_revoked=len(live), erased=erased
    )
    ctx.audit.flush()
    values = [subject, user.username, *(str(v) for k, v in profile.items() if k in ("email", "username"))]
    counts["pseudonym_links"] += audit.forget(values)
    return {"subject": subject, "erased": {"grants_revoked": len(live), **counts}, "kept": KEPT}


def _n(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
