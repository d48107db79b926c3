"""Persistent state: SQLAlchemy models, repository Protocols, and their SQL implementation."""
