"""Client metadata URIs that are shown to people: ``client_uri``, ``logo_uri``, ``tos_uri``, ``policy_uri``.

RFC 7591 §2: "client_uri: URL string of a web page providing information about the client. If
present, the server SHOULD display this URL to the end-user in a clickable fashion"; ``logo_uri``
"references a logo for the client. If present, the server SHOULD display this image to the end-user
during approval"; ``tos_uri`` and ``policy_uri`` are pages the server "SHOULD display" too. §5: the
authorization server "must be extremely careful with any URL provided by the client that will be
displayed to the user (e.g., "logo_uri", "tos_uri", "client_uri", and "policy_uri")".

So each is a web page: ``https`` with a host, or ``http`` on a loopback host when that is allowed
(development). ``javascript:``, ``data:`` and anything else are refused — a registration answers
``invalid_client_metadata`` (§3.2.2: "The value of one of the client metadata fields is invalid and
the server has rejected this request"), a metadata document is not loaded. The value is never
echoed in the refusal.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authz.core.settings import is_loopback_url
from authz.oauth.syntax import is_uri_reference

DISPLAY_URIS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
MAX_LENGTH = 2048


def display_uris(
    meta: dict[str, Any], *, allow_loopback: bool, names: tuple[str, ...] = DISPLAY_URIS
) -> dict[str, str]:
    """The display URIs of ``meta`` that are present, checked; raises ``ValueError`` naming the field."""
    out: dict[str, str] = {}
    for name in names:
        if name not in meta:
            continue
        value = meta[name]
        if not isinstance(value, str) or not _web_page(value, allow_loopback):
            loopback = ", or http on a loopback host" if allow_loopback else ""
            raise ValueError(f"{name} must be an https URL{loopback}.")
        out[name] = value
    return out


def _web_page(value: str, allow_loopback: bool) -> bool:
    if len(value) > MAX_LENGTH or not is_uri_reference(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_loopback and is_loopback_url(value)
