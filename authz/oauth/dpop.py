"""DPoP at the token endpoint (RFC 9449 §5, §8, §11.1): check the proof, remember its jti, hand out nonces.

RFC 9449 §5: "To request an access token that is bound to a public key using DPoP, the client
MUST provide a valid DPoP proof JWT in a DPoP header when making an access token request to the
authorization server's token endpoint. This is applicable for all access token requests regardless
of grant type". "If the DPoP proof is invalid, the authorization server issues an error response
per Section 5.2 of [RFC6749] with invalid_dpop_proof as the value of the error parameter."

RFC 9449 §11.1: "the server MUST only accept the proof once within the window": every accepted
proof's ``(jkt, jti)`` is remembered until its ``iat`` leaves the window, in Redis (``SET NX EX``)
when the server has Redis, else in the ``used_jtis`` table every replica shares. The stateless
checks (:mod:`dpop.proof`) run first, so a forged proof never costs a write. Concurrent requests'
keys are written together (:mod:`authz.oauth.group_commit`: one multi-row upsert and commit, or one
Redis pipeline, per batch); each request waits for its own key's answer, after the commit.

Nonces (§8) are optional (``dpop_nonce``): a proof without a valid one is answered 400
``use_dpop_nonce`` with a ``DPoP-Nonce`` header; every token response then carries the current nonce.

``dpop_replica_nonces``: nonces name the replica (process) that issued them and only it accepts
them, so a proof can be accepted by one replica only and that replica's memory is a complete
replay cache for it (:class:`ReplicaReplayCache`): no shared-store write per proof, the §11.1
guarantee intact across replicas. The memory is bounded: when it is full the replica takes a new
id, which voids every nonce it handed out (each client is asked for a new one, once) and with
them every remembered proof, so the cache starts empty without forgetting a proof it could still accept.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence

from authlib.oauth2.rfc6749.errors import OAuth2Error

from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.oauth.group_commit import GroupCommit
from authz.oauth.replay import ReplayCache, replay_cache
from dpop import NonceIssuer, Proof, ProofError, ProofVerifier, normalize_htu, single_proof

__all__ = [
    "DPOP_JKT_RE",
    "DpopProofError",
    "ReplayCache",
    "ReplicaReplayCache",
    "TokenEndpointDpop",
    "UseDpopNonceError",
    "replay_cache",
]

DPOP_JKT_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # a base64url SHA-256 thumbprint (RFC 9449 §10)
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class DpopProofError(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §5: ``invalid_dpop_proof`` (400)."""

    error = "invalid_dpop_proof"
    status_code = 400

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), *NO_STORE]


class UseDpopNonceError(OAuth2Error):  # type: ignore[misc]
    """RFC 9449 §8: ``use_dpop_nonce`` (400) with the nonce to use in ``DPoP-Nonce``."""

    error = "use_dpop_nonce"
    status_code = 400

    def __init__(self, description: str, nonce: str) -> None:
        super().__init__(description)
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), *NO_STORE, ("DPoP-Nonce", self.nonce)]


class ReplicaReplayCache:
    """This replica's proofs, in memory: complete because its nonces are replica-bound (see above)."""

    def __init__(self, nonces: NonceIssuer, max_entries: int = 250_000) -> None:
        self._nonces, self._max = nonces, max_entries
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # grants that touch SQL run in worker threads

    def check(self, nonce: str | None, key: str) -> bool | None:
        """None: the nonce is not this replica's current one (ask for one); False: a replay; True: first use.
        One lock over both steps, so a new replica id cannot fall between them."""
        with self._lock:
            if not self._nonces.valid(nonce):
                return None
            if key in self._seen:
                return False
            if len(self._seen) >= self._max:
                self._nonces.new_replica_id()  # voids every earlier nonce, so every remembered proof
                self._seen.clear()
                return None
            self._seen.add(key)
            return True


class TokenEndpointDpop:
    """Checks the ``DPoP`` header of one token request; None when there is none."""

    def __init__(self, settings: Settings, keyring: Keyring, replay: ReplayCache) -> None:
        self.verifier = ProofVerifier(settings.dpop_signing_alg_values)
        htu = normalize_htu(settings.endpoint("/token"))
        assert htu is not None
        self._uris = frozenset({htu})
        self._replay = replay
        self._group: GroupCommit | None = None  # the replay cache's group commit, made on first use
        replica = settings.dpop_replica_nonces
        self.nonces = (
            NonceIssuer(keyring.derive(b"dpop-nonce"), ttl=settings.dpop_nonce_ttl, replica=replica)
            if settings.dpop_nonce or replica
            else None
        )
        self.replica = ReplicaReplayCache(self.nonces) if replica and self.nonces is not None else None

    async def check(self, values: Sequence[str], now: float | None = None) -> Proof | None:
        current = time.time() if now is None else now
        try:
            value = single_proof(values)
            if value is None:
                return None
            proof = self.verifier.verify(value, method="POST", uris=self._uris, now=current)
        except ProofError as exc:
            raise DpopProofError(exc.description) from None
        if self.replica is not None:
            first = self.replica.check(proof.nonce, proof.replay_key())
            if first is None:
                raise UseDpopNonceError("The authorization server requires a DPoP nonce.", self._nonce())
            if not first:
                raise DpopProofError("The DPoP proof was already used.")
            return proof
        if self.nonces is not None and not self.nonces.valid(proof.nonce):
            # Before the replay cache: the retry with the nonce is a new proof (new jti) anyway.
            raise UseDpopNonceError("The authorization server requires a DPoP nonce.", self.nonces.issue())
        group = self._group
        if group is None:
            group = self._group = self._replay.group_commit()
        if not await group.first_use(proof.replay_key(), proof.iat + self.verifier.window + 1, int(current)):
            raise DpopProofError("The DPoP proof was already used.")
        return proof

    def close(self) -> None:
        """Write the replay cache's queued keys and stop its writer (the server is stopping)."""
        group, self._group = self._group, None
        if group is not None:
            group.close()

    def check_presentation(self, values: Sequence[str], *, method: str, uri: str, token: str) -> Proof:
        """RFC 9449 §7.1 at the AS's own protected resource (the admin API): a proof for this request
        (``htm``, ``htu``, ``ath`` = the token's hash), its ``jti`` remembered in the shared replay
        cache (no nonce there). Raises :class:`~dpop.ProofError`; the caller compares ``cnf.jkt``."""
        now = time.time()
        value = single_proof(values)
        if value is None:
            raise ProofError("A DPoP proof is required with the DPoP scheme")
        htu = normalize_htu(uri)
        proof = self.verifier.verify(value, method=method, uris={htu} if htu else set(), access_token=token, now=now)
        if not self._replay.first_use(proof.replay_key(), proof.iat + self.verifier.window + 1, int(now)):
            raise ProofError("The DPoP proof was already used")
        return proof

    def _nonce(self) -> str:
        assert self.nonces is not None
        return self.nonces.issue()

    def response_headers(self) -> list[tuple[str, str]]:
        """``DPoP-Nonce`` on token responses when nonces are on (§8.2: the next nonce to use)."""
        return [] if self.nonces is None else [("DPoP-Nonce", self.nonces.issue())]
