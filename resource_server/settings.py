"""Configuration of a protected MCP server (one frozen value, validated on construction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from dpop import ALGORITHMS as DPOP_ALGORITHMS
from resource_server.scopes import ScopePolicy

__all__ = ["Mode", "ResourceServerConfig"]

Mode = Literal["introspection", "jwt", "hybrid"]
_MODES = ("introspection", "jwt", "hybrid")


@dataclass(frozen=True, slots=True)
class ResourceServerConfig:
    """How the middleware validates tokens for one resource.

    ``resource`` is the canonical resource URI (RFC 8707 / RFC 9728), the audience every token
    must carry; ``issuer`` is the authorization server's issuer identifier, compared byte for byte.
    ``client_id``/``client_secret`` authenticate the resource server at the introspection
    endpoint (``client_secret_basic``); they are required for ``introspection`` and ``hybrid``, and
    for ``revocation_signals`` (the AS's Shared Signals stream, :mod:`resource_server.signals`).
    """

    resource: str
    issuer: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    mode: Mode = "introspection"
    scope_policy: ScopePolicy = field(default_factory=ScopePolicy)
    scopes_supported: tuple[str, ...] | None = None  # None: every scope the policy names
    resource_name: str | None = None
    resource_documentation: str | None = None
    protected_paths: tuple[str, ...] | None = None  # None: everything except the metadata routes
    cache_ttl: float = 60.0  # upper bound on a positive introspection cache entry (seconds)
    negative_cache_ttl: float = 5.0  # inactive tokens are remembered this long
    cache_max_entries: int = 10_000
    revocation_staleness: float = 5.0  # hybrid: how stale a "not revoked" answer may be
    leeway: float = 30.0  # clock skew allowed on exp/nbf/iat (seconds)
    algorithms: tuple[str, ...] = ("ES256",)
    jwks_min_refetch_interval: float = 10.0  # unknown kid: refetch JWKS at most this often
    metadata_ttl: float = 3600.0  # how long discovered AS metadata is reused
    http_timeout: float = 5.0
    retry_after: int = 5  # Retry-After on 503 when the AS cannot be reached
    max_body_bytes: int = 4 * 1024 * 1024
    # Shared Signals: consume the AS's revocation stream (SSF/CAEP, RFC 8936 poll) with client_id/client_secret,
    # so a suspension or revocation is refused at once, cached or not (cache bounds stay the fallback).
    revocation_signals: bool = False
    signals_poll_timeout: float = 60.0  # read timeout of one long poll (longer than the AS's AUTHZ_SSF_POLL_WAIT)
    signals_retry_max: float = 30.0  # longest back-off between attempts while the stream is down
    revocation_memory: float = 3660.0  # seconds a cutoff is kept: longer than any access token lives
    # DPoP (RFC 9449, resource_server.dpop): the proof algorithms the DPoP scheme accepts (() turns the
    # scheme off); dpop_required refuses Bearer altogether; dpop_nonce asks for server nonces (RFC 9449
    # §9), encrypted with dpop_nonce_key (give every replica the same 32 bytes; random per process if None).
    dpop_algorithms: tuple[str, ...] = ("ES256", "EdDSA", "RS256", "PS256")
    dpop_required: bool = False
    dpop_nonce: bool = False
    dpop_nonce_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}")
        parts = urlsplit(self.resource)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment or parts.query:
            raise ValueError("resource must be an absolute http(s) URI without query or fragment")
        if not self.issuer.startswith(("http://", "https://")):
            raise ValueError("issuer must be an http(s) URL")
        if self.mode in ("introspection", "hybrid") and not (self.client_id and self.client_secret):
            raise ValueError(f"mode {self.mode!r} needs client_id and client_secret for introspection")
        if self.revocation_signals and not (self.client_id and self.client_secret):
            raise ValueError("revocation_signals needs client_id and client_secret (the resource server's credentials)")
        if min(self.signals_poll_timeout, self.signals_retry_max, self.revocation_memory) <= 0:
            raise ValueError("signals durations must be positive")
        for alg in self.algorithms:
            if alg.lower() == "none" or alg.upper().startswith("HS"):
                raise ValueError(f"algorithm {alg!r} is not allowed for access tokens")
        if not self.algorithms:
            raise ValueError("algorithms must not be empty")
        bad_dpop = [a for a in self.dpop_algorithms if a not in DPOP_ALGORITHMS]
        if bad_dpop:
            raise ValueError(f"dpop_algorithms must be among {DPOP_ALGORITHMS} (asymmetric only), not {bad_dpop}")
        if (self.dpop_required or self.dpop_nonce) and not self.dpop_algorithms:
            raise ValueError("dpop_required and dpop_nonce need dpop_algorithms")
        if "offline_access" in (self.scopes_supported or ()):
            raise ValueError("offline_access does not belong in protected resource scopes_supported")
        if min(self.cache_ttl, self.negative_cache_ttl, self.revocation_staleness, self.leeway) < 0:
            raise ValueError("durations must not be negative")
        if self.cache_max_entries < 1:
            raise ValueError("cache_max_entries must be at least 1")

    @property
    def advertised_scopes(self) -> tuple[str, ...]:
        scopes = self.scopes_supported
        if scopes is None:
            scopes = tuple(sorted(self.scope_policy.all_scopes()))
        return tuple(s for s in scopes if s != "offline_access")
