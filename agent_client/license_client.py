"""A small client for authz license keys: validate (signed, nonce-bound), activate, heartbeat,
deactivate, check out; fails closed, with an explicit, bounded grace from a cached signed answer.

``LicenseClient(base_url, jwks)`` — ``base_url`` is the server's ``/api/v1``; ``jwks`` its
``/licenses/jwks`` (pin it in the program; do not fetch it at validation time). ``validate`` sends a
fresh nonce and accepts only an answer signed by a pinned key that echoes it. When the server
cannot be reached the answer is ``valid=False, code="UNREACHABLE"`` unless ``grace`` seconds > 0
and a cached signed answer for the same key and scope, re-verified now, is younger than ``grace``:
then that answer is returned with ``stale=True``. Nothing ever turns a failure into ``valid``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from agent_client.licenses import HighWaterMark, LicenseError, MemoryMark, SignedAnswers


@dataclass(frozen=True)
class Validation:
    valid: bool
    code: str
    detail: str
    license: dict[str, Any] | None = None
    machine: dict[str, Any] | None = None
    stale: bool = False  # from the cache, within the grace period
    meta: dict[str, Any] = field(default_factory=dict)


class LicenseClient:
    def __init__(
        self, base_url: str, jwks: Mapping[str, Any], *, grace: float = 0.0, mark: HighWaterMark | None = None,
        http: httpx2.Client | None = None, clock: Callable[[], float] = time.time, max_age: float = 300.0,
    ) -> None:  # fmt: skip
        self.base_url, self.jwks, self.grace, self.clock, self.max_age = (
            base_url.rstrip("/"),
            jwks,
            grace,
            clock,
            max_age,
        )
        self.mark = mark or MemoryMark()
        self.http = http or httpx2.Client(timeout=10.0)
        self.answers = SignedAnswers(jwks, max_age, self.mark, clock)
        self._cache: dict[str, tuple[bytes, str]] = {}  # scope hash -> (body, signature)

    def _signed(self, response: httpx2.Response, nonce: str) -> dict[str, Any]:
        return self.answers.verify(response.content, response.headers.get("authz-signature"), nonce)

    def validate(
        self, key: str, *, fingerprint: str | None = None, entitlements: Iterable[str] = (), product: str | None = None
    ) -> Validation:
        scope = {"fingerprint": fingerprint, "entitlements": list(entitlements), "product": product}
        scope = {k: v for k, v in scope.items() if v}
        slot = hashlib.sha256(json.dumps([key, scope], sort_keys=True).encode()).hexdigest()
        nonce = secrets.token_urlsafe(16)
        try:
            r = self.http.post(f"{self.base_url}/licenses/actions/validate-key",
                               json={"key": key, "nonce": nonce, "scope": scope})  # fmt: skip
        except httpx2.TransportError:
            return self._grace(slot, "the license server cannot be reached")
        if r.status_code >= 500:
            return self._grace(slot, f"the license server answered {r.status_code}")
        if r.status_code == 429:
            return Validation(False, "RATE_LIMITED", _problem_detail(r))
        if r.status_code != 200:
            return Validation(False, "REFUSED", _problem_detail(r))
        try:
            doc = self._signed(r, nonce)
        except LicenseError as exc:
            return Validation(False, exc.code, exc.detail)
        self._cache[slot] = (r.content, r.headers.get("authz-signature", ""))
        return _validation(doc, stale=False)

    def _grace(self, slot: str, why: str) -> Validation:
        cached = self._cache.get(slot)
        if self.grace <= 0 or cached is None:
            return Validation(False, "UNREACHABLE", why)
        try:
            doc = self.answers.verify(cached[0], cached[1], None, max_age=self.grace)
        except LicenseError as exc:
            return Validation(False, "UNREACHABLE", f"{why}; the cached answer is unusable ({exc.code})")
        return _validation(doc, stale=True)

    def _call(self, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        nonce = secrets.token_urlsafe(16)
        r = self.http.request(method, f"{self.base_url}{path}", headers={"Authorization": f"License {key}"},
                              json={**(body or {}), "nonce": nonce})  # fmt: skip
        if r.status_code >= 300:
            raise LicenseError(_problem_code(r), _problem_detail(r))
        return self._signed(r, nonce)["data"]  # type: ignore[no-any-return]

    def activate(self, key: str, fingerprint: str, *, name: str = "", platform: str = "") -> dict[str, Any]:
        return self._call("POST", "/machines/actions/activate", key,
                          {"fingerprint": fingerprint, "name": name, "platform": platform})  # fmt: skip

    def heartbeat(self, key: str, machine_id: str) -> dict[str, Any]:
        return self._call("POST", f"/machines/{machine_id}/actions/heartbeat", key)

    def deactivate(self, key: str, machine_id: str) -> dict[str, Any]:
        return self._call("POST", f"/machines/{machine_id}/actions/deactivate", key)

    def checkout(self, key: str, *, fingerprint: str | None = None, ttl: int | None = None) -> str:
        body: dict[str, Any] = {"fingerprint": fingerprint, "ttl": ttl}
        data = self._call("POST", "/licenses/me/checkout", key, {k: v for k, v in body.items() if v is not None})
        return str(data["certificate"])


def _validation(doc: dict[str, Any], *, stale: bool) -> Validation:
    meta = doc["meta"]
    return Validation(bool(meta.get("valid")) is True and meta.get("code") == "VALID", str(meta.get("code")),
                      str(meta.get("detail", "")), doc.get("data"), meta.get("machine"), stale, meta)  # fmt: skip


def _problem_code(r: httpx2.Response) -> str:
    try:
        return str(r.json().get("code") or f"HTTP_{r.status_code}")
    except ValueError:
        return f"HTTP_{r.status_code}"


def _problem_detail(r: httpx2.Response) -> str:
    try:
        return str(r.json().get("detail") or r.reason_phrase)
    except ValueError:
        return r.reason_phrase
