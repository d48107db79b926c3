"""End-user pages (sign in, consent, errors), kept out of the protocol code."""
