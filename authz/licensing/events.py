"""Licensing webhooks (``license.expiring``, ``machine.heartbeat.dead``) through the budgets' outbox.

Endpoints live in ``license_webhooks`` (secret: a Standard Webhooks ``whsec_`` value, encrypted with
the keyring, shown once). Events go into the shared ``webhook_outbox`` and are delivered, signed and
retried by the one :class:`authz.budgets.webhooks.WebhookWorker`; in those rows ``budget_id`` holds
the subject (license or machine id), ``period_key`` the event's natural key (e.g. ``dead:<basis>``)
and ``threshold`` is 0, so the outbox's unique constraint makes every announcement exactly-once.
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, select

from authz.budgets.webhooks import enqueue_event
from authz.core.crypto import Keyring
from authz.storage.models.licensing import LicenseWebhookRow

PREFIX = "lwh_"
EVENTS = ("license.expiring", "machine.heartbeat.dead")
W = cast(Table, LicenseWebhookRow.__table__)


def _context(endpoint_id: str) -> bytes:
    return f"license-webhook:{endpoint_id}".encode()


class LicenseWebhooks:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine, self.keyring = engine, keyring

    def add(self, url: str) -> tuple[Any, str]:
        """A new endpoint and its secret (returned once)."""
        endpoint_id = PREFIX + secrets.token_hex(10)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        values = {
            "id": endpoint_id,
            "url": url,
            "created_at": int(time.time()),
            "secret_enc": self.keyring.encrypt(secret.encode(), _context(endpoint_id)),
        }
        with self.engine.begin() as conn:
            conn.execute(W.insert().values(**values))
            row = conn.execute(select(W).where(W.c.id == endpoint_id)).one()
        return row, secret

    def list(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(W).order_by(W.c.created_at, W.c.id)).all())

    def delete(self, endpoint_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(W).where(W.c.id == endpoint_id)).rowcount)

    def target(self, endpoint_id: str) -> tuple[str, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(W).where(W.c.id == endpoint_id)).first()
        if row is None:
            return None
        return row.url, self.keyring.decrypt(row.secret_enc, _context(endpoint_id)).decode()

    def enqueue(self, event: str, subject_id: str, natural_key: str, data: dict[str, Any], now: float) -> int:
        """One outbox row per endpoint unless this (subject, key) was already announced to it."""
        endpoints = [ep.id for ep in self.list()]
        if not endpoints:
            return 0
        with self.engine.begin() as conn:
            return enqueue_event(
                conn,
                source=subject_id,
                key=natural_key[:32],
                event_type=event,
                endpoint_ids=endpoints,
                data=data,
                at_ms=int(now * 1000),
            )
