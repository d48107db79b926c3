"""Request and response bodies of the licensing REST API (pydantic: shapes and the OpenAPI schemas).

Shapes only; the rules (lengths, names, ranges, existence) are checked by
:mod:`authz.licensing.service`, so the CLI and the API refuse exactly the same input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authz.licensing.files import iso


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProductIn(_In):
    code: str = Field(description="Short name clients use in a validation scope: 1-64 of a-z 0-9 _ -.")
    name: str = Field(description="Display name.")


class ProductOut(BaseModel):
    id: str
    code: str
    name: str
    created_at: str | None

    @classmethod
    def of(cls, row: Any) -> ProductOut:
        return cls(id=row.id, code=row.code, name=row.name, created_at=iso(row.created_at))


class ProductList(BaseModel):
    items: list[ProductOut]


class PolicyIn(_In):
    product: str = Field(description="Product id or code.")
    name: str
    duration: int | None = Field(None, description="License lifetime in seconds from creation; null: perpetual.")
    expiration_strategy: Literal["restrict", "maintain"] = Field(
        "restrict", description="restrict: an expired license stops validating (EXPIRED); maintain: it stays valid."
    )
    entitlements: list[str] = Field(default_factory=list, description="Feature names every license of it grants.")
    max_machines: int | None = Field(None, description="Machine limit; null: unlimited.")
    heartbeat_interval: int | None = Field(
        None, description="Seconds (60 or more) within which machines must heartbeat; null: not required."
    )
    cull_strategy: Literal["deactivate_dead", "keep_dead"] = "deactivate_dead"
    resurrection_window: int = Field(0, description="Seconds after death within which a heartbeat revives a machine.")
    checkout_ttl: int | None = Field(None, description="Default license file lifetime (3600 s to 1 year; 30 days).")


class PolicyOut(BaseModel):
    id: str
    product_id: str
    name: str
    duration: int | None
    expiration_strategy: str
    entitlements: list[str]
    max_machines: int | None
    heartbeat_interval: int | None
    cull_strategy: str
    resurrection_window: int
    checkout_ttl: int
    created_at: str | None

    @classmethod
    def of(cls, row: Any) -> PolicyOut:
        return cls(
            **{k: getattr(row, k) for k in cls.model_fields if k != "created_at"}, created_at=iso(row.created_at)
        )


class PolicyList(BaseModel):
    items: list[PolicyOut]


class LicenseCreate(_In):
    policy: str = Field(description="License policy id.")
    name: str | None = None
    expires_at: int | None = Field(None, description="Unix time; default: now + the policy's duration.")
    entitlements: list[str] = Field(default_factory=list, description="Entitlements added to the policy's.")
    max_machines: int | None = Field(None, description="Overrides the policy's machine limit.")
    owner_user_id: str | None = None
    owner_customer: str | None = Field(None, description="The paying customer's id in your systems.")


class Owner(BaseModel):
    user_id: str | None
    customer: str | None


class ProductRef(BaseModel):
    id: str
    code: str


class MachineOut(BaseModel):
    id: str
    license_id: str
    fingerprint: str
    name: str
    platform: str
    created_at: str | None
    last_heartbeat_at: str | None
    heartbeat_status: Literal["NOT_REQUIRED", "NOT_STARTED", "ALIVE", "DEAD"]
    heartbeat_deadline: str | None = Field(description="When the machine dies without a heartbeat.")


class MachineList(BaseModel):
    items: list[MachineOut]


class LicenseOut(BaseModel):
    id: str
    name: str
    status: Literal["active", "suspended", "revoked"]
    product: ProductRef
    policy_id: str
    expires_at: str | None
    expired: bool
    expiration_strategy: str
    entitlements: list[str]
    max_machines: int | None
    machines_count: int
    heartbeat_interval: int | None
    owner: Owner
    machines: list[MachineOut] | None = None


class LicenseCreated(LicenseOut):
    key: str = Field(description="The license key: shown once, stored only as a keyed digest.")


class LicenseList(BaseModel):
    items: list[LicenseOut]
    next_cursor: str | None


class CheckoutIn(_In):
    fingerprint: str | None = Field(None, description="A machine file bound to this activated fingerprint.")
    ttl: int | None = Field(None, description="Seconds (3600 to 1 year); default: the policy's checkout_ttl.")


class CheckoutOut(BaseModel):
    certificate: str = Field(description="-----BEGIN LICENSE FILE----- (or MACHINE FILE) ... -----END ...")
    alg: Literal["base64+ed25519", "aes-256-gcm+ed25519"]
    kid: str
    type: Literal["license", "machine"]
    issued: str
    expiry: str
    ttl: int


class AgentLinkIn(_In):
    agent_id: str = Field(description="The agent this license pays for (suspended with the license).")


class AgentLinkOut(BaseModel):
    license_id: str
    agent_id: str


class Deactivated(BaseModel):
    id: str
    license_id: str
    deactivated: bool


class WebhookIn(_In):
    url: str = Field(description="https URL receiving license.expiring and machine.heartbeat.dead events.")


class WebhookOut(BaseModel):
    id: str
    url: str
    created_at: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The Standard Webhooks secret (whsec_...): shown once.")


class WebhookList(BaseModel):
    items: list[WebhookOut]
