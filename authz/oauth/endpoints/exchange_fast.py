"""RFC 8693 token exchange without Authlib's generic machinery: the most frequent request answered directly.

The request this path accepts: ``grant_type`` token-exchange, one ``resource``, an optional ``scope``,
``subject_token`` with ``subject_token_type`` ``urn:ietf:params:oauth:token-type:access_token`` (one
of our access tokens), ``client_secret_basic``, no ``DPoP`` header, no query string, no repeated or
other parameter (``actor_token``, ``audience``, ``requested_token_type``, ``workflow`` go the
generic way). Every check :class:`~authz.oauth.grants.token_exchange.TokenExchangeGrant` makes is
made here in the same order with the same functions (the subject token as introspection checks it:
signature — memoised per token by ``TokenIssuer.verify`` — ``exp``, revocation, owner client active;
``may_act``, the ``act`` chain and its depth, the delegated policy subject, scope narrowing, policy,
lifetime, budget); whatever would be refused, or decided otherwise, returns None before anything is
written, and the generic path answers (and audits) it. What it accepts it answers exactly as the
generic path would (tests compare both): the same claims in the same order (``ctx.issuer.access_token``),
the same JSON body and headers (``encode_json_result``), the same ``token.exchanged`` record.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749.errors import OAuth2Error

from authz.context import Context
from authz.identity.clients import OAuthClient
from authz.oauth.endpoints.token_fast import FORM_TYPE, MAX_FORM_BYTES, SCOPE, Answer
from authz.oauth.grants.base import TOKEN_HEADERS, wanted_scopes
from authz.oauth.grants.token_exchange import (
    ACCESS_TOKEN,
    GRANT_TYPE,
    WORKFLOW_RE,
    act_depth,
    actor_ids,
    client_actor,
    live_claims,
    may_act_allows,
)
from authz.oauth.requests import parse_form
from authz.oauth.rfc8707 import validate_resource_uri
from authz.oauth.tokens import TokenRequest
from authz.policy.engine import client_subject

NAMES = frozenset({"grant_type", "resource", "scope", "subject_token", "subject_token_type"})
MARK = b"token-exchange"


class TokenExchangeFastPath:
    def __init__(self, ctx: Context, encode: Any) -> None:
        self._ctx, self._encode = ctx, encode

    def answer(self, scope: dict[str, Any], body: bytes) -> Answer | None:
        """The answer to a plain, valid token exchange request; None for any other request."""
        if MARK not in body or scope.get("query_string") or len(body) > MAX_FORM_BYTES:
            return None
        auth = ctype = None
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
                return None
        if auth is None or ctype is None or ctype.decode("latin-1").split(";")[0].strip().lower() != FORM_TYPE:
            return None
        try:
            items = parse_form(body.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        form = dict(items)
        if len(form) != len(items) or form.keys() - NAMES or form.get("grant_type") != GRANT_TYPE:
            return None
        if form.get("subject_token_type") != ACCESS_TOKEN or not form.get("subject_token") or "resource" not in form:
            return None
        requested = form.get("scope")
        if requested is not None and SCOPE.fullmatch(requested) is None:
            return None
        client = self._client(auth)
        if client is None:
            return None
        try:
            return self._exchange(client, form["resource"], form["subject_token"], requested)
        except OAuth2Error:
            return None

    def _client(self, auth: bytes) -> OAuthClient | None:
        """RFC 6749 §2.3.1 ``client_secret_basic``, as Authlib reads it (``extract_basic_authorization``)."""
        parts = auth.decode("latin-1").split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(parts[1]).decode("utf-8")
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
            or client.dpop_bound_access_tokens
            or not client.active
            or not client.check_grant_type(GRANT_TYPE)
        ):
            return None
        return client

    def _exchange(self, client: OAuthClient, resource: str, token: str, requested: str | None) -> Answer | None:
        """``TokenExchangeGrant.validate_token_request`` and ``create_token_response``, for this request."""
        ctx = self._ctx
        settings = ctx.settings
        uri = validate_resource_uri(resource)
        if uri in (settings.admin_resource, settings.console_resource):
            return None
        info = ctx.directory.resource(uri)
        if info is None or not info.active or not client.may_use_resource(uri):
            return None
        claims = live_claims(ctx, token)
        if claims is None or not isinstance(claims.get("sub"), str):
            return None
        sub: str = claims["sub"]
        held_scopes = frozenset(str(claims.get("scope") or "").split())
        own = sub in (client.client_id, client.agent_id)
        if own:
            cnf = claims.get("cnf")
            if isinstance(cnf, dict) and cnf.get("jkt") is not None:
                return None  # a bound token needs its proof: the generic way
        chain = self._act_chain(client, claims, own)
        if chain is False or chain is True:
            return None
        act = chain
        now = int(time.time())
        lifetime = min(settings.exchange_token_ttl, settings.access_token_ttl, int(claims["exp"]) - now)
        if lifetime <= 0:
            return None
        held = claims.get("workflow")
        workflow = held if isinstance(held, str) and WORKFLOW_RE.fullmatch(held) else None
        who = client_subject(client, workflow)
        if not own:
            groups: tuple[str, ...] = ()
            user = sub
            owner = claims.get("client_id")
            local = None if sub == (owner if isinstance(owner, str) else None) else ctx.store.get_user(sub)
            if local is not None:
                user, groups = local.username, tuple(local.groups or ())
            who = replace(who, delegated=True, user=user, user_groups=groups, act_depth=act_depth(act))
        if requested:
            if any(s not in held_scopes for s in requested.split()):
                return None
            asked = requested
        elif not held_scopes:
            return None
        else:
            asked = " ".join(sorted(held_scopes))
        wanted = wanted_scopes(client, info, asked)
        decision = ctx.policy.decide(who, client.client_id, uri, wanted, GRANT_TYPE)
        policies: tuple[str, ...] = ()
        if decision is not None:
            if decision.errors:
                return None
            policies = tuple(decision.reasons)
            wanted = [s for s in wanted if s in decision.permitted]
            if not wanted:
                return None  # logged (and refused) by the generic path
        extra: dict[str, Any] = dict(client.principal_claims())
        budgets = ctx.budgets
        agent, team = extra.get("agent"), extra.get("team")
        if budgets is not None and (agent or team or workflow):
            if budgets.check_issuance(agent, team, workflow) is not None:
                return None
        if workflow:
            extra["workflow"] = workflow
        sid = claims.get("sid")
        req = TokenRequest(
            client_id=client.client_id,
            subject=sub,
            resource=uri,
            scope=" ".join(wanted),
            lifetime=lifetime,
            grant_id=sid if isinstance(sid, str) else None,
            act=act,
            extra=extra,
        )
        access, issued = ctx.issuer.access_token(req)
        ctx.audit.record(
            "token.exchanged",
            client_id=client.client_id,
            subject=sub,
            resource=uri,
            subject_issuer=None,
            subject_jti=claims.get("jti"),
            actors=actor_ids(act),
            jti=issued["jti"],
            scope=req.scope,
            workflow=workflow,
            policies=list(policies) or None,
        )
        body = {
            "access_token": access,
            "issued_token_type": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": req.lifetime,
            "scope": req.scope,
        }
        encoded: Answer | None = self._encode((200, body, list(TOKEN_HEADERS)))
        return encoded

    def _act_chain(self, client: OAuthClient, claims: dict[str, Any], own: bool) -> dict[str, Any] | bool | None:
        """``TokenExchangeGrant._act_chain`` without an actor token; False where it would refuse."""
        prior = claims.get("act")
        prior = prior if isinstance(prior, dict) else None
        if own:
            return prior
        current = client_actor(client)
        if "may_act" in claims and not may_act_allows(claims["may_act"], current, self._ctx.settings.issuer):
            return False
        if prior is not None and all(prior.get(k) == v for k, v in current.items()):
            return prior
        act = {**current, "act": prior} if prior is not None else current
        if act_depth(act) > self._ctx.settings.exchange_max_act_depth:
            return False
        return act
