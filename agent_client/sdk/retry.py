"""When and how long the admin SDK retries a request (shared by the sync and async clients).

Only requests that are safe to repeat are retried: the idempotent methods GET, PUT and DELETE
(RFC 9110 §9.2.2), any request carrying an ``Idempotency-Key`` header (the metering endpoint
deduplicates by event id), and operations the SDK declares idempotent (``idempotent=True`` in the
request a surface method describes: ``policies.test``, a POST that changes nothing, and
``budgets.settle``, which the server applies once). They are retried on a transport error, a
timeout, and on 429, 502, 503 and 504. RFC 9110 §10.2.3: ``Retry-After`` "indicates how long the
user agent ought to wait before making a follow-up request" — as delay-seconds or an HTTP-date.
On 429/503 it is honoured: the retry waits that long, and a wait longer than ``max_delay`` (a hard
budget exhausted until its period ends) is not retried at all — the
:class:`~agent_client.sdk.errors.ApiError` carries ``retry_after``. Otherwise the delay is
exponential backoff with full jitter.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx2

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
_RANDOM = secrets.SystemRandom()  # jitter only; the lint bans `random`


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (1 = never retry); delays from ``base_delay`` doubling up to ``max_delay`` seconds."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 10.0

    def retryable(self, request: httpx2.Request, *, idempotent: bool = False) -> bool:
        """Safe to send again: an idempotent method, an ``Idempotency-Key``, or an operation declared idempotent."""
        return idempotent or request.method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in request.headers

    def should_retry(
        self, attempt: int, request: httpx2.Request, response: httpx2.Response | None, *, idempotent: bool = False
    ) -> bool:
        """After try number ``attempt`` (1-based) gave ``response`` (None: a transport error); ``idempotent``:
        the operation is declared safe to repeat."""
        if attempt >= self.attempts or not self.retryable(request, idempotent=idempotent):
            return False
        if response is None:
            return True
        if response.status_code in RETRY_AFTER_STATUSES:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None and after > self.max_delay:
                return False
        return response.status_code in RETRY_STATUSES

    def delay(self, attempt: int, response: httpx2.Response | None) -> float:
        if response is not None and response.status_code in RETRY_AFTER_STATUSES:
            after = retry_after(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self.max_delay)
        return _RANDOM.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date); None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
