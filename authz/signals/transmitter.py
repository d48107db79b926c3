"""The SSF transmitter of one server process: signs SETs for streams and wakes long polls on new facts.

``Wakeup`` is poked from any thread by :class:`~authz.identity.revocations.RevocationView` after a fact
is stored on this replica (at once) or read from another replica's change feed (within
``AUTHZ_CACHE_STALENESS``); a waiting RFC 8936 long poll then fans the new facts out and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from sqlalchemy import Engine

from authz.core.settings import Settings
from authz.oauth.jws import Signer
from authz.oauth.keys import KeyManager
from authz.signals.sets import SET_TYP, VERIFICATION, Fact, build_set, fact_sets
from authz.signals.store import Batch, SignalStore
from authz.storage.models.signals import SsfStream


class Wakeup:
    """A generation counter with an asyncio event per generation; ``notify`` is thread-safe."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def current(self) -> asyncio.Event | None:
        """Take this before checking for work; waiting on it then misses no notification."""
        return self._event

    def notify(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    @staticmethod
    async def wait(event: asyncio.Event | None, timeout: float) -> None:
        if event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


class Transmitter:
    def __init__(self, engine: Engine, keys: KeyManager, settings: Settings) -> None:
        self.store = SignalStore(engine)
        self.settings = settings
        self.issuer = settings.issuer
        self.wakeup = Wakeup()
        self._keys = keys
        self._signer: tuple[Signer, Signer] | None = None  # (access-token signer, SET signer)

    def signer(self) -> Signer:
        base = self._keys.view.signer
        cached = self._signer
        if cached is None or cached[0] is not base:
            cached = (base, base.retyped(SET_TYP))
            self._signer = cached
        return cached[1]

    def _make(self, stream: SsfStream, fact: Fact) -> list[tuple[str, str, str]]:
        return fact_sets(self.signer(), issuer=self.issuer, audience=stream.audience, fact=fact, now=int(time.time()))

    def collect(
        self, stream_id: str, max_events: int, acks: list[str]
    ) -> tuple[list[tuple[str, str]], bool, Batch | None]:
        """One poll's database work (sync, in a worker thread): acks, the stored SETs, then SETs signed for
        new facts. Returns (SETs, more available, the new batch the caller must :meth:`SignalStore.persist`
        after answering — until then the facts stay after the cursor, so nothing is lost if it fails)."""
        now = int(time.time())
        self.store.ack(stream_id, acks, now)
        if max_events <= 0:
            return [], False, None
        sets, more = self.store.pending(stream_id, max_events)
        if len(sets) >= max_events:
            return sets, True, None
        batch = self.store.fresh(stream_id, self._make, now)
        if batch is None:
            return sets, more, None
        stored = {jti for jti, _ in sets}
        fresh = [(row["jti"], row["token"]) for row in batch.rows if row["jti"] not in stored]
        room = max_events - len(sets)
        return sets + fresh[:room], more or batch.more or len(fresh) > room, batch

    def verification(self, stream: SsfStream, state: str | None) -> None:
        """SSF §8.1.4.1: a verification event on the stream, ``sub_id`` naming the stream."""
        now = int(time.time())
        event = {} if state is None else {"state": state}
        jti, token = build_set(
            self.signer(),
            issuer=self.issuer,
            audience=stream.audience,
            event_type=VERIFICATION,
            event=event,
            sub_id={"format": "opaque", "id": stream.stream_id},
            now=now,
        )
        self.store.add_set(stream.stream_id, VERIFICATION, jti, token, now)
        self.wakeup.notify()
