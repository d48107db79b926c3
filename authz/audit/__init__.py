"""The audit trail: append-only, tamper-evident records of every decision and operator change."""
