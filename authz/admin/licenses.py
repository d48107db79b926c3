"""``/products``, ``/license-policies``, ``/licenses``, ``/machines``, ``/license-webhooks``: licensing
for operators (bearer tokens with ``admin:read`` / ``admin:write``). Client-facing, key-authenticated
endpoints are in :mod:`authz.admin.licensing_http`."""

from __future__ import annotations

import json
from typing import Any

from authz.admin.api import Call, Operation, QueryParam
from authz.admin.problems import ApiProblem
from authz.admin.schemas import StatusChange
from authz.core.crypto import b64url, b64url_decode
from authz.core.fetch import FetchError, check_url
from authz.identity.agents.errors import Conflict, NotFound, invalid
from authz.identity.agents.validation import Problems
from authz.licensing import inputs
from authz.licensing.files import iso
from authz.licensing.schemas import (
    AgentLinkIn,
    AgentLinkOut,
    CheckoutIn,
    CheckoutOut,
    Deactivated,
    LicenseCreate,
    LicenseCreated,
    LicenseList,
    LicenseOut,
    MachineList,
    MachineOut,
    PolicyIn,
    PolicyList,
    PolicyOut,
    ProductIn,
    ProductList,
    ProductOut,
    WebhookCreated,
    WebhookIn,
    WebhookList,
    WebhookOut,
)
from authz.licensing.service import STATUSES, LicenseRefused, Licensing
from authz.licensing.views import license_json, machine_json
from guard.jsonload import load_json

READ, WRITE = "admin:read", "admin:write"
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


def _svc(call: Call) -> Licensing:
    assert call.ctx.licensing is not None
    return call.ctx.licensing


def create_product(call: Call) -> tuple[int, ProductOut]:
    body: ProductIn = call.body
    return 201, ProductOut.of(_svc(call).create_product(code=body.code, name=body.name, actor=call.actor))


def list_products(call: Call) -> tuple[int, ProductList]:
    return 200, ProductList(items=[ProductOut.of(r) for r in _svc(call).store.products()])


def create_license_policy(call: Call) -> tuple[int, PolicyOut]:
    body: PolicyIn = call.body
    values = body.model_dump()
    row = _svc(call).create_policy(product=values.pop("product"), actor=call.actor, **values)
    return 201, PolicyOut.of(row)


def list_license_policies(call: Call) -> tuple[int, PolicyList]:
    svc = _svc(call)
    product_id = None
    if call.query.get("product"):
        prod = svc.store.product(call.query["product"])
        if prod is None:
            return 200, PolicyList(items=[])
        product_id = prod.id
    return 200, PolicyList(items=[PolicyOut.of(r) for r in svc.store.policies(product_id)])


def _license_out(svc: Licensing, license_id: str, machines: bool = False) -> dict[str, Any]:
    return license_json(svc.view(license_id), svc.clock(), machines=machines)


def create_license(call: Call) -> tuple[int, LicenseCreated]:
    body: LicenseCreate = call.body
    values = body.model_dump()
    svc = _svc(call)
    row, key = svc.create_license(policy=values.pop("policy"), actor=call.actor, **values)
    return 201, LicenseCreated(**_license_out(svc, row.id), key=key)


def list_licenses(call: Call) -> tuple[int, LicenseList]:
    svc, q = _svc(call), call.query
    p = Problems()
    limit = DEFAULT_LIMIT
    if "limit" in q:
        limit = int(q["limit"]) if q["limit"].isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            p.add("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    status = q.get("status")
    if status is not None and status not in STATUSES:
        p.add("status", f"must be one of {', '.join(STATUSES)}")
    after = _cursor(q["cursor"]) if "cursor" in q else None
    if "cursor" in q and after is None:
        p.add("cursor", "is not a cursor this API returned")
    if p.errors:
        raise ApiProblem(422, "The query has invalid parameters.", errors=p.errors)
    product_id = None
    if q.get("product"):
        prod = svc.store.product(q["product"])
        if prod is None:
            return 200, LicenseList(items=[], next_cursor=None)
        product_id = prod.id
    rows = svc.store.licenses(
        product_id=product_id, status=status, owner=q.get("owner") or None, after=after, limit=limit + 1
    )
    page = rows[:limit]
    nxt = b64url(json.dumps([page[-1].created_at, page[-1].id]).encode()) if len(rows) > limit and page else None
    return 200, LicenseList(items=[LicenseOut(**_license_out(svc, r.id)) for r in page], next_cursor=nxt)


def _cursor(text: str) -> tuple[int, str] | None:
    try:
        value = load_json(b64url_decode(text), max_bytes=1024)
    except ValueError:
        return None
    ok = isinstance(value, list) and len(value) == 2 and type(value[0]) is int and isinstance(value[1], str)
    return (value[0], value[1]) if ok else None


def get_license(call: Call) -> tuple[int, LicenseOut]:
    return 200, LicenseOut(**_license_out(_svc(call), call.path["license_id"], machines=True))


def _status(status: str) -> Any:
    def change(call: Call) -> tuple[int, LicenseOut]:
        body: StatusChange = call.body
        svc = _svc(call)
        svc.change_status(call.path["license_id"], status, actor=call.actor, reason=body.reason)
        return 200, LicenseOut(**_license_out(svc, call.path["license_id"]))

    return change


suspend_license, reinstate_license, revoke_license = _status("suspended"), _status("active"), _status("revoked")
suspend_license.__name__, reinstate_license.__name__ = "suspend_license", "reinstate_license"
revoke_license.__name__ = "revoke_license"


def checkout_license(call: Call) -> tuple[int, CheckoutOut]:
    """Operators never hold the key (only its digest), so their files are ``base64+ed25519``."""
    body: CheckoutIn = call.body
    svc = _svc(call)
    p = Problems()
    fp = inputs.fingerprint(p, body.fingerprint, required=False) or None
    ttl = inputs.ttl(p, body.ttl)
    p.raise_any()
    lic = svc.view(call.path["license_id"])
    machine = None
    if fp is not None:
        machine = next((m for m in lic.live_machines(svc.clock()) if m.fingerprint == fp), None)
        if machine is None:
            raise invalid("fingerprint", "no machine of this license has this fingerprint")
    try:
        out = svc.checkout(lic, machine=machine, ttl=ttl, license_key=None, actor=call.actor)
    except LicenseRefused as exc:  # suspended, revoked or expired: no file for it
        raise Conflict(f"{exc.detail} ({exc.code})") from None
    return 200, CheckoutOut(**out)


def attach_agent(call: Call) -> tuple[int, AgentLinkOut]:
    body: AgentLinkIn = call.body
    _svc(call).attach_agent(call.path["license_id"], body.agent_id, actor=call.actor)
    return 200, AgentLinkOut(license_id=call.path["license_id"], agent_id=body.agent_id)


def list_machines(call: Call) -> tuple[int, MachineList]:
    svc = _svc(call)
    license_id = call.query.get("license_id") or None
    out = []
    views: dict[str, Any] = {}
    for row in svc.store.machines(license_id):
        view = views.get(row.license_id) or views.setdefault(row.license_id, svc.view(row.license_id))
        out += [MachineOut(**machine_json(m, view, svc.clock())) for m in view.machines if m.id == row.id]
    return 200, MachineList(items=out)


def _machine(call: Call) -> tuple[Licensing, Any, Any]:
    svc = _svc(call)
    row = svc.store.machine(call.path["machine_id"])
    if row is None:
        raise NotFound(f"no machine {call.path['machine_id']!r}")
    view = svc.view(row.license_id)
    m = next(m for m in view.machines if m.id == row.id)
    return svc, view, m


def get_machine(call: Call) -> tuple[int, MachineOut]:
    svc, view, m = _machine(call)
    return 200, MachineOut(**machine_json(m, view, svc.clock()))


def deactivate_machine(call: Call) -> tuple[int, Deactivated]:
    svc, view, m = _machine(call)
    svc.deactivate(view.id, m.id, actor=call.actor)
    return 200, Deactivated(id=m.id, license_id=view.id, deactivated=True)


def create_license_webhook(call: Call) -> tuple[int, WebhookCreated]:
    body: WebhookIn = call.body
    try:
        check_url(body.url, call.ctx.settings.cimd_allow_loopback)
    except FetchError as exc:
        raise invalid("url", f"not an allowed webhook URL ({exc})") from None
    if len(body.url) > 2048:
        raise invalid("url", "must be at most 2048 characters")
    row, secret = _svc(call).webhooks.add(body.url)
    _svc(call).audit.operator_change("license_webhook", "created", actor=call.actor, target=row.id)
    return 201, WebhookCreated(id=row.id, url=row.url, created_at=iso(row.created_at), secret=secret)


def list_license_webhooks(call: Call) -> tuple[int, WebhookList]:
    rows = _svc(call).webhooks.list()
    return 200, WebhookList(items=[WebhookOut(id=r.id, url=r.url, created_at=iso(r.created_at)) for r in rows])


def delete_license_webhook(call: Call) -> tuple[int, WebhookOut]:
    svc = _svc(call)
    rows = {r.id: r for r in svc.webhooks.list()}
    row = rows.get(call.path["webhook_id"])
    if row is None or not svc.webhooks.delete(row.id):
        raise NotFound(f"no webhook {call.path['webhook_id']!r}")
    svc.audit.operator_change("license_webhook", "deleted", actor=call.actor, target=row.id)
    return 200, WebhookOut(id=row.id, url=row.url, created_at=iso(row.created_at))


LIST_QUERY = (
    QueryParam("product", {"type": "string"}, "Only licenses of this product (id or code)."),
    QueryParam("status", {"type": "string", "enum": list(STATUSES)}, "Only licenses in this status."),
    QueryParam("owner", {"type": "string"}, "Only licenses of this owner (user id or customer)."),
    QueryParam(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size."
    ),
    QueryParam("cursor", {"type": "string"}, "The next_cursor of the previous page."),
)
LIC, MACH = "/licenses/{license_id}", "/machines/{machine_id}"
WH = "/license-webhooks"

OPERATIONS = [
    Operation(
        "POST", "/products", create_product, WRITE, "Create a product", ProductOut, 201, ProductIn, errors=(409,)
    ),
    Operation("GET", "/products", list_products, READ, "List products", ProductList, errors=()),
    Operation(
        "POST",
        "/license-policies",
        create_license_policy,
        WRITE,
        "Create a license policy",
        PolicyOut,
        201,
        PolicyIn,
        errors=(),
    ),
    Operation(
        "GET",
        "/license-policies",
        list_license_policies,
        READ,
        "List license policies",
        PolicyList,
        query=(QueryParam("product", {"type": "string"}, "Only policies of this product (id or code)."),),
        errors=(),
    ),
    Operation(
        "POST",
        "/licenses",
        create_license,
        WRITE,
        "Create a license (its key is shown once)",
        LicenseCreated,
        201,
        LicenseCreate,
        errors=(),
    ),
    Operation("GET", "/licenses", list_licenses, READ, "List licenses", LicenseList, query=LIST_QUERY, errors=()),
    Operation("GET", LIC, get_license, READ, "Read a license and its machines", LicenseOut),
    Operation(
        "POST",
        LIC + "/suspend",
        suspend_license,
        WRITE,
        "Suspend a license: it stops validating, the agents it pays for are suspended (their tokens die)",
        LicenseOut,
        body=StatusChange,
        body_required=False,
        errors=(404, 409),
    ),
    Operation(
        "POST",
        LIC + "/reinstate",
        reinstate_license,
        WRITE,
        "Reinstate a suspended license",
        LicenseOut,
        body=StatusChange,
        body_required=False,
        errors=(404, 409),
    ),
    Operation(
        "POST",
        LIC + "/revoke",
        revoke_license,
        WRITE,
        "Revoke a license for good (its agents are suspended)",
        LicenseOut,
        body=StatusChange,
        body_required=False,
        errors=(404, 409),
    ),
    Operation(
        "POST",
        LIC + "/checkout",
        checkout_license,
        WRITE,
        "Check out a signed license (or machine) file",
        CheckoutOut,
        body=CheckoutIn,
        body_required=False,
        errors=(404, 409),
    ),
    Operation(
        "POST",
        LIC + "/agents",
        attach_agent,
        WRITE,
        "Link an agent to the license that pays for it",
        AgentLinkOut,
        body=AgentLinkIn,
    ),
    Operation(
        "GET",
        "/machines",
        list_machines,
        READ,
        "List machines",
        MachineList,
        query=(QueryParam("license_id", {"type": "string"}, "Only machines of this license."),),
        errors=(),
    ),
    Operation("GET", MACH, get_machine, READ, "Read a machine (heartbeat status computed now)", MachineOut),
    Operation("DELETE", MACH, deactivate_machine, WRITE, "Deactivate a machine (frees its seat)", Deactivated),
    Operation(
        "POST",
        WH,
        create_license_webhook,
        WRITE,
        "Add a licensing webhook endpoint (secret shown once)",
        WebhookCreated,
        201,
        WebhookIn,
        errors=(),
    ),
    Operation("GET", WH, list_license_webhooks, READ, "List licensing webhook endpoints", WebhookList, errors=()),
    Operation(
        "DELETE", WH + "/{webhook_id}", delete_license_webhook, WRITE, "Delete a licensing webhook endpoint", WebhookOut
    ),
]
