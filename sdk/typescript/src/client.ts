/**
 * The admin API client: `new Client({ baseUrl, apiKey })` and its surfaces.
 * @module
 */

import { Agents, Budgets, Policies, Subjects, Teams } from "./admin.js";
import { BillingWebhooks, Credits, Customers, Invoices, Plans, Subscriptions } from "./billing.js";
import { type CallOptions, Transport, type TransportOptions } from "./http.js";
import { LicensePolicies, Licenses, LicenseWebhooks, Machines, Products } from "./licensing.js";
import { Metering, Outcomes } from "./metering.js";
import { Incidents, Oversight } from "./oversight.js";
import type { LicenseVerification } from "./signed.js";
import type { Result } from "./types.js";

/** Options of {@link Client}: `baseUrl`, `apiKey`, `timeoutMs`, `retry`, `fetch`, `licensing`. */
export interface ClientOptions extends TransportOptions {
  /** How signed licensing answers are verified (pin `keys` where the network is not trusted). */
  licensing?: LicenseVerification;
}

/** Webhook endpoints: `billing` and `licensing` (a budget's: `budgets.addWebhook`). */
export class Webhooks {
  /** invoice.finalized / credits.low endpoints. */
  readonly billing: BillingWebhooks;
  /** license.expiring / machine.heartbeat.dead endpoints. */
  readonly licensing: LicenseWebhooks;

  constructor(transport: Transport) {
    this.billing = new BillingWebhooks(transport);
    this.licensing = new LicenseWebhooks(transport);
  }
}

/**
 * The authz admin API client.
 *
 * ```ts
 * const authz = new Client({ baseUrl: "https://auth.example.com", apiKey: token });
 * const agent = await authz.agents.create({ name: "billing bot", team: "finance" });
 * ```
 *
 * `apiKey` is an access token for the resource `<baseUrl>/api/v1` (a client from
 * `authz admin-client create`, client_credentials). Every call has a timeout, retries only what is
 * safe to repeat, and throws {@link ApiError} on any non-2xx answer.
 */
export class Client {
  /** The transport (for an operation the surfaces lack: `client.transport.request(...)`). */
  readonly transport: Transport;
  readonly agents: Agents;
  readonly teams: Teams;
  readonly budgets: Budgets;
  readonly metering: Metering;
  readonly outcomes: Outcomes;
  readonly policies: Policies;
  readonly customers: Customers;
  readonly plans: Plans;
  readonly subscriptions: Subscriptions;
  readonly credits: Credits;
  readonly invoices: Invoices;
  readonly products: Products;
  readonly licensePolicies: LicensePolicies;
  readonly licenses: Licenses;
  readonly machines: Machines;
  readonly webhooks: Webhooks;
  readonly subjects: Subjects;
  readonly oversight: Oversight;
  readonly incidents: Incidents;

  constructor(options: ClientOptions) {
    const t = (this.transport = new Transport(options));
    this.agents = new Agents(t);
    this.teams = new Teams(t);
    this.budgets = new Budgets(t);
    this.metering = new Metering(t);
    this.outcomes = new Outcomes(t);
    this.policies = new Policies(t);
    this.customers = new Customers(t);
    this.plans = new Plans(t);
    this.subscriptions = new Subscriptions(t);
    this.credits = new Credits(t);
    this.invoices = new Invoices(t);
    this.products = new Products(t);
    this.licensePolicies = new LicensePolicies(t);
    this.licenses = new Licenses(t, options.licensing);
    this.machines = new Machines(t);
    this.webhooks = new Webhooks(t);
    this.subjects = new Subjects(t);
    this.oversight = new Oversight(t);
    this.incidents = new Incidents(t);
  }

  /** The server's OpenAPI document of this API. */
  openapi(options?: CallOptions): Promise<Result<"openapi">> {
    return this.transport.request({ method: "GET", path: "/openapi.json", auth: { kind: "none" } }, options);
  }
}
