"""Cost of one policy decision for a typical 3-scope token request (target: <= 10% of issuance).

    python bench/policy_decide.py [--seconds 2]

Prints decisions/s and µs/decision for: a warm decision (same request again within the minute:
the bundle's decision cache), a cold decision with cached per-request entities (new context, e.g. a
new act depth or minute), and a fully cold one (new principal: entities built, then evaluated),
plus the batch-vs-one-call-per-scope comparison that chose `is_authorized_batch`.
Issuance here is ~4000 tokens/s per process (~250 µs/token): the budget is ~25 µs/decision.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import cedarpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without reinstalling

import policies
from policies import Context, Principal, Request
from policies.bundle import ACTION, scope_uid

PAY = "https://pay.example/mcp"
SCOPES = ["payments:read", "payments:write", "payments:refund"]
T0 = datetime(2025, 6, 3, 10, 0, tzinfo=UTC)


def rate(name: str, fn: Callable[[int], object], seconds: float) -> None:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(200):
            fn(n)
            n += 1
    print(f"{name:<58} {n / elapsed:>10,.0f} decisions/s {elapsed / n * 1e6:>8.1f} µs/decision")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    secs = ap.parse_args().seconds
    bundle = policies.load_default()
    agent = Principal("agent", "agt_pay", team="payments", owner="alice", tags=["prod"])
    ctx = Context(
        "token_exchange",
        delegated=True,
        user="alice",
        user_groups=["finance"],
        act_depth=1,
        workflow="refund-review",
        time=T0,
    )
    warm = Request(agent, "cli_1", PAY, SCOPES, ctx)
    assert bundle.decide(warm).permitted == set(SCOPES) - {"payments:write"}

    print(f"cedarpy {version('cedarpy')} policies={len(bundle.policy_ids)} scopes/request={len(SCOPES)}")
    rate("warm: identical request (decision cache hit)", lambda i: bundle.decide(warm), secs)
    minutes = itertools.count()

    def new_minute(i: int) -> object:  # entity cache hit, decision cache miss
        t = T0 + timedelta(minutes=next(minutes))
        return bundle.decide(Request(agent, "cli_1", PAY, SCOPES, Context("client_credentials", time=t)))

    rate("cold decision, cached entities (new minute)", new_minute, secs)

    def new_agent(i: int) -> object:  # nothing cached
        p = Principal("agent", f"agt_{i}", team="payments", owner="alice", tags=["prod"])
        return bundle.decide(Request(p, "cli_1", PAY, SCOPES, Context("client_credentials", time=T0)))

    rate("fully cold (new principal: build entities + evaluate)", new_agent, secs)

    ents = bundle._request_entities(warm, tuple(SCOPES))
    ctx_json = json.dumps(bundle.context_json(warm))
    reqs = [
        {
            "principal": {"type": "Authz::Agent", "id": "agt_pay"},
            "action": ACTION,
            "resource": scope_uid(PAY, s),
            "context": ctx_json,
        }
        for s in SCOPES
    ]
    rate(
        "raw cedarpy: is_authorized_batch (3 requests, 1 call)",
        lambda i: cedarpy.is_authorized_batch(reqs, bundle.policy_set, ents, bundle.schema),
        secs,
    )
    rate(
        "raw cedarpy: is_authorized x3",
        lambda i: [cedarpy.is_authorized(r, bundle.policy_set, ents, bundle.schema) for r in reqs],
        secs,
    )
    rate(
        "raw cedarpy: is_authorized_batch without schema",
        lambda i: cedarpy.is_authorized_batch(reqs, bundle.policy_set, ents),
        secs,
    )


if __name__ == "__main__":
    main()
