"""``ApprovalHook``: tools that need a person's approval before each call (human oversight).

The AS holds the rules (which tool of which resource needs approval, optionally only for agents at
or above an AI Act risk level) and the approvals; this hook asks it, as the MCP server itself: an
admin-API token (``client_credentials``, scope ``approvals:check``;
``authz admin-client create --name my-mcp --scopes approvals:check``). Per ``tools/call``:

1. ``GET {issuer}/api/v1/oversight/gated?resource=<this resource>`` names the gated tools (cached for
   the ``ttl`` the AS gives, 30 s); any other tool passes with no further request.
2. For a gated tool, ``POST {issuer}/api/v1/oversight/check`` with the agent (the token's ``agent``
   claim, else its ``client_id``), this resource, the tool, and the SHA-256 of the arguments
   (``json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, UTF-8); the
   arguments themselves go along (at most 4 KiB) so the approver sees what they approve.
3. ``allow``: the AS consumed one approval bound to exactly that agent + resource + tool + digest
   (single use: the next identical call needs a new approval) -> the call goes to the tool.
   ``approval_required`` -> the call is refused with JSON-RPC error ``-32042`` carrying the approval
   URL; ``rejected`` -> refused with ``-32001`` naming who rejected it and why; ``throttled`` (the agent
   already has 20 requests waiting for a person) -> ``-32001`` too, and no new request is made.

MCP 2025-11-25, client/elicitation, "URL Elicitation Required Error": a server may answer a request
with error code ``-32042`` (``URLElicitationRequiredError``) "to indicate that URL mode elicitation
must be completed before the request can proceed"; its ``data.elicitations`` lists URL-mode
elicitations, each with ``mode: "url"``, an ``elicitationId``, the ``url`` and a ``message``; the
client shows the URL to the user and retries the original request afterwards; "the server MUST NOT
return this error except when URL mode elicitation is genuinely required to proceed" (it is: no
approval, no call). The ``elicitationId`` is the approval's id; the page at the URL is the AS's.

A batch holding a gated call is refused (``-32600``): an approval covers one call. The AS unreachable
-> 503 (fail closed: a gated tool never runs unapproved; ``fail_closed=False`` lets calls through).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import httpx2

from resource_server.admin_token import AdminApiToken
from resource_server.hooks import Refusal, UseContext, UseOutcome

__all__ = ["URL_ELICITATION_REQUIRED", "ApprovalHook", "arguments_digest"]

log = logging.getLogger(__name__)

SCOPE = "approvals:check"
URL_ELICITATION_REQUIRED = -32042
REJECTED = -32001
INVALID_REQUEST = -32600
MAX_SHOWN = 4096


def arguments_digest(arguments: Any) -> tuple[str, str]:
    """(SHA-256 hex, the JSON it hashes): sorted keys, no whitespace, UTF-8."""
    text = json.dumps(arguments if arguments is not None else {}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest(), text


def _rpc_error(request_id: Any, code: int, message: str, data: Any = None) -> Refusal:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}).encode()
    return Refusal(200, (("content-type", "application/json"),), body)


class ApprovalHook:
    def __init__(
        self,
        issuer: str,
        resource: str,
        client_id: str,
        client_secret: str,
        *,
        admin_api: str | None = None,
        fail_closed: bool = True,
        timeout: float = 5.0,
        retry_after: int = 5,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self.resource = resource
        self.fail_closed = fail_closed
        self.retry_after = retry_after
        self._own_client = http_client is None
        self._http = http_client or httpx2.AsyncClient(timeout=timeout)
        self._token = AdminApiToken(self._http, issuer, client_id, client_secret, SCOPE, api_base=admin_api)
        self._gated: frozenset[str] = frozenset()
        self._gated_until = 0.0

    async def aclose(self) -> None:
        if self._own_client:
            await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> httpx2.Response:
        for attempt in (1, 2):
            headers = {"authorization": f"Bearer {await self._token.get()}"}
            r = await self._http.request(method, self._token.api_base + path, headers=headers, **kw)
            if r.status_code != 401 or attempt == 2:
                return r
            self._token.forget()
        raise AssertionError("unreachable")

    async def gated(self) -> frozenset[str]:
        if time.monotonic() < self._gated_until:
            return self._gated
        r = await self._call("GET", "/oversight/gated", params={"resource": self.resource})
        r.raise_for_status()
        doc = r.json()
        self._gated = frozenset(t for t in doc.get("tools", ()) if isinstance(t, str))
        self._gated_until = time.monotonic() + max(0, min(int(doc.get("ttl", 30)), 300))
        return self._gated

    async def before(self, ctx: UseContext) -> Refusal | None:
        names = [c.name for c in ctx.calls if c.method == "tools/call" and c.name]
        if not names:
            return None
        try:
            gated = await self.gated()
            hits = [n for n in names if n in gated]
            if not hits:
                return None
            if len(ctx.calls) > 1:
                return _rpc_error(None, INVALID_REQUEST, "A tool that needs human approval must be called alone")
            return await self._check(ctx, hits[0])
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("cannot ask the AS about approvals: %s", type(exc).__name__)
            if not self.fail_closed:
                return None
            detail = "The authorization server could not be asked whether this call is approved."
            return Refusal.problem(503, "Approval service unavailable", retry_after=self.retry_after, detail=detail)

    async def _check(self, ctx: UseContext, tool: str) -> Refusal | None:
        arguments = ctx.calls[0].arguments  # parsed once by the middleware, at its depth limit
        digest, text = arguments_digest(arguments)
        agent = ctx.token.agent or ctx.token.client_id or ""
        payload = {"agent": agent, "resource": self.resource, "tool": tool, "arguments_sha256": digest,
                   "arguments": text if len(text) <= MAX_SHOWN else None}  # fmt: skip
        r = await self._call("POST", "/oversight/check", json=payload)
        r.raise_for_status()
        answer = r.json()
        decision = answer.get("decision")
        if decision == "allow":
            return None
        if decision == "approval_required":
            message = f"A person must approve this call of {tool}: open the URL, then retry the same call."
            elicitation = {"mode": "url", "elicitationId": answer["approval_id"], "url": answer["url"],
                           "message": message}  # fmt: skip
            return _rpc_error(ctx.request_id, URL_ELICITATION_REQUIRED, "URL elicitation required",
                              {"elicitations": [elicitation]})  # fmt: skip
        if decision == "rejected":
            who = answer.get("decided_by") or "a person"
            why = f": {answer['reason']}" if answer.get("reason") else ""
            data = {"approvalId": answer.get("approval_id"), "rejectedBy": who, "reason": answer.get("reason")}
            return _rpc_error(ctx.request_id, REJECTED, f"The call of {tool} was rejected by {who}{why}", data)
        if decision == "throttled":
            message = "Too many calls of this agent are waiting for a person's approval: wait for a decision"
            return _rpc_error(ctx.request_id, REJECTED, message, {"throttled": True})
        raise ValueError("unexpected answer")

    async def after(self, ctx: UseContext, outcome: UseOutcome) -> None:
        return None
