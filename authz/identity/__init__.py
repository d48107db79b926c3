"""Who acts: human users, OAuth clients, agents and their credentials, and the cached directory and
revocation views the hot path reads."""
