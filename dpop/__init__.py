"""DPoP (RFC 9449) building blocks shared by the authorization server, the resource server and the agent client.

A leaf: it imports none of ``authz``, ``resource_server`` or ``agent_client`` (each of those stays
independent of the others), only ``cryptography``. :mod:`dpop.proof` checks a proof against a
request (RFC 9449 §4.3) and computes thumbprints, :mod:`dpop.nonce` issues and checks stateless
server nonces (§8, §9), :mod:`dpop.key` is the client side: a proof key and the proofs it signs.
"""

from dpop.key import DpopKey
from dpop.nonce import NonceIssuer
from dpop.proof import (
    ALGORITHMS,
    DEFAULT_ALGORITHMS,
    IAT_WINDOW,
    Proof,
    ProofError,
    ProofVerifier,
    access_token_hash,
    normalize_htu,
    single_proof,
    thumbprint,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "IAT_WINDOW",
    "DpopKey",
    "NonceIssuer",
    "Proof",
    "ProofError",
    "ProofVerifier",
    "access_token_hash",
    "normalize_htu",
    "single_proof",
    "thumbprint",
]
