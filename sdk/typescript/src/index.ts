/**
 * authz-sdk: the authz admin API from TypeScript (agents, budgets, metering, billing, licensing,
 * policies), offline license verification, and agent tokens for the MCP TypeScript SDK.
 * @module
 */

export { Client, Webhooks, type ClientOptions } from "./client.js";
export { ApiError, type ApiErrorInit, type FieldError } from "./errors.js";
export { Transport, apiRoot, DEFAULT_TIMEOUT_MS, type CallOptions, type RequestSpec, type TransportOptions } from "./http.js";
export { RetryPolicy, retryAfterMs, type RetryOptions } from "./retry.js";
export { Agents, Budgets, Credentials, OwnerBudgets, Policies, Subjects, Teams, type BudgetOwner } from "./admin.js";
export { BillingWebhooks, Credits, Customers, Invoices, Plans, Subscriptions } from "./billing.js";
export { LicensePolicies, Licenses, LicenseWebhooks, Machines, Products, type KeyCheckout } from "./licensing.js";
export { Metering, Outcomes, newEventId, prepareEvent, prepareEvents, MAX_BATCH, type EventInput, type MeteringEvent, type UsageQuery } from "./metering.js";
export { SURFACE } from "./operations.js";
export type { Body, Query, Result } from "./types.js";
export type * from "./openapi.js";
export { OPERATION_IDS } from "./openapi.js";
export { AgentAuthProvider, AgentTokenSource, type AgentTokenOptions, type McpTokens, type TokenResponse } from "./agent.js";
export { LicenseError, canonicalKey, verifyOffline, type Ed25519Jwk, type HighWaterMark, type LicenseFile, type PublicKeys, type VerifyOptions } from "./verify.js";
export { SIGNATURE_HEADER, verifyResponse, type LicenseVerification, type ResponseVerifyOptions } from "./signed.js";
export { AiAct, Approvals, Incidents, Oversight, OversightRules } from "./oversight.js";
