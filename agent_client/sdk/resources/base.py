"""What every SDK surface is built from: a requester, the ``Surface`` base class and the ``operation`` tag.

A surface method describes one request (method, path, query, body, headers) and hands it to the
requester it was built with; :class:`~agent_client.sdk.Client` passes a requester that sends it at
once and returns the JSON answer, :class:`~agent_client.sdk.AsyncClient` one that returns a
coroutine of it. So each method is written once, for both clients. ``@operation("POST /agents")``
names the admin API operation(s) a method calls; a test compares those tags with the server's
OpenAPI document (a missing method or a stale tag fails it). A method whose request is safe to repeat
although its HTTP method is not (a POST that changes nothing, or one the server deduplicates) says so
with ``idempotent=True`` in the request it describes, and the client's retry policy retries it like
a GET. A key-side licensing call describes ``signed=<nonce>``: the client returns its answer only
once the signature, the echoed nonce and the age check out.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
F = TypeVar("F", bound=Callable[..., Any])
Params = Mapping[str, object]
OPERATION_ATTR = "__authz_operations__"


class Requester(Protocol[R_co]):
    def __call__(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        signed: str | int | None = None,
    ) -> R_co: ...


def operation(*keys: str) -> Callable[[F], F]:
    """Tag a surface method with the ``"METHOD /path"`` operation(s) of the admin API it calls."""

    def tag(fn: F) -> F:
        setattr(fn, OPERATION_ATTR, keys)
        return fn

    return tag


def operations_of(fn: object) -> tuple[str, ...]:
    """The operations a method was tagged with (none for untagged ones)."""
    keys: tuple[str, ...] = getattr(fn, OPERATION_ATTR, ())
    return keys


def seg(value: str | int) -> str:
    """One path segment, percent-encoded (an id with ``/`` stays one segment)."""
    return quote(str(value), safe="")


def compact(**fields: Any) -> dict[str, Any]:
    """The fields that are not ``None`` (arguments left ``None`` are not sent)."""
    return {k: v for k, v in fields.items() if v is not None}


def fresh_nonce() -> str:
    """A new nonce for one signed licensing call (the server echoes it inside the signed answer)."""
    return secrets.token_urlsafe(16)


def license_header(key: str) -> dict[str, str]:
    """``Authorization: License <key>``: the credential of the key-authenticated licensing endpoints."""
    return {"authorization": f"License {key}"}


class Surface(Generic[R]):
    """A group of admin API methods sharing one requester."""

    def __init__(self, request: Requester[R]) -> None:
        self._request = request
