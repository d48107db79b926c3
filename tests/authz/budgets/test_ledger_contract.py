"""The one contract both ledgers keep: SQLite, PostgreSQL and Redis run every test here."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from authz.budgets.ledger import Ledger
from authz.budgets.model import Budget, Exhausted, Reservation
from tests.authz.budgets.conftest import Clock
from tests.authz.budgets.workers import Spec, reserve_and_exit_hard, spend_until_refused

SPAWN = multiprocessing.get_context("spawn")


def budget(bid: str = "b1", limit: int = 10, **kw: object) -> Budget:
    values: dict[str, object] = {"subject_type": "agent", "subject_id": "a1", "metric": "calls", "period": "day"}
    values.update(kw)
    return Budget(id=bid, limit=limit, **values).validate()  # type: ignore[arg-type]


def reserved(ledger: Ledger, b: Budget, rid: str, amount: int, ttl: float = 60) -> Reservation:
    got = ledger.reserve(rid, [(b, amount)], ttl)
    assert isinstance(got, Reservation), got
    return got


def test_hard_cap_refuses_past_the_limit(ledger: Ledger, clock: Clock) -> None:
    b = budget(limit=10)
    r = reserved(ledger, b, "r1", 6)
    refused = ledger.reserve("r2", [(b, 5)], 60)
    assert isinstance(refused, Exhausted) and refused.budget_id == "b1" and refused.reason == "exhausted"
    assert refused.retry_after == ledger.status(b).period_end
    reserved(ledger, b, "r3", 4)  # exactly at the cap is allowed
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining) == (0, 10, 0)
    assert ledger.settle(r, {"b1": 2}).state == "settled"
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining) == (2, 4, 4)


def test_a_spent_hard_budget_refuses_even_a_zero_estimate(ledger: Ledger) -> None:
    b = budget(limit=3, metric="tokens")
    assert isinstance(ledger.reserve("z1", [(b, 0)], 60), Reservation)  # tokens reported afterwards
    ledger.settle(reserved(ledger, b, "r1", 3), {"b1": 3})
    refused = ledger.reserve("z2", [(b, 0)], 60)
    assert isinstance(refused, Exhausted) and refused.budget_id == "b1"
    many = ledger.reserve_many([("z3", [(b, 0)], 60)])
    assert isinstance(many[0], Exhausted)
    soft = budget(limit=3, metric="tokens", hard=False)
    assert isinstance(ledger.reserve("z4", [(soft, 0)], 60), Reservation)


def test_concurrent_threads_and_processes_end_exactly_at_the_cap(
    spec: Spec, ledger_factory: Callable[..., Ledger]
) -> None:
    cap = 200
    b = budget("cap", limit=cap)
    ledger = ledger_factory()
    with SPAWN.Pool(4) as pool:
        procs = [pool.apply_async(spend_until_refused, (spec, b, f"p{n}")) for n in range(4)]
        with ThreadPoolExecutor(16) as threads:
            futures = [threads.submit(spend_until_refused, spec, b, f"t{n}") for n in range(16)]
            results = [f.result(timeout=300) for f in futures]
        results += [p.get(timeout=300) for p in procs]
    assert sum(settled for settled, _, _ in results) == cap
    assert all(refused == 4 for _, refused, _ in results)  # the first refusal and every extra attempt
    assert sum(late for _, _, late in results) == 0
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining) == (cap, 0, 0)


def test_expired_reservation_stops_counting(ledger: Ledger, clock: Clock) -> None:
    b = budget(limit=10)
    r = reserved(ledger, b, "crashed", 10, ttl=5)
    assert isinstance(ledger.reserve("next", [(b, 1)], 60), Exhausted)
    clock.advance(5)  # no sweeper, no settle: the hold simply stops counting
    assert ledger.status(b).reserved == 0
    reserved(ledger, b, "next2", 10)
    # a late settle of the expired reservation records the work done, without freeing twice
    assert ledger.settle(r, {"b1": 3}).state == "settled"
    s = ledger.status(b)
    assert (s.spent, s.reserved) == (3, 10)


def test_caller_killed_mid_reservation_releases_after_ttl(spec: Spec, ledger_factory: Callable[..., Ledger]) -> None:
    ledger = ledger_factory()  # real clock, like the killed process
    b = budget("killed", limit=5)
    parent, child = SPAWN.Pipe()
    proc = SPAWN.Process(target=reserve_and_exit_hard, args=(spec, b, 2.0, child))
    proc.start()
    assert parent.poll(60), "the child never reserved"
    expires_at = parent.recv()
    proc.join(60)
    assert proc.exitcode == 0
    if time.time() < expires_at - 0.05:
        assert ledger.status(b).reserved == 5
    deadline = time.monotonic() + 30  # bounded wait: ttl 2 s
    while ledger.status(b).reserved:
        assert time.monotonic() < deadline, "the dead caller's reservation never expired"
        time.sleep(0.05)
    assert isinstance(ledger.reserve("after", [(b, 5)], 60), Reservation)


def test_rollover_at_the_period_boundary(ledger: Ledger, clock: Clock) -> None:
    b = budget(limit=5, period="day", timezone="Europe/Berlin")
    end = b.window(clock()).end
    assert end is not None
    clock.at = end - 0.5
    ledger.settle(reserved(ledger, b, "before", 5))
    refused = ledger.reserve("late", [(b, 1)], 60)
    assert isinstance(refused, Exhausted) and refused.retry_after == end
    clock.at = end  # the first instant of the next day: a new window that starts at zero, no reset job
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining, s.period_start) == (0, 0, 5, end)
    reserved(ledger, b, "after", 5)


def test_month_rollover_in_a_time_zone(ledger: Ledger, clock: Clock) -> None:
    b = budget(limit=1, period="month", timezone="America/New_York")
    clock.at = datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC).timestamp()  # 18:59 in New York
    ledger.settle(reserved(ledger, b, "feb", 1))
    assert isinstance(ledger.reserve("feb2", [(b, 1)], 60), Exhausted)
    clock.at = datetime(2028, 3, 1, 5, 0, tzinfo=UTC).timestamp()  # 00:00 in New York: March
    reserved(ledger, b, "mar", 1)


def test_all_or_none_across_agent_and_team(ledger: Ledger) -> None:
    agent = budget("agent-b", limit=10)
    team = budget("team-b", limit=3, subject_type="team", subject_id="t1")
    other_agent = budget("agent-c", limit=10, subject_id="a2")
    ledger.settle(reserved_many(ledger, "fill", [(other_agent, 3), (team, 3)]))
    refused = ledger.reserve("x", [(agent, 1), (team, 1)], 60)
    assert isinstance(refused, Exhausted) and refused.budget_id == "team-b"
    s = ledger.status(agent)
    assert (s.spent, s.reserved) == (0, 0)  # the agent was not charged
    assert ledger.status(team).spent == 3


def reserved_many(ledger: Ledger, rid: str, charges: list[tuple[Budget, int]]) -> Reservation:
    got = ledger.reserve(rid, charges, 60)
    assert isinstance(got, Reservation), got
    return got


def test_settle_is_idempotent(ledger: Ledger) -> None:
    b = budget(limit=10)
    r = reserved(ledger, b, "once", 5)
    first = ledger.settle(r, {"b1": 3})
    assert first.state == "settled"
    assert [(w.before, w.after) for w in first.windows] == [(0, 3)]
    assert ledger.settle(r, {"b1": 3}).state == "already"
    assert ledger.settle("once", {"b1": 3}).state == "already"
    assert ledger.release("once").state == "already"
    s = ledger.status(b)
    assert (s.spent, s.reserved) == (3, 0)
    assert ledger.settle("never-made").state == "unknown"


def test_settle_by_id_and_default_actual_is_the_reservation(ledger: Ledger) -> None:
    b = budget(limit=10)
    reserved(ledger, b, "by-id", 4)
    assert ledger.settle("by-id").state == "settled"  # no actual given: charge what was reserved, never 0
    assert ledger.status(b).spent == 4


def test_release_frees_without_spending(ledger: Ledger) -> None:
    b = budget(limit=10)
    r = reserved(ledger, b, "rel", 10)
    assert ledger.release(r).state == "released"
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining) == (0, 0, 10)


def test_reserve_is_idempotent_per_request_id(ledger: Ledger) -> None:
    b = budget(limit=10)
    first = reserved(ledger, b, "same", 4)
    again = ledger.reserve("same", [(b, 4)], 60)
    assert again == first
    assert ledger.status(b).reserved == 4


def test_soft_budget_never_refuses_but_counts(ledger: Ledger) -> None:
    b = budget("soft", limit=2, hard=False)
    for n in range(3):
        ledger.settle(reserved(ledger, b, f"s{n}", 5))
    s = ledger.status(b)
    assert (s.spent, s.reserved, s.remaining) == (15, 0, 0)


def test_reserve_many_is_one_batch_of_independent_reservations(ledger: Ledger) -> None:
    b = budget(limit=5)
    results = ledger.reserve_many([(f"m{n}", [(b, 1)], 60) for n in range(8)])
    assert sum(isinstance(r, Reservation) for r in results) == 5
    assert all(isinstance(r, Exhausted) for r in results[5:])


def test_lifetime_budget_has_no_period_end(ledger: Ledger) -> None:
    b = budget(limit=1, period="lifetime")
    ledger.settle(reserved(ledger, b, "l1", 1))
    refused = ledger.reserve("l2", [(b, 1)], 60)
    assert isinstance(refused, Exhausted) and refused.retry_after is None
    assert ledger.status(b).period_end is None


@pytest.mark.parametrize("amount", [-1, 2**53 + 1])
def test_amounts_are_bounded_integers(ledger: Ledger, amount: int) -> None:
    from authz.budgets.model import BudgetError

    with pytest.raises(BudgetError):
        ledger.reserve("bad", [(budget(), amount)], 60)


def test_reserve_many_mixes_budget_sets_and_known_ids(ledger: Ledger) -> None:
    agent = budget("a", limit=3)
    team = budget("t", limit=4, subject_type="team", subject_id="t1")
    known = reserved(ledger, agent, "known", 1)
    batch = [("known", [(agent, 1)], 60.0)]
    batch += [(f"at{n}", [(agent, 1), (team, 1)], 60.0) for n in range(3)]
    batch += [(f"t{n}", [(team, 1)], 60.0) for n in range(3)]
    results = ledger.reserve_many(batch)
    assert results[0] == known  # idempotent: the existing reservation, not a second hold
    assert [isinstance(r, Reservation) for r in results[1:4]] == [True, True, False]
    assert isinstance(results[3], Exhausted) and results[3].budget_id == "a"
    assert [isinstance(r, Reservation) for r in results[4:]] == [True, True, False]
    assert (ledger.status(agent).reserved, ledger.status(team).reserved) == (3, 4)
    for r in results:
        if isinstance(r, Reservation):
            ledger.settle(r)
    assert (ledger.status(agent).spent, ledger.status(team).spent) == (3, 4)


def test_the_issuance_read_is_the_status_spent_and_period_end(ledger: Ledger, clock: Clock) -> None:
    """``spent()`` (the SQL ledger's one-statement read at token issuance) says what ``status()`` says."""
    spent_of = getattr(ledger, "spent", None)
    if spent_of is None:
        pytest.skip("this ledger answers the issuance check with status()")
    b, lifetime = budget(limit=5), budget("b2", limit=5, period="lifetime")
    for x in (b, lifetime):
        assert spent_of(x) == (0, ledger.status(x).period_end)  # no window row yet
    ledger.settle(reserved(ledger, b, "r1", 3))
    reserved(ledger, b, "held", 1, ttl=0.01)
    ledger.settle(reserved(ledger, lifetime, "r2", 2))
    for x in (b, lifetime):
        s = ledger.status(x)
        assert spent_of(x) == (s.spent, s.period_end)
    assert spent_of(b)[0] == 3 and spent_of(lifetime)[1] is None


def test_the_issuance_read_is_remembered_until_this_ledger_writes_or_it_ages(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``spent()`` reuses its answer for ``SPENT_FRESH`` seconds (no database read per token), but
    never past a write of its own ledger; another replica's spend shows once the answer has aged."""
    from authz.budgets import sql_ledger

    if not isinstance(ledger, sql_ledger.SqlLedger):
        pytest.skip("only the SQL ledger remembers the issuance read")
    b = budget(limit=5)
    replica = sql_ledger.SqlLedger(ledger.engine, now=ledger.now)
    assert ledger.spent(b)[0] == 0
    ledger.settle(reserved(ledger, b, "r1", 2))
    assert ledger.spent(b)[0] == 2  # its own write: seen at once
    replica.settle(reserved(replica, b, "r2", 1))
    assert ledger.spent(b)[0] == 2  # another replica's: remembered for up to SPENT_FRESH seconds
    monkeypatch.setattr(sql_ledger, "SPENT_FRESH", 0.0)
    assert ledger.spent(b)[0] == 3  # ... then read again
