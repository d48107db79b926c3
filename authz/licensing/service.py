"""The licensing service: products, policies and licenses for operators; key lookups, validation,
activation, heartbeats and checkout for clients; the suspension cascade to agents.

Every change is audited (``authz.audit.log``; never a key, never file content, the license id instead).
Lookups by key are cached for ``cache_staleness`` seconds (a change on this replica drops the entry
at once, other replicas see it within the bound), so validation costs no database read when hot.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authz.audit.log import AuditLog
from authz.core.crypto import Keyring
from authz.identity.agents.errors import Conflict, NotFound
from authz.identity.agents.validation import Problems
from authz.licensing import files, inputs
from authz.licensing import keys as keyfmt
from authz.licensing.events import LicenseWebhooks
from authz.licensing.liveness import DEAD
from authz.licensing.ratelimit import RateLimiter
from authz.licensing.signing import LicenseKeys
from authz.licensing.store import Activation, LicenseStore, TooManyMachines
from authz.licensing.validation import LicenseView, MachineView
from authz.licensing.views import file_license
from authz.storage.models.licensing import LicensePolicyRow, LicenseRow, ProductRow

if TYPE_CHECKING:
    from authz.identity.agents.lifecycle import Agents

MAX_CACHED = 50_000
STATUSES = ("active", "suspended", "revoked")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


class LicenseRefused(Exception):
    """A key-authenticated action refused because of the license's state; ``code`` as in validation."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Licensing:
    def __init__(
        self,
        store: LicenseStore,
        keyring: Keyring,
        audit: AuditLog,
        limiter: RateLimiter,
        *,
        agents: Callable[[], Agents] | None = None,
        cache_ttl: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.keyring, self.audit, self.limiter = store, keyring, audit, limiter
        self.keys = LicenseKeys(store.engine, keyring)
        self.webhooks = LicenseWebhooks(store.engine, keyring)
        self.agents, self.cache_ttl, self.clock = agents, cache_ttl, clock
        self._cache: dict[str, tuple[float, LicenseView | None]] = {}
        self._lock = threading.Lock()

    # -- lookups ------------------------------------------------------------------------------
    def digest(self, key_text: str) -> tuple[str, str]:
        """(canonical key, digest); MalformedKey for anything that is not a key."""
        canonical = keyfmt.normalize(key_text)
        return canonical, keyfmt.key_digest(self.keyring, canonical)

    def cached(self, digest: str) -> tuple[bool, LicenseView | None]:
        """(hit, view) from the cache without touching the database."""
        entry = self._cache.get(digest)
        if entry is not None and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def lookup(self, digest: str) -> LicenseView | None:
        hit, view = self.cached(digest)
        if hit:
            return view
        view = self.store.view(digest=digest)
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + self.cache_ttl, view)
        return view

    def forget(self, license_id: str) -> None:
        """Drop a license from this replica's cache (after a change)."""
        with self._lock:
            for digest in [d for d, (_, v) in self._cache.items() if v is not None and v.id == license_id]:
                del self._cache[digest]

    def view(self, license_id: str) -> LicenseView:
        view = self.store.view(license_id=license_id)
        if view is None:
            raise NotFound(f"no license {license_id!r}")
        return view

    # -- products, policies, licenses (operators) ---------------------------------------------
    def create_product(self, *, code: Any, name: Any, actor: str) -> Any:
        p = Problems()
        name = inputs.text(p, "name", name, max_len=inputs.MAX_NAME, required=True)
        if not isinstance(code, str) or not inputs.CODE.match(code):
            p.add("code", "must be 1-64 lowercase letters, digits, _ or - (starting with a letter or digit)")
        p.raise_any()
        if self.store.product(code) is not None:
            raise Conflict(f"a product with code {code!r} already exists")
        values = {"id": new_id("prod"), "code": code, "name": name, "created_at": int(self.clock())}
        self.store.add(ProductRow.__table__, values)
        self.audit.operator_change("license_product", "created", actor=actor, target=values["id"], code=code)
        return self.store.product(values["id"])

    def create_policy(self, *, product: Any, actor: str, **body: Any) -> Any:
        p = Problems()
        name = inputs.text(p, "name", body.get("name"), max_len=inputs.MAX_NAME, required=True)
        prod: Any = self.store.product(product) if isinstance(product, str) and product else None
        if prod is None:
            p.add("product", "no such product (give its id or code)")
        values: dict[str, Any] = {
            "name": name,
            "duration": inputs.seconds(p, "duration", body.get("duration"), low=3600, high=100 * 365 * 86400),
            "expiration_strategy": inputs.choice(
                p, "expiration_strategy", body.get("expiration_strategy"), inputs.EXPIRATION_STRATEGIES, "restrict"
            ),
            "entitlements": list(inputs.entitlements(p, body.get("entitlements"))),
            "max_machines": inputs.seconds(p, "max_machines", body.get("max_machines"), low=1, high=1_000_000),
            "heartbeat_interval": inputs.seconds(
                p, "heartbeat_interval", body.get("heartbeat_interval"), low=60, high=30 * 86400
            ),
            "cull_strategy": inputs.cull(p, body.get("cull_strategy")),
            "resurrection_window": inputs.seconds(
                p, "resurrection_window", body.get("resurrection_window", 0), low=0, high=30 * 86400, optional=False
            )
            or 0,
            "checkout_ttl": inputs.ttl(p, body.get("checkout_ttl")) or 30 * 86400,
        }
        p.raise_any()
        values.update(id=new_id("lpol"), product_id=prod.id, created_at=int(self.clock()))
        self.store.add(LicensePolicyRow.__table__, values)
        self.audit.operator_change("license_policy", "created", actor=actor, target=values["id"], product=prod.id)
        return self.store.policy(str(values["id"]))

    def create_license(self, *, policy: Any, actor: str, **body: Any) -> tuple[Any, str]:
        """A new license and its key (the only time the key exists outside the client)."""
        p = Problems()
        pol: Any = self.store.policy(policy) if isinstance(policy, str) and policy else None
        if pol is None:
            p.add("policy", "no such license policy")
        name = inputs.text(p, "name", body.get("name"), max_len=inputs.MAX_NAME) or "license"
        extra = inputs.entitlements(p, body.get("entitlements"))
        max_machines = inputs.seconds(p, "max_machines", body.get("max_machines"), low=1, high=1_000_000)
        owner_user = inputs.text(p, "owner_user_id", body.get("owner_user_id"), max_len=64) or None
        owner_customer = inputs.text(p, "owner_customer", body.get("owner_customer"), max_len=128) or None
        now = int(self.clock())
        expires_at = body.get("expires_at")
        if expires_at is not None and (
            isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= 0
        ):
            p.add("expires_at", "must be a Unix time in seconds")
        p.raise_any()
        if expires_at is None and pol.duration is not None:
            expires_at = now + pol.duration
        key = keyfmt.generate_key()
        values = {
            "id": new_id("lic"),
            "key_digest": keyfmt.key_digest(self.keyring, key),
            "product_id": pol.product_id,
            "policy_id": pol.id,
            "name": name,
            "status": "active",
            "expires_at": expires_at,
            "entitlements": list(extra),
            "max_machines": max_machines,
            "owner_user_id": owner_user,
            "owner_customer": owner_customer,
            "created_at": now,
            "updated_at": now,
            "status_changed_at": now,
            "expiring_notified_at": None,
        }
        self.store.add(LicenseRow.__table__, values)
        self.audit.operator_change("license", "created", actor=actor, target=values["id"], policy=pol.id)
        return self.store.license(values["id"]), key

    def change_status(self, license_id: str, status: str, *, actor: str, reason: str | None = None) -> Any:
        """suspend / reinstate / revoke; suspending or revoking suspends the agents the license pays for."""
        allowed = {"suspended": ("active",), "active": ("suspended",), "revoked": ("active", "suspended")}[status]
        current = self.store.license(license_id)
        if current is None:
            raise NotFound(f"no license {license_id!r}")
        verb = {"suspended": "suspend", "active": "reinstate", "revoked": "revoke"}[status]
        if current.status not in allowed or not self.store.set_status(
            license_id, status, when=allowed, now=int(self.clock())
        ):
            raise Conflict(f"cannot {verb} a license that is {current.status}")
        self.forget(license_id)
        action = {"suspended": "suspended", "active": "reinstated", "revoked": "revoked"}[status]
        self.audit.operator_change(
            "license", action, actor=actor, target=license_id, reason=reason, previous=current.status
        )
        if status != "active":
            self._suspend_agents(license_id, actor=actor, why=f"license {license_id} {status}")
        return self.store.license(license_id)

    def _suspend_agents(self, license_id: str, *, actor: str, why: str) -> None:
        if self.agents is None:
            return
        from authz.identity.agents import lifecycle

        deps = self.agents()
        for agent_id in self.store.agents_of(license_id, ("active",)):
            try:
                lifecycle.suspend_agent(deps, agent_id, actor=actor, reason=why)
            except Conflict:  # changed meanwhile (suspended or revoked by someone else): nothing to do
                continue

    def attach_agent(self, license_id: str, agent_id: str, *, actor: str) -> None:
        lic = self.store.license(license_id)
        if lic is None:
            raise NotFound(f"no license {license_id!r}")
        if not self.store.attach_agent(agent_id, license_id):
            raise NotFound(f"no agent {agent_id!r}")
        self.audit.operator_change("license", "agent_attached", actor=actor, target=license_id, agent=agent_id)
        if lic.status != "active":  # a license that is not in force cannot pay for a live agent
            self._suspend_agents(license_id, actor=actor, why=f"license {license_id} {lic.status}")

    # -- machines -----------------------------------------------------------------------------
    def activate(self, license_id: str, *, fingerprint: str, name: str, platform: str, actor: str) -> Activation:
        lic = self.view(license_id)  # fresh: the limit and status must not come from a stale cache
        self.refuse_unless_in_force(lic)
        try:
            act = self.store.activate(
                lic,
                machine_id=new_id("mach"),
                fingerprint=fingerprint,
                name=name,
                platform=platform,
                now=int(self.clock()),
            )
        except TooManyMachines:
            self.audit.refusal(
                "machine.activation_refused", resource=license_id, actor=actor, reason="TOO_MANY_MACHINES"
            )
            raise LicenseRefused(409, "TOO_MANY_MACHINES", f"the license allows {lic.max_machines} machines") from None
        self.forget(license_id)
        for machine_id in act.culled:
            self.audit.record("machine.culled", actor=actor, license=license_id, machine=machine_id)
        if act.created:
            self.audit.record("machine.activated", actor=actor, license=license_id, machine=act.machine.id)
        return act

    def machine_of(self, lic: LicenseView, machine_id: str) -> MachineView:
        machine = next((m for m in lic.live_machines(self.clock()) if m.id == machine_id), None)
        if machine is None:
            raise NotFound(f"no machine {machine_id!r} on this license")
        return machine

    def deactivate(self, license_id: str, machine_id: str, *, actor: str) -> None:
        row = self.store.machine(machine_id)
        if row is None or row.license_id != license_id or not self.store.delete_machines([machine_id]):
            raise NotFound(f"no machine {machine_id!r} on this license")
        self.forget(license_id)
        self.audit.record("machine.deactivated", actor=actor, license=license_id, machine=machine_id)

    def heartbeat(self, license_id: str, machine_id: str, *, actor: str) -> MachineView:
        lic = self.view(license_id)
        self.refuse_unless_in_force(lic)
        m = self.machine_of(lic, machine_id)
        now = self.clock()
        hb = lic.heartbeats
        if hb.status(m.created_at, m.last_heartbeat_at, now) == DEAD:
            if not hb.revivable(m.created_at, m.last_heartbeat_at, now):
                raise LicenseRefused(409, "HEARTBEAT_DEAD", "the machine is dead and can no longer be revived")
            self.audit.record("machine.heartbeat.resurrected", actor=actor, license=license_id, machine=machine_id)
        self.store.heartbeat(machine_id, int(now))
        self.forget(license_id)
        return MachineView(m.id, m.fingerprint, m.name, m.platform, m.created_at, int(now))

    def refuse_unless_in_force(self, lic: LicenseView) -> None:
        if lic.status != "active":
            raise LicenseRefused(403, lic.status.upper(), f"the license is {lic.status}")
        if lic.expired(self.clock()) and lic.expiration_strategy == "restrict":
            raise LicenseRefused(403, "EXPIRED", "the license has expired")

    # -- checkout -----------------------------------------------------------------------------
    def checkout(
        self, lic: LicenseView, *, machine: MachineView | None, ttl: int | None, license_key: str | None, actor: str
    ) -> dict[str, Any]:
        """A signed license file (a machine file when ``machine``), encrypted when ``license_key`` is known."""
        self.refuse_unless_in_force(lic)
        now = int(self.clock())
        ttl = ttl or lic.checkout_ttl
        signer = self.keys.active()
        mdata = {"id": machine.id, "fingerprint": machine.fingerprint} if machine else None
        body = files.payload(file_license(lic), mdata, kid=signer.kid, now=now, ttl=ttl)
        alg = "aes-256-gcm+ed25519" if license_key else "base64+ed25519"
        cert = files.certificate(
            body,
            signer,
            machine=machine is not None,
            alg=alg,
            license_key=license_key,
            fingerprint=machine.fingerprint if machine else None,
        )
        self.audit.record(
            "license.checked_out",
            actor=actor,
            license=lic.id,
            machine=machine.id if machine else None,
            alg=alg,
            ttl=ttl,
        )
        return {
            "certificate": cert,
            "alg": alg,
            "kid": signer.kid,
            "type": "machine" if machine else "license",
            "issued": files.iso(now),
            "expiry": files.iso(now + ttl),
            "ttl": ttl,
        }
