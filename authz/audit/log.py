"""Append-only, tamper-evident audit events: issued, refused (with reason), revoked, changes.

Events are buffered and written in batches by one background thread, so recording one costs the
hot path a list append; each batch extends the hash chain (``authz.storage.chain``) in one
transaction. Secrets and raw tokens never enter an event: ``detail`` keys that could carry one are
dropped, and callers pass identifiers (client id, subject, jti), never values.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from authz.storage.protocols import AuditStore

log = logging.getLogger("authz.audit")

FORBIDDEN_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "token",
        "code",
        "code_verifier",
        "client_secret",
        "password",
        "assertion",
        "client_assertion",
        "subject_token",
        "actor_token",
        "secret",
        "authorization",
    }
)


class AuditLog:
    def __init__(self, store: AuditStore, flush_interval: float = 0.2, max_batch: int = 500) -> None:
        self._store = store
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._interval, self._max_batch = flush_interval, max_batch
        self._thread: threading.Thread | None = None

    def record(
        self,
        event: str,
        outcome: str = "success",
        *,
        client_id: str | None = None,
        subject: str | None = None,
        resource: str | None = None,
        reason: str | None = None,
        **detail: Any,
    ) -> None:
        clean = {k: v for k, v in detail.items() if k not in FORBIDDEN_KEYS and v is not None}
        entry = {
            "at": int(time.time()),
            "event": event,
            "outcome": outcome,
            "client_id": client_id,
            "subject": subject,
            "resource": resource,
            "reason": reason,
            "detail": clean,
        }
        with self._lock:
            self._buffer.append(entry)
            full = len(self._buffer) >= self._max_batch
        if full or self._thread is None:
            self._wake.set()
            if self._thread is None:
                self.flush()

    def flush(self) -> None:
        """Persist every event recorded before this call (waits for a flush already under way)."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                self._store.append_audit(batch)
            except Exception:
                log.exception("audit flush failed; %d events kept for the next attempt", len(batch))
                with self._lock:
                    self._buffer[:0] = batch

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="authz-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
