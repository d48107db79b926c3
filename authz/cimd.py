"""Client ID Metadata Documents (MCP 2026-07-28 client registration; draft-ietf-oauth-client-id-metadata-document).

Placeholder wiring point: ``ensure_cimd_client`` loads an https ``client_id`` URL's document into
the client table before the authorization request is validated. Filled in by the CIMD module.
"""

from __future__ import annotations

from authz.context import Context


async def ensure_cimd_client(ctx: Context, client_id: str | None) -> None:
    return None
