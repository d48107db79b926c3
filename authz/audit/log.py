"""Append-only, tamper-evident audit events: issued, refused (with reason), revoked, changes.

Events are buffered and written in batches by one background thread, so recording one costs the
hot path a list append; each batch extends the hash chain and the Merkle tree in one transaction
(``authz.audit.store``), then the checkpointer signs the tree when one is due. Secrets and raw
tokens never enter an event: ``detail`` keys that could carry one are dropped, and callers pass
identifiers (client id, subject, jti), never values.

Floods never drop a record: ``refusal(...)`` writes the first event of a
kind in full and folds its repeats within one flush interval into one record carrying ``count``,
``first_at`` and ``last_at``; past ``max_keys`` distinct kinds per interval the rest are folded into
one ``audit.aggregated`` record per event name. Operator changes go through :meth:`operator_change`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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


AGGREGATE_FIELDS = ("event", "outcome", "client_id", "subject", "resource", "reason")


class AuditLog:
    def __init__(
        self, store: AuditStore, flush_interval: float = 0.2, max_batch: int = 500, max_keys: int = 1000
    ) -> None:
        self._store = store
        self._buffer: list[dict[str, Any]] = []
        self._folded: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._max_keys = max_keys
        self.after_flush: Callable[[int], None] | None = None  # told how many records were written (checkpoints)
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
        self._add(event, outcome, client_id, subject, resource, reason, detail, fold=False)

    def refusal(
        self,
        event: str,
        *,
        client_id: str | None = None,
        subject: str | None = None,
        resource: str | None = None,
        reason: str | None = None,
        **detail: Any,
    ) -> None:
        """A ``failure`` record whose repeats within one flush interval are folded into one with a count."""
        self._add(event, "failure", client_id, subject, resource, reason, detail, fold=True)

    def _add(
        self,
        event: str,
        outcome: str,
        client_id: str | None,
        subject: str | None,
        resource: str | None,
        reason: str | None,
        detail: dict[str, Any],
        fold: bool,
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
            if fold and self._fold(entry):
                return
            self._buffer.append(entry)
            full = len(self._buffer) >= self._max_batch
        if full or self._thread is None:
            self._wake.set()
            if self._thread is None:
                self.flush()

    def operator_change(self, kind: str, action: str, *, actor: str, target: str | None = None, **detail: Any) -> None:
        """Record a change an operator made: event ``<kind>.<action>`` (``plan.created``,
        ``license.suspended``, ``policy.deployed``), ``actor`` = the admin client id or ``cli``, ``target`` =
        what changed (an id), ``detail`` = what is needed to see the change (a sha256, old/new values),
        never a secret. Every change made through ``/api/v1`` or the CLI should call this once."""
        self.record(f"{kind}.{action}", resource=target, actor=actor, operator_change=True, **detail)

    def _fold(self, entry: dict[str, Any]) -> bool:
        """True when ``entry`` was folded into an earlier one of this interval (caller holds the lock)."""
        key = tuple(entry[f] for f in AGGREGATE_FIELDS)
        folded = self._folded.get(key)
        if folded is None:
            if len(self._folded) < self._max_keys:
                self._folded[key] = {"entry": entry, "count": 0, "last_at": entry["at"]}
                return False  # the first one is written in full
            key = ("audit.aggregated", entry["event"])
            folded = self._folded.setdefault(key, {"entry": {**entry, "detail": {}}, "count": 0, "overflow": True})
        folded["count"] += 1
        folded["last_at"] = entry["at"]
        return True

    def _drain_folded(self) -> list[dict[str, Any]]:
        out = []
        for f in self._folded.values():
            if f["count"]:
                e = f["entry"]
                if f.get("overflow"):
                    out.append({**e, "event": "audit.aggregated", "client_id": None, "subject": None,
                                "resource": None, "reason": None, "detail": {"of": e["event"], "count": f["count"],
                                "first_at": e["at"], "last_at": f["last_at"]}})  # fmt: skip
                else:
                    out.append({**e, "at": f["last_at"], "detail": {**e["detail"], "count": f["count"],
                                "first_at": e["at"], "last_at": f["last_at"], "aggregated": True}})  # fmt: skip
        self._folded = {}
        return out

    def flush(self) -> None:
        """Persist every event recorded before this call (waits for a flush already under way)."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer + self._drain_folded(), []
            if not batch:
                return
            try:
                self._store.append_audit(batch)
            except Exception:
                log.exception("audit flush failed; %d events kept for the next attempt", len(batch))
                with self._lock:
                    self._buffer[:0] = batch
                return
            if self.after_flush is not None:
                try:
                    self.after_flush(len(batch))
                except Exception:
                    log.exception("audit checkpoint failed")

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
            if self.after_flush is not None:  # lets an interval-based checkpoint fire with no new records
                try:
                    self.after_flush(0)
                except Exception:
                    log.exception("audit checkpoint failed")
