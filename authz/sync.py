"""Keeps a replica's caches current: polls the change feed and applies what changed.

Every ``cache_staleness`` seconds one short query reads new ``change_log`` rows; named clients and
resources are dropped from the directory, keys are reloaded when a key changed, the policy set when a
``policy`` version was activated (``AUTHZ_POLICIES=db``), and new revocation
facts are loaded. A replica applies its own changes at once; others see them within the bound.
"""

from __future__ import annotations

import logging
import threading

from authz.context import Context
from authz.policy.engine import PolicyVersionStore

log = logging.getLogger("authz.sync")


class ChangeWatcher:
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._seq = -1
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        ctx = self._ctx
        self._seq, changes = ctx.store.changes_since(self._seq)
        reload_keys = reload_policy = False
        for topic, key in changes:
            if topic == "key":
                reload_keys = True
            elif topic == "policy":
                reload_policy = True
            else:
                ctx.directory.invalidate(topic, key)
        if reload_keys:
            ctx.keys.reload()
        if reload_policy and isinstance(ctx.store, PolicyVersionStore):
            ctx.policy.reload(ctx.store)  # parses first; a failure keeps the current bundle and logs
        if changes:
            ctx.revocations.refresh()

    def start(self, stop: threading.Event) -> None:
        self.poll()

        def run() -> None:
            while not stop.wait(self._ctx.settings.cache_staleness):
                try:
                    self.poll()
                except Exception:
                    log.exception("change feed poll failed; caches keep their current view")

        self._thread = threading.Thread(target=run, name="authz-sync", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=5)
