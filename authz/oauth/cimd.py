"""Client ID Metadata Documents (CIMD) and client keys fetched from ``jwks_uri``.

MCP 2026-07-28 (client registration): the CIMD ``client_id`` "MUST be an https URL with a path",
the document's ``client_id`` MUST equal that URL, and the AS MUST validate the JSON and its
required fields (``client_id``, ``client_name``, ``redirect_uris``) and MUST validate
``redirect_uri`` against the document.

draft-ietf-oauth-client-id-metadata-document-02, the sections this module implements:

- §3 "A Client Identifier URL: MUST use the https URL scheme; MUST NOT contain a userinfo component
  ...; MAY contain a port; MUST contain a path component; MUST NOT contain single-dot or double-dot
  path components; SHOULD NOT contain a query component; MUST NOT contain a fragment component".
  "Client Identifier URLs MUST be compared using simple string comparison".
- §4 "The Client ID Metadata Document MUST contain a client_id property whose value MUST match the
  Client Identifier URL, which MUST also match the URL that the authorization server used to fetch
  the document". "MUST be served with a 200 OK HTTP status code."
- §4.1 "the token_endpoint_auth_method property MUST NOT include client_secret_post,
  client_secret_basic, client_secret_jwt, or any other method based around a shared symmetric
  secret"; "the client_secret and client_secret_expires_at properties MUST NOT be used"; "private
  key material MUST NOT be included in the Client ID Metadata Document; only public keys, such as
  those published via the jwks or jwks_uri properties, are permitted".
- §5.1 "If ... fetching the metadata document fails, the authorization server SHOULD abort the
  authorization request." — we raise ``invalid_client``; the authorize endpoint shows it on a page
  and never redirects (RFC 6749 §4.1.2.1).
- §5.2 caching per HTTP cache headers within our bounds (:func:`authz.core.fetch.cache_ttl`); "The
  authorization server MUST NOT cache error responses ... MUST NOT cache documents which are
  invalid or malformed." — a failure writes nothing.
- §8.6 SSRF and §8.7 size: :mod:`authz.core.fetch` (the recommended 5 kilobytes is our document limit).
- §8.2 "When a client declares token_endpoint_auth_method as private_key_jwt, the authorization
  server MUST require client authentication ... using the corresponding key discovered from the
  client's metadata document." — :class:`ClientJwks`.

A row already in the clients table under a URL ``client_id`` with another ``kind`` is a
pre-registered Client Identifier URL (§7.2) and is never fetched over. A CIMD row an operator
disabled stays disabled: it is not refetched.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from authlib.oauth2.rfc6749.errors import InvalidClientError

from authz.context import Context
from authz.core.fetch import MAX_BYTES, Fetched, Fetcher, FetchError, check_url, get_fetcher
from authz.core.settings import is_loopback_url
from authz.identity.clients import OAuthClient
from authz.identity.registry import register_client
from authz.oauth.client_uris import display_uris

log = logging.getLogger("authz.cimd")


MAX_DOCUMENT_BYTES = 5 * 1024  # draft §8.7: "The recommended maximum size to read is 5 kilobytes."
AUTH_METHODS = ("none", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
JWKS_RETRY_AFTER_FAILURE = 30.0


class CimdError(ValueError):
    """A Client Identifier URL or document that breaks a rule; the message is our own text only."""


# -- the Client Identifier URL ----------------------------------------------------------------
def is_client_id_url(client_id: str | None, allow_loopback: bool = False) -> bool:
    """Whether this client_id is to be treated as a Client Identifier URL (then it is validated)."""
    if not client_id:
        return False
    if client_id.startswith("https://"):
        return True
    return allow_loopback and client_id.startswith("http://") and is_loopback_url(client_id)


def check_client_id_url(url: str, allow_loopback: bool = False) -> None:
    """Draft §3 shape rules (plus our fetcher's address rules for IP literals)."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise CimdError("The client_id URL must not contain user information.")
    if parts.fragment or url.endswith("#"):
        raise CimdError("The client_id URL must not contain a fragment.")
    if not parts.path:
        raise CimdError("The client_id URL must contain a path.")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise CimdError("The client_id URL must not contain dot segments.")
    try:
        check_url(url, allow_loopback)
    except FetchError as exc:
        raise CimdError("The client_id URL cannot be fetched by this server.") from exc


# -- the document -----------------------------------------------------------------------------
def _is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")


def check_redirect_uri(uri: object) -> str:
    """An https URI with a host, or a loopback http URI (MCP: "MUST be localhost or HTTPS"); no fragment."""
    if not isinstance(uri, str) or not uri or len(uri) > 2048:
        raise CimdError("Each redirect URI must be a non-empty string.")
    parts = urlsplit(uri)
    if "#" in uri:
        raise CimdError("Redirect URIs must not contain a fragment.")
    if parts.username is not None or parts.password is not None:
        raise CimdError("Redirect URIs must not contain user information.")
    if not (parts.scheme == "https" and parts.hostname) and not _is_loopback_redirect(uri):
        raise CimdError("Redirect URIs must be https, or http on a loopback host.")
    return uri


def check_public_jwks(jwks: object) -> dict[str, Any]:
    """A JWK Set of public keys only (draft §4.1: no private key material; no symmetric keys)."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise CimdError("jwks must be a JWK Set with at least one key.")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            raise CimdError("jwks must contain JSON Web Keys.")
        if key["kty"] == "oct" or PRIVATE_JWK_MEMBERS & key.keys():
            raise CimdError("jwks must contain public keys only.")
    return jwks


@dataclass(frozen=True)
class ClientDocument:
    """The validated metadata of one Client ID Metadata Document, ready for ``register_client``."""

    client_id: str
    name: str
    auth_method: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    jwks: dict[str, Any] | None
    jwks_uri: str | None
    application_type: str
    extra: dict[str, Any]


def validate_document(url: str, doc: dict[str, Any], allow_loopback: bool = False) -> ClientDocument:
    """Validate a fetched document against the draft and MCP rules; raise :class:`CimdError`."""
    if doc.get("client_id") != url:
        raise CimdError("The document's client_id does not match its URL.")
    name = doc.get("client_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise CimdError("The document needs a client_name (a non-empty string).")
    if "client_secret" in doc or "client_secret_expires_at" in doc:
        raise CimdError("A client metadata document must not carry a client secret.")
    method = doc.get("token_endpoint_auth_method", "none")
    if method not in AUTH_METHODS:
        raise CimdError("token_endpoint_auth_method must be none or private_key_jwt.")
    uris = doc.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise CimdError("The document needs redirect_uris (a non-empty array).")
    redirect_uris = tuple(dict.fromkeys(check_redirect_uri(u) for u in uris))
    requested = doc.get("grant_types", ["authorization_code"])
    if not isinstance(requested, list) or not all(isinstance(g, str) for g in requested):
        raise CimdError("grant_types must be an array of strings.")
    grant_types = tuple(g for g in GRANT_TYPES if g in requested)  # unknown grant types are ignored
    if "client_credentials" in grant_types and method == "none":
        raise CimdError("client_credentials needs private_key_jwt.")
    if not grant_types:
        raise CimdError("grant_types names no grant type this server supports.")
    response_types = doc.get("response_types", ["code"])
    if not isinstance(response_types, list) or ("authorization_code" in grant_types and "code" not in response_types):
        raise CimdError("response_types must include code.")
    scope = doc.get("scope", "")
    if not isinstance(scope, str):
        raise CimdError("scope must be a space-separated string.")
    jwks = check_public_jwks(doc["jwks"]) if "jwks" in doc else None
    jwks_uri = doc.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise CimdError("jwks and jwks_uri must not both be present.")
    if jwks_uri is not None:
        if not isinstance(jwks_uri, str):
            raise CimdError("jwks_uri must be a URL.")
        try:
            check_url(jwks_uri, allow_loopback)
        except FetchError as exc:
            raise CimdError("jwks_uri must be an https URL this server may fetch.") from exc
    if method == "private_key_jwt" and jwks is None and jwks_uri is None:
        raise CimdError("private_key_jwt needs jwks or jwks_uri.")
    app_type = doc.get("application_type")
    if app_type not in (None, "web", "native"):
        raise CimdError("application_type must be web or native.")
    if app_type is None:
        app_type = "native" if any(_is_loopback_redirect(u) for u in redirect_uris) else "web"
    try:
        extra: dict[str, Any] = display_uris(doc, allow_loopback=allow_loopback, names=("client_uri", "logo_uri"))
    except ValueError as exc:
        raise CimdError(str(exc)) from exc
    if doc.get("dpop_bound_access_tokens") is True:  # RFC 9449 §5.2 client metadata
        extra["dpop_bound_access_tokens"] = True
    return ClientDocument(
        client_id=url,
        name=name.strip(),
        auth_method=method,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scope=" ".join(scope.split()),
        jwks=jwks,
        jwks_uri=jwks_uri,
        application_type=app_type,
        extra=extra,
    )


# -- loading into the clients table -----------------------------------------------------------
def _fetcher(ctx: Context) -> Fetcher:
    timeout = ctx.settings.cimd_fetch_timeout
    return get_fetcher(ctx.settings.cimd_allow_loopback, timeout)


async def ensure_cimd_client(ctx: Context, client_id: str | None) -> None:
    """Load a Client Identifier URL's document into the clients table unless a fresh row exists.

    Called by the authorization endpoint before it validates the request. Raises Authlib's
    ``InvalidClientError`` when the URL or document is refused or the fetch fails.
    """
    settings = ctx.settings
    if not settings.client_id_metadata_documents or not client_id:
        return
    if not is_client_id_url(client_id, settings.cimd_allow_loopback):
        return
    row = await anyio.to_thread.run_sync(ctx.store.get_client, client_id)
    if row is not None and (row.kind != "cimd" or row.status != "active"):
        return  # pre-registered URL client (§7.2), or a CIMD client an operator disabled
    now = int(time.time())
    if row is not None and row.expires_at is not None and row.expires_at > now:
        return
    try:
        check_client_id_url(client_id, settings.cimd_allow_loopback)
        fetched = await _fetcher(ctx).fetch(client_id, max_bytes=MAX_DOCUMENT_BYTES)
        doc = validate_document(client_id, fetched.data, settings.cimd_allow_loopback)
        await anyio.to_thread.run_sync(_store, ctx, doc, fetched)
    except FetchError as exc:
        _rejected(ctx, client_id, exc.reason, exc.detail)
        raise InvalidClientError(description="The client's metadata document could not be fetched.") from exc
    except CimdError as exc:
        _rejected(ctx, client_id, "invalid_document", str(exc))
        raise InvalidClientError(description=f"The client's metadata document is invalid: {exc}") from exc
    ctx.directory.invalidate("client", client_id)
    ctx.audit.record(
        "client.cimd_loaded",
        client_id=client_id,
        auth_method=doc.auth_method,
        redirect_hosts=sorted({urlsplit(u).hostname or "" for u in doc.redirect_uris}),
        ttl=fetched.ttl,
        refreshed=row is not None,
    )


def _store(ctx: Context, doc: ClientDocument, fetched: Fetched) -> None:
    try:
        register_client(
            ctx.store,
            ctx.keyring,
            client_id=doc.client_id,
            kind="cimd",
            name=doc.name,
            auth_method=doc.auth_method,
            redirect_uris=doc.redirect_uris,
            grant_types=doc.grant_types,
            scope="",  # self-asserted, not a ceiling (see endpoints/register.py)
            jwks=doc.jwks,
            jwks_uri=doc.jwks_uri,
            application_type=doc.application_type,
            expires_at=fetched.expires_at,
            extra={**doc.extra, "fetched_at": int(fetched.fetched_at)},
        )
    except ValueError as exc:  # register_client's own consistency rules
        raise CimdError(str(exc)) from exc


def _rejected(ctx: Context, client_id: str, reason: str, detail: str) -> None:
    log.info("CIMD document for %s refused: %s %s", client_id, reason, detail)
    ctx.audit.record("client.cimd_rejected", "failure", client_id=client_id, reason=reason, detail_text=detail[:200])


# -- client keys for private_key_jwt ----------------------------------------------------------
@dataclass
class _KeysEntry:
    jwks: dict[str, Any] | None
    fresh_until: float
    retry_at: float


class ClientJwks:
    """``jwks_for(client)`` for :class:`authz.oauth.client_auth.PrivateKeyJwt`.

    Inline ``jwks`` wins; otherwise ``jwks_uri`` is fetched with the blocking fetcher (client
    authentication runs inside Authlib's synchronous core) and cached for the HTTP cache lifetime.
    After a failed fetch the URL is not tried again for 30 seconds, and no keys are returned (a
    key set that can no longer be confirmed is not trusted past its cache lifetime).
    """

    def __init__(self, fetcher: Fetcher, max_bytes: int = MAX_BYTES) -> None:
        self._fetcher, self._max_bytes = fetcher, max_bytes
        self._cache: dict[str, _KeysEntry] = {}
        self._lock = threading.Lock()

    def __call__(self, client: OAuthClient) -> dict[str, Any] | None:
        if client.jwks:
            return client.jwks
        url = client.jwks_uri
        if not url:
            return None
        now = time.time()
        entry = self._cache.get(url)
        if entry is not None and (now < entry.fresh_until or now < entry.retry_at):
            return entry.jwks if now < entry.fresh_until else None
        try:
            fetched = self._fetcher.fetch_sync(url, max_bytes=self._max_bytes)
            jwks = check_public_jwks(fetched.data)
        except (FetchError, CimdError) as exc:
            log.warning("jwks_uri of client %s not usable: %s", client.client_id, exc)
            with self._lock:
                self._cache[url] = _KeysEntry(None, 0.0, now + JWKS_RETRY_AFTER_FAILURE)
            return None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[url] = _KeysEntry(jwks, now + fetched.ttl, 0.0)
        return jwks

    def ready(self, client: OAuthClient) -> bool:
        """True when ``self(client)`` answers from memory (no fetch would block the caller)."""
        if client.jwks or not client.jwks_uri:
            return True
        entry = self._cache.get(client.jwks_uri)
        now = time.time()
        return entry is not None and (now < entry.fresh_until or now < entry.retry_at)

    def forget(self, url: str) -> None:
        with self._lock:
            self._cache.pop(url, None)
