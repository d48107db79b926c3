/**
 * Agent-side tokens: client_credentials (RFC 6749 §4.4) at the authz token endpoint, for one
 * resource (RFC 8707 `resource`), cached and refreshed before expiry; and an auth provider for the
 * official MCP TypeScript SDK client (`@modelcontextprotocol/sdk`), structurally typed so this
 * package has no runtime dependency on it.
 *
 * RFC 6749 §4.4.2: "The client makes a request to the token endpoint by adding the following
 * parameters using the application/x-www-form-urlencoded format": `grant_type=client_credentials`
 * and an optional `scope`; the client authenticates (§2.3.1, HTTP Basic here).
 * @module
 */

import { ApiError } from "./errors.js";

/** Options of {@link AgentTokenSource}. */
export interface AgentTokenOptions {
  /** The authorization server's issuer (`https://auth.example.com`). */
  issuer: string;
  /** The agent's client id (`agt_...`). */
  clientId: string;
  /** The agent's secret (a `secret` credential). */
  clientSecret: string;
  /** The resource the token is for (the MCP server URL, or `<issuer>/api/v1`). */
  resource: string;
  /** Space-separated scopes (default: the server's default for the resource). */
  scope?: string;
  /** Refresh this many seconds before expiry (default 60, at most half the lifetime). */
  refreshSkewSeconds?: number;
  /** The token endpoint (default: from `<issuer>/.well-known/oauth-authorization-server`). */
  tokenEndpoint?: string;
  /** Timeout of each request in milliseconds (default 10000). */
  timeoutMs?: number;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/** A token endpoint answer (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  refresh_token?: string;
  [key: string]: unknown;
}

/** client_credentials tokens for one resource: cached, refreshed before expiry, one request at a time. */
export class AgentTokenSource {
  /** The options it was made with. */
  readonly options: AgentTokenOptions;
  private readonly fetchImpl: typeof fetch;
  private cached: { token: TokenResponse; refreshAt: number } | undefined;
  private pending: Promise<TokenResponse> | undefined;
  private endpoint: string | undefined;
  /** How many tokens were fetched from the server (not from the cache). */
  fetched = 0;

  constructor(options: AgentTokenOptions) {
    this.options = options;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.endpoint = options.tokenEndpoint;
  }

  /** A valid access token (cached until shortly before it expires). */
  async accessToken(): Promise<string> {
    return (await this.token()).access_token;
  }

  /** The whole token response, cached. */
  async token(): Promise<TokenResponse> {
    if (this.cached && Date.now() < this.cached.refreshAt) return this.cached.token;
    this.pending ??= this.fetchToken().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Store a token obtained elsewhere (the MCP SDK's own token request); used until it nears expiry. */
  remember(token: TokenResponse): void {
    const lifetime = typeof token.expires_in === "number" ? token.expires_in : 300;
    const skew = Math.min(this.options.refreshSkewSeconds ?? 60, lifetime / 2);
    this.cached = { token, refreshAt: Date.now() + (lifetime - skew) * 1000 };
  }

  /** Drop the cached token (e.g. after a 401: the agent was suspended or the token revoked). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** The form of a client_credentials request (without client authentication). */
  tokenRequest(scope?: string): URLSearchParams {
    const form = new URLSearchParams({ grant_type: "client_credentials", resource: this.options.resource });
    const wanted = scope ?? this.options.scope;
    if (wanted) form.set("scope", wanted);
    return form;
  }

  private async tokenEndpoint(): Promise<string> {
    if (this.endpoint) return this.endpoint;
    const issuer = this.options.issuer.replace(/\/+$/, "");
    const response = await this.send(`${issuer}/.well-known/oauth-authorization-server`, { method: "GET" });
    const meta = (await response.json()) as { token_endpoint?: unknown };
    if (typeof meta.token_endpoint !== "string") throw new ApiError({ status: 0, title: "DiscoveryFailed", detail: "no token_endpoint in the AS metadata" });
    this.endpoint = meta.token_endpoint;
    return this.endpoint;
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, { ...init, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
    } catch (cause) {
      throw ApiError.transport(cause);
    }
    if (!response.ok) throw await ApiError.fromResponse(response);
    return response;
  }

  private async fetchToken(): Promise<TokenResponse> {
    const basic = btoa(`${encodeURIComponent(this.options.clientId)}:${encodeURIComponent(this.options.clientSecret)}`);
    const response = await this.send(await this.tokenEndpoint(), {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: this.tokenRequest().toString(),
    });
    const token = (await response.json()) as TokenResponse;
    this.fetched++;
    this.remember(token);
    return token;
  }
}

/** The subset of the MCP SDK's `OAuthTokens` the provider returns. */
export interface McpTokens {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  refresh_token?: string;
}

/**
 * An `OAuthClientProvider` for `@modelcontextprotocol/sdk` (pass as `authProvider` to
 * `StreamableHTTPClientTransport`): `tokens()` answers the cached agent token, fetched by
 * client_credentials and refreshed before expiry; on a 401 the MCP SDK calls
 * `invalidateCredentials("tokens")` and `prepareTokenRequest()` and saves the new token here.
 *
 * ```ts
 * const authProvider = new AgentAuthProvider({ issuer, clientId, clientSecret, resource: mcpUrl, scope: "tools:read" });
 * const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider });
 * ```
 */
export class AgentAuthProvider {
  /** The token source (cache) behind the provider. */
  readonly source: AgentTokenSource;
  private readonly options: AgentTokenOptions;

  constructor(options: AgentTokenOptions | AgentTokenSource) {
    this.source = options instanceof AgentTokenSource ? options : new AgentTokenSource(options);
    this.options = this.source.options;
  }

  /** No redirect: client_credentials is not interactive. */
  get redirectUrl(): undefined {
    return undefined;
  }

  /** What the MCP SDK would register; the agent is registered already (its id and secret). */
  get clientMetadata(): { redirect_uris: string[]; grant_types: string[]; token_endpoint_auth_method: string; client_name: string } {
    return { redirect_uris: [], grant_types: ["client_credentials"], token_endpoint_auth_method: "client_secret_basic", client_name: this.options.clientId };
  }

  /** The agent's credentials. */
  clientInformation(): { client_id: string; client_secret: string } {
    return { client_id: this.options.clientId, client_secret: this.options.clientSecret };
  }

  /** The current token (fetched or refreshed when needed). */
  async tokens(): Promise<McpTokens> {
    const token = await this.source.token();
    return {
      access_token: token.access_token,
      token_type: token.token_type,
      ...(token.expires_in !== undefined ? { expires_in: token.expires_in } : {}),
      ...(token.scope !== undefined ? { scope: token.scope } : {}),
    };
  }

  /** A token the MCP SDK obtained (through {@link AgentAuthProvider.prepareTokenRequest}). */
  saveTokens(tokens: McpTokens): void {
    this.source.remember({ ...tokens });
  }

  /** The client_credentials form for the MCP SDK's own token request. */
  prepareTokenRequest(scope?: string): URLSearchParams {
    const form = this.source.tokenRequest(scope);
    form.delete("resource"); // the MCP SDK adds the resource it discovered
    return form;
  }

  /** Forget the cached token (`tokens`/`all`); the credentials themselves are configuration. */
  invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): void {
    if (scope === "all" || scope === "tokens") this.source.invalidate();
  }

  /** Never called for client_credentials. */
  redirectToAuthorization(): never {
    throw new Error("AgentAuthProvider uses client_credentials: there is no authorization redirect");
  }

  /** Never called for client_credentials. */
  saveCodeVerifier(): void {}

  /** Never called for client_credentials. */
  codeVerifier(): never {
    throw new Error("AgentAuthProvider uses client_credentials: there is no PKCE verifier");
  }
}
