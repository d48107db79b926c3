"""C2SP signed notes, tlog checkpoints and tlog-proofs (Ed25519), to write and to verify.

c2sp.org/signed-note: a note is UTF-8 text ending in a newline, a blank line, then signature lines
"— <key name> <base64 signature>" whose decoded bytes are a 4-byte key ID followed by the signature.
For Ed25519 (signature type 0x01) the key ID is "SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519
public key)[:4]" and the signature covers the note text. "Verifiers MUST ignore signatures from
unknown keys." A verifier key is written "<name>+<hex key ID>+<base64(0x01 || public key)>".

c2sp.org/tlog-checkpoint: the note text is "<origin>\\n<tree size>\\n<base64 root hash>\\n" plus
optional extension lines; "A log MUST NOT sign any checkpoint which is inconsistent with any
checkpoint it previously signed" (enforced by ``authz.audit.checkpoints``).

c2sp.org/tlog-proof: "c2sp.org/tlog-proof@v1", an optional "extra <base64>" line, "index <n>", the
inclusion proof hashes in base64 one per line, a blank line, then the checkpoint verbatim.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "\u2014 "
PROOF_HEADER = "c2sp.org/tlog-proof@v1"


class NoteError(ValueError):
    """A malformed or unverifiable note, checkpoint or proof."""


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    name: str
    public: bytes

    @property
    def id(self) -> bytes:
        return key_id(self.name, self.public)

    def encode(self) -> str:
        return f"{self.name}+{self.id.hex()}+{base64.b64encode(bytes([ED25519]) + self.public).decode()}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        try:
            name, hexid, b64 = text.strip().split("+", 2)  # names never contain "+"; base64 may
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise NoteError("a verifier key is <name>+<hex key id>+<base64 key>") from exc
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 (type 0x01) verifier keys are supported")
        verifier = cls(name, raw[1:])
        if verifier.id.hex() != hexid:
            raise NoteError("the verifier key's id does not match its name and key")
        return verifier

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    def __init__(self, name: str, seed: bytes) -> None:
        if not name or any(c in name for c in " +\n") or len(seed) != 32:
            raise ValueError("a note key name has no spaces, '+' or newlines; the seed is 32 bytes")
        self.name = name
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = Verifier(name, public)

    def sign(self, text: str) -> str:
        """The signed note: ``text`` (which must end in a newline), a blank line, one signature line."""
        if not text.endswith("\n") or "\n\n" in text:
            raise ValueError("note text ends with a newline and has no blank line")
        sig = self.verifier.id + self._key.sign(text.encode())
        return f"{text}\n{DASH}{self.name} {base64.b64encode(sig).decode()}\n"


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """The note text and the known verifiers whose signatures verify; raises if none does."""
    text, sep, sigs = note.rpartition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise NoteError("a signed note is text, a blank line, then signature lines")
    text += "\n"
    known = {(v.name, v.id): v for v in verifiers}
    good: list[Verifier] = []
    for line in sigs[:-1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, b64 = line[len(DASH) :].rpartition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise NoteError("a signature is base64") from exc
        v = known.get((name, raw[:4]))
        if v is not None and v.verify(text.encode(), raw[4:]):  # unknown keys are ignored
            good.append(v)
    if not good:
        raise NoteError("no signature from a trusted key verifies")
    return text, good


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        try:
            origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
        except (IndexError, ValueError) as exc:
            raise NoteError("a checkpoint is <origin>, <tree size>, <base64 root hash>") from exc
        if not origin or size < 0 or len(root) != 32 or lines[1] != str(size):
            raise NoteError("a checkpoint is <origin>, <tree size>, <base64 root hash>")
        return cls(origin, size, root)


def verify_checkpoint(note: str, verifiers: list[Verifier], origin: str | None = None) -> Checkpoint:
    text, _ = open_note(note, verifiers)
    cp = Checkpoint.parse_text(text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return cp


def format_proof(index: int, proof: list[bytes], checkpoint_note: str, extra: bytes | None = None) -> str:
    lines = [PROOF_HEADER]
    if extra is not None:
        lines.append(f"extra {base64.b64encode(extra).decode()}")
    lines.append(f"index {index}")
    lines += [base64.b64encode(h).decode() for h in proof]
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_proof(text: str) -> tuple[int, list[bytes], str, bytes | None]:
    """(index, inclusion proof, checkpoint note, extra) of a tlog-proof."""
    head, sep, checkpoint = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != PROOF_HEADER:
        raise NoteError(f"a tlog-proof starts with {PROOF_HEADER!r} and has a blank line before the checkpoint")
    extra = None
    rest = lines[1:]
    try:
        if rest and rest[0].startswith("extra "):
            extra = base64.b64decode(rest.pop(0)[6:], validate=True)
        if not rest or not rest[0].startswith("index "):
            raise NoteError("a tlog-proof has an 'index <n>' line")
        index = int(rest.pop(0)[6:])
        hashes = [base64.b64decode(h, validate=True) for h in rest]
    except ValueError as exc:
        raise NoteError("malformed tlog-proof") from exc
    return index, hashes, checkpoint, extra
