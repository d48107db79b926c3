"""Billing webhook endpoints and events (``invoice.finalized``, ``credits.low``) through the budgets'
Standard Webhooks outbox (:func:`authz.budgets.webhooks.enqueue_event`): one durable, signed,
retried delivery per event and endpoint, enqueued in the transaction that finalizes the invoice.

Endpoint secrets (``whsec_...``) are encrypted with the keyring (the endpoint id as associated
data) and shown once, when the endpoint is created.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from authz.billing.errors import BillingError
from authz.billing.store import new_id
from authz.budgets.store import SECRET_PREFIX, new_webhook_secret
from authz.budgets.webhooks import enqueue_event
from authz.core.crypto import Keyring
from authz.storage.models.billing import BillingWebhook

EVENTS = ("invoice.finalized", "credits.low")
ENDPOINTS = text("SELECT id FROM billing_webhooks ORDER BY id")
MAX_ENDPOINTS = 10


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    url: str
    created_at: int
    secret: str | None = None  # only when just created


def _context(endpoint_id: str) -> bytes:
    return b"authz billing webhook v1:" + endpoint_id.encode()


class BillingWebhooks:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring

    def add(self, url: str, secret: str | None = None, description: str = "") -> Endpoint:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname or len(url) > 2048:
            raise BillingError("must be an absolute http(s) URL", "url")
        secret = secret or new_webhook_secret()
        try:
            raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except ValueError:
            raw = b""
        if not secret.startswith(SECRET_PREFIX) or not 24 <= len(raw) <= 64:
            raise BillingError("must be a Standard Webhooks secret: whsec_ + base64 of 24-64 bytes", "secret")
        endpoint_id = new_id("bwh")
        now = int(time.time())
        with Session(self.engine) as s, s.begin():
            if len(s.scalars(select(BillingWebhook.id)).all()) >= MAX_ENDPOINTS:
                raise BillingError(f"at most {MAX_ENDPOINTS} billing webhook endpoints", "url")
            s.add(
                BillingWebhook(
                    id=endpoint_id,
                    url=url,
                    description=description[:500],
                    created_at=now,
                    secret_enc=self.keyring.encrypt(secret.encode(), _context(endpoint_id)),
                )
            )
        return Endpoint(endpoint_id, url, now, secret)

    def list(self) -> list[Endpoint]:
        with Session(self.engine) as s:
            rows = s.scalars(select(BillingWebhook).order_by(BillingWebhook.id))
            return [Endpoint(r.id, r.url, r.created_at) for r in rows]

    def remove(self, endpoint_id: str) -> bool:
        with Session(self.engine) as s, s.begin():
            row = s.get(BillingWebhook, endpoint_id)
            if row is None:
                return False
            s.delete(row)
            return True

    def target(self, endpoint_id: str) -> tuple[str, str] | None:
        """``(url, secret)`` for the outbox worker; None for ids that are not billing endpoints."""
        if not endpoint_id.startswith("bwh_"):
            return None
        with Session(self.engine) as s:
            row = s.get(BillingWebhook, endpoint_id)
            if row is None:
                return None
            return row.url, self.keyring.decrypt(row.secret_enc, _context(endpoint_id)).decode()


def endpoints(conn: Connection) -> list[str]:
    return list(conn.execute(ENDPOINTS).scalars())


def emit(
    conn: Connection,
    source: str,
    event_type: str,
    data: dict[str, Any],
    at_ms: int,
    endpoint_ids: list[str] | None = None,
) -> int:
    """Enqueue ``event_type`` for every billing endpoint (``endpoint_ids``: already read in this
    transaction), inside the caller's transaction."""
    targets = endpoint_ids if endpoint_ids is not None else endpoints(conn)
    if not targets:
        return 0
    return enqueue_event(
        conn, source=source, key=event_type, event_type=event_type, endpoint_ids=targets, data=data, at_ms=at_ms
    )
