"""Human oversight (AI Act Art. 14) and an agent's AI Act record: ``/oversight/...``, ``/agents/{id}/ai-act``.

Rules name tools of a registered resource that need a person's approval; ``check`` (scope
``approvals:check``, for resource servers) says whether a call may go ahead and consumes an approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from agent_client.sdk.resources.base import R, Surface, compact, operation
from agent_client.sdk.resources.base import seg as _seg


class Oversight(Surface[R]):
    """Approval rules, approval requests and decisions, and the resource servers' check."""

    @operation("GET /oversight/rules")
    def rules(self, *, resource: str | None = None) -> R:
        return self._request("GET", "/oversight/rules", params={"resource": resource})

    @operation("POST /oversight/rules")
    def add_rule(
        self,
        resource: str,
        tool: str,
        *,
        min_risk: Literal["minimal", "limited", "high"] | None = None,
        ttl: int | None = None,
    ) -> R:
        """Require a person's approval for ``tool`` of ``resource`` (a registered resource URI)."""
        body = compact(resource=resource, tool=tool, min_risk=min_risk, ttl=ttl)
        return self._request("POST", "/oversight/rules", json=body)

    @operation("DELETE /oversight/rules/{}")
    def delete_rule(self, rule_id: str) -> R:
        return self._request("DELETE", f"/oversight/rules/{_seg(rule_id)}")

    @operation("GET /oversight/approvals")
    def approvals(self, *, status: str | None = None) -> R:
        """Approval requests, newest first (``status``: pending, approved, rejected, used, refused, expired)."""
        return self._request("GET", "/oversight/approvals", params={"status": status})

    @operation("POST /oversight/approvals/{}/decision")
    def decide(self, approval_id: str, decision: Literal["approve", "reject"], *, reason: str | None = None) -> R:
        """Approve or reject a request (deciding again overrides)."""
        path = f"/oversight/approvals/{_seg(approval_id)}/decision"
        return self._request("POST", path, json=compact(decision=decision, reason=reason))

    @operation("GET /oversight/gated")
    def gated(self, resource: str) -> R:
        """The tools of ``resource`` some rule gates (and how long the list may be cached)."""
        return self._request("GET", "/oversight/gated", params={"resource": resource})

    @operation("POST /oversight/check")
    def check(self, agent: str, resource: str, tool: str, arguments: Mapping[str, Any] | None = None) -> R:
        """May this call go ahead? ``allow`` consumes an approval; ``approval_required`` gives its ``url``."""
        text = json.dumps(dict(arguments or {}), sort_keys=True, separators=(",", ":"))
        body = {"agent": agent, "resource": resource, "tool": tool, "arguments": text,
                "arguments_sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip
        return self._request("POST", "/oversight/check", json=body)


class AiAct(Surface[R]):
    """``/agents/{id}/ai-act``: an agent's AI Act record (risk class, purpose, provider, deployer)."""

    @operation("GET /agents/{}/ai-act")
    def get(self, agent_id: str) -> R:
        return self._request("GET", f"/agents/{_seg(agent_id)}/ai-act")

    @operation("PUT /agents/{}/ai-act")
    def put(
        self,
        agent_id: str,
        *,
        risk: Literal["minimal", "limited", "high"],
        intended_purpose: str,
        provider: str,
        deployer: str,
        annex_iii_area: str | None = None,
    ) -> R:
        """Set the record (``annex_iii_area`` is required when ``risk`` is ``high``)."""
        body = compact(risk=risk, intended_purpose=intended_purpose, provider=provider, deployer=deployer,
                       annex_iii_area=annex_iii_area)  # fmt: skip
        return self._request("PUT", f"/agents/{_seg(agent_id)}/ai-act", json=body)
