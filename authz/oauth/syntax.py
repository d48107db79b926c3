"""The syntax of OAuth request parameters, checked once in the adapter before Authlib sees a value.

RFC 6749 Appendix A gives the ABNF of every parameter it defines ("The ABNF below is defined in
terms of Unicode code points"):

    VSCHAR     = %x20-7E
    NQCHAR     = %x21 / %x23-5B / %x5D-7E
    client-id      = *VSCHAR                          (A.1)
    client-secret  = *VSCHAR                          (A.2)
    response-type  = response-name *( SP response-name ); response-char = "_" / DIGIT / ALPHA  (A.3)
    scope          = scope-token *( SP scope-token ); scope-token = 1*NQCHAR                    (A.4)
    state          = 1*VSCHAR                         (A.5)
    redirect-uri   = URI-reference                    (A.6)
    grant-type     = grant-name / URI-reference; name-char = "-" / "." / "_" / DIGIT / ALPHA    (A.10)
    code           = 1*VSCHAR                         (A.11)
    refresh-token  = 1*VSCHAR                         (A.17)

A value outside its grammar is refused here with ``invalid_request`` (``invalid_scope`` for a scope:
RFC 6749 §5.2 "The requested scope is invalid, unknown, malformed"), naming the parameter and never
echoing the value. This is what keeps attacker text out of every error description: Authlib builds
some descriptions from the request (``Redirect URI ... is not supported``, ``The response type ...
is not supported``) and refuses, with a ``ValueError``, any outside RFC 6749 §4.1.2.1's
``%x20-21 / %x23-5B / %x5D-7E`` — a ``"``, ``\\``, ``é`` or newline there was a 500.

Other parameters keep their own checks and errors: ``resource`` (RFC 8707 ``invalid_target``,
:mod:`authz.oauth.rfc8707`), ``code_challenge``/``code_verifier`` (RFC 7636, :mod:`authz.oauth.pkce`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error

_VSCHAR = r"[\x20-\x7e]"
_NQCHAR = r"[\x21\x23-\x5b\x5d-\x7e]"
# RFC 3986 URI-reference: unreserved, reserved, "%" (pct-encoded); no space, quote, backslash, <>^`{|}.
_URI_REFERENCE = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*"
_NAME = r"[A-Za-z0-9\-._]+"

GRAMMAR: dict[str, re.Pattern[str]] = {
    "client_id": re.compile(f"{_VSCHAR}*"),
    "client_secret": re.compile(f"{_VSCHAR}*"),
    "response_type": re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*"),
    "scope": re.compile(f"{_NQCHAR}+(?: {_NQCHAR}+)*"),
    "state": re.compile(f"{_VSCHAR}+"),
    "redirect_uri": re.compile(_URI_REFERENCE),
    "grant_type": re.compile(f"{_NAME}|{_URI_REFERENCE}"),
    "code": re.compile(f"{_VSCHAR}+"),
    "refresh_token": re.compile(f"{_VSCHAR}+"),
}


def is_uri_reference(value: str) -> bool:
    """Whether ``value`` uses only the characters of an RFC 3986 URI-reference (no space, quote, backslash,
    control or non-ASCII character: :func:`urllib.parse.urlsplit` silently drops tabs and newlines)."""
    return GRAMMAR["redirect_uri"].fullmatch(value) is not None


def malformed(items: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first parameter whose value breaks its RFC 6749 Appendix A grammar, or None."""
    for name, value in items:
        grammar = GRAMMAR.get(name)
        if grammar is not None and grammar.fullmatch(value) is None:
            return name
    return None


def syntax_error(name: str) -> OAuth2Error:
    """The refusal for a malformed ``name`` (the value is never echoed)."""
    if name == "scope":
        return InvalidScopeError("The scope parameter is malformed.")
    return InvalidRequestError(f"The {name} parameter is malformed.")


def check(items: Iterable[tuple[str, str]]) -> None:
    """Raise the refusal for the first malformed parameter of ``items``."""
    name = malformed(items)
    if name is not None:
        raise syntax_error(name)
