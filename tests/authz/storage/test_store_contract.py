"""The storage contract, run against SqlStore on SQLite and PostgreSQL (``store`` is parametrized by ``db_url``)."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from authz.audit.store import AuditTreeStore
from authz.storage.chain import GENESIS, first_broken
from authz.storage.db import make_engine
from authz.storage.models import AuditEvent, AuthorizationCode, Client, Consent, Grant, RefreshToken, Resource, User
from authz.storage.sql import SqlStore

NOW = 1_700_000_000
THREADS = 16
T = TypeVar("T")


# -- builders ---------------------------------------------------------------------------------
def client(client_id: str = "app", **fields: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": client_id,
        "kind": "static",
        "client_name": "App",
        "token_endpoint_auth_method": "private_key_jwt",
        "redirect_uris": ["https://app.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "tools:read tools:write",
        "allowed_resources": ["https://mcp.example/"],
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]},
        "extra": {"contacts": ["a@example.com"]},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Client(**(values | fields))


def grant(grant_id: str = "g1", **fields: Any) -> Grant:
    values: dict[str, Any] = {
        "id": grant_id,
        "client_id": "app",
        "subject": "alice",
        "resource": "https://mcp.example/",
        "scope": "tools:read",
        "created_at": NOW,
        "expires_at": NOW + 86400,
    }
    return Grant(**(values | fields))


def code(digest: str = "code-digest", grant_id: str = "g1") -> AuthorizationCode:
    return AuthorizationCode(
        code_digest=digest,
        grant_id=grant_id,
        client_id="app",
        user_id="u1",
        redirect_uri="https://app.example/cb",
        scope="tools:read",
        resource="https://mcp.example/",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        auth_time=NOW,
        expires_at=NOW + 60,
    )


def refresh(digest: str, grant_id: str = "g1") -> RefreshToken:
    return RefreshToken(
        token_digest=digest,
        grant_id=grant_id,
        client_id="app",
        subject="alice",
        scope="tools:read",
        resource="https://mcp.example/",
        created_at=NOW,
        expires_at=NOW + 3600,
    )


def event(n: int, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "at": NOW + n,
        "event": "token.issued",
        "outcome": "success",
        "client_id": "app",
        "subject": "alice",
        "resource": "https://mcp.example/",
        "reason": None,
        "detail": {"n": n, "scope": ["tools:read"], "note": "é"},
    }
    return values | fields


def together(n: int, call: Callable[[], T]) -> list[T]:
    """Run ``call`` in ``n`` threads released at the same moment; re-raises the first error."""
    barrier = threading.Barrier(n)

    def run() -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(run) for _ in range(n)]
        return [f.result() for f in futures]


def chain(store: SqlStore) -> AuditTreeStore:
    """The audit writer in chain-only mode (``AUTHZ_AUDIT_TREE=false``): these tests check the hash chain."""
    return AuditTreeStore(store.engine, tree=False)


def audit_rows(store: SqlStore) -> list[dict[str, Any]]:
    columns = [c.key for c in AuditEvent.__table__.columns]
    return [{name: getattr(row, name) for name in columns} for row in store.list_audit(limit=100_000)]


# -- clients and resources --------------------------------------------------------------------
def test_client_put_get_roundtrip(store: SqlStore) -> None:
    store.put_client(client("app", jwks_uri=None, resource_uri=None))
    got = store.get_client("app")
    assert got is not None
    assert got.client_name == "App"
    assert got.redirect_uris == ["https://app.example/cb"]
    assert got.grant_types == ["authorization_code", "refresh_token"]
    assert got.allowed_resources == ["https://mcp.example/"]
    assert got.jwks == {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]}
    assert got.extra == {"contacts": ["a@example.com"]}
    assert (got.status, got.application_type, got.secret_digest, got.expires_at) == ("active", "web", None, None)
    assert store.get_client("missing") is None


def test_client_put_replaces_and_list_orders_by_creation(store: SqlStore) -> None:
    store.put_client(client("b", created_at=NOW + 1))
    store.put_client(client("a", created_at=NOW + 2))
    store.put_client(client("b", created_at=NOW + 1, client_name="B2", allowed_resources=None))
    assert [c.client_id for c in store.list_clients()] == ["b", "a"]
    b = store.get_client("b")
    assert b is not None
    assert (b.client_name, b.allowed_resources) == ("B2", None)


def test_client_status_and_delete(store: SqlStore) -> None:
    store.put_client(client("app"))
    assert store.set_client_status("app", "disabled") is True
    got = store.get_client("app")
    assert got is not None
    assert got.status == "disabled"
    assert store.set_client_status("missing", "disabled") is False

    assert store.delete_client("app") is True
    assert store.get_client("app") is None
    assert store.delete_client("app") is False
    assert store.list_clients() == []


def test_resources(store: SqlStore) -> None:
    store.put_resource(Resource(uri="https://b.example/", name="B", scopes=["b"], created_at=NOW, updated_at=NOW))
    store.put_resource(Resource(uri="https://a.example/", name="A", scopes=["a1"], created_at=NOW, updated_at=NOW))
    store.put_resource(
        Resource(uri="https://a.example/", name="A2", scopes=["a1", "a2"], created_at=NOW, updated_at=NOW + 5)
    )
    assert [r.uri for r in store.list_resources()] == ["https://a.example/", "https://b.example/"]
    a = store.get_resource("https://a.example/")
    assert a is not None
    assert (a.name, a.scopes, a.status, a.updated_at) == ("A2", ["a1", "a2"], "active", NOW + 5)

    assert store.delete_resource("https://a.example/") is True
    assert store.delete_resource("https://a.example/") is False
    assert store.get_resource("https://a.example/") is None
    assert [r.uri for r in store.list_resources()] == ["https://b.example/"]


# -- users and consent ------------------------------------------------------------------------
def test_users(store: SqlStore) -> None:
    store.add_user(User(id="u2", username="bob", password_hash="$argon2id$b", created_at=NOW))
    store.add_user(User(id="u1", username="alice", password_hash="$argon2id$a", disabled=True, created_at=NOW))
    alice = store.get_user("u1")
    assert alice is not None
    assert (alice.username, alice.password_hash, alice.disabled) == ("alice", "$argon2id$a", True)
    bob = store.get_user_by_name("bob")
    assert bob is not None
    assert (bob.id, bob.disabled) == ("u2", False)
    assert store.get_user("nobody") is None
    assert store.get_user_by_name("nobody") is None
    assert [u.username for u in store.list_users()] == ["alice", "bob"]


def test_username_is_unique(store: SqlStore) -> None:
    store.add_user(User(id="u1", username="alice", password_hash="h", created_at=NOW))
    with pytest.raises(IntegrityError):
        store.add_user(User(id="u2", username="alice", password_hash="h", created_at=NOW))
    assert [u.id for u in store.list_users()] == ["u1"]


def test_consent(store: SqlStore) -> None:
    store.put_consent(
        Consent(user_id="u1", client_id="app", resource="https://mcp.example/", scope="a", created_at=NOW)
    )
    store.put_consent(
        Consent(user_id="u1", client_id="app", resource="https://mcp.example/", scope="a b", created_at=NOW + 1)
    )
    got = store.get_consent("u1", "app", "https://mcp.example/")
    assert got is not None
    assert (got.scope, got.created_at) == ("a b", NOW + 1)
    assert store.get_consent("u1", "app", "https://other.example/") is None
    assert store.get_consent("u2", "app", "https://mcp.example/") is None


# -- authorization codes, grants, refresh tokens ----------------------------------------------
def test_code_is_single_use(store: SqlStore) -> None:
    store.save_code(code("c1"), grant("g1"))
    saved = store.get_grant("g1")
    assert saved is not None
    assert (saved.subject, saved.revoked_at) == ("alice", None)

    first, first_use = store.consume_code("c1", NOW + 1)
    assert first_use is True
    assert first is not None
    assert (first.grant_id, first.consumed_at, first.code_challenge) == ("g1", NOW + 1, code().code_challenge)

    replay, replay_first_use = store.consume_code("c1", NOW + 2)
    assert replay_first_use is False
    assert replay is not None
    assert replay.consumed_at == NOW + 1  # the replay does not move the consumption time

    assert store.consume_code("unknown", NOW) == (None, False)


def test_code_consumed_once_under_concurrency(store: SqlStore) -> None:
    store.save_code(code("c1"), grant("g1"))
    results = together(THREADS, lambda: store.consume_code("c1", NOW + 1))
    assert Counter(first_use for _, first_use in results) == {True: 1, False: THREADS - 1}
    assert all(c is not None and c.code_digest == "c1" and c.consumed_at == NOW + 1 for c, _ in results)


def test_refresh_token_is_single_use(store: SqlStore) -> None:
    store.save_code(code("c1"), grant("g1"))
    store.save_refresh_token(refresh("r1"))
    found = store.find_refresh_token("r1")
    assert found is not None
    assert (found.grant_id, found.spent_at) == ("g1", None)

    token, first_use = store.spend_refresh_token("r1", NOW + 5)
    assert first_use is True
    assert token is not None
    assert token.spent_at == NOW + 5
    token, first_use = store.spend_refresh_token("r1", NOW + 6)
    assert first_use is False
    assert token is not None
    assert token.spent_at == NOW + 5

    assert store.spend_refresh_token("unknown", NOW) == (None, False)
    assert store.find_refresh_token("unknown") is None


def test_refresh_token_spent_once_under_concurrency(store: SqlStore) -> None:
    store.save_refresh_token(refresh("r1"))
    results = together(THREADS, lambda: store.spend_refresh_token("r1", NOW + 1))
    assert Counter(first_use for _, first_use in results) == {True: 1, False: THREADS - 1}
    assert all(t is not None and t.spent_at == NOW + 1 for t, _ in results)


def test_revoke_grant_spends_its_live_refresh_tokens(store: SqlStore) -> None:
    store.save_code(code("c1", "g1"), grant("g1"))
    store.save_code(code("c2", "g2"), grant("g2"))
    for digest in ("r1", "r2", "r3"):
        store.save_refresh_token(refresh(digest, "g1"))
    store.save_refresh_token(refresh("other", "g2"))
    store.spend_refresh_token("r3", NOW + 1)

    revoked = store.revoke_grant("g1", NOW + 10)
    assert revoked is not None
    assert revoked.revoked_at == NOW + 10
    spent = {d: t.spent_at for d in ("r1", "r2", "r3", "other") if (t := store.find_refresh_token(d))}
    assert spent == {"r1": NOW + 10, "r2": NOW + 10, "r3": NOW + 1, "other": None}
    assert store.spend_refresh_token("r1", NOW + 11)[1] is False

    again = store.revoke_grant("g1", NOW + 20)
    assert again is not None
    assert again.revoked_at == NOW + 10  # the first revocation time stands
    g2 = store.get_grant("g2")
    assert g2 is not None
    assert g2.revoked_at is None
    assert store.revoke_grant("missing", NOW) is None


# -- replay guard and revocations -------------------------------------------------------------
def test_remember_jti_rejects_replays_until_expiry(store: SqlStore) -> None:
    key = "client_assertion|app|jti-1"
    assert store.remember_jti(key, NOW + 60, NOW) is True
    assert store.remember_jti(key, NOW + 60, NOW + 1) is False
    assert store.remember_jti(key, NOW + 120, NOW + 59) is False
    assert store.remember_jti("client_assertion|app|jti-2", NOW + 60, NOW) is True
    assert store.remember_jti(key, NOW + 120, NOW + 60) is True  # expired: accepted again, with the new expiry
    assert store.remember_jti(key, NOW + 120, NOW + 100) is False


def test_remember_jti_once_under_concurrency(store: SqlStore) -> None:
    results = together(THREADS, lambda: store.remember_jti("jwt_bearer|iss|jti", NOW + 60, NOW))
    assert Counter(results) == {True: 1, False: THREADS - 1}


def test_revocations_since_returns_unexpired_rows_after_seq(store: SqlStore) -> None:
    store.add_revocation("jti", "a", NOW + 100, NOW)
    store.add_revocation("grant", "g1", NOW + 5, NOW)  # expires first
    store.add_revocation("agent", "bot", NOW + 100, NOW)

    everything = store.revocations_since(0, NOW)
    assert [(r.kind, r.value) for r in everything] == [("jti", "a"), ("grant", "g1"), ("agent", "bot")]
    seqs = [r.seq for r in everything]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3

    assert [(r.kind, r.value) for r in store.revocations_since(0, NOW + 5)] == [("jti", "a"), ("agent", "bot")]
    assert [r.value for r in store.revocations_since(seqs[0], NOW)] == ["g1", "bot"]
    assert store.revocations_since(seqs[-1], NOW) == []
    assert store.revocations_since(0, NOW + 100) == []


def test_revocation_committed_late_still_reaches_a_poller(
    store: SqlStore, db_url: str, request: pytest.FixtureRequest
) -> None:
    """A replica polls revocations_since(last_seq): a revocation whose transaction commits after a later
    one's must not fall behind the poller's cursor. Deterministic: the slow writer is held mid-transaction."""
    flushed, go = threading.Event(), threading.Event()

    @sa_event.listens_for(store.sessions, "after_flush")
    def hold_the_slow_writer(*_: Any) -> None:
        if threading.current_thread().name.startswith("slow"):
            flushed.set()
            go.wait(60)

    with ThreadPoolExecutor(1, thread_name_prefix="slow") as slow, ThreadPoolExecutor(1) as fast:
        slow_done = slow.submit(store.add_revocation, "jti", "slow", NOW + 60, NOW)
        assert flushed.wait(60)
        fast_done = fast.submit(store.add_revocation, "jti", "fast", NOW + 60, NOW)
        wait([fast_done], timeout=2)  # a correct store keeps it waiting for "slow"; a racy one commits it now
        seen = list(store.revocations_since(0, NOW))
        cursor = max((r.seq for r in seen), default=0)
        go.set()
        slow_done.result()
        fast_done.result()
    seen += store.revocations_since(cursor, NOW)
    assert sorted(r.value for r in seen) == ["fast", "slow"]


# -- change feed ------------------------------------------------------------------------------
def test_change_feed(store: SqlStore) -> None:
    head, changes = store.changes_since(-1)
    assert (head, changes) == (0, [])

    store.publish_change("key", "kid-1")
    store.put_client(client("app"))
    store.add_revocation("jti", "j1", NOW + 60, NOW)
    head2, changes = store.changes_since(head)
    assert changes == [("key", "kid-1"), ("client", "app"), ("revocation", "jti:j1")]
    assert head2 > head

    assert store.changes_since(head2) == (head2, [])
    assert store.changes_since(-1) == (head2, [])  # a first poll starts at the head, with nothing to replay

    store.set_client_status("app", "disabled")
    store.delete_resource("https://gone.example/")
    head3, changes = store.changes_since(head2)
    assert changes == [("client", "app"), ("resource", "https://gone.example/")]
    assert head3 > head2


# -- audit trail ------------------------------------------------------------------------------
def test_audit_chain_verifies(store: SqlStore) -> None:
    chain(store).append_audit([event(1), event(2, outcome="failure", reason="invalid_grant")])
    chain(store).append_audit([])
    chain(store).append_audit([event(3, client_id=None, subject=None, resource=None, detail={})])

    rows = audit_rows(store)
    assert [r["at"] for r in rows] == [NOW + 1, NOW + 2, NOW + 3]
    assert rows[1]["reason"] == "invalid_grant"
    assert rows[0]["detail"] == {"n": 1, "scope": ["tools:read"], "note": "é"}
    assert rows[0]["prev_hash"] == GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["hash"] for r in rows[:-1]]
    assert first_broken(rows) is None
    assert [r.seq for r in store.list_audit(after_seq=rows[0]["seq"], limit=1)] == [rows[1]["seq"]]


def test_audit_event_without_detail_verifies(store: SqlStore) -> None:
    chain(store).append_audit([{"at": NOW, "event": "key.rotated", "outcome": "success"}])
    assert first_broken(audit_rows(store)) is None


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_events SET reason = 'edited' WHERE seq = :seq",
        "UPDATE audit_events SET detail = '{\"n\": 0}' WHERE seq = :seq",
        "UPDATE audit_events SET at = at + 1 WHERE seq = :seq",
        "DELETE FROM audit_events WHERE seq = :seq - 1",
    ],
    ids=["reason", "detail", "at", "delete-previous"],
)
def test_tampering_breaks_the_chain_at_that_record(store: SqlStore, tamper: str) -> None:
    chain(store).append_audit([event(n) for n in range(1, 6)])
    rows = audit_rows(store)
    assert first_broken(rows) is None
    target = rows[2]["seq"]

    with store.engine.begin() as conn:
        assert conn.execute(text(tamper), {"seq": target}).rowcount == 1
    assert first_broken(audit_rows(store)) == target


def assert_one_chain(store: SqlStore, expected: int) -> None:
    rows = audit_rows(store)
    assert len(rows) == expected
    assert first_broken(rows) is None
    assert len({r["prev_hash"] for r in rows}) == expected
    assert len({r["hash"] for r in rows}) == expected


def test_concurrent_audit_appends_form_one_chain(store: SqlStore) -> None:
    def append_batches() -> None:
        name = threading.current_thread().name
        for n in range(5):
            chain(store).append_audit([event(n, subject=name), event(n, subject=name, outcome="failure")])

    together(8, append_batches)
    assert_one_chain(store, 8 * 5 * 2)


def append_from_process(url: str, name: str, start: Any, batches: int) -> None:
    """Runs in a spawned process: its own engine, appending while another process does the same."""
    engine = make_engine(url)
    try:
        store = SqlStore(engine)
        audit = chain(store)
        store.list_audit(limit=1)  # connect before the race starts
        start.wait()
        for n in range(batches):
            audit.append_audit([event(n, subject=name), event(n, subject=name, outcome="failure")])
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_concurrent_audit_appends_from_processes_form_one_chain(store: SqlStore, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=append_from_process, args=(db_url, f"p{i}", start, 20)) for i in range(2)]
    for p in procs:
        p.start()
    try:
        start.wait(timeout=60)
        for n in range(20):
            chain(store).append_audit([event(n, subject="parent")])
    finally:
        for p in procs:
            p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert_one_chain(store, 2 * 20 * 2 + 20)
