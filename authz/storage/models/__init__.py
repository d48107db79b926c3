"""SQLAlchemy 2 models: the whole persistent state of the authorization server, one module per capability.

Importing this package registers every table on :data:`Base.metadata` (Alembic and the store rely on it)
and re-exports the core models. The schema changes only through Alembic revisions in ``migrations/``.
"""

from authz.storage.models import (
    audit,
    billing,
    budgets,
    compliance,
    compliance_governance,
    licensing,
    metering,
    policies,
    signals,
)
from authz.storage.models.base import Base
from authz.storage.models.core import (
    Agent,
    AgentCredential,
    AuditEvent,
    AuthorizationCode,
    ChangeLog,
    Client,
    Consent,
    Grant,
    RefreshToken,
    Resource,
    Revocation,
    SigningKey,
    Team,
    TrustedIssuer,
    UsedJti,
    User,
)

__all__ = [
    "Agent",
    "AgentCredential",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "ChangeLog",
    "Client",
    "Consent",
    "Grant",
    "RefreshToken",
    "Resource",
    "Revocation",
    "SigningKey",
    "Team",
    "TrustedIssuer",
    "UsedJti",
    "User",
    "audit",
    "billing",
    "budgets",
    "compliance",
    "compliance_governance",
    "licensing",
    "metering",
    "policies",
    "signals",
]
