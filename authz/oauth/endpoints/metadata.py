"""RFC 8414 authorization server metadata at ``/.well-known/oauth-authorization-server``.

RFC 8414 §3.3: "The 'issuer' value returned MUST be identical to the authorization server's issuer
identifier value into which the well-known URI string was inserted". For an issuer with a path
(``https://as/t1``) the document lives at ``/.well-known/oauth-authorization-server/t1`` (§3.1).
MCP 2026-07-28 adds: PKCE methods MUST be listed (clients refuse without
``code_challenge_methods_supported``), and with RFC 9207 ``iss`` the server advertises
``authorization_response_iss_parameter_supported``. Built once per app from settings.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from authz.core.settings import Settings
from authz.oauth.client_auth import ALGORITHMS

WELL_KNOWN = "/.well-known/oauth-authorization-server"


def metadata_path(settings: Settings) -> str:
    return WELL_KNOWN + urlsplit(settings.issuer).path


def build_metadata(settings: Settings) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": settings.endpoint("/authorize"),
        "token_endpoint": settings.endpoint("/token"),
        "jwks_uri": settings.endpoint("/jwks"),
        "introspection_endpoint": settings.endpoint("/introspect"),
        "revocation_endpoint": settings.endpoint("/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ],
        # MCP Enterprise-Managed Authorization: the jwt-bearer grant takes ID-JAG assertions.
        "authorization_grant_profiles_supported": ["urn:ietf:params:oauth:grant-profile:id-jag"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": settings.client_id_metadata_documents,
        "access_token_signing_alg_values_supported": [settings.signing_alg],
        # RFC 9449 §5.1: "dpop_signing_alg_values_supported: A JSON array containing a list of the JWS
        # alg values [...] supported by the authorization server for DPoP proof JWTs" (asymmetric only).
        "dpop_signing_alg_values_supported": list(settings.dpop_signing_alg_values),
    }
    if settings.dynamic_registration:
        doc["registration_endpoint"] = settings.endpoint("/register")
    return doc


async def metadata(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.metadata, headers={"Cache-Control": "public, max-age=300"})
