"""The admin SDK's clients: ``Client`` (sync) and ``AsyncClient`` over httpx2, with retries and timeouts.

Both send ``Authorization: Bearer <api_key>`` (an access token for the admin API resource,
``<base_url>/api/v1``) and a timeout on every call, retry only what is safe to repeat
(:mod:`agent_client.sdk.retry`) and raise :class:`~agent_client.sdk.errors.ApiError` on any non-2xx
answer. The surfaces (:class:`~agent_client.sdk.resources.Surfaces`) are the same classes for both,
parameterised by what a call returns (a dict, or an awaitable of one).

A request described as ``signed=<nonce>`` (the key-side licensing calls) returns its answer only
after :class:`~agent_client.licenses.SignedAnswers` checked it — the Ed25519 ``Authz-Signature`` by
the key its ``keyid`` names, the nonce echoed, the age — and raises
:class:`~agent_client.licenses.LicenseError` otherwise. The keys are ``licensing.keys`` when pinned,
else the server's JWK Set fetched once per client (a failed fetch is tried again on the next call).
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
import httpx2

from agent_client.licenses import SignedAnswers
from agent_client.sdk.errors import ApiError
from agent_client.sdk.resources import Params, Surfaces
from agent_client.sdk.retry import RetryPolicy

DEFAULT_TIMEOUT = 10.0
Json = dict[str, Any]


def _api_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root if root.endswith("/api/v1") else root + "/api/v1"


def _headers(api_key: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}", "accept": "application/json", **(extra or {})}


def _result(response: httpx2.Response) -> Json:
    if response.is_error:
        raise ApiError.from_response(response)
    if not response.content:
        return {}
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        return {"content_type": content_type, "text": response.text}
    body: Any = response.json()
    return body if isinstance(body, dict) else {"items": body}


def _signed(response: httpx2.Response, nonce: str | int, answers: SignedAnswers, keys: Json | None) -> Json:
    if response.is_error:
        raise ApiError.from_response(response)
    return answers.verify(response.content, response.headers.get("authz-signature"), nonce, keys=keys)


def _params(params: Params | None) -> list[tuple[str, str | int | float | bool | None]]:
    out: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in (params or {}).items():
        values: Sequence[object] = value if isinstance(value, list | tuple) else [value]
        out += [(name, str(v).lower() if isinstance(v, bool) else str(v)) for v in values if v is not None]
    return out


class Client(Surfaces[Json]):
    """Synchronous admin API client (``licensing``: how signed licensing answers are checked)::

    with Client("https://auth.example.com", api_key=token) as authz:
        agent = authz.agents.create("billing bot", team="finance")
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
        licensing: SignedAnswers | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.licensing = licensing or SignedAnswers()
        self._jwks: Json | None = None
        self._api_key = api_key
        self._http = httpx2.Client(base_url=_api_root(base_url), timeout=timeout, transport=transport)
        self._build(self.request)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        signed: str | int | None = None,
    ) -> Json:
        """One API call (``path`` relative to ``/api/v1``), retried per :attr:`retry` (``idempotent``: the
        operation is safe to repeat whatever its method); the JSON answer (``signed``: the nonce of a
        signed licensing answer, verified before it is returned).

        The body is ``json`` (encoded here) or ``content``, bytes already encoded (say so in ``headers``).
        """
        request = self._http.build_request(
            method,
            path.lstrip("/"),
            json=json,
            content=content,
            params=_params(params),
            headers=_headers(self._api_key, headers),
        )
        attempt = 0
        while True:
            attempt += 1
            response: httpx2.Response | None = None
            try:
                response = self._http.send(request)
            except httpx2.TransportError as exc:
                if not self.retry.should_retry(attempt, request, None, idempotent=idempotent):
                    raise ApiError.transport(exc) from exc
            if response is not None and not self.retry.should_retry(attempt, request, response, idempotent=idempotent):
                if signed is None:
                    return _result(response)
                if self.licensing.keys is None and self._jwks is None:
                    self._jwks = self.request("GET", "/licenses/jwks")
                return _signed(response, signed, self.licensing, self._jwks)
            time.sleep(self.retry.delay(attempt, response))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


AsyncJson = Coroutine[Any, Any, Json]


class AsyncClient(Surfaces[AsyncJson]):
    """Asynchronous admin API client; the same surfaces as :class:`Client`, each call awaited."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        licensing: SignedAnswers | None = None,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.licensing = licensing or SignedAnswers()
        self._jwks: Json | None = None
        self._api_key = api_key
        self._http = httpx2.AsyncClient(base_url=_api_root(base_url), timeout=timeout, transport=transport)
        self._build(self.request)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        signed: str | int | None = None,
    ) -> Json:
        """One API call (``path`` relative to ``/api/v1``), retried per :attr:`retry` (``idempotent``: the
        operation is safe to repeat whatever its method); the JSON answer (``signed``: the nonce of a
        signed licensing answer, verified before it is returned).

        The body is ``json`` (encoded here) or ``content``, bytes already encoded (say so in ``headers``).
        """
        request = self._http.build_request(
            method,
            path.lstrip("/"),
            json=json,
            content=content,
            params=_params(params),
            headers=_headers(self._api_key, headers),
        )
        attempt = 0
        while True:
            attempt += 1
            response: httpx2.Response | None = None
            try:
                response = await self._http.send(request)
            except httpx2.TransportError as exc:
                if not self.retry.should_retry(attempt, request, None, idempotent=idempotent):
                    raise ApiError.transport(exc) from exc
            if response is not None and not self.retry.should_retry(attempt, request, response, idempotent=idempotent):
                if signed is None:
                    return _result(response)
                if self.licensing.keys is None and self._jwks is None:
                    self._jwks = await self.request("GET", "/licenses/jwks")
                return _signed(response, signed, self.licensing, self._jwks)
            await anyio.sleep(self.retry.delay(attempt, response))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
