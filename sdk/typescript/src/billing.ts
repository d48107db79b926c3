/**
 * Billing surfaces: customers, plans, subscriptions, credits, invoices and billing webhooks.
 * @module
 */

import type { CallOptions } from "./http.js";
import { seg } from "./http.js";
import type { Body, Query, Result } from "./types.js";
import { Surface } from "./types.js";

/** `/customers`: create, list, get, addMember, valueReceipt. */
export class Customers extends Surface {
  /** Create a billed customer (and attribute agents). */
  create(input: Body<"create_customer">, options?: CallOptions): Promise<Result<"create_customer">> {
    return this.call("create_customer", { method: "POST", path: "/customers", body: input }, options);
  }

  /** All customers. */
  list(options?: CallOptions): Promise<Result<"list_customers">> {
    return this.call("list_customers", { method: "GET", path: "/customers" }, options);
  }

  /** A customer with its agents and teams. */
  get(customerId: string, options?: CallOptions): Promise<Result<"get_customer">> {
    return this.call("get_customer", { method: "GET", path: `/customers/${seg(customerId)}` }, options);
  }

  /** Bill an agent's or a team's future events to the customer. */
  addMember(customerId: string, input: Body<"add_member">, options?: CallOptions): Promise<Result<"add_member">> {
    return this.call("add_member", { method: "POST", path: `/customers/${seg(customerId)}/members`, body: input }, options);
  }

  /** A signed value receipt: the outcomes delivered in a period and their value (verifiable offline). */
  valueReceipt(customerId: string, query: Query<"value_receipt"> = {}, options?: CallOptions): Promise<Result<"value_receipt">> {
    return this.call("value_receipt", { method: "GET", path: `/customers/${seg(customerId)}/value-receipt`, query }, options);
  }
}

/** `/plans`: create, list, get, addVersion. */
export class Plans extends Surface {
  /** Create a plan with its first (immutable) version. */
  create(input: Body<"create_plan">, options?: CallOptions): Promise<Result<"create_plan">> {
    return this.call("create_plan", { method: "POST", path: "/plans", body: input }, options);
  }

  /** All plans with their versions. */
  list(options?: CallOptions): Promise<Result<"list_plans">> {
    return this.call("list_plans", { method: "GET", path: "/plans" }, options);
  }

  /** A plan with its versions. */
  get(planId: string, options?: CallOptions): Promise<Result<"get_plan">> {
    return this.call("get_plan", { method: "GET", path: `/plans/${seg(planId)}` }, options);
  }

  /** Add a version (existing versions never change). */
  addVersion(planId: string, input: Body<"add_version">, options?: CallOptions): Promise<Result<"add_version">> {
    return this.call("add_version", { method: "POST", path: `/plans/${seg(planId)}/versions`, body: input }, options);
  }
}

/** `/subscriptions`: create (or change plan at a period boundary), list. */
export class Subscriptions extends Surface {
  /** Subscribe a customer, or change its plan at a period boundary. */
  create(input: Body<"create_subscription">, options?: CallOptions): Promise<Result<"create_subscription">> {
    return this.call("create_subscription", { method: "POST", path: "/subscriptions", body: input }, options);
  }

  /** Subscriptions, optionally of one customer. */
  list(query: Query<"list_subscriptions"> = {}, options?: CallOptions): Promise<Result<"list_subscriptions">> {
    return this.call("list_subscriptions", { method: "GET", path: "/subscriptions", query }, options);
  }
}

/** `/credits`: grant, list. */
export class Credits extends Surface {
  /** Grant prepaid or promotional credit. */
  grant(input: Body<"grant_credit">, options?: CallOptions): Promise<Result<"grant_credit">> {
    return this.call("grant_credit", { method: "POST", path: "/credits", body: input }, options);
  }

  /** Credit grants and balances, optionally of one customer. */
  list(query: Query<"list_credits"> = {}, options?: CallOptions): Promise<Result<"list_credits">> {
    return this.call("list_credits", { method: "GET", path: "/credits", query }, options);
  }
}

/** Invoices: preview (from the rollups), list, get (JSON), csv, close a period. */
export class Invoices extends Surface {
  /** The invoice of the period containing `at` (default now), computed from the rollups; no side effects. */
  preview(customerId: string, query: Query<"invoice_preview"> = {}, options?: CallOptions): Promise<Result<"invoice_preview">> {
    return this.call("invoice_preview", { method: "GET", path: `/customers/${seg(customerId)}/invoice-preview`, query }, options);
  }

  /** Finalized invoices, optionally of one customer. */
  list(query: Query<"list_invoices"> = {}, options?: CallOptions): Promise<Result<"list_invoices">> {
    return this.call("list_invoices", { method: "GET", path: "/invoices", query }, options);
  }

  /** A finalized invoice (JSON). */
  get(invoiceId: string, options?: CallOptions): Promise<Result<"get_invoice">> {
    return this.call("get_invoice", { method: "GET", path: `/invoices/${seg(invoiceId)}` }, options);
  }

  /** A finalized invoice as CSV text (one row per line and agent). */
  csv(invoiceId: string, options?: CallOptions): Promise<string> {
    return this.transport.request<string>(
      { method: "GET", path: `/invoices/${seg(invoiceId)}`, query: { format: "csv" }, text: true },
      options,
    );
  }

  /** Finalize a period's invoice (once; a repeat returns the same invoice, so it is retried). */
  close(input: Body<"close_period">, options?: CallOptions): Promise<Result<"close_period">> {
    return this.call("close_period", { method: "POST", path: "/invoices/close", body: input, idempotent: true }, options);
  }
}

/** `/billing/webhooks`: invoice.finalized / credits.low endpoints. */
export class BillingWebhooks extends Surface {
  /** Add an endpoint (its secret is shown once). */
  add(input: Body<"add_billing_webhook">, options?: CallOptions): Promise<Result<"add_billing_webhook">> {
    return this.call("add_billing_webhook", { method: "POST", path: "/billing/webhooks", body: input }, options);
  }

  /** The endpoints. */
  list(options?: CallOptions): Promise<Result<"list_billing_webhooks">> {
    return this.call("list_billing_webhooks", { method: "GET", path: "/billing/webhooks" }, options);
  }

  /** Remove an endpoint. */
  delete(webhookId: string, options?: CallOptions): Promise<Result<"remove_billing_webhook">> {
    return this.call("remove_billing_webhook", { method: "DELETE", path: `/billing/webhooks/${seg(webhookId)}` }, options);
  }
}
