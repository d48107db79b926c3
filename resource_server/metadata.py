"""RFC 9728 OAuth 2.0 Protected Resource Metadata.

RFC 9728 §3 (Obtaining Protected Resource Metadata): "Protected resources supporting metadata
MUST make a JSON document containing metadata as specified in Section 2 available at a URL formed
by inserting a well-known URI string into the protected resource's resource identifier between
the host component and the path and/or query components, if any. By default, the well-known URI
string used is /.well-known/oauth-protected-resource."

RFC 9728 §3.3: "The resource value returned MUST be identical to the protected resource's resource
identifier value into which the well-known URI path suffix was inserted to create the URL used to
retrieve the metadata."

MCP 2025-11-25+: clients try the path-inserted URL, then the root
``/.well-known/oauth-protected-resource``; we serve both, with the same document.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from resource_server.errors import HttpResponse
from resource_server.settings import ResourceServerConfig

__all__ = ["WELL_KNOWN", "metadata_document", "metadata_paths", "metadata_response", "metadata_url"]

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def _resource_path(resource: str) -> str:
    return urlsplit(resource).path.rstrip("/")


def metadata_url(resource: str) -> str:
    """The path-inserted PRM URL, named in every challenge's ``resource_metadata``."""
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{_resource_path(resource)}"


def metadata_paths(resource: str) -> tuple[str, ...]:
    """The paths the middleware answers with the document: path-inserted first, then the root."""
    inserted = WELL_KNOWN + _resource_path(resource)
    return (inserted,) if inserted == WELL_KNOWN else (inserted, WELL_KNOWN)


def metadata_document(config: ResourceServerConfig) -> dict[str, Any]:
    """RFC 9728 §2 members. ``authorization_servers`` holds the issuer exactly as configured."""
    doc: dict[str, Any] = {
        "resource": config.resource,
        "authorization_servers": [config.issuer],
        "bearer_methods_supported": ["header"],
    }
    scopes = config.advertised_scopes
    if scopes:
        doc["scopes_supported"] = list(scopes)
    if config.resource_name:
        doc["resource_name"] = config.resource_name
    if config.resource_documentation:
        doc["resource_documentation"] = config.resource_documentation
    if config.dpop_algorithms:
        # RFC 9728 §2: "dpop_signing_alg_values_supported: JSON array containing a list of the JWS alg
        # values [...] supported by the resource server for validating DPoP proof JWTs" and
        # "dpop_bound_access_tokens_required: Boolean value specifying whether the protected resource
        # always requires the use of DPoP-bound access tokens [RFC9449]. If omitted, the default value is false."
        doc["dpop_signing_alg_values_supported"] = list(config.dpop_algorithms)
        doc["dpop_bound_access_tokens_required"] = config.dpop_required
    return doc


_CORS = (
    ("access-control-allow-origin", "*"),
    ("access-control-allow-methods", "GET, HEAD, OPTIONS"),
)


def metadata_response(config: ResourceServerConfig, method: str) -> HttpResponse:
    """The document for GET/HEAD, a CORS preflight answer for OPTIONS, 405 otherwise."""
    if method == "OPTIONS":
        return HttpResponse(204, _CORS, b"")
    if method not in ("GET", "HEAD"):
        return HttpResponse(405, (("allow", "GET, HEAD, OPTIONS"),), b"")
    body = json.dumps(metadata_document(config)).encode()
    headers = (("content-type", "application/json"), ("cache-control", "public, max-age=300"), *_CORS)
    return HttpResponse(200, headers, body)
