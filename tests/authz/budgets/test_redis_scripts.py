"""The Redis ledger loads its Lua scripts once, and never exposes a half-loaded script table."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from authz.budgets.redis_ledger import RedisLedger


@pytest.mark.redis
def test_concurrent_first_calls_never_see_a_half_loaded_script_table(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ledger = RedisLedger(client, tag="scripts-race")
    real_load = client.script_load

    def slow_load(source: Any) -> Any:  # widen the window in which the table is being filled
        time.sleep(0.02)
        return real_load(source)

    client.script_load = slow_load  # type: ignore[method-assign, assignment]
    errors: list[BaseException] = []

    def first_call(name: str) -> None:
        try:
            ledger._eval(name, ["budget:{scripts-race}:x"], [])
        except KeyError as exc:
            errors.append(exc)
        except Exception:
            pass

    loader = threading.Thread(target=first_call, args=("status",))
    loader.start()
    time.sleep(0.03)  # the loader has published part of the table (old code) or nothing yet (fixed code)
    late = threading.Thread(target=first_call, args=("finish",))
    late.start()
    loader.join()
    late.join()
    client.close()
    assert errors == []
