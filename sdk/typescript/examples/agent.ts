// A runnable example agent: a token for the demo MCP server (client_credentials through the
// authz-sdk auth provider for the official MCP TypeScript SDK), a tool call, then its token usage
// and an outcome recorded through the admin API, and the agent's usage printed.
//
//   authz demo                      # prints the agent id and secret, the AS and the MCP URL
//   authz admin-client create --name example --scopes "metering:read metering:write"
//   cd sdk/typescript && npm ci && npm run build:test
//   AUTHZ_URL=http://127.0.0.1:9100 MCP_URL=http://127.0.0.1:9200/mcp AGENT_ID=agt_... AGENT_SECRET=... \
//   AUTHZ_ADMIN_CLIENT_ID=... AUTHZ_ADMIN_CLIENT_SECRET=... node build/examples/agent.js
import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { AgentAuthProvider, AgentTokenSource, Client } from "authz-sdk";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name} (see the comment at the top of examples/agent.ts)`);
  return value;
}

const issuer = env("AUTHZ_URL");
const mcpUrl = env("MCP_URL");
const agentId = env("AGENT_ID");

// 1. The agent's token for the MCP server: fetched, cached and refreshed by the provider.
const authProvider = new AgentAuthProvider({ issuer, clientId: agentId, clientSecret: env("AGENT_SECRET"), resource: mcpUrl, scope: "tools:read" });
const mcp = new McpClient({ name: "authz-example-agent", version: "1.0.0" });
await mcp.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider }));

// 2. Call a tool of the demo MCP server.
const tools = (await mcp.listTools()).tools.map((t) => t.name);
const result = await mcp.callTool({ name: "whoami", arguments: {} });
const text = (result.content as Array<{ type: string; text?: string }>).find((c) => c.type === "text")?.text ?? "";
const whoami = JSON.parse(text) as Record<string, unknown>;
await mcp.close();

// 3. Record the model tokens this step used and the outcome it delivered (admin API, metering scopes).
const admin = new AgentTokenSource({
  issuer, clientId: env("AUTHZ_ADMIN_CLIENT_ID"), clientSecret: env("AUTHZ_ADMIN_CLIENT_SECRET"),
  resource: `${issuer.replace(/\/+$/, "")}/api/v1`, scope: "metering:read metering:write",
});
const authz = new Client({ baseUrl: issuer, apiKey: () => admin.accessToken() });
await authz.metering.record({ type: "tokens.consumed", agent: agentId, model: "example-model", usage: { input_tokens: 1200, output_tokens: 300 } });
await authz.outcomes.record("question_answered", { agent: agentId, quantity: 1 });

// 4. Print the agent's usage (aggregates are flushed asynchronously: wait a bounded while).
type Row = { type?: string; count?: number; tokens?: number; [k: string]: unknown };
let rows: Row[] = [];
for (let i = 0; i < 100; i++) {
  const usage = (await authz.metering.usage({ granularity: "day", group_by: "type", filter: { agent: agentId } })) as unknown as { rows: Row[] };
  rows = usage.rows;
  if (rows.some((r) => r.type === "outcome.question_answered") && rows.some((r) => r.type === "tokens.consumed")) break;
  await new Promise((r) => setTimeout(r, 100));
}
console.log(JSON.stringify({ tools, whoami, usage: rows }));
