"""Agent identities and their credential lifecycle: create, suspend, reinstate, revoke; issue, rotate, revoke."""
