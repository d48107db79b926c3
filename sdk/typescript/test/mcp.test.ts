// The agent side against `authz demo` (started by tests/sdk_typescript/test_sdk_typescript.py): the
// official MCP TypeScript SDK client, with AgentAuthProvider as its authProvider, calls the demo MCP
// server; tokens are cached, refreshed before expiry, and fetched again after invalidation.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { AgentAuthProvider, AgentTokenSource, ApiError } from "../src/index.js";

const ISSUER = process.env.AUTHZ_URL ?? "";
const MCP_URL = process.env.MCP_URL ?? "";
const AGENT_ID = process.env.AGENT_ID ?? "";
const AGENT_SECRET = process.env.AGENT_SECRET ?? "";
assert.ok(ISSUER && MCP_URL && AGENT_ID && AGENT_SECRET, "AUTHZ_URL, MCP_URL, AGENT_ID and AGENT_SECRET must be set");

const options = { issuer: ISSUER, clientId: AGENT_ID, clientSecret: AGENT_SECRET, resource: MCP_URL, scope: "tools:read" };

test("the MCP SDK client calls the demo MCP server with the provider's agent token", async () => {
  const authProvider = new AgentAuthProvider(options);
  const mcp = new McpClient({ name: "authz-sdk-test", version: "1.0.0" });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider }));
  const tools = (await mcp.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("whoami"), tools.join(","));
  const result = await mcp.callTool({ name: "whoami", arguments: {} });
  const text = (result.content as Array<{ type: string; text?: string }>).find((c) => c.type === "text")?.text ?? "{}";
  const who = JSON.parse(text) as { client_id?: string; agent?: string; scopes?: string[] };
  assert.equal(who.client_id, AGENT_ID);
  assert.equal(who.agent, AGENT_ID);
  assert.deepEqual(who.scopes, ["tools:read"]);
  await mcp.close();
  assert.equal(authProvider.source.fetched, 1); // one token for the whole session
});

test("tokens are cached, refreshed when near expiry, and fetched again after invalidation", async () => {
  const provider = new AgentAuthProvider(new AgentTokenSource(options));
  const first = await provider.tokens();
  const again = await provider.tokens();
  assert.equal(again.access_token, first.access_token);
  assert.equal(provider.source.fetched, 1);
  assert.ok((first.expires_in ?? 0) > 0);
  // a token within the refresh margin of its expiry is replaced before use
  provider.saveTokens({ ...first, expires_in: 0 });
  const refreshed = await provider.tokens();
  assert.notEqual(refreshed.access_token, first.access_token);
  assert.equal(provider.source.fetched, 2);
  provider.invalidateCredentials("tokens");
  await provider.tokens();
  assert.equal(provider.source.fetched, 3);
  // concurrent callers share one request
  provider.invalidateCredentials("all");
  await Promise.all([provider.tokens(), provider.tokens(), provider.tokens()]);
  assert.equal(provider.source.fetched, 4);
  assert.equal(provider.prepareTokenRequest("tools:read").get("grant_type"), "client_credentials");
});

test("a wrong secret is an ApiError with the OAuth error fields", async () => {
  const source = new AgentTokenSource({ ...options, clientSecret: "wrong" });
  await assert.rejects(source.accessToken(), (err: unknown) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 401);
    assert.equal(err.error, "invalid_client");
    return true;
  });
});
