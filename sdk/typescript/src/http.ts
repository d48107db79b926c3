/**
 * The transport under every surface: one `fetch` per attempt, a timeout on each (an `AbortSignal`),
 * safe retries ({@link RetryPolicy}), and {@link ApiError} on any non-2xx answer.
 * @module
 */

import { ApiError } from "./errors.js";
import type { AgentTokenSource } from "./agent.js";
import { IDEMPOTENT_METHODS, RetryPolicy, type RetryOptions } from "./retry.js";

/** The default timeout of one attempt, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Options every SDK method accepts as its last argument. */
export interface CallOptions {
  /** Abort the call (all attempts); an aborted call is never retried. */
  signal?: AbortSignal;
  /** Timeout of each attempt in milliseconds (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** An `Idempotency-Key`: makes a POST safe to retry where the server deduplicates by it. */
  idempotencyKey?: string;
}

/** Who the request is from: the client's admin token, a license key, or nobody. */
export type Auth = { kind: "bearer" } | { kind: "license"; key: string } | { kind: "none" };

/** Query values: `undefined` values are not sent, arrays repeat the parameter. */
export type QueryValue = string | number | boolean | undefined | null | ReadonlyArray<string | number | boolean>;

/** One request as the surfaces describe it. */
export interface RequestSpec {
  method: string;
  /** Relative to the API root (`/api/v1`), path parameters already substituted. */
  path: string;
  query?: Record<string, QueryValue> | undefined;
  body?: unknown;
  auth?: Auth;
  /** The server deduplicates this operation: retry it like an idempotent method. */
  idempotent?: boolean;
  /** Answer text rather than JSON (e.g. an invoice as CSV). */
  text?: boolean;
}

/** Settings shared by a client's calls. */
export interface TransportOptions {
  /** The server's base URL (`https://auth.example.com`) or the API root (`.../api/v1`). */
  baseUrl: string;
  /**
   * An access token for the admin API resource (`<baseUrl>/api/v1`), or a function returning a
   * current one (e.g. `() => source.accessToken()` of an {@link AgentTokenSource}), asked per call.
   */
  apiKey?: string | (() => string | Promise<string>) | undefined;
  /** Timeout of each attempt in milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Retry policy; `{ attempts: 1 }` turns retries off. */
  retry?: RetryOptions | RetryPolicy;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** `User-Agent`-like identification sent as `x-authz-sdk`. */
  userAgent?: string;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/** The API root: `baseUrl` with `/api/v1` appended unless it already ends with it. */
export function apiRoot(baseUrl: string): string {
  const root = baseUrl.replace(/\/+$/, "");
  return root.endsWith("/api/v1") ? root : `${root}/api/v1`;
}

/** Percent-encode one path segment. */
export const seg = (value: string | number): string => encodeURIComponent(String(value));

/** Sends requests for a client; exposed as `client.transport` for operations the surfaces lack. */
export class Transport {
  readonly root: string;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  private readonly apiKey: TransportOptions["apiKey"];
  private readonly fetchImpl: typeof fetch;
  private readonly agent: string;

  constructor(options: TransportOptions) {
    this.root = apiRoot(options.baseUrl);
    this.apiKey = options.apiKey;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = options.retry instanceof RetryPolicy ? options.retry : new RetryPolicy(options.retry);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.agent = options.userAgent ?? "authz-sdk-ts/0.1.0";
  }

  /** The URL of `path` (relative to the API root) with `query`. */
  url(path: string, query?: Record<string, QueryValue>): string {
    const url = new URL(this.root + (path.startsWith("/") ? path : `/${path}`));
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value === undefined || value === null) continue;
      const values = Array.isArray(value) ? value : [value];
      for (const v of values) url.searchParams.append(name, String(v));
    }
    return url.toString();
  }

  /** One API call, retried when safe; the parsed JSON answer (an empty body is `{}`). */
  async request<T>(spec: RequestSpec, options: CallOptions = {}): Promise<T> {
    const text = await (await this.send(spec, options)).text();
    if (spec.text) return text as T;
    return (text ? JSON.parse(text) : {}) as T;
  }

  /**
   * One API call, retried when safe; the successful `Response`, its body unread (for an answer
   * checked before it is parsed, such as a signed licensing answer). Non-2xx: {@link ApiError}.
   */
  async send(spec: RequestSpec, options: CallOptions = {}): Promise<Response> {
    const method = spec.method.toUpperCase();
    const headers: Record<string, string> = { accept: "application/json", "x-authz-sdk": this.agent };
    const auth = spec.auth ?? { kind: "bearer" };
    if (auth.kind === "bearer") {
      const key = typeof this.apiKey === "function" ? await this.apiKey() : this.apiKey;
      if (!key) throw new ApiError({ status: 0, title: "NoApiKey", detail: "this call needs the client's apiKey" });
      headers.authorization = `Bearer ${key}`;
    } else if (auth.kind === "license") {
      headers.authorization = `License ${auth.key}`;
    }
    let payload: string | undefined;
    if (spec.body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(spec.body);
    }
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    Object.assign(headers, options.headers ?? {});
    const retryable = IDEMPOTENT_METHODS.has(method) || spec.idempotent === true || "idempotency-key" in headers;
    const url = this.url(spec.path, spec.query);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const signals = [AbortSignal.timeout(timeoutMs)];
      if (options.signal) signals.push(options.signal);
      let response: Response;
      try {
        response = await this.fetchImpl(url, { method, headers, body: payload, signal: AbortSignal.any(signals) });
      } catch (cause) {
        if (options.signal?.aborted || !this.retry.shouldRetry(attempt, retryable, 0)) throw ApiError.transport(cause);
        await sleep(this.retry.delayMs(attempt, 0, null), options.signal);
        continue;
      }
      if (response.ok) return response;
      if (!this.retry.shouldRetry(attempt, retryable, response.status)) throw await ApiError.fromResponse(response);
      await response.body?.cancel().catch(() => undefined);
      await sleep(this.retry.delayMs(attempt, response.status, response.headers.get("retry-after")), options.signal);
    }
  }
}
