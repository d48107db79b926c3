"""Authlib request objects built from data the Starlette endpoint has already awaited.

Authlib's core is synchronous and reads ``request.form``/``request.args``/``request.payload``; the
endpoint awaits the body first, then hands over this fully-built object, so the core never touches
the network or the event loop.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from authlib.oauth2.rfc6749.requests import OAuth2Payload, OAuth2Request

from dpop import Proof


def parse_form(text: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(text)``, item for item: ``&``-separated ``name=value`` pairs, a pair
    without ``=`` or with an empty value dropped, ``+`` a space, percent-escapes decoded as UTF-8
    (invalid sequences replaced); a name or value with nothing to decode is taken as it is."""
    items: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, _, value = part.partition("=")
        if not value:  # no "=", or an empty value: parse_qsl(keep_blank_values=False) drops both
            continue
        if "+" in name or "%" in name:
            name = unquote_to_bytes(name.replace("+", " ")).decode("utf-8", "replace")
        if "+" in value or "%" in value:
            value = unquote_to_bytes(value.replace("+", " ")).decode("utf-8", "replace")
        items.append((name, value))
    return items


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            datalist[key].append(value)
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class AuthzRequest(OAuth2Request):  # type: ignore[misc]
    """One OAuth request: method, absolute URI, case-insensitive headers, query and form items."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Sequence[tuple[str, str]] = (),
        form: Sequence[tuple[str, str]] = (),
    ) -> None:
        # Authlib's __init__ only stores these and re-checks TLS on every request; settings.check_safe
        # already refuses a non-https issuer off loopback, and the URI here is always built from it.
        self.method, self.uri, self.headers = method, uri, headers
        self._body = None
        self.client: Any = None
        self.auth_method: str | None = None
        self.user: Any = None
        self.authorization_code: Any = None
        self.refresh_token: Any = None
        self.credential: Any = None
        self._scope: str | None = None
        self._args = dict(query)
        self._form = dict(form)
        self.payload = FormPayload([*query, *form] if method == "GET" else form)
        self.resource: str | None = None
        self.granted_scope: str = ""
        self.client_ip: str | None = None
        self.policy_reasons: tuple[str, ...] = ()  # the policy ids that decided the granted scopes
        self.auth_failure: str | None = None  # why client authentication failed, for the audit trail
        self.refusal_audited = False  # set where a refusal was already recorded (budgets): not twice
        self.dpop: Proof | None = None  # the token request's checked DPoP proof (RFC 9449 §5)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form

    def values(self, name: str) -> list[str]:
        """Every value of a parameter that may repeat (``resource``, RFC 8707 §2)."""
        return list(self.payload.datalist.get(name, []))
