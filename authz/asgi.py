"""ASGI entry point for uvicorn workers: ``authz.asgi:create`` builds the app from AUTHZ_* settings."""

from __future__ import annotations

from starlette.applications import Starlette

from authz.app import create_app
from authz.core.settings import Settings, check_safe


def create() -> Starlette:
    settings = Settings()
    check_safe(settings)
    return create_app(settings)
