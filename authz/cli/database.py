"""Bringing a database to the current schema, for the commands that create one (serve, demo, admin-client)."""

from __future__ import annotations

from authz.core.settings import Settings


def migrate_db(settings: Settings) -> None:
    """Create the data directory if needed and upgrade the database to the newest Alembic revision."""
    import migrations
    from authz.preflight import kek_text

    kek_text(settings)  # a malformed key-encryption key is refused before anything is written
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.sqlalchemy_url)
