"""The requirement manifest: spec MUST (and chosen SHOULD) -> where it is written -> what we do about it.

Each entry is proven by at least one test tagged ``@pytest.mark.requirement("<id>")`` somewhere under
``tests/`` or ``conformance/``; ``conformance/test_manifest.py`` enforces that, and that every tagged
id is listed here. Ids not yet proven are in ``PENDING``: tagging a test for one of them makes the
manifest test fail until the id is removed from ``PENDING`` (so the set can only shrink).

Ids are ``<source>:<slug>``: ``mcp`` (the MCP authorization spec), ``oauth21`` (draft-ietf-oauth-v2-1),
``rfcNNNN``, ``euaiact`` (Regulation (EU) 2024/1689), ``gdpr`` (Regulation (EU) 2016/679),
``c2sp`` (c2sp.org specifications), ``ssf`` (OpenID Shared Signals 1.0), ``caep`` (OpenID CAEP
1.0). ``quote`` is the spec's text (abridged with
"..."); ``behaviour`` is what our AS does.

Add an entry: pick the id, give the section URL and the normative sentence, say what we do, and
either tag a test with the id or add it to ``PENDING``. Run ``python -m conformance.coverage``
for the coverage table. Entries for DPoP and for governance live in ``requirements_dpop.py`` and
``requirements_governance.py``.
"""

from __future__ import annotations

from conformance.requirements_dpop import DPOP
from conformance.requirements_governance import GOVERNANCE
from conformance.requirements_signals import SIGNALS
from conformance.spec import MCP, MCP_0728, MCP_SEC, OAUTH21, RFC, Requirement

REQUIREMENTS: dict[str, Requirement] = {
    # -- MCP authorization: the AS (reference doc §1.1 and the derived checklist §1.5) -------------
    "mcp:as-metadata": Requirement(
        f"{MCP}#authorization-server-metadata-discovery",
        "Authorization servers MUST provide at least one of the following discovery mechanisms: "
        "OAuth 2.0 Authorization Server Metadata (RFC8414) ... OpenID Connect Discovery 1.0",
        "GET /.well-known/oauth-authorization-server answers 200 application/json with authorization_endpoint, "
        "token_endpoint and response_types_supported containing code (official suite: "
        "authorization-server-metadata).",
    ),
    "mcp:as-metadata-pkce": Requirement(
        f"{MCP}#authorization-code-protection",
        "If code_challenge_methods_supported is absent, the authorization server does not support PKCE "
        "and MCP clients MUST refuse to proceed.",
        "The metadata lists code_challenge_methods_supported = [S256], so MCP clients can proceed.",
    ),
    "mcp:as-cimd-advertised": Requirement(
        f"{MCP}#client-id-metadata-documents",
        "Authorization servers SHOULD support Client ID Metadata Documents ... advertised with "
        "client_id_metadata_document_supported",
        "The metadata carries client_id_metadata_document_supported: true (the official suite warns otherwise).",
    ),
    "mcp:as-cimd-client-id-match": Requirement(
        f"{MCP}#client-id-metadata-documents",
        "The authorization server MUST validate that the client_id in the document matches the document URL exactly",
        "A CIMD whose client_id differs from the URL it was fetched from is refused (invalid_client).",
    ),
    "mcp:as-cimd-redirect-validated": Requirement(
        f"{MCP}#client-id-metadata-documents",
        "Authorization servers MUST validate redirect URIs presented in an authorization request against "
        "those in the metadata document",
        "For a CIMD client_id, a redirect_uri absent from the document's redirect_uris gets an error page.",
    ),
    "mcp:as-https": Requirement(
        f"{MCP_SEC}#communication-security",
        "All authorization server endpoints MUST be served over HTTPS.",
        "`authz serve` refuses a plain-http issuer unless it is loopback (settings.check_safe).",
    ),
    "mcp:redirect-uri-localhost-or-https": Requirement(
        f"{MCP_SEC}#communication-security",
        "All redirect URIs MUST be either localhost or use HTTPS.",
        "Client registration (CLI, admin API, DCR, CIMD) refuses http redirect URIs on non-loopback hosts.",
    ),
    "mcp:refresh-rotation-public": Requirement(
        f"{MCP_SEC}#token-theft",
        "For public clients, authorization servers MUST rotate refresh tokens as described in OAuth 2.1 Section 4.3.1",
        "Every refresh of a public client returns a new refresh token and spends the old one.",
    ),
    "mcp:iss-advertised": Requirement(
        f"{MCP_0728}/security-considerations",
        "Authorization servers SHOULD include the iss parameter in authorization responses ... (RFC 9207)",
        "The metadata sets authorization_response_iss_parameter_supported: true and every authorization "
        "redirect carries iss equal to the metadata issuer (official suite: authorization-code-grant).",
    ),
    "mcp:as-code-grant": Requirement(
        f"{MCP}#authorization-flow-steps",
        "MCP clients MUST implement PKCE ... MUST include the resource parameter in both authorization "
        "requests and token requests",
        "An authorization-code + S256 PKCE + resource flow by a pre-registered public client ends with a "
        "200 JSON token response carrying access_token and token_type (official suite: authorization-code-grant).",
    ),
    # -- RFC 8414 ------------------------------------------------------------------------------------
    "rfc8414:issuer-exact": Requirement(
        RFC.format(8414, "3.3"),
        'The "issuer" value returned MUST be identical to the authorization server\'s issuer identifier value '
        "into which the well-known URI string was inserted to create the URL used to retrieve the metadata.",
        "The metadata issuer is byte-for-byte AUTHZ_ISSUER (no trailing slash added or removed).",
    ),
    "rfc8414:path-insertion": Requirement(
        RFC.format(8414, "3.1"),
        'If the issuer identifier value contains a path component, any terminating "/" MUST be removed before '
        'inserting "/.well-known/" and the well-known URI suffix between the host component and the path component.',
        "An issuer https://as/t1 serves its metadata at /.well-known/oauth-authorization-server/t1.",
    ),
    # -- RFC 6749 / OAuth 2.1 ----------------------------------------------------------------------
    "rfc6749:token-no-store": Requirement(
        RFC.format(6749, "5.1"),
        'The authorization server MUST include the HTTP "Cache-Control" response header field with a value of '
        '"no-store" in any response containing tokens, credentials, or other sensitive information',
        "Token responses carry Cache-Control: no-store, application/json, token_type Bearer "
        "(official suite: authorization-code-grant).",
    ),
    "rfc6749:code-single-use": Requirement(
        RFC.format(6749, "4.1.2"),
        "If an authorization code is used more than once, the authorization server MUST deny the request and "
        "SHOULD revoke (when possible) all tokens previously issued based on that authorization code.",
        "A replayed code gets invalid_grant and the tokens it issued are revoked.",
    ),
    "rfc6749:code-bound-to-client-and-redirect": Requirement(
        RFC.format(6749, "4.1.3"),
        "ensure that the authorization code was issued to the authenticated confidential client, or if the client "
        'is public, ensure that the code was issued to "client_id" in the request ... ensure that the '
        '"redirect_uri" parameter is present if [it] was included in the initial authorization request',
        "A code redeemed by another client or with a different redirect_uri gets invalid_grant.",
    ),
    "rfc6749:state-round-trip": Requirement(
        RFC.format(6749, "4.1.2"),
        'state REQUIRED if the "state" parameter was present in the client authorization request. '
        "The exact value received from the client.",
        "The authorization redirect (success and error) returns state unchanged.",
    ),
    "rfc6749:invalid-client-401": Requirement(
        RFC.format(6749, "5.2"),
        'If the client attempted to authenticate via the "Authorization" request header field, the authorization '
        'server MUST respond with an HTTP 401 (Unauthorized) status code and include the "WWW-Authenticate" '
        "response header field matching the authentication scheme used by the client.",
        "A bad client secret over Basic gets 401 invalid_client with WWW-Authenticate: Basic.",
    ),
    "rfc6749:refresh-bound-to-client": Requirement(
        RFC.format(6749, "6"),
        "authenticate the client if client authentication is included and ensure that the refresh token was "
        "issued to the authenticated client ... The requested scope MUST NOT include any scope not originally "
        "granted by the resource owner",
        "A refresh token presented by another client, or asking for wider scope, gets invalid_grant / invalid_scope.",
    ),
    "oauth21:redirect-exact-match": Requirement(
        f"{OAUTH21}#section-2.3.1",
        "Authorization servers MUST require clients to register their complete redirect URI (including the path "
        "component) and reject authorization requests that specify a redirect URI that doesn't exactly match one "
        "that was registered; the exception is loopback redirects",
        "An unregistered redirect_uri gets an error page, never a redirect (RFC 6749 §4.1.2.1).",
    ),
    "oauth21:refresh-rotation": Requirement(
        f"{OAUTH21}#section-4.3.1",
        "Authorization servers MUST utilize one of these methods to detect refresh token replay by malicious "
        "actors for public clients: sender-constrained refresh tokens ... refresh token rotation",
        "Refreshing returns a new refresh token with the same subject and resource; the old one is spent.",
    ),
    "oauth21:refresh-reuse-revokes-family": Requirement(
        f"{OAUTH21}#section-4.3.1",
        "If a refresh token is compromised and subsequently used by both the attacker and the legitimate client, "
        "one of them will present an invalidated refresh token, which will inform the authorization server of "
        "the breach.",
        "Presenting a spent refresh token revokes its whole family (refresh and access tokens).",
    ),
    "rfc8252:loopback-any-port": Requirement(
        RFC.format(8252, "7.3"),
        "The authorization server MUST allow any port to be specified at the time of the request for loopback IP "
        "redirect URIs",
        "A registered http://127.0.0.1/callback matches http://127.0.0.1:<any port>/callback.",
    ),
    # -- RFC 7636 PKCE -----------------------------------------------------------------------------
    "rfc7636:s256-required": Requirement(
        f"{OAUTH21}#section-4.1.1",
        "Clients MUST use code_challenge and code_verifier ... authorization servers MUST support the "
        "code_challenge and code_verifier parameters",
        "An authorization request without code_challenge, or with method plain, gets invalid_request "
        "(redirected, with iss).",
    ),
    "rfc7636:verifier-checked": Requirement(
        RFC.format(7636, "4.6"),
        'If the values are not equal, an error response indicating "invalid_grant" as described in Section 5.2 '
        "of [RFC6749] MUST be returned.",
        "A wrong or missing code_verifier gets invalid_grant and the failure is audited.",
    ),
    # -- RFC 8707 resource indicators ----------------------------------------------------------------
    "rfc8707:invalid-target": Requirement(
        RFC.format(8707, "2"),
        "invalid_target: The requested resource is invalid, missing, unknown, or malformed.",
        "A resource that is not registered (or not allowed for the client) gets invalid_target.",
    ),
    "rfc8707:aud-is-resource": Requirement(
        RFC.format(8707, "2"),
        "the authorization server ... can use the resource parameter to ... audience-restrict the issued access token",
        "The access token's aud is exactly the requested (canonical) resource URI.",
    ),
    # -- RFC 9068 JWT access tokens ------------------------------------------------------------------
    "rfc9068:claims": Requirement(
        RFC.format(9068, "2.2"),
        "iss REQUIRED ... exp REQUIRED ... aud REQUIRED ... sub REQUIRED ... client_id REQUIRED ... "
        "iat REQUIRED ... jti REQUIRED",
        "Access tokens are JWTs with typ at+jwt carrying iss, exp, aud, sub, client_id, iat and jti.",
    ),
    # -- RFC 9207 iss ----------------------------------------------------------------------------------
    "rfc9207:iss-on-success": Requirement(
        RFC.format(9207, "2"),
        "Authorization servers supporting this specification MUST provide their issuer identifier to clients by "
        "including the response parameter iss in authorization responses",
        "Successful authorization redirects carry iss = the metadata issuer.",
    ),
    "rfc9207:iss-on-error": Requirement(
        RFC.format(9207, "2"),
        "The iss parameter value is the issuer identifier of the authorization server ... [and applies to] "
        "error responses as well",
        "Error redirects (e.g. access_denied, invalid_request) also carry iss.",
    ),
    # -- RFC 7662 introspection ------------------------------------------------------------------------
    "rfc7662:caller-authenticated": Requirement(
        RFC.format(7662, "2.1"),
        "To prevent token scanning attacks, the endpoint MUST also require some form of authorization to access "
        "this endpoint",
        "Introspection without valid client credentials of a registered resource server gets 401 invalid_client.",
    ),
    "rfc7662:inactive-token": Requirement(
        RFC.format(7662, "2.2"),
        "If the introspection call is properly authorized but the token is not active, does not exist on this "
        'server, ... then the authorization server MUST return an introspection response with the "active" '
        'field set to "false".',
        "Unknown, malformed, expired, revoked or foreign tokens introspect as {active: false} and nothing else.",
    ),
    "rfc7662:other-audience-inactive": Requirement(
        RFC.format(7662, "2.2"),
        "or the protected resource is not allowed to introspect this particular token, then the authorization "
        'server MUST return an introspection response with the "active" field set to "false".',
        "A token whose aud is another resource introspects as inactive for this resource server.",
    ),
    # -- RFC 7009 revocation ---------------------------------------------------------------------------
    "rfc7009:revoke-access-token": Requirement(
        RFC.format(7009, "2"),
        "Implementations MUST support the revocation of refresh tokens and SHOULD support the revocation of "
        "access tokens",
        "A client revokes its access token; introspection then says active: false.",
    ),
    "rfc7009:refresh-revokes-grant": Requirement(
        RFC.format(7009, "2.1"),
        "If the particular token is a refresh token and the authorization server supports the revocation of "
        "access tokens, then the authorization server SHOULD also invalidate all access tokens based on the same "
        "authorization grant",
        "Revoking a refresh token revokes its family and the access tokens it issued.",
    ),
    "rfc7009:unknown-token-200": Requirement(
        RFC.format(7009, "2.2"),
        "The authorization server responds with HTTP status code 200 if the token has been revoked successfully "
        "or if the client submitted an invalid token.",
        "Revoking an unknown or foreign token answers 200 and changes nothing.",
    ),
    "rfc7009:token-owner-checked": Requirement(
        RFC.format(7009, "2.1"),
        "The authorization server first validates the client credentials (in case of a confidential client) and "
        "then verifies whether the token was issued to the client making the revocation request.",
        "A client cannot revoke another client's token (200, token stays active).",
    ),
    # -- RFC 7523 client authentication ------------------------------------------------------------
    "rfc7523:private-key-jwt": Requirement(
        RFC.format(7523, "3"),
        'The JWT MUST contain an "iss" (issuer) claim ... The JWT MUST contain a "sub" (subject) claim ... '
        'The JWT MUST contain an "aud" (audience) claim containing a value that identifies the authorization server',
        "private_key_jwt client assertions are verified against the client's JWKS with iss = sub = client_id and "
        "aud = the issuer or token endpoint.",
    ),
    "rfc7523:jti-replay": Requirement(
        RFC.format(7523, "3"),
        'The authorization server may ensure that JWTs are not replayed by maintaining the set of used "jti" '
        "values for the length of time for which the JWT would be considered valid",
        "A replayed client assertion (same jti before exp) is refused with invalid_client.",
    ),
    "rfc7523:alg-allow-list": Requirement(
        RFC.format(7523, "3"),
        "The JWT MUST be digitally signed or have a Message Authentication Code (MAC) applied by the issuer. "
        "The authorization server MUST reject JWTs with an invalid signature or MAC.",
        "Client assertions signed with none or HMAC algorithms are refused: asymmetric algorithms only.",
    ),
    # -- added with the AS core tests -------------------------------------------------------------
    "rfc6749:access-denied": Requirement(
        RFC.format(6749, "4.1.2.1"),
        "access_denied: The resource owner or authorization server denied the request.",
        "Denying on the consent page redirects with error=access_denied, the original state and iss.",
    ),
    "mcp:consent-csrf": Requirement(
        f"{MCP_0728}/security-considerations",
        "Authorization servers ... MUST obtain user consent ... (confused deputy); consent pages must resist CSRF",
        "The consent POST needs a CSRF token bound to the signed-in session; without it nothing is granted.",
    ),
    "rfc7517:published-before-signing": Requirement(
        RFC.format(7517, "5"),
        "JWK Set: the keys a verifier may meet; a key must be published before tokens signed with it circulate",
        "Rotation promotes the already-published next key; the retired key stays published until its tokens expire.",
    ),
    "rfc6749:abnf-no-redirect": Requirement(
        RFC.format(6749, "4.1.2.1"),
        "If the request fails due to a missing, invalid, or mismatching redirection URI, or if the client "
        "identifier is missing or invalid, the authorization server SHOULD inform the resource owner of the error "
        "and MUST NOT automatically redirect the user-agent to the invalid redirection URI.",
        "A client_id, redirect_uri or state outside its RFC 6749 Appendix A grammar (a quote, backslash, "
        "non-ASCII character or newline) is a 400 page naming the parameter, never a redirect and never a 500.",
    ),
    "rfc6749:abnf-error-redirect": Requirement(
        RFC.format(6749, "4.1.2.1"),
        'Values for the "error_description" parameter MUST NOT include characters outside the set '
        "%x20-21 / %x23-5B / %x5D-7E.",
        "A malformed response_type or scope is an invalid_request / invalid_scope redirect (with state and iss) "
        "whose description names the parameter and never echoes the value.",
    ),
    "rfc9700:post-redirect-303": Requirement(
        RFC.format(9700, "4.12"),
        "The AS which redirects a request that potentially contains user credentials therefore MUST NOT use "
        "the HTTP 307 status code for redirection. If an HTTP redirection ... is used for such a request, AS "
        'SHOULD use HTTP status code 303 "See Other".',
        "The sign-in and consent form POSTs redirect with 303 (approve, deny and error redirects alike).",
    ),
    "rfc7591:display-uris-https": Requirement(
        RFC.format(7591, "5"),
        "the authorization server ... must be extremely careful with any URL provided by the client that will "
        'be displayed to the user (e.g., "logo_uri", "tos_uri", "client_uri", and "policy_uri")',
        "client_uri, logo_uri, tos_uri and policy_uri must be https URLs (http on loopback in development); "
        "javascript:, data: and the rest are invalid_client_metadata (RFC 7591 §3.2.2) and nothing is stored.",
    ),
    "rfc6819:no-secrets-in-logs": Requirement(
        RFC.format(6819, "5.1.4.1.3"),
        "Credentials ... should not be stored or logged in clear text",
        "Audit events carry identifiers (client id, subject, jti), never secrets, codes or tokens.",
    ),
    **DPOP,
    **GOVERNANCE,
    **SIGNALS,
}

# Ids without a tagged test yet. test_manifest.py fails if one of these gets tagged (remove it here) or
# if an id is neither tagged nor listed here.
PENDING: frozenset[str] = frozenset()
