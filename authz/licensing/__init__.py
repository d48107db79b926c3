"""License keys: products, policies, licenses and machines; validation, activation, heartbeats and
offline license files, signed with Ed25519 (see docs/licensing.md)."""
