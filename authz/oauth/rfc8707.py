"""RFC 8707 Resource Indicators: parse and validate ``resource``, bind it to the token audience.

RFC 8707 §2: "The value of the resource parameter MUST be an absolute URI, as specified by Section
4.3 of [RFC3986], which MAY include a query component, but MUST NOT include a fragment component."
... "If the client omits the resource parameter when requesting authorization, the authorization
server MAY process the request with no specific resource or by using a pre-defined default
resource value." ... "the authorization server ... uses the error code invalid_target".

Our profile: exactly one ``resource`` per request, and it must name a registered protected resource
(an MCP server) the client may use; it becomes the access token's ``aud``. MCP requires clients to
send it (authorization 2026-07-28 "Resource Parameter Implementation": MUST), so a missing value is
``invalid_target`` too unless the server has exactly one resource the client may use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from authz.oauth.errors import InvalidTargetError
from authz.oauth.syntax import is_uri_reference


def validate_resource_uri(value: str) -> str:
    """Syntax check of one resource indicator; returns the canonical form (lowercase scheme and host)."""
    if not is_uri_reference(value):
        raise InvalidTargetError("The 'resource' parameter is malformed.")
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
        raise InvalidTargetError("The 'resource' parameter must be an absolute URI without a fragment.")
    if parts.scheme.lower() not in ("https", "http"):
        raise InvalidTargetError("The 'resource' parameter must be an http(s) URI.")
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


def select_resource(
    values: Sequence[str],
    is_known: Callable[[str], bool],
    client_may_use: Callable[[str], bool],
    default: str | None = None,
) -> str:
    """The one resource this request is for, or ``invalid_target``.

    ``values`` are every ``resource`` parameter of the request (it may repeat, RFC 8707 §2).
    """
    if len(values) > 1:
        raise InvalidTargetError("Exactly one 'resource' is supported per request.")
    if not values:
        if default is None:
            raise InvalidTargetError("The 'resource' parameter is required.")
        return default
    uri = validate_resource_uri(values[0])
    if not is_known(uri):
        raise InvalidTargetError("The requested resource is unknown.")
    if not client_may_use(uri):
        raise InvalidTargetError("This client may not request tokens for the requested resource.")
    return uri
