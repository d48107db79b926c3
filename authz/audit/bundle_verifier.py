#!/usr/bin/env python3
"""Verify an authz audit export bundle offline (needs only Python 3.11+ and `cryptography`).

usage: python verify_bundle.py BUNDLE.tar [--key VKEY]     every check below; exit 0 if all pass
       python verify_bundle.py --proof FILE.tlog-proof --key VKEY   one record's c2sp tlog-proof

Checks: manifest.sig is a signed note by the log key over SHA-256(manifest.json); every member's
SHA-256 matches the manifest; checkpoint.txt is a C2SP checkpoint signed by that key; the records
(leaf = SHA-256(0x00 || line), RFC 9162) with withheld leaves and boundary hashes give the signed
root; consistency.json proves the previous export's tree is a prefix of this one (RFC 9162 2.1.4).
Pass --key with the provider's published verifier key: the key inside the bundle proves nothing alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import tarfile
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

b64 = base64.b64decode


class Failed(Exception):
    pass


def check(ok: object, message: str) -> None:
    if not ok:  # not assert: python -O would skip the checks
        raise Failed(message)


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return H(b"\x01" + left + right)


def split(n: int) -> int:  # RFC 9162 2.1.1: the largest power of two smaller than n
    return 1 << ((n - 1).bit_length() - 1)


def open_note(note: str, vkey: str) -> list[str]:
    """The text lines of a C2SP signed note, once the signature of verifier key ``name+kid+key`` checks."""
    name, kid, key = vkey.strip().split("+", 2)
    raw = b64(key)
    check(raw[0] == 1 and H(name.encode() + b"\n" + raw).hex()[:8] == kid, "bad verifier key")
    text, _, sigs = note.rpartition("\n\n")
    for line in sigs.strip("\n").split("\n"):
        signer, _, sig = line.removeprefix("\u2014 ").rpartition(" ")
        if signer == name and b64(sig)[:4].hex() == kid:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(b64(sig)[4:], (text + "\n").encode())
            return text.split("\n")
    raise Failed(f"no signature by {name}")


def checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    origin, size, root = open_note(note, vkey)[:3]
    return origin, int(size), b64(root)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3: recompute the root from PATH(index, D[size]), whose top sibling comes last."""
    rest = list(proof)

    def up(i: int, n: int) -> bytes:
        if n == 1:
            return leaf
        k, sibling = split(n), rest.pop()
        return node(up(i, k), sibling) if i < k else node(sibling, up(i - k, n - k))

    try:
        return 0 <= index < size and up(index, size) == root and not rest
    except IndexError:  # a proof too short
        return False


def verify_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4: recompute both roots from SUBPROOF(m, D[n], true), whose top sibling comes last."""
    rest = list(proof)

    def roots(m: int, n: int, whole: bool) -> tuple[bytes, bytes]:
        if m == n:  # the old tree, or a subtree of it: its root is known (whole) or the proof's deepest hash
            h = old if whole else rest.pop()
            return h, h
        k, sibling = split(n), rest.pop()
        if m <= k:
            o, r = roots(m, k, whole)
            return o, node(r, sibling)
        o, r = roots(m - k, n - k, False)
        return node(sibling, o), node(sibling, r)

    try:
        return (m == 0 and not rest) or (0 < m <= n and roots(m, n, True) == (old, new) and not rest)
    except IndexError:
        return False


def root_from_range(start: int, leaves: list[bytes], size: int, boundary: dict[str, bytes]) -> bytes:
    """The root of ``size`` leaves from those of [start, start + len(leaves)) and the complete subtrees
    beside them (``boundary["level/index"]``)."""
    end = start + len(leaves)

    def walk(lo: int, hi: int) -> bytes:
        n = hi - lo
        if start <= lo and hi <= end:  # inside the range: RFC 9162 MTH, level by level
            level = leaves[lo - start : hi - start]
            while len(level) > 1:  # a lone right node moves up unchanged
                level = [node(*level[i : i + 2]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
            return level[0]
        if (hi <= start or lo >= end) and n & (n - 1) == 0 and lo % n == 0:
            return boundary[f"{n.bit_length() - 1}/{lo // n}"]
        return node(walk(lo, lo + split(n)), walk(lo + split(n), hi))

    return walk(0, size)


def verify_bundle(path: str, vkey: str | None = None) -> tuple[dict[str, Any], int]:
    with tarfile.open(path) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(files["manifest.json"])
    vkey = vkey or next(v for k, v in files.items() if k.startswith("keys/")).decode()
    signed = open_note(files["manifest.sig"].decode(), vkey)
    check(signed[:2] == ["authz-audit-export/v1", H(files["manifest.json"]).hex()], "manifest.sig does not sign it")
    for name, digest in manifest["members"].items():
        check(H(files[name]).hex() == digest, f"{name}: SHA-256 differs from the manifest")
    origin, size, root = checkpoint(files["checkpoint.txt"].decode(), vkey)
    log = manifest["log"]
    check((origin, size, base64.b64encode(root).decode()) == (log["origin"], log["tree_size"], log["root"]), "log")
    start, end = log["range"]
    withheld = {int(i): b64(h) for i, h in json.loads(files["proofs/withheld.json"]).items()}
    lines = iter(files["records.jsonl"].splitlines())
    leaves = [withheld[i] if i in withheld else H(b"\x00" + next(lines)) for i in range(start, end)]
    check(next(lines, None) is None, "more records than the range holds")
    boundary = {k: b64(v) for k, v in json.loads(files["proofs/boundary.json"]).items()}
    check(root_from_range(start, leaves, size, boundary) == root, "the records do not give the signed root")
    c = json.loads(files["consistency.json"])
    old = b64(c["from_root"]) if c["from_size"] else b""
    proof = [b64(h) for h in c["proof"]]
    check(c["to_size"] == size and verify_consistency(c["from_size"], size, old, root, proof), "not consistent")
    return manifest, end - start - len(withheld)


def verify_proof(text: str, vkey: str) -> tuple[str, int, int]:
    head, _, note = text.partition("\n\n")
    lines = head.split("\n")
    check(lines[0] == "c2sp.org/tlog-proof@v1", "not a tlog-proof")
    check(lines[1].startswith("extra "), "the proof carries no record (extra line)")
    extra, index, proof = b64(lines[1][6:]), int(lines[2].removeprefix("index ")), [b64(h) for h in lines[3:]]
    _, size, root = checkpoint(note, vkey)
    check(verify_inclusion(H(b"\x00" + extra), index, size, proof, root), "the inclusion proof fails")
    return extra.decode(), index, size


def main(args: list[str]) -> int:
    key = args[args.index("--key") + 1] if "--key" in args else None
    key = open(key).read() if key and not key.count("+") else key
    try:
        if "--proof" in args:
            check(key, "--proof needs --key (the log's verifier key)")
            record, index, size = verify_proof(open(args[args.index("--proof") + 1]).read(), key or "")
            print(f"OK: record at index {index} is in the signed tree of {size}: {record}")
        else:
            manifest, n = verify_bundle(args[0], key)
            print(f"OK: {n} records of {manifest['log']['origin']}, tree {manifest['log']['tree_size']}")
    except Exception as exc:  # Failed, a missing member (KeyError), InvalidSignature, malformed input
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
