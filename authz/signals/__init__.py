"""Push revocation: the OpenID Shared Signals (SSF 1.0) transmitter sending CAEP revocation events."""
