"""CPU per audit record of ``AuditTreeStore.append_audit`` (what the audit writer thread spends per token).

Appends ``--records`` records shaped like the token endpoint's ``token.issued`` (50 clients, each its
own subject, a fresh jti per record) in batches of ``--batch`` (the writer's ``max_batch``) to a fresh
database migrated to head, and prints the writer thread's CPU per record (``time.thread_time``: other
processes on the machine do not count) and its wall time per record, medians over the batches after
``--warmup`` of them. ``--src DIR`` imports ``authz`` from another tree (an exported ``main``) for
same-run before/after comparisons; ``--db postgres`` uses a new database on AUTHZ_TEST_POSTGRES_URL's
server (dropped at the end).

    .venv/bin/python bench/audit_append.py --records 20000
    .venv/bin/python bench/audit_append.py --src /tmp/audit-before --db postgres
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from typing import Any


def events(n: int, start: int) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        client = f"agent-{i % 50:04d}"
        out.append(
            {"at": 1_780_000_000 + i // 4000, "event": "token.issued", "outcome": "success", "client_id": client,
             "subject": client, "resource": "http://127.0.0.1:9500/mcp", "reason": None,
             "detail": {"grant_type": "client_credentials", "jti": secrets.token_urlsafe(16), "scope": "tools:read",
                        "refresh": False, "policies": ["agents-read-tools"]}}
        )  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=4, help="batches not counted")
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--tree", choices=("on", "off"), default="on")
    ap.add_argument("--src", help="import authz from this tree (before/after comparisons)")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    if args.src:
        sys.path.insert(0, os.path.abspath(args.src))
    import migrations
    from authz.audit.store import AuditTreeStore
    from authz.storage.db import make_engine

    admin_url = os.environ.get("AUTHZ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    tmp = tempfile.TemporaryDirectory(prefix="audit-append.")
    pg_name = f"authz_bench_{secrets.token_hex(5)}"
    if args.db == "postgres":
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {pg_name}")
        url = admin_url.rsplit("/", 1)[0] + "/" + pg_name
    else:
        url = f"sqlite:///{tmp.name}/authz.db"
    try:
        migrations.upgrade(url)
        engine = make_engine(url)
        store = AuditTreeStore(engine, tree=args.tree == "on")
        cpu: list[float] = []
        wall: list[float] = []
        batches = [events(args.batch, b * args.batch) for b in range(args.records // args.batch)]
        for k, batch in enumerate(batches):
            c0, w0 = time.thread_time(), time.perf_counter()
            store.append_audit(batch)
            c1, w1 = time.thread_time(), time.perf_counter()
            if k >= args.warmup:
                cpu.append((c1 - c0) * 1e6 / len(batch))
                wall.append((w1 - w0) * 1e6 / len(batch))
        engine.dispose()
    finally:
        if args.db == "postgres":
            import psycopg

            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")
        tmp.cleanup()
    tag = f"audit_append.{args.label or 'run'}.{args.db}.tree_{args.tree}"
    print(
        f"{tag} cpu_us_per_record {statistics.median(cpu):.1f} (p10 {statistics.quantiles(cpu, n=10)[0]:.1f}) "
        f"wall_us_per_record {statistics.median(wall):.1f} batches {len(cpu)} x {args.batch}"
    )


if __name__ == "__main__":
    main()
