"""Client-facing licensing endpoints (under ``/api/v1``): the license key is the credential.

``POST /licenses/actions/validate-key`` needs no authentication at all; the others take
``Authorization: License <key>``. Every 2xx answer is signed: ``Authz-Signature: keyid=..,
algorithm="ed25519", signature=<base64 Ed25519 over "response/" + body>``, keys at
``GET /licenses/jwks``; the request's ``nonce`` is echoed in ``meta.nonce`` *inside* the signed body,
with ``meta.ts`` (the server's Unix time), so a captured answer cannot be replayed for another request.
Errors are RFC 9457 problems (with a ``code`` when a license state refused the action); unknown and
malformed keys count against a per-IP miss limit, every request against per-IP and per-key limits
(429 + ``Retry-After``). Keys never reach a log or the audit trail (the license id does).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from authz.admin.problems import ApiProblem
from authz.identity.agents.errors import AgentError, Invalid
from authz.identity.agents.validation import Problems
from authz.licensing import inputs
from authz.licensing.files import iso
from authz.licensing.keys import MalformedKey
from authz.licensing.service import LicenseRefused, Licensing
from authz.licensing.signing import SIGNATURE_HEADER
from authz.licensing.validation import LicenseView, Scope, validate
from authz.licensing.views import license_json, machine_json
from guard.jsonload import JsonRefused, load_json

log = logging.getLogger("authz.licensing")
MAX_BODY = 16 * 1024
REALM = "authz-licensing"
REFUSED_TYPE = "urn:authz:problem:license-refused"


class Refusal(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _svc(request: Request) -> Licensing:
    svc: Licensing | None = request.app.state.ctx.licensing
    assert svc is not None
    return svc


def refused(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "type": REFUSED_TYPE,
        "title": "Refused by the license's state",
        "status": status,
        "detail": detail,
        "code": code,
    }
    return Response(
        json.dumps(body, separators=(",", ":")),
        status,
        {"Cache-Control": "no-store", **(headers or {})},
        media_type="application/problem+json",
    )


def signed(svc: Licensing, status: int, data: Any, meta: dict[str, Any]) -> Response:
    body = json.dumps({"data": data, "meta": meta}, separators=(",", ":")).encode()
    headers = {SIGNATURE_HEADER: svc.keys.active().header(body), "Cache-Control": "no-store"}
    return Response(body, status, headers, media_type="application/json")


def _meta(svc: Licensing, nonce: str | int | None, **extra: Any) -> dict[str, Any]:
    now = svc.clock()
    return {**extra, "nonce": nonce, "ts": int(now), "date": iso(now)}


async def _body(request: Request, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiProblem(413, "The request body is too large.")
    if not raw.strip() and not required:
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiProblem(415, "The request body must be application/json.")
    try:
        data = load_json(raw, max_bytes=MAX_BODY)
    except JsonRefused as exc:  # as the admin API: a syntax problem is 400, 422 is for well-formed content
        raise ApiProblem(400, str(exc), errors=[("body", str(exc))]) from exc
    if not isinstance(data, dict):
        raise ApiProblem(422, "The request body must be a JSON object.", errors=[("body", "must be an object")])
    return data


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limit(
    svc: Licensing, kind: str, ident: str, *, count: bool = True, ip: str, license_id: str | None = None
) -> None:
    hit = svc.limiter.hit(kind, ident) if count else svc.limiter.over(kind, ident)
    if hit is None:
        return
    retry, first = hit
    if first:  # once per bucket and window: a guessing run is visible without flooding the trail
        log.warning("licensing rate limit (%s) reached from %s", kind, ip)
        svc.audit.refusal("license.rate_limited", resource=license_id, reason=kind, ip=ip)
    raise ApiProblem(429, "Too many requests; retry later.", headers={"Retry-After": str(retry)})


def _digest(svc: Licensing, key: Any, ip: str, field: str) -> str:
    try:
        _, digest = svc.digest(key)
    except MalformedKey as exc:
        svc.limiter.count("miss", ip)
        raise Invalid([(field, str(exc))]) from None
    return digest


async def _licensed(request: Request) -> tuple[Licensing, LicenseView, str]:
    """The license named by ``Authorization: License <key>`` (401 otherwise), and the canonical key."""
    svc = _svc(request)
    ip = _ip(request)
    challenge = {"WWW-Authenticate": f'License realm="{REALM}"'}
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "license" or not key.strip():
        raise ApiProblem(401, "This endpoint needs Authorization: License <key>.", headers=challenge)
    _limit(svc, "miss", ip, count=False, ip=ip)
    _limit(svc, "ip", ip, ip=ip)
    try:
        canonical, digest = svc.digest(key.strip())
    except MalformedKey:
        svc.limiter.count("miss", ip)
        raise ApiProblem(401, "The license key is malformed.", headers=challenge) from None
    _limit(svc, "key", digest, ip=ip)
    view = await anyio.to_thread.run_sync(svc.lookup, digest)
    if view is None:
        svc.limiter.count("miss", ip)
        raise ApiProblem(401, "No license has this key.", headers=challenge)
    return svc, view, canonical


def endpoint(handler: Any) -> Any:
    async def run(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except ApiProblem as problem:
            return problem.response()
        except Invalid as exc:
            return ApiProblem(422, "The request has invalid fields.", errors=exc.errors).response()
        except LicenseRefused as exc:
            return refused(exc.status, exc.code, exc.detail)
        except AgentError as exc:
            return ApiProblem(exc.status, str(exc)).response()
        except Exception:
            log.exception("licensing endpoint %s failed", request.url.path)
            return ApiProblem(500, "The server encountered an unexpected condition.").response()

    run.__name__ = handler.__name__
    return run


def _scope(p: Problems, value: Any) -> Scope:
    if value is None:
        return Scope()
    if not isinstance(value, dict):
        p.add("scope", "must be an object")
        return Scope()
    unknown = sorted(set(value) - {"product", "fingerprint", "entitlements"})
    if unknown:
        p.add("scope", "unknown members: " + ", ".join(unknown))
    product = inputs.text(p, "scope.product", value.get("product"), max_len=64) or None
    fingerprint = inputs.fingerprint(p, value.get("fingerprint"), "scope.fingerprint", required=False) or None
    return Scope(product, fingerprint, inputs.entitlements(p, value.get("entitlements"), "scope.entitlements"))


@endpoint
async def validate_key(request: Request) -> Response:
    svc = _svc(request)
    body = await _body(request)
    p = Problems()
    nonce = inputs.nonce(p, body.get("nonce"))
    scope = _scope(p, body.get("scope"))
    key = body.get("key")
    if not isinstance(key, str) or not key:
        p.add("key", "is required (a license key)")
    p.raise_any()
    ip = _ip(request)
    _limit(svc, "miss", ip, count=False, ip=ip)
    _limit(svc, "ip", ip, ip=ip)
    digest = _digest(svc, key, ip, "key")
    _limit(svc, "key", digest, ip=ip)
    hit, view = svc.cached(digest)
    if not hit:
        view = await anyio.to_thread.run_sync(svc.lookup, digest)
    now = svc.clock()
    result = validate(view, scope, now)
    if view is None:
        svc.limiter.count("miss", ip)
    if not result.valid:
        svc.audit.refusal("license.validation_failed", resource=view.id if view else None, reason=result.code, ip=ip)
    scope_out = {"product": scope.product, "fingerprint": scope.fingerprint, "entitlements": list(scope.entitlements)}
    machine = machine_json(result.machine, view, now) if result.machine and view else None
    meta = _meta(
        svc, nonce, valid=result.valid, code=result.code, detail=result.detail, scope=scope_out, machine=machine
    )
    return signed(svc, 200, license_json(view, now) if view else None, meta)


@endpoint
async def me(request: Request) -> Response:
    svc, view, _ = await _licensed(request)
    p = Problems()
    nonce = inputs.nonce(p, request.query_params.get("nonce"))
    p.raise_any()
    return signed(svc, 200, license_json(view, svc.clock(), machines=True), _meta(svc, nonce))


@endpoint
async def activate(request: Request) -> Response:
    svc, view, _ = await _licensed(request)
    body = await _body(request)
    p = Problems()
    nonce = inputs.nonce(p, body.get("nonce"))
    fp = inputs.fingerprint(p, body.get("fingerprint"))
    name = inputs.text(p, "name", body.get("name"), max_len=inputs.MAX_NAME)
    platform = inputs.text(p, "platform", body.get("platform"), max_len=inputs.MAX_PLATFORM)
    p.raise_any()
    act = await anyio.to_thread.run_sync(
        lambda: svc.activate(view.id, fingerprint=fp, name=name, platform=platform, actor=f"license:{view.id}")
    )
    fresh = await anyio.to_thread.run_sync(svc.view, view.id)
    return signed(
        svc,
        201 if act.created else 200,
        machine_json(act.machine, fresh, svc.clock()),
        _meta(svc, nonce, created=act.created),
    )


@endpoint
async def heartbeat(request: Request) -> Response:
    svc, view, _ = await _licensed(request)
    body = await _body(request, required=False)
    p = Problems()
    nonce = inputs.nonce(p, body.get("nonce"))
    p.raise_any()
    machine_id = request.path_params["machine_id"]
    m = await anyio.to_thread.run_sync(lambda: svc.heartbeat(view.id, machine_id, actor=f"license:{view.id}"))
    return signed(svc, 200, machine_json(m, view, svc.clock()), _meta(svc, nonce))


@endpoint
async def deactivate(request: Request) -> Response:
    svc, view, _ = await _licensed(request)
    body = await _body(request, required=False)
    p = Problems()
    nonce = inputs.nonce(p, body.get("nonce"))
    p.raise_any()
    machine_id = request.path_params["machine_id"]
    await anyio.to_thread.run_sync(lambda: svc.deactivate(view.id, machine_id, actor=f"license:{view.id}"))
    return signed(svc, 200, {"id": machine_id, "license_id": view.id, "deactivated": True}, _meta(svc, nonce))


@endpoint
async def checkout(request: Request) -> Response:
    svc, view, canonical = await _licensed(request)
    body = await _body(request, required=False)
    p = Problems()
    nonce = inputs.nonce(p, body.get("nonce"))
    fp = inputs.fingerprint(p, body.get("fingerprint"), required=False) or None
    ttl = inputs.ttl(p, body.get("ttl"))
    encrypt = body.get("encrypt", True)
    if not isinstance(encrypt, bool):
        p.add("encrypt", "must be true or false")
    p.raise_any()
    fresh = await anyio.to_thread.run_sync(svc.view, view.id)
    machine = None
    if fp is not None:
        machine = next((m for m in fresh.live_machines(svc.clock()) if m.fingerprint == fp), None)
        if machine is None:
            raise LicenseRefused(409, "FINGERPRINT_SCOPE_MISMATCH", "no machine of the license has this fingerprint")
    out = await anyio.to_thread.run_sync(
        lambda: svc.checkout(
            fresh, machine=machine, ttl=ttl, license_key=canonical if encrypt else None, actor=f"license:{view.id}"
        )
    )
    return signed(svc, 200, out, _meta(svc, nonce))


async def jwks(request: Request) -> Response:
    keys = await anyio.to_thread.run_sync(_svc(request).keys.jwks)
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})
