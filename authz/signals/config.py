"""SSF 1.0 documents: the transmitter configuration metadata, stream configurations, request checks.

SSF §7.2: "Transmitters supporting Discovery MUST make a JSON document available at the path formed by
inserting the string "/.well-known/ssf-configuration" into the Issuer between the host component and the
path component, if any"; §7.1 ``issuer`` "MUST be identical to the iss claim value in Security Event
Tokens issued from this Transmitter". §8.1.1: "If the request does not contain the `delivery` property,
then the Transmitter MUST assume that the `method` is "urn:ietf:rfc:8936" (poll). If the Transmitter
supports Poll-Based Delivery, the Transmitter MUST include a `delivery` property in the response with this
`method` property and an `endpoint_url` property. If the Transmitter does not support the delivery method,
it MAY respond with HTTP Status Code "400 Bad Request."" ``events_delivered`` is "a subset (not
necessarily a proper subset) of the intersection of "events_supported" and "events_requested"", and "A
Transmitter MUST ignore any array values that it does not understand."

Receivers authenticate with their resource server credentials (HTTP Basic, RFC 6749 §2.3.1), advertised as
the ``urn:ietf:rfc:6749`` authorization scheme (SSF §7.1.1).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authz.core.settings import Settings
from authz.signals.sets import CRITICAL_MEMBERS, EVENTS_SUPPORTED
from authz.storage.models.signals import SsfStream

POLL = "urn:ietf:rfc:8936"
PUSH = "urn:ietf:rfc:8935"
WELL_KNOWN = "/.well-known/ssf-configuration"
MAX_DESCRIPTION = 1000
MAX_EVENTS_REQUESTED = 50


class BadRequest(ValueError):
    """A request the SSF endpoints refuse with 400 (the message names the field)."""


def well_known_path(settings: Settings) -> str:
    return WELL_KNOWN + urlsplit(settings.issuer).path


def transmitter_metadata(settings: Settings) -> dict[str, Any]:
    return {
        "spec_version": "1_0",
        "issuer": settings.issuer,
        "jwks_uri": settings.endpoint("/jwks"),
        "delivery_methods_supported": [POLL],
        "configuration_endpoint": settings.endpoint("/ssf/stream"),
        "status_endpoint": settings.endpoint("/ssf/status"),
        "verification_endpoint": settings.endpoint("/ssf/verify"),
        "critical_subject_members": list(CRITICAL_MEMBERS),
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
    }


def delivered(requested: list[str]) -> list[str]:
    if not requested:
        return list(EVENTS_SUPPORTED)
    return [e for e in EVENTS_SUPPORTED if e in requested]


def stream_config(settings: Settings, stream: SsfStream) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "stream_id": stream.stream_id,
        "iss": settings.issuer,
        "aud": stream.audience,
        "delivery": {"method": stream.method, "endpoint_url": settings.endpoint(f"/ssf/poll/{stream.stream_id}")},
        "events_supported": list(EVENTS_SUPPORTED),
        "events_delivered": delivered(stream.events_requested),
        "inactivity_timeout": settings.ssf_inactivity_timeout,
    }
    if stream.events_requested:
        doc["events_requested"] = list(stream.events_requested)
    if stream.description:
        doc["description"] = stream.description
    return doc


def receiver_fields(body: Any, *, replace: bool) -> dict[str, Any]:
    """The receiver-supplied properties of a create/update/replace body, checked. ``replace``: missing
    properties are reset (PUT, SSF §8.1.1.4); otherwise only present ones are returned (POST, PATCH)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    out: dict[str, Any] = {}
    if "delivery" in body:
        delivery = body["delivery"]
        if not isinstance(delivery, dict):
            raise BadRequest("delivery must be an object")
        method = delivery.get("method", POLL)
        if method != POLL:
            raise BadRequest(f"delivery.method {method!r} is not supported: use {POLL!r} (poll)")
        out["method"] = POLL
    elif replace:
        out["method"] = POLL
    if "events_requested" in body:
        events = body["events_requested"]
        if not isinstance(events, list) or not all(
            isinstance(e, str) and len(e) <= 255 and e.isprintable() for e in events
        ):
            raise BadRequest("events_requested must be an array of event type URIs")
        if len(events) > MAX_EVENTS_REQUESTED:
            raise BadRequest(f"events_requested names more than {MAX_EVENTS_REQUESTED} event types")
        out["events_requested"] = list(dict.fromkeys(events))
    elif replace:
        out["events_requested"] = []
    if "description" in body:
        description = body["description"]
        if not isinstance(description, str) or "\x00" in description:
            raise BadRequest("description must be a string without NUL characters")
        out["description"] = description[:MAX_DESCRIPTION]  # "The transmitter MAY truncate the string"
    elif replace:
        out["description"] = ""
    return out


def check_transmitter_fields(settings: Settings, body: dict[str, Any], stream: SsfStream) -> None:
    """SSF §8.1.1.3: "Transmitter-Supplied properties besides the stream_id MAY be present, but they MUST
    match the expected value" (``events_delivered`` before the update is applied)."""
    expected = stream_config(settings, stream)
    for name in ("iss", "aud", "events_supported", "events_delivered"):
        if name in body and body[name] != expected[name]:
            raise BadRequest(f"{name} does not match the stream's value")
