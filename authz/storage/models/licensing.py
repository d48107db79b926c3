"""Tables of license keys: products, license policies, licenses, machines, signing keys, webhooks, rate limits.

A license key is never stored: ``licenses.key_digest`` is its keyed digest
(:meth:`authz.core.crypto.Keyring.digest`). Machine liveness is not a column: it is computed at read
time from ``last_heartbeat_at`` (or ``created_at``) and the policy's heartbeat interval
(:mod:`authz.licensing.liveness`); ``dead_notified_at`` only records that the sweeper has announced it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class ProductRow(Base):
    """What is sold: a product with a short ``code`` clients name in a validation scope."""

    __tablename__ = "license_products"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # prod_...
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[int] = mapped_column(BigInteger)


class LicensePolicyRow(Base):
    """How licenses of a product behave: duration, expiry strategy, entitlements, machines, heartbeats."""

    __tablename__ = "license_policies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # lpol_...
    product_id: Mapped[str] = mapped_column(ForeignKey("license_products.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    duration: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # seconds; None: perpetual
    expiration_strategy: Mapped[str] = mapped_column(String(16))  # restrict | maintain
    entitlements: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_machines: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: unlimited
    heartbeat_interval: Mapped[int | None] = mapped_column(Integer, nullable=True)  # seconds; None: not required
    cull_strategy: Mapped[str] = mapped_column(String(16))  # deactivate_dead | keep_dead
    resurrection_window: Mapped[int] = mapped_column(Integer, default=0)  # seconds after death; 0: never
    checkout_ttl: Mapped[int] = mapped_column(Integer)  # default license file lifetime, seconds
    created_at: Mapped[int] = mapped_column(BigInteger)


class LicenseRow(Base):
    """One license: the key's digest, status, expiry, entitlements and owner."""

    __tablename__ = "licenses"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # lic_...
    key_digest: Mapped[str] = mapped_column(String(128), unique=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("license_products.id"), index=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("license_policies.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # active | suspended | revoked
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    entitlements: Mapped[list[str]] = mapped_column(JSON, default=list)  # added to the policy's
    max_machines: Mapped[int | None] = mapped_column(Integer, nullable=True)  # overrides the policy's
    owner_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    owner_customer: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    status_changed_at: Mapped[int] = mapped_column(BigInteger)
    expiring_notified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_licenses_created_at_id", "created_at", "id"),)


class MachineRow(Base):
    """An activation: one fingerprint on one license (the same fingerprint twice is the same machine)."""

    __tablename__ = "license_machines"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # mach_...
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    platform: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_heartbeat_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dead_notified_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (UniqueConstraint("license_id", "fingerprint", name="uq_license_machines_license_fingerprint"),)


class LicenseSigningKeyRow(Base):
    """An Ed25519 key that signs validation responses and license files (private half encrypted)."""

    __tablename__ = "license_signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)


class LicenseWebhookRow(Base):
    """A Standard Webhooks endpoint for ``license.expiring`` and ``machine.heartbeat.dead``."""

    __tablename__ = "license_webhooks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # lwh_...
    url: Mapped[str] = mapped_column(String(2048))
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)


class LicenseRateRow(Base):
    """A fixed-window counter shared by replicas (per key digest or per client IP)."""

    __tablename__ = "license_rate_limits"
    bucket: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
