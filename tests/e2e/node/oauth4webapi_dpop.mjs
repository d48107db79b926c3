// panva's oauth4webapi (a strict OAuth 2 / DPoP client library) against `authz demo`:
// client_credentials and authorization code + PKCE, both with DPoP (RFC 9449), then a tools/call
// to the demo MCP server with each DPoP-bound token. Prints one JSON line of findings; exits 1 on error.
//   node oauth4webapi_dpop.mjs ISSUER MCP_URL AGENT_ID AGENT_SECRET
import * as oauth from 'oauth4webapi'

const [issuerUrl, mcpUrl, agentId, agentSecret] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // loopback http only (the demo)
const issuer = new URL(issuerUrl)
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
const out = { dpop_algs: as.dpop_signing_alg_values_supported }

async function callTool(token, DPoP) {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } })
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' })
  const r = await oauth.protectedResourceRequest(token, 'POST', new URL(mcpUrl), headers, body, { DPoP, ...insecure })
  const text = await r.text()
  return { status: r.status, ok: r.status === 200 && !text.includes('"error"') }
}

// 1. client_credentials with DPoP (the demo's agent, client_secret_basic)
{
  const client = { client_id: agentId }
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  const resp = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.ClientSecretBasic(agentSecret), { resource: mcpUrl, scope: 'tools:read' }, { DPoP, ...insecure })
  const token = await oauth.processClientCredentialsResponse(as, client, resp)
  out.client_credentials = { token_type: token.token_type, mcp: await callTool(token.access_token, DPoP) }
  // the same token without the proof (as a bearer token) must be refused (RFC 9449 §7.2)
  const plain = await fetch(mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
  })
  out.client_credentials.as_bearer_status = plain.status
}

// 2. authorization code + PKCE with DPoP, as a dynamically registered public client
{
  const redirectUri = 'http://127.0.0.1:8976/callback'
  const reg = await fetch(as.registration_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], client_name: 'oauth4webapi' }),
  })
  const client = { client_id: (await reg.json()).client_id }
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const url = new URL(as.authorization_endpoint)
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', scope: 'tools:read',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    state, resource: mcpUrl,
  })) url.searchParams.set(k, v)
  const redirect = await fetch(url, { redirect: 'manual' }) // development mode signs in and consents
  const params = oauth.validateAuthResponse(as, client, new URL(redirect.headers.get('location')), state)
  const resp = await oauth.authorizationCodeGrantRequest(
    as, client, oauth.None(), params, redirectUri, verifier, { DPoP, additionalParameters: { resource: mcpUrl }, ...insecure })
  const token = await oauth.processAuthorizationCodeResponse(as, client, resp)
  out.authorization_code = { token_type: token.token_type, refresh: typeof token.refresh_token === 'string', mcp: await callTool(token.access_token, DPoP) }
  // the refresh token is bound to the key too (public client): refreshing with the same DPoP handle works
  const refreshed = await oauth.processRefreshTokenResponse(as, client,
    await oauth.refreshTokenGrantRequest(as, client, oauth.None(), token.refresh_token, { DPoP, ...insecure }))
  out.authorization_code.refreshed_token_type = refreshed.token_type
}

console.log(JSON.stringify(out))
