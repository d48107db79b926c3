"""The Python admin SDK: typed calls over the ``/api/v1`` admin API of an ``authz`` server.

::

    from agent_client.sdk import Client

    with Client("https://auth.example.com", api_key=admin_token) as authz:
        agent = authz.agents.create("billing bot")
        authz.metering.record("call.completed", agent=agent["id"], tool="search")

``AsyncClient`` has the same surfaces with awaitable calls. Errors raise :class:`ApiError` (RFC 9457
fields); a signed licensing answer that fails its check raises :class:`LicenseError`
(:class:`SignedAnswers` pins the keys). Like the rest of ``agent_client``, this package imports nothing from ``authz``.
"""

from agent_client.licenses import LicenseError, SignedAnswers
from agent_client.sdk.client import AsyncClient, Client
from agent_client.sdk.errors import ApiError
from agent_client.sdk.offline import verify_offline
from agent_client.sdk.resources.metering import prepare_events
from agent_client.sdk.retry import RetryPolicy

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "LicenseError",
    "RetryPolicy",
    "SignedAnswers",
    "prepare_events",
    "verify_offline",
]
