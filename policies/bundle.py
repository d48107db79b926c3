"""A loaded, validated policy set and the per-issuance decision.

`PolicyBundle` is immutable once built: the parsed schema, policy set and static entities are
built once; `decide` only builds the few per-request entities (cached) and asks Cedar one batch
question, one request per scope.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import cedarpy

from .model import Decision, Request, ScopeDecision
from .source import position

__all__ = ["ACTION", "NAMESPACE", "Origin", "PolicyBundle", "is_loopback", "scope_uid"]

NAMESPACE = "Authz"
ACTION = {"type": f"{NAMESPACE}::Action", "id": "obtain_scope"}
_KIND_TYPE = {"agent": f"{NAMESPACE}::Agent", "user": f"{NAMESPACE}::User", "client": f"{NAMESPACE}::Client"}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a policy is written."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def is_loopback(uri: str) -> bool:
    """True when the URI's host is a loopback address (127.0.0.0/8, ::1) or `localhost`."""
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def scope_uid(resource: str, scope: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::Scope", "id": f"{resource}#{scope}"}


def _uid(type_: str, id_: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{type_}", "id": id_}


def server_entities(resource: str, scopes: Sequence[str], tools: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Cedar entities for an MCP server and its scopes, as the AS presents them to policies."""
    attrs: dict[str, Any] = {"uri": resource, "loopback": is_loopback(resource)}
    if tools is not None:
        attrs["tools"] = sorted(set(tools))
    server = _uid("McpServer", resource)
    out: list[dict[str, Any]] = [{"uid": server, "attrs": attrs, "parents": []}]
    out.extend(
        {"uid": scope_uid(resource, s), "attrs": {"name": s, "server": {"__entity": server}}, "parents": [server]}
        for s in scopes
    )
    return out


class PolicyBundle:
    """A validated policy set, ready to decide. Build with `policies.load` (a directory) or `policies.build` (text)."""

    def __init__(
        self,
        *,
        schema: cedarpy.Schema,
        policy_set: cedarpy.PolicySet,
        entities: cedarpy.Entities,
        static_uids: frozenset[tuple[str, str]],
        origins: Mapping[str, Origin],
        sources: Mapping[str, str],
        schema_text: str,
        entities_json: Mapping[str, str],
        est: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.schema = schema
        self.policy_set = policy_set
        self.entities = entities
        self.static_uids = static_uids
        self.origins = dict(origins)
        self.sources = dict(sources)
        self.schema_text = schema_text
        self.entities_json = dict(entities_json)
        self.est = dict(est)
        self._entity_cache: dict[tuple[object, ...], cedarpy.Entities] = {}
        self._decision_cache: dict[tuple[object, ...], Decision] = {}

    @property
    def policy_ids(self) -> list[str]:
        return sorted(self.origins)

    # ---- per-request entities -------------------------------------------------------------

    def _delta(self, request: Request, scopes: tuple[str, ...]) -> list[dict[str, Any]]:
        p = request.principal
        out: list[dict[str, Any]] = []
        parents: list[dict[str, str]] = []
        if p.kind == "agent":
            attrs: dict[str, Any] = {"tags": sorted(set(p.tags))}
            if p.team is not None:
                attrs["team"] = p.team
                parents.append(_uid("Team", p.team))
            if p.owner is not None:
                attrs["owner"] = p.owner
        else:
            attrs = {}
            if p.kind == "user":
                parents.extend(_uid("Group", g) for g in sorted(set(p.groups)))
        ptype = _KIND_TYPE[p.kind]
        out.append({"uid": {"type": ptype, "id": p.id}, "attrs": attrs, "parents": parents})
        out.extend({"uid": par, "attrs": {}, "parents": []} for par in parents)
        out.extend(server_entities(request.resource, scopes))
        return [e for e in out if (e["uid"]["type"], e["uid"]["id"]) not in self.static_uids]

    def _request_entities(self, request: Request, scopes: tuple[str, ...]) -> cedarpy.Entities:
        key = (request.principal.key(), request.resource, scopes)
        ents = self._entity_cache.get(key)
        if ents is None:
            delta = self._delta(request, scopes)
            ents = self.entities.with_added_json_str(json.dumps(delta), self.schema) if delta else self.entities
            if len(self._entity_cache) >= _CACHE_MAX:
                self._entity_cache.clear()
            self._entity_cache[key] = ents
        return ents

    @staticmethod
    def context_json(request: Request) -> dict[str, Any]:
        """The Cedar context record for a request (see `RequestContext` in the schema)."""
        c = request.context
        t = c.minute()
        ctx: dict[str, Any] = {
            "delegated": c.delegated,
            "user_groups": sorted(set(c.user_groups)),
            "act_depth": c.act_depth,
            "grant_type": c.grant_type,
            "client_id": request.client_id,
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hour": t.hour,
            "weekday": _WEEKDAYS[t.weekday()],
        }
        if c.user is not None:
            ctx["user"] = c.user
        if c.workflow is not None:
            ctx["workflow"] = c.workflow
        return ctx

    # ---- decisions ------------------------------------------------------------------------

    def decide(self, request: Request) -> Decision:
        """Which of the requested scopes policy permits. Default deny; a forbid always wins."""
        scopes = tuple(dict.fromkeys(request.scopes))
        if not scopes:
            return Decision(permitted=frozenset(), by_scope={})
        c = request.context
        key = (
            request.principal.key(),
            request.client_id,
            request.resource,
            scopes,
            c.delegated,
            c.user,
            tuple(sorted(c.user_groups)),
            c.act_depth,
            c.workflow,
            c.grant_type,
            c.minute(),
        )
        hit = self._decision_cache.get(key)
        if hit is not None:
            return hit
        decision = self._evaluate(request, scopes)
        if len(self._decision_cache) >= _CACHE_MAX:
            self._decision_cache.clear()
        self._decision_cache[key] = decision
        return decision

    def _evaluate(self, request: Request, scopes: tuple[str, ...]) -> Decision:
        entities = self._request_entities(request, scopes)
        ctx = json.dumps(self.context_json(request))
        principal = {"type": _KIND_TYPE[request.principal.kind], "id": request.principal.id}
        batch = [
            {"principal": principal, "action": ACTION, "resource": scope_uid(request.resource, s), "context": ctx}
            for s in scopes
        ]
        results = cedarpy.is_authorized_batch(batch, self.policy_set, entities, self.schema)
        by_scope: dict[str, ScopeDecision] = {}
        reasons: dict[str, None] = {}
        errors: list[str] = []
        for scope, result in zip(scopes, results, strict=True):
            ids = tuple(sorted(result.diagnostics.reasons))
            by_scope[scope] = ScopeDecision(allowed=result.allowed, policies=ids)
            reasons.update(dict.fromkeys(ids))
            errors.extend(f"{scope}: {e}" for e in result.diagnostics.errors)
        permitted = frozenset(s for s, d in by_scope.items() if d.allowed)
        return Decision(permitted=permitted, by_scope=by_scope, reasons=tuple(reasons), errors=tuple(errors))

    def explain(self, request: Request) -> str:
        """Human-readable: per scope, allowed or denied and by which policies (with file:line)."""
        d = self._evaluate(request, tuple(dict.fromkeys(request.scopes)))
        p = request.principal
        lines = [
            f'principal {_KIND_TYPE[p.kind]}::"{p.id}"'
            + (f" team={p.team}" if p.team else "")
            + (f" tags={','.join(p.tags)}" if p.tags else ""),
            f"resource  {request.resource}",
            f"context   {json.dumps(self.context_json(request), sort_keys=True)}",
        ]
        width = max((len(s) for s in d.by_scope), default=0)
        for scope, sd in d.by_scope.items():
            verdict = "ALLOW" if sd.allowed else "DENY "
            if sd.policies:
                why = ", ".join(f"{pid} ({self.origins.get(pid, '?')})" for pid in sd.policies)
                why = ("permitted by " if sd.allowed else "forbidden by ") + why
            else:
                why = "no policy permits it (default deny)"
            lines.append(f"  {scope.ljust(width)}  {verdict}  {why}")
        lines.extend(f"  error: {e}" for e in d.errors)
        lines.append("granted: " + (" ".join(s for s in d.by_scope if s in d.permitted) or "(nothing)"))
        return "\n".join(lines)


def origin_of(file: str, text: str, offset: int) -> Origin:
    line, col = position(text, offset)
    return Origin(file, line, col)
