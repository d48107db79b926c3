"""Manifest entries for sender-constrained tokens: RFC 9449 (DPoP) at the AS, the resource server and the client."""

from __future__ import annotations

from conformance.spec import RFC, Requirement

DPOP: dict[str, Requirement] = {
    # -- RFC 9449 DPoP (SEP-1932 pins plain RFC 9449: iat within 300 s, nonces optional) -------
    "rfc9449:as-metadata": Requirement(
        RFC.format(9449, "5.1"),
        "dpop_signing_alg_values_supported: A JSON array containing a list of the JWS alg values ... supported "
        "by the authorization server for DPoP proof JWTs",
        "The AS metadata lists ES256, EdDSA, RS256, PS256 (configurable, asymmetric only; never none or HS*).",
    ),
    "rfc9449:proof-checks": Requirement(
        RFC.format(9449, "4.3"),
        "To validate a DPoP proof, the receiving server MUST ensure the following: ... not more than one DPoP "
        "HTTP request header field ... typ ... dpop+jwt ... alg ... asymmetric ... signature verifies ... jwk ... "
        "does not contain a private key ... htm ... htu ... iat ... within an acceptable window",
        "The token endpoint and the resource-server middleware run every check (dpop.proof); a failing proof is "
        "invalid_dpop_proof (400 at the AS, 401 with a DPoP challenge at the resource server).",
    ),
    "rfc9449:jti-replay": Requirement(
        RFC.format(9449, "11.1"),
        "the server MUST only accept the proof once within the window",
        "Accepted proofs' (jkt, jti) are remembered until iat leaves the 300 s window: Redis SET NX or the "
        "used_jtis table at the AS (shared by replicas), a bounded memory cache (or Redis) at the resource server.",
    ),
    "rfc9449:token-type-dpop": Requirement(
        RFC.format(9449, "6.1"),
        "the authorization server ... MUST ... bind the access token ... cnf ... jkt ... JWK SHA-256 Thumbprint; "
        "token_type ... DPoP",
        "A token request with a valid proof gets token_type DPoP and cnf.jkt in the JWT and in introspection.",
    ),
    "rfc9449:dpop-bound-client": Requirement(
        RFC.format(9449, "5.2"),
        "If the value is true, the authorization server MUST reject token requests from the client that do not "
        "contain the DPoP header.",
        "Clients registered with dpop_bound_access_tokens (DCR, CIMD, authz clients add --dpop-bound) are "
        "refused with invalid_dpop_proof when a token request lacks a proof.",
    ),
    "rfc9449:dpop-jkt": Requirement(
        RFC.format(9449, "10"),
        "verifies that it matches the dpop_jkt parameter value in the authorization request. If they do not "
        "match, it MUST reject the request.",
        "The code remembers dpop_jkt; redeeming it needs a proof by that key (invalid_grant otherwise).",
    ),
    "rfc9449:refresh-binding": Requirement(
        RFC.format(9449, "5"),
        "Refresh tokens issued to [public clients] ... MUST be bound to the DPoP public key",
        "A public client's refresh token is bound to its proof key; refreshing needs a proof by the same key.",
    ),
    "rfc9449:exchange-actor-key": Requirement(
        RFC.format(9449, "5"),
        "This is applicable for all access token requests regardless of grant type",
        "Token exchange binds the issued token to the requesting actor's proof key; a bound actor_token needs a "
        "proof by its key.",
    ),
    "rfc9449:as-nonce": Requirement(
        RFC.format(9449, "8"),
        "the authorization server responds with ... use_dpop_nonce ... and a DPoP-Nonce HTTP header field",
        "With dpop_nonce on, proofs without a valid (unexpired, encrypted-timestamp) nonce get 400 use_dpop_nonce "
        "and a fresh DPoP-Nonce; successful responses carry the current nonce.",
    ),
    "rfc9449:rs-scheme": Requirement(
        RFC.format(9449, "7.1"),
        "the access token is sent using the DPoP authentication scheme ... and the DPoP proof ... in the DPoP "
        "header; ... ath ... MUST ... match ... confirm that the public key to which the access token is bound "
        "matches the public key from the DPoP proof",
        "The middleware accepts Authorization: DPoP with a proof whose ath is the token's hash and whose key is "
        "the token's cnf.jkt (JWT and introspection modes); anything else is 401 invalid_dpop_proof/invalid_token.",
    ),
    "rfc9449:rs-bearer-downgrade": Requirement(
        RFC.format(9449, "7.2"),
        "such a protected resource MUST reject a DPoP-bound access token received as a bearer token",
        "A token with cnf.jkt presented as Bearer is 401 invalid_token with a DPoP challenge, at the middleware "
        "and at the admin API (/api/v1), which accepts it with the DPoP scheme and a proof by the bound key.",
    ),
    "rfc9449:rs-challenge": Requirement(
        RFC.format(9449, "7.1"),
        'WWW-Authenticate: DPoP algs="ES256 PS256"',
        "401s carry a DPoP challenge with algs (and error, error_description); a server that also takes Bearer "
        "sends both challenges.",
    ),
    "rfc9449:rs-nonce": Requirement(
        RFC.format(9449, "9"),
        "Resource servers can also choose to provide a nonce value ... 401 ... use_dpop_nonce ... DPoP-Nonce",
        "With dpop_nonce on, the middleware answers a proof without a valid nonce with 401 "
        'WWW-Authenticate: DPoP error="use_dpop_nonce" and a DPoP-Nonce header.',
    ),
    "rfc9728:dpop-metadata": Requirement(
        RFC.format(9728, "2"),
        "dpop_signing_alg_values_supported ... dpop_bound_access_tokens_required: Boolean value specifying "
        "whether the protected resource always requires the use of DPoP-bound access tokens",
        "The protected resource metadata lists the accepted proof algorithms and whether DPoP is required.",
    ),
    "rfc9449:client-proofs": Requirement(
        RFC.format(9449, "4.2"),
        "jti ... htm ... htu ... iat ... ath ... nonce (client side: a fresh proof per request)",
        "agent_client signs a fresh proof (new jti) for the token endpoint and every MCP request, with ath for "
        "the token and the server's nonce when challenged (official suite: auth/dpop, auth/dpop-nonce).",
    ),
}
