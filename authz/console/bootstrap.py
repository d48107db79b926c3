"""The console as an OAuth client of this server: its resource (audience) and its public client.

:func:`ensure_console` registers, idempotently, the console resource ``{issuer}/console`` offering
the admin scopes the roles map to, and the public client ``authz-console`` (authorization code +
PKCE, ``token_endpoint_auth_method=none``, redirect URI ``{issuer}/console/callback``), allowed
that resource only.
"""

from __future__ import annotations

import time

from sqlalchemy.exc import IntegrityError

from authz.core.crypto import Keyring
from authz.core.settings import CONSOLE_PATH, Settings
from authz.identity.console_roles import CONSOLE_CLIENT_ID, CONSOLE_SCOPES
from authz.identity.registry import register_client
from authz.storage.models import Resource
from authz.storage.protocols import ClientStore, ResourceStore

CALLBACK_PATH = CONSOLE_PATH + "/callback"


def redirect_uri(settings: Settings) -> str:
    return settings.endpoint(CALLBACK_PATH)


def ensure_console(resources: ResourceStore, clients: ClientStore, keyring: Keyring, settings: Settings) -> bool:
    """Register the console resource and client when missing or stale. True when something was written."""
    wrote = False
    uri = settings.console_resource
    existing = resources.get_resource(uri)
    if existing is None or set(existing.scopes) != set(CONSOLE_SCOPES):
        now = int(time.time())
        row = Resource(
            uri=uri,
            name="authz admin console",
            scopes=list(CONSOLE_SCOPES),
            status="active",
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        try:
            resources.put_resource(row)
            wrote = True
        except IntegrityError:  # another replica did it at the same moment
            pass
    client = clients.get_client(CONSOLE_CLIENT_ID)
    if client is None or client.redirect_uris != [redirect_uri(settings)] or client.allowed_resources != [uri]:
        if client is not None:
            clients.delete_client(CONSOLE_CLIENT_ID)
        try:
            register_client(
                clients,
                keyring,
                client_id=CONSOLE_CLIENT_ID,
                kind="static",
                name="authz admin console",
                auth_method="none",
                redirect_uris=[redirect_uri(settings)],
                grant_types=["authorization_code"],
                scope=" ".join(CONSOLE_SCOPES),
                resources=[uri],
            )
            wrote = True
        except IntegrityError:
            pass
    return wrote
