"""Licensing: products, license policies, licenses, machines, their webhooks, and the key-authenticated calls.

``licenses.validate / activate / heartbeat / deactivate / me / checkout(key=...)`` authenticate with
the license key (``Authorization: License <key>``) instead of the admin token; their answers are
signed (``data`` + ``meta``), each call sends a fresh nonce, and the client returns an answer only
once its ``Authz-Signature``, the echoed nonce and its age check out (a
:class:`~agent_client.licenses.LicenseError` otherwise; pin the keys with
``Client(..., licensing=SignedAnswers(keys=jwks))``). :func:`agent_client.sdk.verify_offline` checks
a checked-out file with no network at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from agent_client.sdk.resources.base import R, Surface, compact, fresh_nonce, license_header, operation
from agent_client.sdk.resources.base import seg as _seg


def _list(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)


class Products(Surface[R]):
    """``/products``: create, list."""

    @operation("POST /products")
    def create(self, code: str, name: str) -> R:
        return self._request("POST", "/products", json={"code": code, "name": name})

    @operation("GET /products")
    def list(self) -> R:
        return self._request("GET", "/products")


class LicensePolicies(Surface[R]):
    """``/license-policies``: the rules licenses are issued under (duration, machines, heartbeat)."""

    @operation("POST /license-policies")
    def create(
        self,
        product: str,
        name: str,
        *,
        duration: int | None = None,
        expiration_strategy: Literal["restrict", "maintain"] | None = None,
        entitlements: Sequence[str] | None = None,
        max_machines: int | None = None,
        heartbeat_interval: int | None = None,
        cull_strategy: Literal["deactivate_dead", "keep_dead"] | None = None,
        resurrection_window: int | None = None,
        checkout_ttl: int | None = None,
    ) -> R:
        body = compact(
            product=product, name=name, duration=duration, expiration_strategy=expiration_strategy,
            entitlements=_list(entitlements), max_machines=max_machines, heartbeat_interval=heartbeat_interval,
            cull_strategy=cull_strategy, resurrection_window=resurrection_window, checkout_ttl=checkout_ttl,
        )  # fmt: skip
        return self._request("POST", "/license-policies", json=body)

    @operation("GET /license-policies")
    def list(self, *, product: str | None = None) -> R:
        return self._request("GET", "/license-policies", params={"product": product})


class Licenses(Surface[R]):
    """``/licenses``: the admin calls, and the calls an application makes with its license key."""

    @operation("POST /licenses")
    def create(
        self,
        policy: str,
        *,
        name: str | None = None,
        expires_at: int | None = None,
        entitlements: Sequence[str] | None = None,
        max_machines: int | None = None,
        owner_user_id: str | None = None,
        owner_customer: str | None = None,
    ) -> R:
        """A license; the answer's ``key`` is shown once."""
        body = compact(
            policy=policy, name=name, expires_at=expires_at, entitlements=_list(entitlements),
            max_machines=max_machines, owner_user_id=owner_user_id, owner_customer=owner_customer,
        )  # fmt: skip
        return self._request("POST", "/licenses", json=body)

    @operation("GET /licenses")
    def list(
        self,
        *,
        product: str | None = None,
        status: str | None = None,
        owner: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> R:
        params = {"product": product, "status": status, "owner": owner, "limit": limit, "cursor": cursor}
        return self._request("GET", "/licenses", params=params)

    @operation("GET /licenses/{}")
    def get(self, license_id: str) -> R:
        """A license and its machines (admin); with the key itself use :meth:`me`."""
        return self._request("GET", f"/licenses/{_seg(license_id)}")

    def _change(self, license_id: str, action: str, reason: str | None) -> R:
        return self._request("POST", f"/licenses/{_seg(license_id)}/{action}", json=compact(reason=reason))

    @operation("POST /licenses/{}/suspend")
    def suspend(self, license_id: str, *, reason: str | None = None) -> R:
        return self._change(license_id, "suspend", reason)

    @operation("POST /licenses/{}/reinstate")
    def reinstate(self, license_id: str, *, reason: str | None = None) -> R:
        return self._change(license_id, "reinstate", reason)

    @operation("POST /licenses/{}/revoke")
    def revoke(self, license_id: str, *, reason: str | None = None) -> R:
        return self._change(license_id, "revoke", reason)

    @operation("POST /licenses/{}/agents")
    def attach_agent(self, license_id: str, agent_id: str) -> R:
        """Link an agent to the license paying for it (suspended with the license)."""
        return self._request("POST", f"/licenses/{_seg(license_id)}/agents", json={"agent_id": agent_id})

    @operation("POST /licenses/{}/checkout", "POST /licenses/me/checkout")
    def checkout(
        self,
        license_id: str | None = None,
        *,
        key: str | None = None,
        fingerprint: str | None = None,
        ttl: int | None = None,
    ) -> R:
        """A signed license file (a machine file with ``fingerprint``): by id (admin) or with the ``key``."""
        body = compact(fingerprint=fingerprint, ttl=ttl)
        if (license_id is None) == (key is None):
            raise ValueError("give exactly one of license_id or key=")
        if key is not None:
            nonce = fresh_nonce()
            return self._request("POST", "/licenses/me/checkout", json={**body, "nonce": nonce},
                                 headers=license_header(key), signed=nonce)  # fmt: skip
        return self._request("POST", f"/licenses/{_seg(str(license_id))}/checkout", json=body)

    @operation("POST /licenses/actions/validate-key")
    def validate(
        self,
        key: str,
        *,
        product: str | None = None,
        fingerprint: str | None = None,
        entitlements: Sequence[str] | None = None,
        nonce: str | int | None = None,
    ) -> R:
        """Always 200 for a well-formed key: ``meta.valid`` and ``meta.code`` (``VALID``, ``EXPIRED``...) tell.
        The answer is verified; ``nonce`` replaces the generated one."""
        scope = compact(product=product, fingerprint=fingerprint, entitlements=_list(entitlements))
        nonce = fresh_nonce() if nonce is None else nonce
        body = compact(key=key, scope=scope or None, nonce=nonce)
        return self._request("POST", "/licenses/actions/validate-key", json=body, signed=nonce)

    @operation("GET /licenses/me")
    def me(self, key: str) -> R:
        """The license of ``key`` with its machines (signed, verified)."""
        nonce = fresh_nonce()
        return self._request("GET", "/licenses/me", params={"nonce": nonce}, headers=license_header(key), signed=nonce)

    @operation("POST /machines/actions/activate")
    def activate(self, key: str, fingerprint: str, *, name: str | None = None, platform: str | None = None) -> R:
        """Activate this machine (the same fingerprint twice is the same machine); verified."""
        nonce = fresh_nonce()
        body = compact(fingerprint=fingerprint, name=name, platform=platform, nonce=nonce)
        return self._request("POST", "/machines/actions/activate", json=body, headers=license_header(key), signed=nonce)

    @operation("POST /machines/{}/actions/heartbeat")
    def heartbeat(self, key: str, machine_id: str) -> R:
        """A heartbeat of an activated machine; verified."""
        path, nonce = f"/machines/{_seg(machine_id)}/actions/heartbeat", fresh_nonce()
        return self._request("POST", path, json={"nonce": nonce}, headers=license_header(key), signed=nonce)

    @operation("POST /machines/{}/actions/deactivate")
    def deactivate(self, key: str, machine_id: str) -> R:
        """Free the machine's seat; verified."""
        path, nonce = f"/machines/{_seg(machine_id)}/actions/deactivate", fresh_nonce()
        return self._request("POST", path, json={"nonce": nonce}, headers=license_header(key), signed=nonce)

    @operation("GET /licenses/jwks")
    def jwks(self) -> R:
        """The Ed25519 public keys (JWK Set) signing answers and license files: the input of ``verify_offline``."""
        return self._request("GET", "/licenses/jwks")


class Machines(Surface[R]):
    """``/machines`` (admin): list, get, deactivate."""

    @operation("GET /machines")
    def list(self, *, license_id: str | None = None) -> R:
        return self._request("GET", "/machines", params={"license_id": license_id})

    @operation("GET /machines/{}")
    def get(self, machine_id: str) -> R:
        """A machine, its heartbeat status computed now."""
        return self._request("GET", f"/machines/{_seg(machine_id)}")

    @operation("DELETE /machines/{}")
    def deactivate(self, machine_id: str) -> R:
        return self._request("DELETE", f"/machines/{_seg(machine_id)}")


class LicenseWebhooks(Surface[R]):
    """``/license-webhooks``: ``license.expiring`` and ``machine.heartbeat.dead`` endpoints."""

    @operation("POST /license-webhooks")
    def add(self, url: str) -> R:
        """An endpoint; its secret is shown once."""
        return self._request("POST", "/license-webhooks", json={"url": url})

    @operation("GET /license-webhooks")
    def list(self) -> R:
        return self._request("GET", "/license-webhooks")

    @operation("DELETE /license-webhooks/{}")
    def delete(self, webhook_id: str) -> R:
        return self._request("DELETE", f"/license-webhooks/{_seg(webhook_id)}")
