"""Personal data kept apart and encrypted per person (GDPR Art. 17 crypto-shredding).

``subject_keys`` holds each person's data-encryption key, wrapped with the key-encryption key;
``subject_profiles`` holds their profile (email, display name, sponsor contacts, ...) encrypted with
it. Erasure deletes both rows: whatever copy of a profile survives (a backup) cannot be decrypted.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from authz.storage.models.base import Base


class SubjectKey(Base):
    __tablename__ = "subject_keys"
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM(KEK-derived key, DEK), bound to the subject
    created_at: Mapped[int] = mapped_column(BigInteger)


class SubjectProfile(Base):
    __tablename__ = "subject_profiles"
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM(DEK, profile JSON), bound to the subject
    updated_at: Mapped[int] = mapped_column(BigInteger)
