"""RFC 7591 dynamic client registration at ``POST /register`` (only when ``dynamic_registration`` is on).

Open registration: no initial access token (RFC 7591 §3: "The client registration endpoint MAY be
an OAuth 2.0 protected resource ... the registration endpoint MAY accept registration requests
without an initial access token"). MCP 2026-07-28 keeps DCR as a deprecated MAY, and CIMD is the
recommended way; this endpoint exists for clients that only know DCR.

The rules implemented:

- §2 ``token_endpoint_auth_method``: "If unspecified or omitted, the default is
  'client_secret_basic'". We accept none, client_secret_basic, client_secret_post, private_key_jwt.
- §2 ``grant_types``: "If omitted, the default behavior is that the client will use only the
  'authorization_code' Grant Type." We accept a subset of authorization_code, refresh_token and
  client_credentials; client_credentials only for a confidential client (auth method not none).
- §2 "The 'jwks_uri' and 'jwks' parameters MUST NOT both be present in the same request or
  response." Keys must be public keys; private_key_jwt needs one of them.
- §2.1 grant types and response types must be consistent: authorization_code goes with ``code``,
  and no other response type is supported.
- Redirect URIs: https, or http on a loopback host (MCP: "Redirect URIs MUST be localhost or
  HTTPS"), no fragment (RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component").
- ``application_type`` (OIDC Registration §2, required of DCR clients by MCP 2026-07-28 / SEP-837):
  ``web`` or ``native``. The MUST is on the client, and older MCP clients do not send it, so a
  missing value is accepted and inferred: ``native`` when a redirect URI is loopback, else ``web``.
- §3.2.1 the response is "HTTP 201 Created" with ``client_id``, ``client_secret`` only for a
  confidential client, ``client_id_issued_at``, ``client_secret_expires_at`` ("REQUIRED if
  'client_secret' is issued ... 0 if it will not expire"), and "all registered metadata about the
  client". ``Cache-Control: no-store`` as in the RFC's example response.
- §3.2.2 errors are 400 JSON: ``invalid_redirect_uri`` ("The value of one or more redirection URIs
  is invalid.") and ``invalid_client_metadata`` ("The value of one of the client metadata fields is
  invalid and the server has rejected this request."). A body that is not a JSON object, or not
  ``application/json``, or larger than :data:`MAX_BODY_BYTES`, is ``invalid_client_metadata`` too.

The secret is returned once and never logged or audited (only its digest is stored).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from authz.context import Context
from authz.core.fetch import FetchError, check_url
from authz.identity.registry import register_client
from authz.oauth.cimd import CimdError, check_public_jwks, check_redirect_uri
from authz.oauth.client_uris import display_uris
from authz.oauth.server import NO_STORE, server_error
from guard.jsonload import JsonRefused, load_json

log = logging.getLogger("authz.register")

MAX_BODY_BYTES = 16 * 1024
MAX_REDIRECT_URIS = 20
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
EXTRA_STRINGS = ("software_id", "software_version")


class RegistrationError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _invalid(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


async def register(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    try:
        body = await _read_json(request)
        fields = validate_metadata(body, allow_loopback=ctx.settings.cimd_allow_loopback)
        # A self-asserted ``scope`` is not a ceiling: the MCP SDK registers with the first challenge's
        # scope and must later step up (MCP 2026-07-28 scope challenges; RFC 7591 §2 lets the server
        # replace metadata). What a client may get is bounded by the resource, consent and policy.
        stored = {**fields, "scope": ""}
        registered = await anyio.to_thread.run_sync(lambda: register_client(ctx.store, ctx.keyring, **stored))
    except RegistrationError as exc:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, 400, headers=NO_STORE)
    except ValueError as exc:  # register_client's own consistency rules
        return JSONResponse({"error": "invalid_client_metadata", "error_description": str(exc)}, 400, headers=NO_STORE)
    except Exception:
        log.exception("client registration failed")
        return server_error()
    ip = request.client.host if request.client else None
    ctx.audit.record(
        "client.registered",
        client_id=registered.client_id,
        auth_method=fields["auth_method"],
        grant_types=list(fields["grant_types"]),
        ip=ip,
    )
    return JSONResponse(_response(registered.client_id, registered.client_secret, fields), 201, headers=NO_STORE)


async def _read_json(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise _invalid("The request body must be application/json.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _invalid("The request body is too large.")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise _invalid("The request body is too large.")
    except ClientDisconnect as exc:
        raise _invalid("The request body was not received.") from exc
    try:
        data = load_json(body, max_bytes=MAX_BODY_BYTES)
    except JsonRefused as exc:
        raise _invalid(f"The request body is refused: {exc}") from exc
    if not isinstance(data, dict):
        raise _invalid("The request body must be a JSON object.")
    return data


def validate_metadata(meta: dict[str, Any], *, allow_loopback: bool = False) -> dict[str, Any]:
    """RFC 7591 §2 metadata -> keyword arguments for :func:`authz.identity.registry.register_client`."""
    method = meta.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise _invalid(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}.")
    grant_types = meta.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not grant_types or not all(isinstance(g, str) for g in grant_types):
        raise _invalid("grant_types must be a non-empty array of strings.")
    unsupported = [g for g in grant_types if g not in GRANT_TYPES]
    if unsupported:
        raise _invalid(f"Unsupported grant types: {', '.join(sorted(set(unsupported)))[:200]}.")
    grant_types = list(dict.fromkeys(grant_types))
    if "client_credentials" in grant_types and method == "none":
        raise _invalid("client_credentials needs a confidential client (token_endpoint_auth_method not none).")
    response_types = meta.get("response_types", ["code"] if "authorization_code" in grant_types else [])
    if not isinstance(response_types, list) or any(r != "code" for r in response_types):
        raise _invalid("response_types may only contain code.")
    if ("code" in response_types) != ("authorization_code" in grant_types):
        raise _invalid("response_types code and grant type authorization_code go together.")
    redirect_uris = _redirect_uris(meta.get("redirect_uris"), required="authorization_code" in grant_types)
    app_type = meta.get("application_type")
    if app_type is None:
        loopback = any(u.startswith("http://") for u in redirect_uris)
        app_type = "native" if loopback else "web"
    elif app_type not in ("web", "native"):
        raise _invalid("application_type must be web or native.")
    name = meta.get("client_name", "")
    if not isinstance(name, str) or len(name) > 255:
        raise _invalid("client_name must be a string of at most 255 characters.")
    scope = meta.get("scope", "")
    if not isinstance(scope, str) or len(scope) > 2048:
        raise _invalid("scope must be a space-separated string.")
    jwks, jwks_uri = _keys(meta, allow_loopback)
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise _invalid("private_key_jwt needs jwks or jwks_uri.")
    try:
        extra: dict[str, Any] = display_uris(meta, allow_loopback=allow_loopback)
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    extra |= {k: meta[k] for k in EXTRA_STRINGS if isinstance(meta.get(k), str) and len(meta[k]) <= 2048}
    dpop_bound = meta.get("dpop_bound_access_tokens")
    if dpop_bound is not None and not isinstance(dpop_bound, bool):
        raise _invalid("dpop_bound_access_tokens must be a boolean.")
    if dpop_bound:
        extra["dpop_bound_access_tokens"] = True  # RFC 9449 §5.2
    contacts = meta.get("contacts")
    if isinstance(contacts, list) and all(isinstance(c, str) for c in contacts):
        extra["contacts"] = contacts[:10]
    return {
        "kind": "dynamic",
        "name": name.strip(),
        "auth_method": method,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "scope": " ".join(scope.split()),
        "jwks": jwks,
        "jwks_uri": jwks_uri,
        "application_type": app_type,
        "extra": extra,
    }


def _redirect_uris(value: object, *, required: bool) -> list[str]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise RegistrationError("invalid_redirect_uri", "redirect_uris must be an array of URIs.")
    if required and not value:
        raise RegistrationError("invalid_redirect_uri", "The authorization_code grant needs redirect_uris.")
    if len(value) > MAX_REDIRECT_URIS:
        raise RegistrationError("invalid_redirect_uri", f"At most {MAX_REDIRECT_URIS} redirect URIs.")
    try:
        return list(dict.fromkeys(check_redirect_uri(u) for u in value))
    except CimdError as exc:
        raise RegistrationError("invalid_redirect_uri", str(exc)) from exc


def _keys(meta: dict[str, Any], allow_loopback: bool) -> tuple[dict[str, Any] | None, str | None]:
    if "jwks" in meta and "jwks_uri" in meta:
        raise _invalid("jwks and jwks_uri must not both be present.")
    jwks, jwks_uri = None, meta.get("jwks_uri")
    if "jwks" in meta:
        try:
            jwks = check_public_jwks(meta["jwks"])
        except CimdError as exc:
            raise _invalid(str(exc)) from exc
    if jwks_uri is not None:
        if not isinstance(jwks_uri, str) or len(jwks_uri) > 2048:
            raise _invalid("jwks_uri must be a URL.")
        try:
            check_url(jwks_uri, allow_loopback)
        except FetchError as exc:
            raise _invalid("jwks_uri must be an https URL this server may fetch.") from exc
    return jwks, jwks_uri


def _response(client_id: str, secret: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"client_id": client_id, "client_id_issued_at": int(time.time())}
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    body.update(
        token_endpoint_auth_method=fields["auth_method"],
        grant_types=fields["grant_types"],
        response_types=["code"] if "authorization_code" in fields["grant_types"] else [],
        redirect_uris=fields["redirect_uris"],
        application_type=fields["application_type"],
    )
    if fields["name"]:
        body["client_name"] = fields["name"]
    if fields["scope"]:
        body["scope"] = fields["scope"]
    for key in ("jwks", "jwks_uri"):
        if fields[key] is not None:
            body[key] = fields[key]
    body.update(fields["extra"])
    return body
