"""Requirement manifest, runners for the official MCP conformance suite, and their tests."""
