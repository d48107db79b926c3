// The retry rules without a server: which calls are retried, and how long Retry-After makes us wait.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RetryPolicy, retryAfterMs } from "../src/index.js";

test("Retry-After as delay-seconds or an HTTP-date; unreadable values are ignored", () => {
  assert.equal(retryAfterMs("7"), 7000);
  assert.equal(retryAfterMs(" 0 "), 0);
  const now = Date.parse("2026-12-03T12:00:00Z");
  assert.equal(retryAfterMs("Thu, 03 Dec 2026 12:00:30 GMT", now), 30_000);
  assert.equal(retryAfterMs("Thu, 03 Dec 2026 11:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon"), undefined);
  assert.equal(retryAfterMs(null), undefined);
});

test("only retryable calls are retried, on transport errors and 429/502/503/504, up to attempts", () => {
  const policy = new RetryPolicy({ attempts: 3 });
  assert.equal(policy.shouldRetry(1, true, 0), true);
  for (const status of [429, 502, 503, 504]) assert.equal(policy.shouldRetry(1, true, status), true);
  for (const status of [400, 401, 404, 409, 422, 500]) assert.equal(policy.shouldRetry(1, true, status), false);
  assert.equal(policy.shouldRetry(1, false, 503), false);
  assert.equal(policy.shouldRetry(3, true, 503), false);
});

test("Retry-After is honoured on 429 and 503, capped by maxDelayMs; otherwise jittered backoff", () => {
  const policy = new RetryPolicy({ baseDelayMs: 100, maxDelayMs: 5000 });
  assert.equal(policy.delayMs(1, 429, "2"), 2000);
  assert.equal(policy.delayMs(1, 503, "60"), 5000);
  for (let attempt = 1; attempt <= 8; attempt++) {
    const delay = policy.delayMs(attempt, 502, "2");
    assert.ok(delay >= 0 && delay <= Math.min(5000, 100 * 2 ** (attempt - 1)), `${attempt}: ${delay}`);
  }
});
