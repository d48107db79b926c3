"""Signed checkpoints of the audit tree: when to sign, the log key, and the copy outside the database.

c2sp.org/tlog-checkpoint: "A log MUST NOT sign any checkpoint which is inconsistent with any
checkpoint it previously signed." Before signing size n the checkpointer takes the largest size
already signed (in the database or in the directory, whichever is larger), proves consistency from
it to n over the stored tree and verifies that proof against the earlier signed root; a failure
refuses to sign and is logged (the tree was rewritten: ``authz audit verify`` says where).

The Ed25519 seed is derived from the key-encryption key (``Keyring.derive``), so every replica signs
with the same log key and nothing new is stored; whoever can write the database but does not hold
the KEK cannot sign. The directory is the copy an attacker with only database access cannot
rewrite: ``checkpoint`` (the latest, replaced atomically) and ``checkpoints/<size>`` (each one).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from authz.audit import merkle
from authz.audit.note import Checkpoint, NoteError, Signer, Verifier, verify_checkpoint
from authz.audit.store import AuditTreeStore
from authz.core.crypto import Keyring

log = logging.getLogger("authz.audit")


def log_signer(keyring: Keyring, origin: str) -> Signer:
    return Signer(origin, keyring.derive(b"audit checkpoint ed25519"))


class CheckpointDir:
    """Checkpoints as files: written once per size, the latest also as ``checkpoint``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, size: int, note: str) -> None:
        history = self.path / "checkpoints"
        history.mkdir(parents=True, exist_ok=True)
        target = history / str(size)
        if not target.exists():
            _atomic_write(target, note)
        latest = self.latest()
        if latest is None or size >= _size_of(latest):
            _atomic_write(self.path / "checkpoint", note)

    def latest(self) -> str | None:
        """The latest checkpoint note written here (the ``checkpoint`` file), if any."""
        try:
            return (self.path / "checkpoint").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def notes(self) -> list[str]:
        history = self.path / "checkpoints"
        if not history.is_dir():
            return []
        files = sorted((p for p in history.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        return [p.read_text(encoding="utf-8") for p in files]


def _size_of(note: str) -> int:
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else -1


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Checkpointer:
    """Signs a checkpoint every ``every`` records or ``interval`` seconds (called after each flush)."""

    def __init__(
        self,
        store: AuditTreeStore,
        signer: Signer,
        directory: CheckpointDir,
        every: int = 1000,
        interval: float = 60.0,
    ) -> None:
        self.store, self.signer, self.directory = store, signer, directory
        self.every, self.interval = every, interval
        self._pending = 0
        self._verified: dict[str, Checkpoint] = {}
        self._signed_at = time.monotonic()
        self._lock = threading.Lock()

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def appended(self, count: int) -> None:
        """Called after each audit flush: sign when ``every`` records or ``interval`` seconds are due."""
        self._pending += count
        if self._pending and (self._pending >= self.every or time.monotonic() - self._signed_at >= self.interval):
            self.sign()

    def sign(self) -> Checkpoint | None:
        """Sign the current tree unless it is empty or already signed; never an inconsistent one."""
        with self._lock:
            size = self.store.tree_size()
            if size == 0:
                return None
            previous = self._previous()
            if previous is not None and previous.size == size:
                self._pending, self._signed_at = 0, time.monotonic()
                self.directory.write(size, self._note_of(previous))
                return previous
            root = self.store.root(size)
            if previous is not None:
                if previous.size > size:
                    raise RuntimeError(f"audit tree has {size} leaves but a checkpoint of {previous.size} was signed")
                proof = self.store.consistency(previous.size, size)
                if not merkle.verify_consistency(previous.size, size, previous.root, root, proof):
                    raise RuntimeError(
                        f"audit tree of size {size} is inconsistent with the signed checkpoint of size {previous.size}"
                    )
            cp = Checkpoint(self.signer.name, size, root)
            note = self.signer.sign(cp.text())
            self.store.save_checkpoint(size, root, note)
            self.directory.write(size, note)
            self._pending, self._signed_at = 0, time.monotonic()
            return cp

    def _previous(self) -> Checkpoint | None:
        """The largest checkpoint signed so far: the database's latest and the directory's latest
        (one row, one file); a note already verified is not verified again."""
        best: Checkpoint | None = None
        latest = self.store.latest_checkpoint()
        for note in (latest.note if latest else None, self.directory.latest()):
            if note is None:
                continue
            cp = self._verified.get(note)
            if cp is None:
                try:
                    cp = verify_checkpoint(note, [self.verifier], self.signer.name)
                except NoteError:
                    log.error("a stored audit checkpoint does not verify with the log key; ignored for signing")
                    continue
                self._verified = {note: cp}
            if best is None or cp.size > best.size:
                best = cp
        return best

    def _note_of(self, cp: Checkpoint) -> str:
        for c in self.store.checkpoints():
            if c.size == cp.size:
                return c.note
        return self.signer.sign(cp.text())
