"""Bringing a database to the current schema, for the commands that create one (serve, demo, admin-client)."""

from __future__ import annotations

from authz.core.settings import Settings


def migrate_db(settings: Settings) -> None:
    """Create the data directory if needed and upgrade the database to the newest Alembic revision."""
    import migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.sqlalchemy_url)
