"""Manifest entries for push revocation (OpenID SSF 1.0, CAEP 1.0, RFC 8936): the transmitter in
``authz/signals``, the receiver in ``resource_server/signals.py``."""

from __future__ import annotations

from conformance.spec import RFC, Requirement

SSF = "https://openid.net/specs/openid-sharedsignals-framework-1_0.html"
CAEP = "https://openid.net/specs/openid-caep-1_0.html"

SIGNALS: dict[str, Requirement] = {
    "ssf:discovery": Requirement(
        f"{SSF}#section-7.2",
        "Transmitters supporting Discovery MUST make a JSON document available at the path formed by inserting "
        'the string "/.well-known/ssf-configuration" into the Issuer ... issuer ... MUST be identical to the '
        "iss claim value in Security Event Tokens issued from this Transmitter",
        "GET /.well-known/ssf-configuration (path-inserted) answers application/json with issuer = the AS issuer.",
    ),
    "ssf:management-auth": Requirement(
        f"{SSF}#section-8",
        "all Stream Management API endpoints MUST use standard HTTP authentication and authorization schemes ... "
        "only authorized Receivers are able to access or modify the details of the associated Event Streams",
        "HTTP Basic with a registered resource server's credentials; anything else is 401; another receiver's "
        "stream is 404.",
    ),
    "ssf:stream-config": Requirement(
        f"{SSF}#section-8.1.1",
        "If the request does not contain the delivery property, then the Transmitter MUST assume that the method "
        "is urn:ietf:rfc:8936 ... events_delivered ... a subset ... of the intersection of events_supported and "
        "events_requested ... A Transmitter MUST ignore any array values that it does not understand",
        "Poll streams only (push is a 400); aud = the resource URI; unknown event types are ignored; PATCH changes "
        "only what is present, PUT resets what is missing.",
    ),
    "ssf:update-transmitter-fields": Requirement(
        f"{SSF}#section-8.1.1.3",
        "Transmitter-Supplied properties besides the stream_id MAY be present, but they MUST match the expected value",
        "A PATCH or PUT with a different iss, aud, events_supported or events_delivered is a 400 and changes nothing.",
    ),
    "ssf:set-profile": Requirement(
        f"{SSF}#section-4.1",
        'SSF events MUST use explicit typing ... The JWT "sub" claim MUST NOT be present ... The "exp" claim '
        "MUST NOT be used in SETs ... A top-level claim named sub_id MUST be used",
        "SETs are typ secevent+jwt, signed with the AS's key, carry sub_id (and CAEP's subject), never sub or exp.",
    ),
    "ssf:txn": Requirement(
        f"{SSF}#section-4.1.9",
        'Transmitters SHOULD set the "txn" claim value ... may use the same value in the "txn" claim across '
        "different Security Event Tokens (SETs), such as session revoked and credential change",
        "Each revocation fact's SETs share txn revocation-<seq> (session-revoked and, for a revoked agent, "
        "credential-change).",
    ),
    "ssf:paused-no-transmit": Requirement(
        f"{SSF}#section-8.1.2.1",
        "paused: The Transmitter MUST NOT transmit events over the stream",
        "A paused (or disabled) stream's polls return no SETs; paused streams keep them for later.",
    ),
    "ssf:verification-event": Requirement(
        f"{SSF}#section-8.1.4",
        "A Receiver ... request the Transmitter to transmit a Verification Event over an Event Stream",
        "POST /ssf/verify answers 204 and queues a verification SET carrying the receiver's state.",
    ),
    "ssf:receiver-validates-set": Requirement(
        f"{SSF}#section-4.1.6",
        'Receivers MUST validate that this claim [iss] matches the "iss" in the Stream Configuration data',
        "resource_server refuses (setErrs) a SET with another typ, iss, aud or key, or with sub or exp; it changes "
        "no revocation state.",
    ),
    "ssf:receiver-critical-member": Requirement(
        f"{SSF}#section-3.6",
        "An SSF Receiver MUST discard any event that contains a Subject with a Critical member that it is unable "
        "to process",
        "Subjects with an unknown critical member (or several members) are not applied, never read as wildcards.",
    ),
    "caep:session-revoked-timestamp": Requirement(
        f"{CAEP}#section-3.1",
        "When event_timestamp is included, its value MUST represent the time at which the session revocation occurred",
        "event_timestamp is the revocation fact's time, the cutoff receivers compare tokens' iat with.",
    ),
    "rfc8936:long-poll": Requirement(
        RFC.format(8936, "2.2"),
        "returnImmediately ... The default value is false, which indicates the request is to be treated as an "
        "HTTP long poll",
        "A poll without returnImmediately is held (AUTHZ_SSF_POLL_WAIT) and answered as soon as a fact is written.",
    ),
    "rfc8936:ack-releases": Requirement(
        RFC.format(8936, "2.2"),
        "Once a SET has been acknowledged, the SET Transmitter is released from any obligation to retain the SET",
        "Unacknowledged SETs are delivered again; acknowledged ones are deleted from the outbox.",
    ),
}
