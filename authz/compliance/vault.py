"""Per-subject envelope encryption of personal data: a DEK per person, wrapped by the KEK.

GDPR Art. 17 by crypto-shredding: a person's profile is encrypted (AES-256-GCM) with their own
data-encryption key; the key is stored wrapped by the key-encryption key (``Keyring.encrypt``, bound
to the subject id). Destroying the wrapped key makes every copy of the profile unreadable, backups
included. The associated data binds each ciphertext to its subject, so rows cannot be swapped.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from authz.core.crypto import Keyring
from authz.storage.db import make_sessionmaker
from authz.storage.models.compliance import SubjectKey, SubjectProfile


class SubjectVault:
    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.keyring = keyring
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)

    def _dek(self, s: Session, subject: str, create: bool) -> bytes | None:
        row = s.get(SubjectKey, subject)
        if row is not None:
            return self.keyring.decrypt(row.wrapped, b"subject-dek:" + subject.encode())
        if not create:
            return None
        dek = AESGCM.generate_key(bit_length=256)
        wrapped = self.keyring.encrypt(dek, b"subject-dek:" + subject.encode())
        s.add(SubjectKey(subject=subject, wrapped=wrapped, created_at=int(time.time())))
        return dek

    def put(self, subject: str, profile: dict[str, Any]) -> None:
        """Store (replace) the person's profile, encrypted with their key (created on first use)."""
        with self.sessions.begin() as s:
            dek = self._dek(s, subject, create=True)
            assert dek is not None
            nonce = os.urandom(12)
            blob = nonce + AESGCM(dek).encrypt(nonce, json.dumps(profile).encode(), b"profile:" + subject.encode())
            row = s.get(SubjectProfile, subject)
            if row is None:
                s.add(SubjectProfile(subject=subject, ciphertext=blob, updated_at=int(time.time())))
            else:
                row.ciphertext, row.updated_at = blob, int(time.time())

    def get(self, subject: str) -> dict[str, Any] | None:
        with self.sessions() as s:
            row = s.get(SubjectProfile, subject)
            dek = self._dek(s, subject, create=False)
            if row is None or dek is None:
                return None
            blob = row.ciphertext
        plain = AESGCM(dek).decrypt(blob[:12], blob[12:], b"profile:" + subject.encode())
        value: dict[str, Any] = json.loads(plain)
        return value

    def destroy(self, subject: str) -> bool:
        """Crypto-shred: delete the key and the ciphertext. True when there was something to destroy."""
        with self.sessions.begin() as s:
            a = s.execute(delete(SubjectKey).where(SubjectKey.subject == subject))
            b = s.execute(delete(SubjectProfile).where(SubjectProfile.subject == subject))
            return bool(getattr(a, "rowcount", 0) or getattr(b, "rowcount", 0))
