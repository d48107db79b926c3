"""The wired services one server instance runs on; built once by ``authz.app``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authz.audit import AuditLog
from authz.crypto import Keyring
from authz.directory import Directory
from authz.keys import KeyManager
from authz.policy import PolicyEngine
from authz.revocations import RevocationView
from authz.settings import Settings
from authz.storage.protocols import Storage
from authz.tokens import TokenIssuer

if TYPE_CHECKING:
    from authz.budgets.service import BudgetService
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
