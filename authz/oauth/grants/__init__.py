"""One module per grant type; each talks to storage Protocols and the token issuer only."""
