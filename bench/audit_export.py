"""Regulator export of a large audit log: `export_bundle` and `verify_bundle` times for N records.

    .venv/bin/python bench/audit_export.py            # N=1000000 records, SQLite in a temp dir
    N=200000 AUTHZ_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python bench/audit_export.py

Fills a fresh log through the audit writer's own append path (batches of 5000, the tree written
with them; not timed as part of the export), then prints "audit_export.seconds", the bundle size,
and "audit_verify_export.seconds" (the standalone verifier's full check: member hashes, signatures,
every record's leaf, the range proof and the consistency proof), each with its CPU time and the
load average around it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from authz.audit import bundle_verifier
from authz.audit.checkpoints import CheckpointDir, Checkpointer, log_signer
from authz.audit.export import ExportRequest, export_bundle
from authz.audit.store import AuditTreeStore
from authz.core.crypto import Keyring
from authz.core.settings import Settings
from authz.storage.db import make_engine
from migrations import upgrade

N = int(os.environ.get("N", "1000000"))
BATCH = 5000
T0 = 1_760_000_000


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="authz-audit-export."))
    url = os.environ.get("AUTHZ_BENCH_DATABASE_URL") or f"sqlite:///{data / 'authz.db'}"
    upgrade(url)
    settings = Settings(data_dir=data, database_url=url)
    store = AuditTreeStore(make_engine(settings.sqlalchemy_url))
    checkpointer = Checkpointer(store, log_signer(Keyring(os.urandom(32)), "bench.example/audit"),
                                CheckpointDir(data / "checkpoints"), every=10**9, interval=10**9)  # fmt: skip
    started = time.perf_counter()
    for b in range(0, N, BATCH):
        store.append_audit([
            {"at": T0 + i // 100, "event": "token.issued" if i % 7 else "token.refused",
             "outcome": "success" if i % 7 else "failure", "client_id": f"agent-{i % 50}",
             "subject": f"user-{i % 1000}", "resource": "https://mcp.example/mcp",
             "reason": None if i % 7 else "invalid_scope",
             "detail": {"jti": f"{i:032x}", "scope": "tools:read", "grant_type": "client_credentials"}}
            for i in range(b, min(N, b + BATCH))
        ])  # fmt: skip
    print(f"# filled {N} records in {time.perf_counter() - started:.1f} s ({url.split(':')[0]}, {data})")
    out = data / "export.tar"
    print(f"# load average before export: {Path('/proc/loadavg').read_text().strip()}")
    started, cpu = time.perf_counter(), time.process_time()
    manifest = export_bundle(store, checkpointer, ExportRequest(T0, T0 + N, None, "bench"), out, "bench")
    export_s, export_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"# load average before verify-export: {Path('/proc/loadavg').read_text().strip()}")
    started, cpu = time.perf_counter(), time.process_time()
    _, verified = bundle_verifier.verify_bundle(str(out), checkpointer.verifier.encode())
    verify_s, verify_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert verified == manifest["counts"]["records"] == N, (verified, manifest["counts"])
    print(f"# load average after: {Path('/proc/loadavg').read_text().strip()}")
    print(f"audit_export.records {N}")
    print(f"audit_export.seconds {export_s:.1f} (cpu {export_cpu:.1f})")
    print(f"audit_export.bundle_mb {out.stat().st_size / 1e6:.0f}")
    print(f"audit_verify_export.seconds {verify_s:.1f} (cpu {verify_cpu:.1f})")


if __name__ == "__main__":
    main()
