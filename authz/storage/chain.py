"""The audit trail's hash chain (records written before the Merkle tree): each record's hash covers
its content and the previous hash. Records in the tree link ``prev_hash`` to their leaf instead
(``authz.audit.store.link_hash``); ``authz audit verify`` checks both.

Altering, deleting or reordering any stored record changes every later hash, so a verifier that
recomputes the chain (``authz audit verify``) finds the first record that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

GENESIS = "0" * 64
CHAINED_FIELDS = ("at", "event", "outcome", "client_id", "subject", "resource", "reason", "detail")


def record_hash(prev_hash: str, event: Mapping[str, Any]) -> str:
    body = {name: event.get(name) for name in CHAINED_FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + canonical).encode("ascii")).hexdigest()


def first_broken(records: Iterable[Mapping[str, Any]], prev_hash: str = GENESIS) -> int | None:
    """The ``seq`` of the first record whose chain does not verify, or None when all verify."""
    for record in records:
        if record["prev_hash"] != prev_hash or record_hash(prev_hash, record) != record["hash"]:
            return int(record["seq"])
        prev_hash = record["hash"]
    return None
