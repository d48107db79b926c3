"""Licenses: products, licenses (status, expiry, machine limit, owner) and their machines with their
heartbeat state (computed at read time by :class:`authz.licensing.liveness.Heartbeats`, as the
licensing service does). Read-only here; never a license key (only its digest is stored)."""

from __future__ import annotations

import time
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from authz.console import queries
from authz.console.web import Viewer, ctx_of, handler, render
from authz.context import Context
from authz.licensing.liveness import Heartbeats
from authz.licensing.store import LicenseStore, M

PAGE = 50
MACHINES = 200


def load(ctx: Context, status: str) -> dict[str, Any]:
    store = LicenseStore(queries.engine_of(ctx))
    products = {p.id: p for p in store.products()}
    policies = {p.id: p for p in store.policies()}
    licenses = list(store.licenses(product_id=None, status=status or None, owner=None, after=None, limit=PAGE))
    ids = [lic.id for lic in licenses]
    with store.engine.connect() as conn:
        q = select(M).where(M.c.license_id.in_(ids)).order_by(M.c.license_id, M.c.created_at).limit(MACHINES)
        machines = conn.execute(q).all() if ids else []
    now = time.time()
    by_license: dict[str, list[dict[str, Any]]] = {}
    policy_of = {lic.id: policies.get(lic.policy_id) for lic in licenses}
    for m in machines:
        pol = policy_of.get(m.license_id)
        beats = (
            Heartbeats(pol.heartbeat_interval, pol.cull_strategy, pol.resurrection_window) if pol else Heartbeats(None)
        )
        by_license.setdefault(m.license_id, []).append(
            {"machine": m, "state": beats.status(m.created_at, m.last_heartbeat_at, now)}
        )
    return {"products": products, "policies": policies, "licenses": licenses, "machines": by_license}


@handler()
async def licenses_page(request: Request, viewer: Viewer) -> Response:
    ctx = ctx_of(request)
    status = request.query_params.get("status", "")
    status = status if status in ("active", "suspended", "revoked") else ""
    data = await anyio.to_thread.run_sync(load, ctx, status)
    return render(request, "licenses.html", {
        "me": viewer, "title": "Licenses", "nav": "licenses", "status": status, **data,
    })  # fmt: skip
