/**
 * Signed licensing answers, checked with WebCrypto like the Python `verify_response`: fail closed.
 *
 * Every 2xx answer of the key side (`licenses.validate`, `me`, `activate`, `heartbeat`, `deactivate`,
 * `checkout({ key })`) carries `Authz-Signature: keyid="…", algorithm="ed25519", signature="<base64>"`,
 * an Ed25519 signature (RFC 8032) over `"response/" + body` by the key `keyid` of the server's JWK
 * Set (`GET /api/v1/licenses/jwks`); the body's `meta` echoes the request's `nonce` and states the
 * server's time `ts`. {@link verifyResponse} checks the signature (by the named key only), the nonce
 * (an answer captured for another request is `REPLAYED`), the answer's age and, with a
 * {@link HighWaterMark}, a clock rolled back behind a time already seen.
 * @module
 */

import { type HighWaterMark, LicenseError, type PublicKeys, checkClock, importKeys, utf8, verifySignature } from "./verify.js";

/** The signature header of signed licensing answers. */
export const SIGNATURE_HEADER = "authz-signature";

/** Options of {@link verifyResponse}. */
export interface ResponseVerifyOptions {
  /** The nonce this request sent; `null`/absent skips the check (a cached answer re-verified). */
  nonce?: string | number | null;
  /** The oldest answer accepted, in seconds (default 300). */
  maxAgeSeconds?: number;
  /** Clock-rollback protection. */
  mark?: HighWaterMark;
  /** The current time in Unix seconds (default: the clock). */
  now?: number;
}

/** How a {@link Client} checks signed licensing answers (its `licensing` option). */
export interface LicenseVerification {
  /**
   * The server's licensing public keys (the JSON of `GET /api/v1/licenses/jwks`), pinned in the
   * program: what protects against a network that is not trusted. Default: fetched once per client
   * from the same server (`licenses.jwks()`) and kept for the client's life.
   */
  keys?: PublicKeys;
  /** The oldest answer accepted, in seconds (default 300). */
  maxAgeSeconds?: number;
  /** Clock-rollback protection shared by every answer. */
  mark?: HighWaterMark;
}

const PARAM = /(\w+)="([^"]*)"/g;

/**
 * A signed answer's JSON (`{ data, meta }`) after checking its `Authz-Signature`, its nonce and its
 * age; rejects with a {@link LicenseError}: `SIGNATURE_MISSING`, `SIGNATURE_INVALID`,
 * `RESPONSE_MALFORMED`, `REPLAYED`, `RESPONSE_STALE`, `CLOCK_ROLLBACK`, `NO_KEYS`.
 */
export async function verifyResponse(
  body: string | Uint8Array<ArrayBuffer>,
  signature: string | null | undefined,
  publicKey: PublicKeys,
  options: ResponseVerifyOptions = {},
): Promise<Record<string, unknown>> {
  const params = new Map([...(signature ?? "").matchAll(PARAM)].map((m) => [m[1] ?? "", m[2] ?? ""]));
  const sig = params.get("signature");
  if (params.get("algorithm") !== "ed25519" || sig === undefined) {
    throw new LicenseError("SIGNATURE_MISSING", "the answer carries no Ed25519 Authz-Signature");
  }
  const bytes = typeof body === "string" ? utf8(body) : body;
  const message = new Uint8Array(9 + bytes.length);
  message.set(utf8("response/"));
  message.set(bytes, 9);
  await verifySignature(await importKeys(publicKey), message, sig, params.get("keyid"));
  let doc: Record<string, unknown>;
  let meta: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as Record<string, unknown>;
    meta = doc.meta as Record<string, unknown>;
    if (typeof meta.ts !== "number" || !Number.isFinite(meta.ts)) throw new Error("no ts");
  } catch {
    throw new LicenseError("RESPONSE_MALFORMED", "the signed answer has no meta.ts");
  }
  if (options.nonce !== undefined && options.nonce !== null && meta.nonce !== options.nonce) {
    throw new LicenseError("REPLAYED", "the signed answer is for another request (nonce mismatch)");
  }
  const now = options.now ?? Date.now() / 1000;
  const maxAge = options.maxAgeSeconds ?? 300;
  checkClock(options.mark, now, meta.ts, maxAge);
  if (now - meta.ts > maxAge) throw new LicenseError("RESPONSE_STALE", "the signed answer is too old");
  return doc;
}
