"""The admin API as a protected resource of this server, and the clients allowed to call it.

At startup :func:`ensure_admin_resource` registers ``{issuer}/api/v1`` with the admin and metering
scopes (idempotent: nothing is written when it is already there). Tokens for it are honoured only
when issued to a client whose ``allowed_resources`` names the admin resource explicitly (see
:mod:`authz.admin.auth`), which :func:`create_admin_client` does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.identity.registry import Registered, register_client
from authz.storage.models import Resource
from authz.storage.protocols import ClientStore, ResourceStore

ADMIN_SCOPES = (
    "admin:read",
    "admin:write",
    "metering:write",
    "metering:read",
    "budgets:use",
    "subjects:admin",
    "approvals:check",
)
DEFAULT_CLIENT_SCOPES = ("admin:read", "admin:write")


def admin_resource_uri(settings: Settings) -> str:
    """The admin API's resource identifier (RFC 8707), canonical form: the ``aud`` of its tokens."""
    return settings.admin_resource


def ensure_admin_resource(store: ResourceStore, settings: Settings) -> bool:
    """Register the admin API resource, or add missing scopes to it. True when something was written.
    An operator's ``disabled`` status is kept."""
    uri = admin_resource_uri(settings)
    existing = store.get_resource(uri)
    if existing is not None and set(ADMIN_SCOPES) <= set(existing.scopes):
        return False
    now = int(time.time())
    scopes = list(dict.fromkeys([*(existing.scopes if existing else ()), *ADMIN_SCOPES]))
    row = Resource(
        uri=uri,
        name=existing.name if existing else "authz admin API",
        scopes=scopes,
        status=existing.status if existing else "active",
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    try:
        store.put_resource(row)
    except IntegrityError:  # another replica registered it at the same moment
        return False
    return True


def create_admin_client(
    clients: ClientStore, keyring: Keyring, settings: Settings, *, name: str, scopes: Sequence[str]
) -> Registered:
    """A confidential client_credentials client for the admin API only, allowed ``scopes``."""
    unknown = [s for s in scopes if s not in ADMIN_SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(ADMIN_SCOPES)} (got {' '.join(scopes) or 'none'})")
    return register_client(
        clients,
        keyring,
        kind="static",
        name=name,
        auth_method="client_secret_basic",
        grant_types=["client_credentials"],
        scope=" ".join(dict.fromkeys(scopes)),
        resources=[admin_resource_uri(settings)],
    )
