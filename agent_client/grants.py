"""What the agent asks the token endpoint for: its own token, or an exchange of someone else's.

RFC 6749 §4.4 ``client_credentials``; RFC 6749 §4.1.3 ``authorization_code`` (with the PKCE
``code_verifier``, RFC 7636 §4.5); RFC 8693 §2.1 token exchange (``subject_token`` +
``subject_token_type``, optional ``actor_token`` + ``actor_token_type``) — the server answers with
a token for the one ``resource`` (RFC 8707) the source is for.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

TokenProvider = str | Callable[[], str] | Callable[[], Awaitable[str]]


class Grant(Protocol):
    async def form(self) -> dict[str, str]:
        """The grant's own form fields (``grant_type`` and its parameters)."""


@dataclass(frozen=True)
class ClientCredentials:
    async def form(self) -> dict[str, str]:
        return {"grant_type": "client_credentials"}


async def _resolve(value: TokenProvider) -> str:
    if isinstance(value, str):
        return value
    result = value()
    if inspect.isawaitable(result):
        return await result
    return result


@dataclass(frozen=True)
class TokenExchange:
    """Exchange ``subject_token`` (a user's token, a string or a callable giving the current one)."""

    subject_token: TokenProvider = field(repr=False)
    subject_token_type: str = ACCESS_TOKEN_TYPE
    actor_token: TokenProvider | None = field(default=None, repr=False)
    actor_token_type: str = ACCESS_TOKEN_TYPE
    workflow: str | None = None

    async def form(self) -> dict[str, str]:
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": await _resolve(self.subject_token),
            "subject_token_type": self.subject_token_type,
        }
        if self.actor_token is not None:
            form["actor_token"] = await _resolve(self.actor_token)
            form["actor_token_type"] = self.actor_token_type
        if self.workflow:
            form["workflow"] = self.workflow
        return form


@dataclass(frozen=True)
class AuthorizationCode:
    """Redeem a code from an authorization response (RFC 6749 §4.1.3 + PKCE ``code_verifier``)."""

    code: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str

    async def form(self) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": self.code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier,
        }
