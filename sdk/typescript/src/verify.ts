/**
 * Offline verification of authz license and machine files with WebCrypto: no network, fail closed.
 *
 * The format is Keygen's: `-----BEGIN LICENSE FILE-----` (or `MACHINE FILE`) around base64 of
 * `{ enc, sig, alg }`; `sig` is an Ed25519 signature (RFC 8032) over `"license/" + enc`
 * (`"machine/" + enc`) by a key of the server's JWK Set (`GET /api/v1/licenses/jwks`); `alg` is
 * `base64+ed25519` (enc is base64 JSON) or `aes-256-gcm+ed25519` (enc is `ct.iv.tag`, AES-256-GCM
 * with the key SHA-256(license key [+ fingerprint])). The payload's `meta` (type, kid, iat, exp)
 * must match the file; the file's and the license's expiry, the status, the machine fingerprint and
 * required entitlements are checked. An optional high-water mark refuses a clock rolled back behind
 * a time already seen (`CLOCK_ROLLBACK`). Every failure is a {@link LicenseError} with a stable code.
 * @module
 */

/** A verification failure; `code` is stable (`SIGNATURE_INVALID`, `FILE_EXPIRED`, ...). */
export class LicenseError extends Error {
  readonly code: string;

  constructor(code: string, detail: string) {
    super(`${code}: ${detail}`);
    this.name = "LicenseError";
    this.code = code;
  }
}

/** An Ed25519 public key as a JWK (`kty: "OKP"`, `crv: "Ed25519"`, `x`). */
export interface Ed25519Jwk {
  kty: string;
  crv?: string;
  x?: string;
  kid?: string;
  [key: string]: unknown;
}

/** The latest time (Unix seconds) this client has seen, kept where the program keeps its state. */
export interface HighWaterMark {
  get(): number;
  set(value: number): void;
}

/** Options of {@link verifyOffline}. */
export interface VerifyOptions {
  /** The license key: needed to decrypt an encrypted file. */
  key?: string;
  /** This machine's fingerprint: needed for a machine file. */
  fingerprint?: string;
  /** Entitlements the license must carry. */
  entitlements?: readonly string[];
  /** Clock-rollback protection. */
  mark?: HighWaterMark;
  /** Tolerated clock skew in seconds (default 300). */
  skewSeconds?: number;
  /** The current time in Unix seconds (default: the clock). */
  now?: number;
}

/** A verified file. */
export interface LicenseFile {
  kind: "license" | "machine";
  kid: string;
  issuedAt: number;
  expiresAt: number;
  license: Record<string, unknown>;
  machine: Record<string, unknown> | undefined;
  get entitlements(): string[];
}

const MAX_FILE = 256 * 1024;
const ARMOR = /^-----BEGIN (LICENSE|MACHINE) FILE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END \1 FILE-----\s*$/;

/** @internal Strict standard base64 (padding required). */
export function b64(text: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Error("not base64");
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** @internal */
export const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);

/** A JWK Set (`licenses.jwks()`), one of its JWKs, or a list of them. */
export type PublicKeys = { keys: Ed25519Jwk[] } | Ed25519Jwk | readonly Ed25519Jwk[];

/** @internal The Ed25519 keys of a JWK Set, a JWK, or a list of JWKs, by kid. */
export async function importKeys(publicKey: PublicKeys): Promise<Map<string, CryptoKey>> {
  const jwks: readonly Ed25519Jwk[] = Array.isArray(publicKey)
    ? publicKey
    : "keys" in (publicKey as object)
      ? (publicKey as { keys: Ed25519Jwk[] }).keys
      : [publicKey as Ed25519Jwk];
  const out = new Map<string, CryptoKey>();
  for (const jwk of jwks) {
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") continue;
    const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x }, { name: "Ed25519" }, false, ["verify"]);
    out.set(String(jwk.kid ?? ""), key);
  }
  if (out.size === 0) throw new LicenseError("NO_KEYS", "the public key set has no Ed25519 key");
  return out;
}

/** Canonical `LK-XXXXXX-...` form of a license key (case, spaces and dashes as typed). */
export function canonicalKey(key: string): string {
  const compact = key.replace(/\s+/g, "").replace(/-/g, "").toUpperCase();
  if (!compact.startsWith("LK") || compact.length !== 38) throw new LicenseError("KEY_MALFORMED", "not a license key");
  const chars = compact.slice(2);
  const groups = [];
  for (let i = 0; i < chars.length; i += 6) groups.push(chars.slice(i, i + 6));
  return ["LK", ...groups].join("-");
}

async function decode(enc: string, alg: string, kind: string, options: VerifyOptions): Promise<Record<string, unknown>> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    if (alg === "base64+ed25519") {
      raw = b64(enc);
    } else if (alg === "aes-256-gcm+ed25519") {
      if (options.key === undefined || (kind === "machine" && options.fingerprint === undefined)) {
        throw new LicenseError("KEY_REQUIRED", "an encrypted file needs the license key (and the fingerprint)");
      }
      const bound = kind === "machine" ? (options.fingerprint ?? "") : "";
      const secret = await crypto.subtle.digest("SHA-256", utf8(canonicalKey(options.key) + bound));
      const parts = enc.split(".");
      if (parts.length !== 3) throw new Error("enc is not ct.iv.tag");
      const [ct, iv, tag] = parts.map((p) => b64(p)) as [Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>, Uint8Array<ArrayBuffer>];
      const aes = await crypto.subtle.importKey("raw", secret, { name: "AES-GCM" }, false, ["decrypt"]);
      const sealed = new Uint8Array(ct.length + tag.length);
      sealed.set(ct);
      sealed.set(tag, ct.length);
      try {
        raw = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv, tagLength: 128 }, aes, sealed));
      } catch {
        throw new LicenseError("DECRYPTION_FAILED", "wrong license key or fingerprint for this file");
      }
    } else {
      throw new LicenseError("ALG_UNSUPPORTED", `unsupported alg ${JSON.stringify(alg)}`);
    }
    const payload: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw new Error("not an object");
    return payload as Record<string, unknown>;
  } catch (err) {
    if (err instanceof LicenseError) throw err;
    throw new LicenseError("FILE_MALFORMED", "the payload cannot be decoded");
  }
}

/** @internal Refuse a clock behind the mark or the signed time; advance the mark. */
export function checkClock(mark: HighWaterMark | undefined, now: number, signed: number, skew: number): void {
  const seen = mark ? mark.get() : 0;
  if (now < seen - skew) throw new LicenseError("CLOCK_ROLLBACK", "the clock is behind a time this client has already seen");
  if (now < signed - skew) throw new LicenseError("CLOCK_ROLLBACK", "the clock is behind the server's signed time");
  mark?.set(Math.max(seen, now, signed));
}

/**
 * @internal The kid of the key that made `sigB64` over `message`: the key named `kid` when given (a kid
 * not in the set fails), else any key of the set. `SIGNATURE_INVALID` when none did.
 */
export async function verifySignature(keys: Map<string, CryptoKey>, message: Uint8Array<ArrayBuffer>, sigB64: string, kid?: string): Promise<string> {
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = b64(sigB64);
  } catch {
    throw new LicenseError("SIGNATURE_INVALID", "the signature is not base64");
  }
  const candidates = kid === undefined ? [...keys] : keys.has(kid) ? [[kid, keys.get(kid) as CryptoKey] as const] : [];
  for (const [k, key] of candidates) {
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message)) return k;
  }
  throw new LicenseError("SIGNATURE_INVALID", "no trusted key made this signature");
}

/**
 * Verify a license or machine file completely offline against the server's public key(s) (the
 * JWK Set of `licenses.jwks()`, or one JWK). Resolves to the verified file; rejects with a
 * {@link LicenseError} on any doubt.
 */
export async function verifyOffline(
  file: string,
  publicKey: PublicKeys,
  options: VerifyOptions = {},
): Promise<LicenseFile> {
  if (file.length > MAX_FILE) throw new LicenseError("FILE_MALFORMED", "the file is too large");
  const m = ARMOR.exec(file.trim());
  if (!m) throw new LicenseError("FILE_MALFORMED", "not a -----BEGIN LICENSE FILE----- or MACHINE FILE");
  const kind = (m[1] ?? "").toLowerCase() as "license" | "machine";
  let enc: string, sig: string, alg: string;
  try {
    const doc = JSON.parse(new TextDecoder().decode(b64((m[2] ?? "").replace(/\s+/g, "")))) as Record<string, unknown>;
    if (typeof doc.enc !== "string" || typeof doc.sig !== "string" || typeof doc.alg !== "string") throw new Error("fields");
    ({ enc, sig, alg } = doc as { enc: string; sig: string; alg: string });
  } catch {
    throw new LicenseError("FILE_MALFORMED", "the file's body is not {enc, sig, alg}");
  }
  const kid = await verifySignature(await importKeys(publicKey), utf8(`${kind}/${enc}`), sig);
  const payload = await decode(enc, alg, kind, options);
  const meta = (payload.meta ?? {}) as Record<string, unknown>;
  const data = (payload.data ?? {}) as Record<string, unknown>;
  if (meta.type !== kind || meta.kid !== kid) throw new LicenseError("FILE_MALFORMED", "the payload's type or key id does not match the file");
  const { iat, exp } = meta;
  if (!Number.isInteger(iat) || !Number.isInteger(exp)) throw new LicenseError("FILE_MALFORMED", "the payload has no iat/exp");
  const now = options.now ?? Date.now() / 1000;
  checkClock(options.mark, now, iat as number, options.skewSeconds ?? 300);
  if (now >= (exp as number)) throw new LicenseError("FILE_EXPIRED", "the license file has expired; check out a new one");
  const lic = (data.license ?? {}) as Record<string, unknown>;
  if (lic.status !== "active") throw new LicenseError("LICENSE_NOT_ACTIVE", `the license was ${String(lic.status)} when the file was issued`);
  if (Number.isInteger(lic.expires_at) && now >= (lic.expires_at as number) && lic.expiration_strategy !== "maintain") {
    throw new LicenseError("LICENSE_EXPIRED", "the license has expired");
  }
  const machine = typeof data.machine === "object" && data.machine !== null ? (data.machine as Record<string, unknown>) : undefined;
  if (kind === "machine" && (options.fingerprint === undefined || machine?.fingerprint !== options.fingerprint)) {
    throw new LicenseError("FINGERPRINT_MISMATCH", "the machine file is for another machine");
  }
  const held = new Set(Array.isArray(lic.entitlements) ? lic.entitlements.map(String) : []);
  const missing = (options.entitlements ?? []).filter((e) => !held.has(e)).sort();
  if (missing.length) throw new LicenseError("ENTITLEMENTS_MISSING", `the license lacks: ${missing.join(", ")}`);
  return {
    kind, kid, issuedAt: iat as number, expiresAt: exp as number, license: lic, machine,
    get entitlements() {
      return [...held];
    },
  };
}
