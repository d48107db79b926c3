"""The only caller of ``policies``: decides which requested scopes a token request may receive.

At every issuance (consent for the authorization code grant, client_credentials, token exchange,
jwt-bearer) the grant asks :meth:`PolicyEngine.decide`; the granted scopes are the requested ones
the loaded Cedar policy set permits, and the deciding policy ids go into the audit trail. The loaded
bundle is swapped atomically (one reference assignment), so a request sees either the old set or the
new one, never half of each; parsed policies and per-request entities are cached inside the bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import policies
from authz.clients import OAuthClient
from policies import Context, Decision, PolicyBundle, Principal, Request

log = logging.getLogger("authz.policy")


@dataclass(frozen=True)
class Subject:
    """Who the token is for, as far as policies care."""

    principal: Principal
    delegated: bool = False
    user: str | None = None
    user_groups: Sequence[str] = ()
    act_depth: int = 0
    workflow: str | None = None


def client_subject(client: OAuthClient, workflow: str | None = None) -> Subject:
    """A client acting for itself: an agent (with its team) or a plain machine client."""
    if client.agent_id:
        return Subject(Principal(kind="agent", id=client.agent_id, team=client.team_id), workflow=workflow)
    return Subject(Principal(kind="client", id=client.client_id), workflow=workflow)


def user_subject(user_id: str, groups: Sequence[str] = ()) -> Subject:
    """A human who delegates to a client through the authorization code grant."""
    return Subject(
        Principal(kind="user", id=user_id, groups=tuple(groups)),
        delegated=True,
        user=user_id,
        user_groups=tuple(groups),
    )


class PolicyEngine:
    """Holds the active policy bundle (or none: policies off) and answers scope decisions."""

    def __init__(self, bundle: PolicyBundle | None) -> None:
        self._bundle = bundle

    @classmethod
    def from_setting(cls, setting: str) -> PolicyEngine:
        """``builtin`` (the embedded set, which permits the demo), ``off``, or a directory path."""
        if setting == "off":
            return cls(None)
        if setting == "builtin":
            return cls(policies.load_default())
        return cls(policies.load(Path(setting)))

    @property
    def enabled(self) -> bool:
        return self._bundle is not None

    @property
    def bundle(self) -> PolicyBundle | None:
        return self._bundle

    def swap(self, bundle: PolicyBundle | None) -> None:
        self._bundle = bundle

    def decide(
        self, subject: Subject, client_id: str, resource: str, scopes: Sequence[str], grant_type: str
    ) -> Decision | None:
        """The decision for these scopes, or None when policies are off (everything permitted)."""
        bundle = self._bundle
        if bundle is None or not scopes:
            return None
        context = Context(
            grant_type=grant_type,
            delegated=subject.delegated,
            user=subject.user,
            user_groups=tuple(subject.user_groups),
            act_depth=subject.act_depth,
            workflow=subject.workflow,
            time=datetime.now(UTC),
        )
        decision = bundle.decide(Request(subject.principal, client_id, resource, tuple(scopes), context))
        if decision.errors:
            log.warning("policy evaluation errors (those policies did not apply): %s", "; ".join(decision.errors))
        return decision
