"""The wired services one server instance runs on; built once by ``authz.app``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authz.audit.log import AuditLog
from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.identity.directory import Directory
from authz.identity.revocations import RevocationView
from authz.oauth.keys import KeyManager
from authz.oauth.tokens import TokenIssuer
from authz.policy.engine import PolicyEngine
from authz.storage.protocols import Storage

if TYPE_CHECKING:
    from authz.audit.checkpoints import Checkpointer
    from authz.audit.store import AuditTreeStore
    from authz.billing.service import BillingService
    from authz.budgets.service import BudgetService
    from authz.licensing.service import Licensing
    from authz.metering import MeteringService


@dataclass
class Context:
    settings: Settings
    store: Storage
    keyring: Keyring
    keys: KeyManager
    directory: Directory
    revocations: RevocationView
    issuer: TokenIssuer
    audit: AuditLog
    policy: PolicyEngine
    budgets: BudgetService | None = None  # wired by authz.app (None in bare contexts, e.g. some CLI paths)
    metering: MeteringService | None = None
    licensing: Licensing | None = None
    audit_store: AuditTreeStore | None = None  # the audit log's records, tree and checkpoints
    checkpointer: Checkpointer | None = None
    billing: BillingService | None = None
