"""Group commit for the shared ``jti`` replay cache: concurrent requests' writes in one write.

RFC 9449 §11.1: "the server MUST only accept the proof once within the window", across replicas, so
every accepted DPoP proof is written to the store all replicas share (the ``used_jtis`` table, or
Redis). One write per proof (an SQL upsert and a commit, or a Redis round trip) costs more CPU than
the rest of the proof's checks together. Here the requests of one event loop iteration queue their
``(key, expires_at)`` and await their own answer; the lot is written at once (one multi-row upsert
in one transaction, or one Redis pipeline), so the cost per proof falls as load rises:

- a local store (SQLite, ``inline``) is written on the event loop, at the start of the next
  iteration: a thread would cost more than the write (each SQLite step releases and retakes the
  GIL, and the busy event loop holds it);
- a networked store (PostgreSQL, Redis) is written by one writer thread, so the event loop never
  waits for a round trip; it takes everything queued since its last write (group commit).

What stays true: the store's unique key (or ``SET NX``) still decides every key, so a replay is
refused whichever replica or batch saw the first use; the same key twice in one batch counts once
(the first), the other is a replay; no request learns its answer before its row is committed
(the answer is delivered after the write returns); a failed write fails every request of its batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence

__all__ = ["GroupCommit", "WriteMany"]

log = logging.getLogger("authz.replay")

WriteMany = Callable[[Sequence[tuple[str, int]], int], set[str]]  # rows, now -> the keys written first

Item = tuple[str, int, int, "asyncio.Future[bool]"]


class GroupCommit:
    """``await first_use(key, expires_at, now)`` -> True the first time; one writer thread, started on
    first use, writes whatever is queued as one batch (at most ``max_batch`` rows) with ``write``."""

    def __init__(
        self,
        write: WriteMany,
        *,
        inline: bool = False,
        max_batch: int = 256,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._write, self._inline, self._max, self._on_close = write, inline, max_batch, on_close
        self._queue: list[tuple[asyncio.AbstractEventLoop, list[Item]]] = []  # handed over under _cond
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False
        self._local: dict[asyncio.AbstractEventLoop, list[Item]] = {}  # this loop iteration's items

    async def first_use(self, key: str, expires_at: int, now: int) -> bool:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        pending = self._local.get(loop)
        if pending is None:  # the first request of this loop iteration: hand the lot over once, after it
            pending = self._local[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((key, expires_at, now, future))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._local.pop(loop)
        if self._inline:  # a local store (SQLite): write on the event loop, no thread to wake or GIL to pass
            for start in range(0, len(items), self._max):
                batch = items[start : start + self._max]
                _deliver(batch, self._write_rows(batch))
            return
        with self._cond:
            if self._closed:
                error = RuntimeError("the replay cache is closed")
                for *_, future in items:
                    future.set_exception(error)
                return
            self._queue.append((loop, items))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="authz-replay-writer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return  # closed, nothing left
                queued, self._queue = self._queue, []
            by_loop: dict[asyncio.AbstractEventLoop, list[Item]] = {}
            for loop, items in queued:  # everything queued while the last batch was written: one batch
                by_loop.setdefault(loop, []).extend(items)  # per event loop (one per worker process)
            for loop, items in by_loop.items():
                for start in range(0, len(items), self._max):
                    self._write_batch(loop, items[start : start + self._max])

    def _write_rows(self, items: list[Item]) -> set[str] | BaseException:
        rows: dict[str, int] = {}
        for key, expires_at, _, _ in items:
            rows.setdefault(key, expires_at)  # a key twice in one batch: the first one counts
        try:
            return self._write(list(rows.items()), min(item[2] for item in items))
        except Exception as exc:  # every request of the batch fails (answered as a server error)
            log.exception("replay cache write failed (%d keys)", len(rows))
            return exc

    def _write_batch(self, loop: asyncio.AbstractEventLoop, items: list[Item]) -> None:
        won = self._write_rows(items)
        try:
            loop.call_soon_threadsafe(_deliver, items, won)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def close(self) -> None:
        """Write what is queued, stop the thread, then ``on_close`` (the writer's connection)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        if self._on_close is not None:
            self._on_close()


def _deliver(items: list[Item], won: set[str] | BaseException) -> None:
    """On the requests' event loop: each request's answer; the first of a key wins, later ones are replays."""
    if isinstance(won, BaseException):
        for *_, future in items:
            if not future.done():
                future.set_exception(won)
        return
    first: set[str] = set()
    for key, _, _, future in items:
        answer = key in won and key not in first
        first.add(key)
        if not future.done():  # a cancelled request (client gone) needs no answer
            future.set_result(answer)
