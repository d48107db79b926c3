// The SDK against a live `authz serve` (started by tests/sdk_typescript/test_sdk_typescript.py):
// every operation of the server's OpenAPI document is called through its SDK method (an observing
// `fetch` records each request; the last test fails on any operation not exercised), problems arrive
// as ApiError, and a batch whose response is lost after the server stored it is counted once.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, test } from "node:test";

import { ApiError, Client, LicenseError, OPERATION_IDS, SURFACE, verifyOffline, verifyResponse, type HighWaterMark } from "../src/index.js";

const BASE = process.env.AUTHZ_BASE_URL ?? "";
const TOKEN = process.env.AUTHZ_ADMIN_TOKEN ?? "";
const SUBJECT = process.env.AUTHZ_SUBJECT_ID ?? "";
const RESOURCE = process.env.AUTHZ_RESOURCE_URI ?? "";
assert.ok(BASE && TOKEN && SUBJECT && RESOURCE, "AUTHZ_BASE_URL, AUTHZ_ADMIN_TOKEN, AUTHZ_SUBJECT_ID, AUTHZ_RESOURCE_URI must be set");

const seen: string[] = [];
const observe: typeof fetch = async (input, init) => {
  const url = new URL(String(input));
  seen.push(`${(init?.method ?? "GET").toUpperCase()} ${url.pathname.replace(/^\/api\/v1/, "")}`);
  return fetch(input, init);
};
const client = new Client({ baseUrl: BASE, apiKey: TOKEN, fetch: observe, timeoutMs: 20_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function monthStart(offset = 0): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}

test("every SURFACE entry resolves to a method of a Client", () => {
  for (const [op, path] of Object.entries(SURFACE)) {
    let target: unknown = client;
    for (const part of path.split(".")) target = (target as Record<string, unknown>)[part];
    assert.equal(typeof target, "function", `${op} -> ${path}`);
  }
  assert.deepEqual(Object.keys(SURFACE).sort(), [...OPERATION_IDS].sort());
});

let agentId = "";
let teamId = "";

test("agents, credentials and teams", async () => {
  const team = await client.teams.create({ name: "ts-team", description: "made by the TS SDK test" });
  teamId = team.id;
  assert.equal((await client.teams.get(team.id)).id, team.id);
  assert.ok((await client.teams.list()).items.some((t) => t.id === team.id));

  const agent = await client.agents.create({ name: "ts agent", team: "ts-team", tags: ["ts"], description: "d" });
  agentId = agent.id;
  assert.equal(agent.status, "active");
  assert.equal((await client.agents.get(agent.id)).name, "ts agent");
  assert.deepEqual((await client.agents.list({ tag: "ts" })).items.map((a) => a.id), [agent.id]);
  assert.equal((await client.agents.update(agent.id, { name: "renamed" })).name, "renamed");
  assert.equal((await client.agents.suspend(agent.id, { reason: "test" })).status, "suspended");
  assert.equal((await client.agents.reinstate(agent.id)).status, "active");
  const all = [];
  for await (const a of client.agents.iterate({ limit: 1 })) all.push(a.id);
  assert.ok(all.includes(agent.id));

  const issued = await client.agents.credentials.issue(agent.id);
  assert.ok(issued.secret);
  const listed = (await client.agents.credentials.list(agent.id)).items;
  assert.deepEqual(listed.map((c) => c.id), [issued.id]);
  assert.ok(!("secret" in (listed[0] ?? {})));
  const rotated = await client.agents.credentials.rotate(agent.id, issued.id, { overlap_seconds: 0 });
  assert.equal(rotated.old.id, issued.id);
  assert.ok(rotated.new.secret);
  assert.equal((await client.agents.credentials.revoke(agent.id, rotated.new.id, { reason: "done" })).id, rotated.new.id);

  const doomed = await client.agents.create({ name: "ts doomed" });
  assert.equal((await client.agents.revoke(doomed.id, { reason: "end" })).status, "revoked");
  await assert.rejects(client.agents.reinstate(doomed.id), (err: unknown) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 409);
    assert.ok(err.title && err.type);
    return true;
  });
});

test("problems: 422 names the fields, 404 carries the RFC 9457 members, 401 without a token", async () => {
  await assert.rejects(client.agents.create({ name: "" }), (err: unknown) => {
    assert.ok(err instanceof ApiError && err.status === 422);
    assert.ok(err.fields.some((f) => f.includes("name")), JSON.stringify(err.errors));
    return true;
  });
  await assert.rejects(client.agents.get("agt_nope"), (err: unknown) => err instanceof ApiError && err.status === 404 && !!err.title);
  const anonymous = new Client({ baseUrl: BASE, apiKey: "not-a-token" });
  await assert.rejects(anonymous.teams.list(), (err: unknown) => {
    assert.ok(err instanceof ApiError && err.status === 401);
    assert.ok(err.headers["www-authenticate"]?.startsWith("Bearer"));
    return true;
  });
});

test("budgets on an agent, a team and a workflow; reserve and settle", async () => {
  const onAgent = await client.agents.budgets.create(agentId, { token_limit: 100_000 });
  const onTeam = await client.teams.budgets.create(teamId, { call_limit: 50 });
  const onFlow = await client.budgets.create({ workflow: "ts-flow" }, { call_limit: 10, hard_cap: true });
  assert.ok((await client.agents.budgets.list(agentId)).items.some((b) => b.id === onAgent.id));
  assert.ok((await client.teams.budgets.list(teamId)).items.some((b) => b.id === onTeam.id));
  assert.ok((await client.budgets.list({ workflow: "ts-flow" })).items.some((b) => b.id === onFlow.id));
  assert.equal((await client.budgets.get(onFlow.id)).id, onFlow.id);
  assert.equal((await client.budgets.update(onFlow.id, { limit: 20 })).limit, 20);
  const hook = await client.budgets.addWebhook(onFlow.id, { url: "https://hooks.example.com/budget" });
  assert.ok(hook);
  const held = await client.budgets.reserve({ workflow: "ts-flow", estimate: { calls: 1 }, request_id: "ts-req-1" });
  assert.ok(held.reservation_id);
  assert.equal((await client.budgets.status(onFlow.id)).reserved, 1);
  const settled = await client.budgets.settle({ settlements: [{ reservation_id: held.reservation_id, actual: { calls: 1 } }] });
  assert.equal(settled.results.length, 1);
  assert.equal((await client.budgets.status(onFlow.id)).spent, 1);
  assert.equal((await client.budgets.delete(onTeam.id)).deleted, true);
});

async function calls(agent: string): Promise<number> {
  const usage = await client.metering.usage({ granularity: "day", group_by: ["agent", "type"], filter: { agent } });
  const rows = (usage as unknown as { rows: Array<{ type?: string; count: number }> }).rows;
  return rows.filter((r) => r.type === "call.completed").reduce((n, r) => n + Number(r.count), 0);
}

async function settledCalls(agent: string, expected: number): Promise<number> {
  for (let i = 0; i < 100 && (await calls(agent)) < expected; i++) await sleep(100);
  await sleep(500); // several more aggregate flushes: nothing is counted twice
  return calls(agent);
}

test("metering: record, recordBatch, outcomes, usage", async () => {
  const one = (await client.metering.record({ type: "call.completed", agent: "agt_ts_meter", tool: "search" })) as { accepted: number };
  assert.equal(one.accepted, 1);
  const fixed = { type: "call.completed", agent: "agt_ts_meter", id: "ts-evt-1" };
  assert.equal(((await client.metering.record(fixed)) as { accepted: number }).accepted, 1);
  assert.deepEqual(((await client.metering.record(fixed)) as { duplicates: string[] }).duplicates, ["ts-evt-1"]);
  const batch = Array.from({ length: 3 }, () => ({ type: "call.completed", agent: "agt_ts_meter" }));
  assert.equal(((await client.metering.recordBatch(batch)) as { accepted: number }).accepted, 3);
  const outcome = await client.outcomes.record("ticket_resolved", { agent: "agt_ts_meter", quantity: 1 });
  assert.equal((outcome as { accepted: number }).accepted, 1);
  assert.equal(await settledCalls("agt_ts_meter", 5), 5);
});

test("a batch whose response is lost after the server stored it is retried and counted once", async () => {
  let dropped = 0;
  const lossy: typeof fetch = async (input, init) => {
    const response = await observe(input, init);
    if (init?.method === "POST" && dropped === 0) {
      dropped++;
      await response.body?.cancel();
      throw new TypeError("fetch failed: connection reset after the request was processed");
    }
    return response;
  };
  const flaky = new Client({ baseUrl: BASE, apiKey: TOKEN, fetch: lossy, retry: { baseDelayMs: 10 } });
  const events = Array.from({ length: 10 }, () => ({ type: "call.completed", agent: "agt_ts_lossy" }));
  const answer = (await flaky.metering.recordBatch(events)) as { accepted: number; duplicates: string[] };
  assert.equal(dropped, 1);
  assert.equal(answer.accepted, 0);
  assert.equal(answer.duplicates.length, 10);
  assert.equal(await settledCalls("agt_ts_lossy", 10), 10);
  // a non-idempotent call is not retried: the lost answer surfaces as a transport ApiError (status 0)
  dropped = 0;
  await assert.rejects(flaky.teams.create({ name: "ts-once" }), (err: unknown) => err instanceof ApiError && err.status === 0);
  assert.ok((await client.teams.list()).items.some((t) => t.name === "ts-once"));
});

test("policies: get, put, versions, version, test", async () => {
  await assert.rejects(client.policies.get(), (err: unknown) => err instanceof ApiError && err.status === 404);
  const base = { "base.cedar": await readFile(new URL("../../../../policies/base.cedar", import.meta.url), "utf8") };
  const first = await client.policies.put({ sources: base, comment: "first" });
  assert.ok(first.active);
  const active = await client.policies.get();
  assert.equal(active.version, first.version);
  const stored = await client.policies.put({ sources: active.sources, schema: active.schema, entities: active.entities, comment: "ts round trip" });
  assert.equal(stored.version, active.version + 1);
  assert.equal((await client.policies.version(stored.version)).comment, "ts round trip");
  assert.ok((await client.policies.versions()).items.some((v) => v.version === stored.version));
  await assert.rejects(client.policies.put({ sources: { "bad.cedar": "permit(principal, action, resource" } }), (err: unknown) => err instanceof ApiError && err.status >= 400 && err.status < 500);
  // the shipped tests against the active set (base.cedar alone permits nothing: every ALLOW test fails)
  const report = await client.policies.test();
  assert.equal(report.target, "active");
  assert.equal(report.version, stored.version);
  assert.equal(report.sha256, stored.sha256);
  assert.ok(report.failed > 0 && !report.ok);
  assert.ok(report.results.filter((r) => r.passed).every((r) => r.expected === "DENY"));
  // a draft (never stored) with the embedded demo rule passes a test given as an object
  const root = new URL("../../../../policies/", import.meta.url);
  const demo = await readFile(new URL("servers/demo.cedar", root), "utf8");
  const example = JSON.parse(await readFile(new URL("tests/ALLOW/client_on_demo.json", root), "utf8")) as Record<string, unknown>;
  const draft = await client.policies.test({ tests: { "ALLOW/demo.json": example }, sources: { ...base, "servers/demo.cedar": demo } });
  assert.equal(draft.target, "draft");
  assert.ok(draft.ok);
  assert.deepEqual(draft.results[0]?.policies.map((p) => [p.id, p.file]), [["demo.loopback-tools", "servers/demo.cedar"]]);
  assert.equal((await client.policies.get()).version, stored.version);
  await assert.rejects(client.policies.test({ tests: { "ALLOW/broken.json": "{" } }), (err: unknown) => {
    assert.ok(err instanceof ApiError && err.status === 422, String(err));
    assert.deepEqual(err.errors.map((e) => e.field), ["tests[ALLOW/broken.json]"]);
    return true;
  });
});

test("licensing: admin side and key side", async () => {
  await client.products.create({ code: "ts-app", name: "TS App" });
  assert.ok((await client.products.list()).items.some((p) => p.code === "ts-app"));
  const policy = await client.licensePolicies.create({ product: "ts-app", name: "standard", entitlements: ["pro"], max_machines: 2 });
  assert.ok((await client.licensePolicies.list()).items.some((p) => p.id === policy.id));
  const created = await client.licenses.create({ policy: policy.id });
  const key = created.key;
  assert.ok((await client.licenses.list()).items.some((l) => l.id === created.id));
  assert.equal((await client.licenses.get(created.id)).id, created.id);

  const valid = await client.licenses.validate(key, { product: "ts-app", entitlements: ["pro"] }, { nonce: "n-1" });
  assert.equal(valid.meta.valid, true);
  assert.equal(valid.meta.nonce, "n-1");
  const machine = (await client.licenses.activate(key, "fp-ts-1", { name: "laptop" })).data;
  assert.equal((await client.licenses.heartbeat(key, machine.id)).data.id, machine.id);
  assert.equal((await client.licenses.me(key)).data.id, created.id);
  const file = await client.licenses.checkout({ key, fingerprint: "fp-ts-1" });
  assert.match(file.data.certificate, /BEGIN MACHINE FILE/);
  const adminFile = await client.licenses.checkout(created.id, {});
  assert.match(adminFile.certificate, /BEGIN LICENSE FILE/);
  const jwks = (await client.licenses.jwks()) as unknown as { keys: Array<{ kty: string; crv: string; x: string; kid: string }> };
  assert.ok(jwks.keys.length >= 1);

  // offline verification (WebCrypto Ed25519, AES-256-GCM): plain and encrypted files, and refusals
  const plain = await client.licenses.checkout({ key, fingerprint: "fp-ts-1", encrypt: false });
  assert.equal(plain.data.alg, "base64+ed25519");
  const machineFile = await verifyOffline(plain.data.certificate, jwks, { fingerprint: "fp-ts-1", entitlements: ["pro"] });
  assert.equal(machineFile.kind, "machine");
  assert.equal(machineFile.license.id, created.id);
  const licenseFile = await verifyOffline(adminFile.certificate, jwks.keys[0]!, {});
  assert.equal(licenseFile.kind, "license");
  assert.deepEqual(licenseFile.entitlements, ["pro"]);
  const sealed = await client.licenses.checkout({ key, fingerprint: "fp-ts-1", encrypt: true });
  assert.equal(sealed.data.alg, "aes-256-gcm+ed25519");
  assert.equal((await verifyOffline(sealed.data.certificate, jwks, { key: key.toLowerCase(), fingerprint: "fp-ts-1" })).kind, "machine");
  const refused = async (promise: Promise<unknown>, code: string) =>
    assert.rejects(promise, (err: unknown) => err instanceof LicenseError && err.code === code);
  await refused(verifyOffline(sealed.data.certificate, jwks, { fingerprint: "fp-ts-1" }), "KEY_REQUIRED");
  await refused(verifyOffline(sealed.data.certificate, jwks, { key: "LK" + "A".repeat(36), fingerprint: "fp-ts-1" }), "DECRYPTION_FAILED");
  await refused(verifyOffline(plain.data.certificate, jwks, { fingerprint: "fp-other" }), "FINGERPRINT_MISMATCH");
  assert.equal((await verifyOffline(file.data.certificate, jwks, { key, fingerprint: "fp-ts-1" })).kind, "machine");
  await refused(verifyOffline(adminFile.certificate, jwks, { entitlements: ["enterprise"] }), "ENTITLEMENTS_MISSING");
  await refused(verifyOffline(adminFile.certificate, jwks, { now: licenseFile.expiresAt + 1 }), "FILE_EXPIRED");
  await refused(verifyOffline("-----BEGIN LICENSE FILE-----\nnope\n-----END LICENSE FILE-----", jwks), "FILE_MALFORMED");
  const inner = JSON.parse(atob(adminFile.certificate.split("\n").slice(1, -1).join("").replace(/-.*$/, "")));
  const forged = { ...inner, enc: btoa(JSON.stringify({ meta: {}, data: {} })) };
  const armored = `-----BEGIN LICENSE FILE-----\n${btoa(JSON.stringify(forged))}\n-----END LICENSE FILE-----`;
  await refused(verifyOffline(armored, jwks), "SIGNATURE_INVALID");
  let seenMark = 0;
  const mark: HighWaterMark = { get: () => seenMark, set: (v) => { seenMark = v; } };
  await verifyOffline(adminFile.certificate, jwks, { mark });
  await refused(verifyOffline(adminFile.certificate, jwks, { mark, now: seenMark - 3600 }), "CLOCK_ROLLBACK");
  assert.ok((await client.licenses.deactivate(key, machine.id)).data);

  const second = (await client.licenses.activate(key, "fp-ts-2")).data;
  assert.ok((await client.machines.list({ license_id: created.id })).items.some((m) => m.id === second.id));
  assert.equal((await client.machines.get(second.id)).id, second.id);
  assert.ok(await client.machines.deactivate(second.id));

  assert.equal((await client.licenses.attachAgent(created.id, agentId)).agent_id, agentId);
  assert.equal((await client.licenses.suspend(created.id, { reason: "ts" })).status, "suspended");
  assert.equal((await client.licenses.reinstate(created.id)).status, "active");
  await assert.rejects(client.licenses.activate("LK-NOTAKEY", "fp"), (err: unknown) => err instanceof ApiError && err.status === 401);

  const hook = await client.webhooks.licensing.add({ url: "https://hooks.example.com/licensing" });
  assert.ok((await client.webhooks.licensing.list()).items.some((w) => w.id === hook.id));
  assert.ok(await client.webhooks.licensing.delete(hook.id));
  assert.equal((await client.licenses.revoke(created.id)).status, "revoked");
});

test("licensing: signed answers are verified; tampered, unsigned, replayed or foreign-key answers are refused", async () => {
  await client.products.create({ code: "ts-signed", name: "TS Signed" });
  const policy = await client.licensePolicies.create({ product: "ts-signed", name: "signed", entitlements: ["pro"] });
  const { key } = await client.licenses.create({ policy: policy.id });
  const jwks = (await client.licenses.jwks()) as unknown as { keys: Array<{ kty: string; crv: string; x: string; kid: string }> };
  const refused = async (promise: Promise<unknown>, code: string) =>
    assert.rejects(promise, (err: unknown) => err instanceof LicenseError && err.code === code);
  const onValidate = (edit: (text: string, headers: Headers) => string): typeof fetch => async (input, init) => {
    const response = await fetch(input, init);
    if (!String(input).endsWith("/licenses/actions/validate-key")) return response;
    const headers = new Headers(response.headers);
    const text = edit(await response.text(), headers);
    return new Response(text, { status: response.status, headers });
  };
  const keyed = (fetchImpl: typeof fetch, keys: unknown = jwks) =>
    new Client({ baseUrl: BASE, fetch: fetchImpl, licensing: { keys: keys as { keys: [] } } });

  // pinned keys: a genuine answer passes, with the generated nonce echoed inside the signed body
  const genuine = await keyed(fetch).licenses.validate(key, { entitlements: ["pro"] });
  assert.equal(genuine.meta.valid, true);
  assert.match(String(genuine.meta.nonce), /^[0-9a-f-]{36}$/);
  // the answer says "not valid" (a missing entitlement); flipping it to valid breaks the signature
  let flipped = 0;
  const flip = onValidate((text) => {
    flipped += text.includes('"valid":false') ? 1 : 0;
    return text.replace('"valid":false', '"valid":true');
  });
  await refused(keyed(flip).licenses.validate(key, { entitlements: ["enterprise"] }), "SIGNATURE_INVALID");
  assert.equal(flipped, 1);
  await refused(keyed(onValidate((text, headers) => (headers.delete("authz-signature"), text))).licenses.validate(key), "SIGNATURE_MISSING");
  // a captured genuine answer replayed for a later request: its nonce is another request's
  let captured: [string, Headers] | undefined;
  const replay = onValidate((text, headers) => {
    captured ??= [text, new Headers(headers)];
    captured[1].forEach((value, name) => headers.set(name, value));
    return captured[0];
  });
  const replaying = keyed(replay);
  assert.equal((await replaying.licenses.validate(key)).meta.valid, true);
  await refused(replaying.licenses.validate(key), "REPLAYED");
  // key discovery: only the key the header names, and only from the trusted set
  const kid = jwks.keys[0]!.kid;
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const stranger = { ...(await crypto.subtle.exportKey("jwk", pair.publicKey)), kid };
  await refused(keyed(fetch, { keys: [stranger] }).licenses.validate(key), "SIGNATURE_INVALID");
  await refused(keyed(fetch, { keys: jwks.keys.map((k) => ({ ...k, kid: `${k.kid}-other` })) }).licenses.validate(key), "SIGNATURE_INVALID");
  // no pinned keys: the server's JWK Set is fetched once per client and every key-side answer is verified
  const fetched: string[] = [];
  const counting: typeof fetch = async (input, init) => (fetched.push(new URL(String(input)).pathname), fetch(input, init));
  const discovering = new Client({ baseUrl: BASE, fetch: counting });
  const machine = (await discovering.licenses.activate(key, "fp-signed")).data;
  assert.equal((await discovering.licenses.heartbeat(key, machine.id)).data.id, machine.id);
  assert.equal((await discovering.licenses.me(key)).meta.nonce !== undefined, true);
  assert.match((await discovering.licenses.checkout({ key })).data.certificate, /BEGIN LICENSE FILE/);
  assert.ok((await discovering.licenses.deactivate(key, machine.id)).data);
  assert.equal(fetched.filter((p) => p.endsWith("/licenses/jwks")).length, 1);
  // verifyResponse on its own: age and a rolled-back clock
  const raw = await fetch(`${BASE}/api/v1/licenses/actions/validate-key`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key, nonce: 7 }),
  });
  const body = await raw.text();
  const signature = raw.headers.get("authz-signature");
  const ts = (JSON.parse(body) as { meta: { ts: number } }).meta.ts;
  assert.equal(((await verifyResponse(body, signature, jwks, { nonce: 7, now: ts })).meta as { nonce: number }).nonce, 7);
  await refused(verifyResponse(body, signature, jwks, { nonce: 8, now: ts }), "REPLAYED");
  await refused(verifyResponse(body, signature, jwks, { nonce: 7, now: ts + 301 }), "RESPONSE_STALE");
  await refused(verifyResponse(body, signature, jwks, { now: ts, mark: { get: () => ts + 3600, set: () => undefined } }), "CLOCK_ROLLBACK");
  await refused(verifyResponse(body.replace("7", "8"), signature, jwks, { now: ts }), "SIGNATURE_INVALID");
});

test("billing: plans, customers, subscriptions, credits, invoices, webhooks", async () => {
  const spec = {
    currency: "USD", interval: "month", anchor: "calendar", grace_hours: 12,
    components: [{ id: "base", label: "Platform", kind: "flat", amount: "199.00" }],
  };
  await client.plans.create({ id: "ts-plan", name: "TS plan", version: spec });
  assert.ok((await client.plans.list()).items.some((p) => p.id === "ts-plan"));
  assert.equal((await client.plans.get("ts-plan")).id, "ts-plan");
  assert.ok(await client.plans.addVersion("ts-plan", { ...spec, grace_hours: 6 }));
  await client.customers.create({ id: "ts-cust", name: "TS Customer", currency: "USD" });
  assert.ok((await client.customers.list()).items.some((c) => c.id === "ts-cust"));
  assert.ok(await client.customers.addMember("ts-cust", { agent_id: agentId }));
  assert.ok((await client.customers.get("ts-cust")).id === "ts-cust");
  await client.subscriptions.create({ customer_id: "ts-cust", plan: "ts-plan", starts_at: monthStart(-1).toISOString() });
  assert.ok((await client.subscriptions.list({ customer: "ts-cust" })).items.length >= 1);
  await client.credits.grant({ customer_id: "ts-cust", amount: "10.00", category: "promotional" });
  assert.ok((await client.credits.list({ customer: "ts-cust" })).items.length >= 1);
  assert.ok(await client.invoices.preview("ts-cust"));
  assert.ok(await client.customers.valueReceipt("ts-cust"));
  const last = new Date(monthStart().getTime() - 86_400_000).toISOString();
  const closed = await client.invoices.close({ customer_id: "ts-cust", at: last, force: true });
  const again = await client.invoices.close({ customer_id: "ts-cust", at: last, force: true });
  assert.equal(again.created, false);
  const invoices = (await client.invoices.list({ customer: "ts-cust" })).items;
  assert.ok(invoices.length >= 1);
  const id = String((closed.invoice as { id: unknown }).id);
  assert.ok(await client.invoices.get(id));
  assert.match(await client.invoices.csv(id), /,/);
  const hook = await client.webhooks.billing.add({ url: "https://hooks.example.com/billing" });
  assert.ok((await client.webhooks.billing.list()).items.some((w) => w.id === hook.id));
  assert.ok(await client.webhooks.billing.delete(hook.id));
});

test("oversight: a gated tool needs an approval, used once; the AI Act record", async () => {
  const rule = await client.oversight.rules.add({ resource: RESOURCE, tool: "danger" });
  assert.ok((await client.oversight.rules.list({ resource: RESOURCE })).rules.some((r) => r.id === rule.id));
  assert.deepEqual((await client.oversight.gated({ resource: RESOURCE })).tools, ["danger"]);
  const call = { agent: agentId, resource: RESOURCE, tool: "danger", arguments_sha256: "a".repeat(64) };
  const asked = await client.oversight.check(call);
  assert.equal(asked.decision, "approval_required");
  assert.ok(asked.approval_id);
  const pending = (await client.oversight.approvals.list({ status: "pending" })).approvals;
  assert.ok(pending.some((a) => a.id === asked.approval_id));
  assert.equal((await client.oversight.approvals.decide(asked.approval_id, { decision: "approve", reason: "ts" })).status, "approved");
  assert.equal((await client.oversight.check(call)).decision, "allow");
  assert.notEqual((await client.oversight.check(call)).decision, "allow"); // an approval is used once
  assert.ok(await client.oversight.rules.delete(rule.id));

  const record = { risk: "limited", intended_purpose: "answers support tickets", provider: "Example Ltd", deployer: "Example Ltd" };
  assert.equal((await client.agents.aiAct.put(agentId, record)).risk, "limited");
  assert.equal((await client.agents.aiAct.get(agentId)).intended_purpose, record.intended_purpose);
});

test("incidents: open, list, get, update, close", async () => {
  const opened = await client.incidents.open({ title: "ts incident", kind: "serious", agents: [agentId], description: "d" });
  assert.equal(opened.status, "open");
  assert.ok(opened.deadline > opened.aware_at);
  assert.ok((await client.incidents.list({ status: "open" })).incidents.some((i) => i.id === opened.id));
  assert.equal((await client.incidents.get(opened.id)).title, "ts incident");
  const reported = Math.floor(Date.now() / 1000);
  assert.equal((await client.incidents.update(opened.id, { reported_at: reported })).reported_at, reported);
  assert.equal((await client.incidents.close(opened.id)).status, "closed");
});

test("data subjects: export, erase", async () => {
  assert.ok(await client.subjects.export(SUBJECT));
  assert.ok(await client.subjects.erase(SUBJECT, { reason: "ts test" }));
});

test("a hard budget's 429 carries Retry-After; a reserve is retried (its request_id given or generated)", async () => {
  const budget = await client.budgets.create({ workflow: "ts-hard" }, { call_limit: 1, hard_cap: true, period: "day" });
  const held = await client.budgets.reserve({ workflow: "ts-hard", estimate: { calls: 1 } });
  assert.ok(held.reservation_id);
  const attempts: string[] = [];
  const counting: typeof fetch = async (input, init) => {
    attempts.push(String(input));
    return fetch(input, init);
  };
  const patient = new Client({ baseUrl: BASE, apiKey: TOKEN, fetch: counting, retry: { attempts: 3, maxDelayMs: 5 } });
  await assert.rejects(patient.budgets.reserve({ workflow: "ts-hard", estimate: { calls: 1 }, request_id: "ts-hard-2" }), (err: unknown) => {
    assert.ok(err instanceof ApiError && err.status === 429, String(err));
    assert.ok(Number(err.headers["retry-after"]) > 0, JSON.stringify(err.headers));
    return true;
  });
  assert.equal(attempts.length, 3);
  attempts.length = 0; // without one, the SDK makes a request_id: retried alike
  await assert.rejects(patient.budgets.reserve({ workflow: "ts-hard", estimate: { calls: 1 } }), (err: unknown) => err instanceof ApiError && err.status === 429);
  assert.equal(attempts.length, 3);
  await client.budgets.delete(budget.id);
});

test("timeouts and aborts: status 0, an aborted call is not retried", async () => {
  const hung: typeof fetch = (_input, init) =>
    new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)));
  const keepAlive = setInterval(() => undefined, 1000); // AbortSignal.timeout does not hold the event loop
  const slow = new Client({ baseUrl: BASE, apiKey: TOKEN, fetch: hung, timeoutMs: 50, retry: { attempts: 1 } });
  await assert.rejects(slow.teams.list(), (err: unknown) => err instanceof ApiError && err.status === 0 && err.title === "TimeoutError");
  clearInterval(keepAlive);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(client.teams.list({ signal: controller.signal }), (err: unknown) => err instanceof ApiError && err.status === 0);
});

after(async () => {
  // every operation of the server's document was exercised through the SDK
  const doc = (await client.openapi()) as { paths: Record<string, Record<string, { operationId: string }>> };
  const missing: string[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    const pattern = new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    for (const [method, op] of Object.entries(item)) {
      const hit = seen.some((s) => {
        const [m, p] = s.split(" ");
        return m === method.toUpperCase() && pattern.test(p ?? "");
      });
      if (!hit) missing.push(`${op.operationId} (${method.toUpperCase()} ${path})`);
    }
  }
  assert.deepEqual(missing, [], `operations not exercised: ${missing.join(", ")}`);
});
