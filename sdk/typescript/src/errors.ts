/**
 * The one error type of the SDK: an RFC 9457 problem, an OAuth error (RFC 6749 §5.2), or a
 * transport failure (no response: `status` 0).
 *
 * RFC 9457 §3.1: a problem details object has the members `type` (default "about:blank"),
 * `title`, `status`, `detail` and `instance`; §3.2 lets a problem type add extension members. The
 * admin API adds `errors` (one entry per offending field); the licensing endpoints add `code`.
 * @module
 */

/** One offending field of a 422 problem (`errors[]`). */
export interface FieldError {
  field?: string;
  message?: string;
  [key: string]: unknown;
}

/** Fields of an {@link ApiError}. */
export interface ApiErrorInit {
  status: number;
  title: string;
  type?: string;
  detail?: string | undefined;
  instance?: string | undefined;
  errors?: FieldError[];
  code?: string | undefined;
  error?: string | undefined;
  errorDescription?: string | undefined;
  headers?: Record<string, string>;
  body?: unknown;
  cause?: unknown;
}

/** A failed call: the HTTP status (0 when no response arrived) and the problem's fields. */
export class ApiError extends Error {
  /** HTTP status; 0 for a transport failure or a timeout. */
  readonly status: number;
  /** RFC 9457 `title` (or the OAuth `error` code, or the status text). */
  readonly title: string;
  /** RFC 9457 `type` URI ("about:blank" when absent). */
  readonly type: string;
  /** RFC 9457 `detail` (or the OAuth `error_description`). */
  readonly detail: string | undefined;
  /** RFC 9457 `instance`. */
  readonly instance: string | undefined;
  /** The admin API's per-field errors of a 422 (`errors`). */
  readonly errors: FieldError[];
  /** A licensing problem's stable `code` (e.g. `TOO_MANY_MACHINES`). */
  readonly code: string | undefined;
  /** The OAuth `error` code (RFC 6749 §5.2), when the answer was an OAuth error. */
  readonly error: string | undefined;
  /** The OAuth `error_description`. */
  readonly errorDescription: string | undefined;
  /** Response headers, lower-cased names (e.g. `retry-after`, `www-authenticate`). */
  readonly headers: Record<string, string>;
  /** The parsed response body (or its text), when there was one. */
  readonly body: unknown;

  constructor(init: ApiErrorInit) {
    super(`${init.status} ${init.title}${init.detail ? `: ${init.detail}` : ""}`, { cause: init.cause });
    this.name = "ApiError";
    this.status = init.status;
    this.title = init.title;
    this.type = init.type ?? "about:blank";
    this.detail = init.detail;
    this.instance = init.instance;
    this.errors = init.errors ?? [];
    this.code = init.code;
    this.error = init.error;
    this.errorDescription = init.errorDescription;
    this.headers = init.headers ?? {};
    this.body = init.body;
  }

  /** The names of the offending fields (`errors[].field`). */
  get fields(): string[] {
    return this.errors.map((e) => String(e.field ?? ""));
  }

  /** Build from a non-2xx response: its problem (or OAuth error) document, else the status line. */
  static async fromResponse(response: Response): Promise<ApiError> {
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const text = await response.text().catch(() => "");
    let body: unknown = text || undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    const fallback = response.statusText || "Error";
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return new ApiError({ status: response.status, title: fallback, headers, body });
    }
    const doc = body as Record<string, unknown>;
    const str = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : String(v));
    const errors = Array.isArray(doc.errors) ? (doc.errors.filter((e) => typeof e === "object" && e) as FieldError[]) : [];
    return new ApiError({
      status: typeof doc.status === "number" ? doc.status : response.status,
      title: str(doc.title) ?? str(doc.error) ?? fallback,
      type: str(doc.type) ?? "about:blank",
      detail: str(doc.detail) ?? str(doc.error_description),
      instance: str(doc.instance),
      errors,
      code: str(doc.code),
      error: str(doc.error),
      errorDescription: str(doc.error_description),
      headers,
      body,
    });
  }

  /** No response: the connection failed, or the call timed out or was aborted (`status` 0). */
  static transport(cause: unknown): ApiError {
    const err = cause as { name?: string; message?: string } | undefined;
    return new ApiError({ status: 0, title: err?.name ?? "TransportError", detail: err?.message || undefined, cause });
  }
}
