"""Compliance: GDPR subject rights (per-subject encryption, erasure, export) and AI Act records."""
