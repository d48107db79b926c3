"""The in-process authorization server fixtures of ``tests/authz`` (``as_factory``, ``authz``), reused here."""

from tests.authz.conftest import anyio_backend, as_factory, authz

__all__ = ["anyio_backend", "as_factory", "authz"]
