/**
 * When and how long the SDK retries a request.
 *
 * Only requests that are safe to repeat are retried: the idempotent methods GET, HEAD, OPTIONS, PUT
 * and DELETE (RFC 9110 §9.2.2), operations the server documents as idempotent, and any request
 * carrying an `Idempotency-Key` header (metering events are deduplicated by id). They are retried
 * on a transport error, a per-attempt timeout, and on 429, 502, 503 and 504. RFC 9110 §10.2.3:
 * `Retry-After` "indicates how long the user agent ought to wait before making a follow-up request",
 * as delay-seconds or an HTTP-date; on 429/503 it is honoured (capped by `maxDelayMs`), otherwise the
 * delay is exponential backoff with full jitter.
 * @module
 */

/** The methods RFC 9110 §9.2.2 defines as idempotent. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** Statuses worth another attempt. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** How often and how long to retry. */
export interface RetryOptions {
  /** Attempts in all (1 = never retry). Default 4. */
  attempts?: number;
  /** First backoff ceiling in milliseconds, doubling per attempt. Default 200. */
  baseDelayMs?: number;
  /** Upper bound of any delay, `Retry-After` included. Default 10000. */
  maxDelayMs?: number;
}

/** A resolved {@link RetryOptions}. */
export class RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;

  constructor(options: RetryOptions = {}) {
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
  }

  /** Whether try number `attempt` (1-based), which got `status` (0: no response), may be repeated. */
  shouldRetry(attempt: number, retryable: boolean, status: number): boolean {
    if (attempt >= this.attempts || !retryable) return false;
    return status === 0 || RETRY_STATUSES.has(status);
  }

  /** Milliseconds to wait before the next attempt. */
  delayMs(attempt: number, status: number, retryAfterHeader: string | null): number {
    if (RETRY_AFTER_STATUSES.has(status)) {
      const after = retryAfterMs(retryAfterHeader);
      if (after !== undefined) return Math.min(after, this.maxDelayMs);
    }
    return Math.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
  }
}

/** Milliseconds to wait from a `Retry-After` value (delay-seconds or an HTTP-date); undefined if absent or unreadable. */
export function retryAfterMs(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, when - now);
}
