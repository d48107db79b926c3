/**
 * Licensing surfaces. Admin side (an admin token): products, license policies, licenses, machines,
 * licensing webhooks. Key side (`Authorization: License <key>`, or no credential): `licenses.validate`,
 * `me`, `activate`, `heartbeat`, `deactivate`, `checkout({ key })`, `jwks`; their answers are signed
 * (`Authz-Signature`, Ed25519) and echo `meta.nonce`, and every one is verified before it is
 * returned ({@link verifyResponse}: signature by the named key of the server's JWK Set, this call's
 * nonce, age): a failed check rejects with a {@link LicenseError}, never with an unchecked answer.
 * @module
 */

import type { CallOptions, RequestSpec, Transport } from "./http.js";
import { seg } from "./http.js";
import type { OperationId } from "./openapi.js";
import { type LicenseVerification, SIGNATURE_HEADER, verifyResponse } from "./signed.js";
import type { Body, Query, Result } from "./types.js";
import { Surface } from "./types.js";
import type { PublicKeys } from "./verify.js";

/** A fresh nonce for one signed call. */
const freshNonce = (): string => crypto.randomUUID();

/** `/products`: create, list. */
export class Products extends Surface {
  /** Create a product. */
  create(input: Body<"create_product">, options?: CallOptions): Promise<Result<"create_product">> {
    return this.call("create_product", { method: "POST", path: "/products", body: input }, options);
  }

  /** All products. */
  list(options?: CallOptions): Promise<Result<"list_products">> {
    return this.call("list_products", { method: "GET", path: "/products" }, options);
  }
}

/** `/license-policies`: create, list. */
export class LicensePolicies extends Surface {
  /** Create a license policy (machines, heartbeat, expiry rules). */
  create(input: Body<"create_license_policy">, options?: CallOptions): Promise<Result<"create_license_policy">> {
    return this.call("create_license_policy", { method: "POST", path: "/license-policies", body: input }, options);
  }

  /** All license policies. */
  list(options?: CallOptions): Promise<Result<"list_license_policies">> {
    return this.call("list_license_policies", { method: "GET", path: "/license-policies" }, options);
  }
}

/** The key side of a checkout: the license key, and optionally a machine fingerprint. */
export type KeyCheckout = { key: string } & Body<"checkout_own_license">;
/** What {@link Licenses.validate} checks besides the key. */
export type ValidateScope = NonNullable<Body<"validate_key">["scope"]>;

/** Licenses, admin side and key side (key-side answers verified, see the module). */
export class Licenses extends Surface {
  private readonly verification: LicenseVerification;
  private keys: Promise<PublicKeys> | undefined;

  constructor(transport: Transport, verification: LicenseVerification = {}) {
    super(transport);
    this.verification = verification;
  }

  /** The pinned keys, else the server's JWK Set fetched once (a failed fetch is retried next call). */
  private publicKeys(options?: CallOptions): Promise<PublicKeys> {
    if (this.verification.keys) return Promise.resolve(this.verification.keys);
    this.keys ??= this.jwks(options).then(
      (set) => set as PublicKeys,
      (err: unknown) => {
        this.keys = undefined;
        throw err;
      },
    );
    return this.keys;
  }

  /** Send a key-side call and return its answer only once signature, nonce and age check out. */
  private async signed<K extends OperationId>(_op: K, spec: RequestSpec, nonce: string | number, options?: CallOptions): Promise<Result<K>> {
    const keys = await this.publicKeys(options);
    const response = await this.transport.send(spec, options);
    const body = new Uint8Array(await response.arrayBuffer());
    const { maxAgeSeconds, mark } = this.verification;
    const doc = await verifyResponse(body, response.headers.get(SIGNATURE_HEADER), keys, {
      nonce, ...(maxAgeSeconds !== undefined ? { maxAgeSeconds } : {}), ...(mark ? { mark } : {}),
    });
    return doc as Result<K>;
  }
  /** Create a license; its key is in the answer, shown once. */
  create(input: Body<"create_license">, options?: CallOptions): Promise<Result<"create_license">> {
    return this.call("create_license", { method: "POST", path: "/licenses", body: input }, options);
  }

  /** One page of licenses. */
  list(query: Query<"list_licenses"> = {}, options?: CallOptions): Promise<Result<"list_licenses">> {
    return this.call("list_licenses", { method: "GET", path: "/licenses", query }, options);
  }

  /** A license and its machines (admin). */
  get(licenseId: string, options?: CallOptions): Promise<Result<"get_license">> {
    return this.call("get_license", { method: "GET", path: `/licenses/${seg(licenseId)}` }, options);
  }

  /** Suspend: it stops validating; the agents it pays for are suspended. */
  suspend(licenseId: string, input: Body<"suspend_license"> = {}, options?: CallOptions): Promise<Result<"suspend_license">> {
    return this.call("suspend_license", { method: "POST", path: `/licenses/${seg(licenseId)}/suspend`, body: input }, options);
  }

  /** Reinstate a suspended license. */
  reinstate(licenseId: string, input: Body<"reinstate_license"> = {}, options?: CallOptions): Promise<Result<"reinstate_license">> {
    return this.call("reinstate_license", { method: "POST", path: `/licenses/${seg(licenseId)}/reinstate`, body: input }, options);
  }

  /** Revoke for good (its agents are suspended). */
  revoke(licenseId: string, input: Body<"revoke_license"> = {}, options?: CallOptions): Promise<Result<"revoke_license">> {
    return this.call("revoke_license", { method: "POST", path: `/licenses/${seg(licenseId)}/revoke`, body: input }, options);
  }

  /** Link an agent to the license that pays for it. */
  attachAgent(licenseId: string, agentId: string, options?: CallOptions): Promise<Result<"attach_agent">> {
    return this.call("attach_agent", { method: "POST", path: `/licenses/${seg(licenseId)}/agents`, body: { agent_id: agentId } }, options);
  }

  /**
   * A signed license file (a machine file with `fingerprint`): by license id with the admin token,
   * or with `{ key }` (the license key authenticates; the answer is `{ data, meta }`, signed).
   */
  checkout(licenseId: string, input?: Body<"checkout_license">, options?: CallOptions): Promise<Result<"checkout_license">>;
  checkout(keyed: KeyCheckout, options?: CallOptions): Promise<Result<"checkout_own_license">>;
  checkout(
    target: string | KeyCheckout,
    inputOrOptions?: Body<"checkout_license"> | CallOptions,
    options?: CallOptions,
  ): Promise<Result<"checkout_license"> | Result<"checkout_own_license">> {
    if (typeof target === "string") {
      const path = `/licenses/${seg(target)}/checkout`;
      return this.call("checkout_license", { method: "POST", path, body: inputOrOptions ?? {} }, options);
    }
    const { key, nonce = freshNonce(), ...rest } = target as KeyCheckout & { nonce?: string | number };
    const auth = { kind: "license", key } as const;
    const spec = { method: "POST", path: "/licenses/me/checkout", body: { ...rest, nonce }, auth };
    return this.signed("checkout_own_license", spec, nonce, inputOrOptions as CallOptions);
  }

  /**
   * Validate a key (no other credential). Always 200 for a well-formed key: `meta.valid` and
   * `meta.code` say the outcome. The answer is verified; `options.nonce` replaces the generated nonce.
   */
  validate(key: string, scope?: ValidateScope, options?: CallOptions & { nonce?: string | number }): Promise<Result<"validate_key">> {
    const nonce = options?.nonce ?? freshNonce();
    const body = { key, ...(scope ? { scope } : {}), nonce };
    return this.signed("validate_key", { method: "POST", path: "/licenses/actions/validate-key", body, auth: { kind: "none" } }, nonce, options);
  }

  /** The license of `key`, with its machines (signed, verified). */
  me(key: string, options?: CallOptions): Promise<Result<"get_own_license">> {
    const nonce = freshNonce();
    return this.signed("get_own_license", { method: "GET", path: "/licenses/me", query: { nonce }, auth: { kind: "license", key } }, nonce, options);
  }

  /** Activate a machine by fingerprint (the same fingerprint twice is the same machine); verified. */
  activate(key: string, fingerprint: string, input: { name?: string; platform?: string } = {}, options?: CallOptions): Promise<Result<"activate_machine">> {
    const nonce = freshNonce();
    const body = { fingerprint, ...input, nonce };
    return this.signed("activate_machine", { method: "POST", path: "/machines/actions/activate", body, auth: { kind: "license", key } }, nonce, options);
  }

  /** Heartbeat of an activated machine (revives a dead one within the resurrection window); verified. */
  heartbeat(key: string, machineId: string, options?: CallOptions): Promise<Result<"machine_heartbeat">> {
    const nonce = freshNonce();
    const path = `/machines/${seg(machineId)}/actions/heartbeat`;
    return this.signed("machine_heartbeat", { method: "POST", path, body: { nonce }, auth: { kind: "license", key } }, nonce, options);
  }

  /** Deactivate one of the key's machines (frees its seat); verified. */
  deactivate(key: string, machineId: string, options?: CallOptions): Promise<Result<"deactivate_own_machine">> {
    const nonce = freshNonce();
    const path = `/machines/${seg(machineId)}/actions/deactivate`;
    return this.signed("deactivate_own_machine", { method: "POST", path, body: { nonce }, auth: { kind: "license", key } }, nonce, options);
  }

  /** The Ed25519 public keys (JWK Set) signing answers and license files: the input of {@link verifyOffline}. */
  jwks(options?: CallOptions): Promise<Result<"license_jwks">> {
    return this.call("license_jwks", { method: "GET", path: "/licenses/jwks", auth: { kind: "none" } }, options);
  }
}

/** `/machines` (admin): list, get, deactivate. */
export class Machines extends Surface {
  /** Machines, optionally of one license. */
  list(query: Query<"list_machines"> = {}, options?: CallOptions): Promise<Result<"list_machines">> {
    return this.call("list_machines", { method: "GET", path: "/machines", query }, options);
  }

  /** A machine (heartbeat status computed now). */
  get(machineId: string, options?: CallOptions): Promise<Result<"get_machine">> {
    return this.call("get_machine", { method: "GET", path: `/machines/${seg(machineId)}` }, options);
  }

  /** Deactivate a machine (frees its seat). */
  deactivate(machineId: string, options?: CallOptions): Promise<Result<"deactivate_machine">> {
    return this.call("deactivate_machine", { method: "DELETE", path: `/machines/${seg(machineId)}` }, options);
  }
}

/** `/license-webhooks`: add, list, delete. */
export class LicenseWebhooks extends Surface {
  /** Add an endpoint for license.expiring and machine.heartbeat.dead (its secret is shown once). */
  add(input: Body<"create_license_webhook">, options?: CallOptions): Promise<Result<"create_license_webhook">> {
    return this.call("create_license_webhook", { method: "POST", path: "/license-webhooks", body: input }, options);
  }

  /** The endpoints. */
  list(options?: CallOptions): Promise<Result<"list_license_webhooks">> {
    return this.call("list_license_webhooks", { method: "GET", path: "/license-webhooks" }, options);
  }

  /** Delete an endpoint. */
  delete(webhookId: string, options?: CallOptions): Promise<Result<"delete_license_webhook">> {
    return this.call("delete_license_webhook", { method: "DELETE", path: `/license-webhooks/${seg(webhookId)}` }, options);
  }
}
