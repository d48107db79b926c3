"""client_credentials without Authlib's generic machinery: the plain, valid request answered from a template.

RFC 6749 §4.4.2: "The client makes a request to the token endpoint by adding the following
parameters using the "application/x-www-form-urlencoded" format [...]: grant_type REQUIRED. Value
MUST be set to "client_credentials". scope OPTIONAL." and "The client MUST authenticate with the
authorization server as described in Section 3.2.1." §4.4.3: "If the access token request is valid
and authorized, the authorization server issues an access token as described in Section 5.1. A
refresh token SHOULD NOT be included." §5.1: the answer is ``200`` with ``access_token``,
``token_type``, ``expires_in`` and ``scope`` and "MUST include the HTTP "Cache-Control" response
header field with a value of "no-store" in any response containing tokens".

RFC 6749 §5.2 (errors) is never answered here. Whatever this path does not accept in full — a
parameter other than ``grant_type``/``resource``/``scope`` (and ``client_assertion_type``/
``client_assertion`` for ``private_key_jwt``, RFC 7523 §2.2), a repeated parameter, a query string,
a ``DPoP`` header with ``private_key_jwt`` or more than one, credentials that do not verify, a
resource that is unknown or not the client's, a scope that nothing or no policy grants, an exhausted
budget — returns None before anything is written, and the generic path (Authlib and
:mod:`authz.oauth.grants.client_credentials`) answers it: errors and their audit records stay that
path's own. What it accepts it answers exactly as the generic path would (tests compare both): the
same claims in the same order, body, headers and ``token.issued`` record. RFC 9449 §5: with one
``DPoP`` header and ``client_secret_basic``, the proof is checked last (:class:`PendingDpop`:
nothing after it refuses) and the token carries ``cnf.jkt`` and ``token_type`` ``DPoP``; a proof the
check refuses goes the generic way, which refuses it again (a replay: its ``jti`` is already
remembered). Per (client, resource, requested scope) the claims around ``iat``/``exp``/``jti``, the
response around the token, the granted scope and the deciding policies are computed once and reused
while the client and resource views, the policy bundle, the decision minute (Cedar's
``context.time``) and the token lifetime are the same objects and values.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749.errors import OAuth2Error

from authz.context import Context
from authz.identity.clients import OAuthClient
from authz.identity.directory import ResourceInfo
from authz.oauth.client_auth import ASSERTION_TYPE, Jti, PrivateKeyJwt, unverified_issuer
from authz.oauth.dpop import TokenEndpointDpop
from authz.oauth.grants.base import TOKEN_HEADERS, wanted_scopes
from authz.oauth.requests import parse_form
from authz.oauth.rfc8707 import validate_resource_uri
from authz.oauth.syntax import GRAMMAR
from authz.oauth.tokens import TokenRequest, new_jti
from authz.policy.engine import client_subject

GRANT = "client_credentials"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024  # authz.oauth.server.MAX_FORM_BYTES: larger bodies go the generic way
BASIC_NAMES = frozenset({"grant_type", "resource", "scope"})
ASSERTION_NAMES = BASIC_NAMES | {"client_assertion_type", "client_assertion"}
SCOPE = GRAMMAR["scope"]
# authz.oauth.server.encode_json_result of TOKEN_HEADERS: lowercased, content-type last
HEAD = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in TOKEN_HEADERS if k.lower() != "content-type"]
JSON_TYPE = (b"content-type", b"application/json")
MAX_TEMPLATES = 10_000

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")  # jws._json


@dataclass(frozen=True, slots=True)
class Template:
    """One (client, resource, requested scope)'s token, everything but ``iat``, ``exp`` and ``jti``."""

    client: OAuthClient
    info: ResourceInfo
    bundle: object | None
    minute: datetime | None  # the decision's minute; None when no policy decided
    ttl: int
    resource: str
    scope: str
    policies: tuple[str, ...]
    agent: str | None
    team: str | None
    head: bytes  # '{"iss":...,"sub":...,"aud":...,"client_id":...,"iat":'
    tail: bytes  # what follows the jti: ',"scope":...,"agent":...}' or '}'
    body_tail: bytes  # what follows the token in the response: '","token_type":"Bearer",...}'
    dpop_body_tail: bytes  # the same with '"token_type":"DPoP"' (RFC 9449 §5.1)


class Pending:
    """An answer that awaits one more check (:meth:`finish`; None: the generic path answers)."""

    __slots__ = ()

    async def finish(self, dpop: TokenEndpointDpop) -> Answer | None:
        raise NotImplementedError


class PendingDpop(Pending):
    """A plain, valid client_credentials request with a ``DPoP`` header, every other check passed: the
    proof is checked (awaited: the replay cache) and the token bound to its key, or the generic path
    answers (and audits) whatever the proof check refuses. Only ``client_secret_basic`` comes here:
    its check wrote nothing, so the generic path can redo every check."""

    __slots__ = ("_fast", "_proofs", "_template")

    def __init__(self, fast: ClientCredentialsFastPath, template: Template, proofs: list[str]) -> None:
        self._fast, self._template, self._proofs = fast, template, proofs

    async def finish(self, dpop: TokenEndpointDpop) -> Answer | None:
        try:
            proof = await dpop.check(self._proofs)
        except OAuth2Error:
            return None  # nothing remembered (a replay was remembered before): the generic path refuses
        if proof is None:
            return None
        nonce = [(b"dpop-nonce", v.encode("latin-1")) for _, v in dpop.response_headers()]
        return self._fast._issue(self._template, proof.jkt, nonce)


class PendingAssertion(Pending):
    """A plain, valid client_credentials request with a ``private_key_jwt`` assertion that verifies,
    every other check passed: its ``jti`` is remembered (awaited: group commit, with concurrent
    requests' in one write), then the token issued. A replay goes the generic way, which refuses and
    audits it (the ``jti`` is already remembered there too)."""

    __slots__ = ("_fast", "_jti", "_template")

    def __init__(self, fast: ClientCredentialsFastPath, template: Template, jti: Jti) -> None:
        self._fast, self._template, self._jti = fast, template, jti

    async def finish(self, dpop: TokenEndpointDpop) -> Answer | None:
        if not await self._fast._pkjwt.first_use(self._jti):
            return None  # a replay: refused and audited by the generic path
        return self._fast._issue(self._template)


class _AssertionRequest:
    """What :class:`~authz.oauth.client_auth.PrivateKeyJwt` reads and writes of a request."""

    __slots__ = ("auth_failure", "form")

    def __init__(self, form: dict[str, str]) -> None:
        self.form = form
        self.auth_failure: str | None = None


class ClientCredentialsFastPath:
    def __init__(self, ctx: Context, private_key_jwt: PrivateKeyJwt, jwks_ready: Any) -> None:
        self._ctx, self._pkjwt, self._jwks_ready = ctx, private_key_jwt, jwks_ready
        self._templates: dict[tuple[str, str, str | None], Template] = {}

    def answer(self, scope: dict[str, Any], body: bytes, *, dpop: bool = False) -> Answer | Pending | None:
        """The answer to a plain, valid client_credentials request; None for any other request. With
        ``dpop``, a request with one ``DPoP`` header and ``client_secret_basic`` is a :class:`PendingDpop`."""
        if b"client_credentials" not in body or scope.get("query_string") or len(body) > MAX_FORM_BYTES:
            return None
        auth = ctype = None
        proofs: list[str] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                if auth is not None:
                    return None
                auth = value
            elif name == b"content-type":
                if ctype is not None:
                    return None
                ctype = value
            elif name == b"dpop":
                if not dpop or proofs:
                    return None
                proofs.append(value.decode("latin-1"))
        if ctype is None or ctype.decode("latin-1").split(";")[0].strip().lower() != FORM_TYPE:
            return None
        try:
            items = parse_form(body.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        form = dict(items)
        if len(form) != len(items) or form.get("grant_type") != GRANT or "resource" not in form:
            return None
        requested = form.get("scope")
        if requested is not None and SCOPE.fullmatch(requested) is None:
            return None
        if auth is not None:
            return self._secret_basic(auth, form, requested, proofs)
        return None if proofs else self._private_key_jwt(form, requested)

    def _secret_basic(
        self, auth: bytes, form: dict[str, str], requested: str | None, proofs: list[str]
    ) -> Answer | PendingDpop | None:
        """RFC 6749 §2.3.1 ``client_secret_basic``, as Authlib reads it (``extract_basic_authorization``)."""
        if form.keys() - BASIC_NAMES:
            return None
        parts = auth.decode("latin-1").split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "basic":
            return None
        credentials = parts[1]
        try:
            decoded = base64.b64decode(credentials).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        client_id, sep, secret = decoded.partition(":")
        client_id, secret = unquote(client_id), unquote(secret)
        if not sep or not client_id or not secret:
            return None
        client = self._ctx.directory.client(client_id)
        if (
            client is None
            or not client.check_endpoint_auth_method("client_secret_basic", "token")
            or not client.check_client_secret(secret)
        ):
            return None
        template = self._template(client, form["resource"], requested)
        if template is None or self._over_budget(template):
            return None
        return PendingDpop(self, template, proofs) if proofs else self._issue(template)

    def _private_key_jwt(self, form: dict[str, str], requested: str | None) -> PendingAssertion | None:
        """RFC 7523 §2.2: every check but the assertion's first, then the assertion's but its ``jti``
        (:class:`PendingAssertion` remembers it: nothing after that can refuse)."""
        assertion = form.get("client_assertion")
        if form.keys() - ASSERTION_NAMES or form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            client = self._ctx.directory.client(unverified_issuer(assertion))
        except OAuth2Error:
            return None
        if client is None or not self._jwks_ready(client):
            return None
        template = self._template(client, form["resource"], requested)
        if template is None or self._over_budget(template):
            return None
        try:
            jti = self._pkjwt.verify(client, assertion, _AssertionRequest(form))
        except OAuth2Error:
            return None
        return PendingAssertion(self, template, jti)

    def _over_budget(self, template: Template) -> bool:
        budgets = self._ctx.budgets
        if budgets is None or not (template.agent or template.team):
            return False
        return budgets.check_issuance(template.agent, template.team, None) is not None

    def _issue(self, t: Template, jkt: str | None = None, nonce: list[tuple[bytes, bytes]] | None = None) -> Answer:
        now = int(time.time())
        jti = new_jti()
        tail = (
            t.tail if jkt is None else t.tail[:-1] + b',"cnf":{"jkt":"' + jkt.encode("ascii") + b'"}}'
        )  # RFC 9449 §6.1
        payload = b"".join(
            (t.head, str(now).encode(), b',"exp":', str(now + t.ttl).encode(), b',"jti":"', jti.encode(), b'"', tail)
        )
        token = self._ctx.issuer.sign_payload(payload)
        self._ctx.audit.record(
            "token.issued",
            client_id=t.client.client_id,
            subject=t.client.client_id,
            resource=t.resource,
            grant_type=GRANT,
            jti=jti,
            scope=t.scope,
            refresh=False,
            policies=list(t.policies) or None,
        )
        out = b'{"access_token":"' + token.encode("ascii") + (t.body_tail if jkt is None else t.dpop_body_tail)
        return 200, [*HEAD, *(nonce or ()), (b"content-length", str(len(out)).encode()), JSON_TYPE], out

    def _template(self, client: OAuthClient, resource: str, requested: str | None) -> Template | None:
        ctx = self._ctx
        key = (client.client_id, resource, requested)
        t = self._templates.get(key)
        if (
            t is not None
            and t.client is client
            and t.bundle is ctx.policy.bundle
            and t.ttl == ctx.settings.access_token_ttl
            and t.info is ctx.directory.resource(t.resource)
            and (t.minute is None or t.minute == ctx.policy.decision_minute())
        ):
            return t
        t = self.build(client, resource, requested)
        if t is not None:
            if len(self._templates) >= MAX_TEMPLATES:
                self._templates.clear()
            self._templates[key] = t
        return t

    def build(self, client: OAuthClient, resource: str, requested: str | None) -> Template | None:
        """The template, or None where the generic path would refuse (or decide otherwise than here):
        what ``ClientCredentialsGrant.validate_token_request`` and ``IssuingGrant.narrow_scope`` check."""
        ctx = self._ctx
        settings = ctx.settings
        if not client.active or not client.check_grant_type(GRANT) or client.dpop_bound_access_tokens:
            return None
        try:
            uri = validate_resource_uri(resource)
            if uri in (settings.admin_resource, settings.console_resource):
                return None  # outside scope policy (admin) or decided by console roles: the generic way
            info = ctx.directory.resource(uri)
            if info is None or not info.active or not client.may_use_resource(uri):
                return None
            wanted = wanted_scopes(client, info, requested)
        except OAuth2Error:
            return None
        bundle = ctx.policy.bundle
        minute: datetime | None = ctx.policy.decision_minute()  # before deciding: no later minute reuses it
        decision = ctx.policy.decide(client_subject(client), client.client_id, uri, wanted, GRANT)
        granted: list[str] = wanted
        policies: tuple[str, ...] = ()
        if decision is None:
            minute = None
        else:
            granted = [s for s in wanted if s in decision.permitted]
            policies = decision.reasons
            if decision.errors or (wanted and not granted):
                return None  # logged (and refused) by the generic path
        scope = " ".join(granted)
        ttl = settings.access_token_ttl
        extra = client.principal_claims()
        req = TokenRequest(client_id=client.client_id, subject=client.client_id, resource=uri, scope=scope,
                           lifetime=ttl, extra=extra)  # fmt: skip
        items = list(ctx.issuer.claims(req, 0, "").items())
        if [k for k, _ in items[:7]] != ["iss", "sub", "aud", "client_id", "iat", "exp", "jti"] or [
            v for _, v in items[4:7]
        ] != [0, ttl, ""]:
            return None  # a claim of ``extra`` would replace one of these: the generic way
        rest = dict(items[7:])
        body_rest = json.dumps({"token_type": "Bearer", "expires_in": ttl, "scope": scope}, separators=(",", ":"))
        dpop_rest = json.dumps({"token_type": "DPoP", "expires_in": ttl, "scope": scope}, separators=(",", ":"))
        return Template(
            client=client,
            info=info,
            bundle=bundle,
            minute=minute,
            ttl=ttl,
            resource=uri,
            scope=scope,
            policies=tuple(policies),
            agent=extra.get("agent"),
            team=extra.get("team"),
            head=_json(dict(items[:4]))[:-1] + b',"iat":',
            tail=b"," + _json(rest)[1:] if rest else b"}",
            body_tail=b'",' + body_rest[1:].encode("utf-8"),
            dpop_body_tail=b'",' + dpop_rest[1:].encode("utf-8"),
        )
