"""The OAuth 2.1 protocol: the Authlib adapter, endpoints, grants, client authentication, PKCE, resource
indicators, introspection, revocation, token minting, signing keys, JOSE, CIMD and trusted issuers."""
