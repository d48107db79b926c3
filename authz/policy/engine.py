"""The only caller of ``policies``: decides which requested scopes a token request may receive.

At every issuance (consent for the authorization code grant, client_credentials, token exchange,
jwt-bearer) the grant asks :meth:`PolicyEngine.decide`; the granted scopes are the requested ones
the loaded Cedar policy set permits, and the deciding policy ids go into the audit trail. The loaded
bundle is swapped atomically (one reference assignment), so a request sees either the old set or the
new one, never half of each; parsed policies and per-request entities are cached inside the bundle.

With ``AUTHZ_POLICIES=db`` the active bundle is the database's active policy version (written through
``PUT /api/v1/policies``), else the embedded set; :meth:`PolicyEngine.reload` re-reads the active
version when the change feed reports a ``policy`` change, parsing *before* the swap, so a version that
fails to parse leaves the current bundle in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import policies
from authz.identity.clients import OAuthClient
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
    """A client acting for itself: an agent (its id; its team's **name**, its owner's **username** and its
    tags, see ``policies/README.md`` "Names in policies") or a plain machine client (its client id)."""
    if client.agent_id:
        principal = Principal(
            kind="agent",
            id=client.agent_id,
            team=client.team_name,
            owner=client.owner_name,
            tags=tuple(client.agent_tags),
        )
        return Subject(principal, workflow=workflow)
    return Subject(Principal(kind="client", id=client.client_id), workflow=workflow)


def user_subject(username: str, groups: Sequence[str] = ()) -> Subject:
    """A human who delegates to a client through the authorization code grant: ``Authz::User::"<username>"``
    in ``Authz::Group::"<group>"`` for each of the user's groups (a foreign user is ``issuer#sub``)."""
    return Subject(
        Principal(kind="user", id=username, groups=tuple(groups)),
        delegated=True,
        user=username,
        user_groups=tuple(groups),
    )


class NamedUser(Protocol):
    username: str
    groups: list[str]


def local_user_subject(user: NamedUser) -> Subject:
    """A local user (``authz users add NAME --group G``) as policies see them."""
    return user_subject(user.username, tuple(user.groups or ()))


DB_SETTING = "db"


def describe_principal(subject: Subject) -> str:
    """Who policy saw, for a log line: kind, id, team, tags, and whether (and for whom) it is delegated."""
    p = subject.principal
    parts = [f"{p.kind} {p.id}"]
    if p.team:
        parts.append(f"team {p.team}")
    if p.tags:
        parts.append("tags " + ",".join(p.tags))
    if subject.delegated and subject.user and p.kind != "user":
        parts.append(f"acting for {subject.user}")
    return ", ".join(parts)


def refusal_reasons(decision: Decision) -> str:
    """Per refused scope, the forbid policies that decided it or "no policy permits it" (default deny)."""
    out = []
    for scope, d in decision.by_scope.items():
        if d.allowed:
            continue
        why = "forbidden by " + ", ".join(d.policies) if d.policies else "no policy permits it (default deny)"
        out.append(f"{scope} {why}")
    return "; ".join(out)


class StoredPolicy(Protocol):
    """A stored policy version (``authz.storage.models.policies.PolicyVersion``)."""

    version: int
    schema_text: str
    sources: dict[str, str]
    entities: dict[str, str]
    sha256: str


@runtime_checkable
class PolicyVersionStore(Protocol):
    """The part of the store that keeps policy versions (``authz.storage.sql_policies``)."""

    def active_policy_version(self) -> Any: ...
    def get_policy_version(self, version: int) -> Any: ...
    def list_policy_versions(self) -> Sequence[Any]: ...
    def add_policy_version(
        self,
        *,
        author: str,
        comment: str,
        schema_text: str,
        sources: Mapping[str, str],
        entities: Mapping[str, str],
        sha256: str,
    ) -> Any: ...


def content_sha256(schema_text: str, sources: Mapping[str, str], entities: Mapping[str, str]) -> str:
    """SHA-256 (hex) over the canonical JSON of a policy set's content."""
    doc = {"schema": schema_text, "sources": dict(sources), "entities": dict(entities)}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def bundle_of(row: StoredPolicy) -> PolicyBundle:
    """Parse a stored version. Raises ``policies.PolicyError``."""
    return policies.build(row.schema_text, row.sources, row.entities or {"entities.json": "[]"})


class PolicyEngine:
    """Holds the active policy bundle (or none: policies off) and answers scope decisions."""

    def __init__(self, bundle: PolicyBundle | None, *, from_db: bool = False, version: int | None = None) -> None:
        self._bundle = bundle
        self.from_db = from_db  # AUTHZ_POLICIES=db: follows the database's active version
        self.version = version  # the stored version in use, None for the embedded set or a directory
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # context.time (tests set a fixture's)
        self.source = "off" if bundle is None else "builtin"  # what the startup line names

    @classmethod
    def from_setting(cls, setting: str, store: object | None = None) -> PolicyEngine:
        """``builtin`` (the embedded set, which permits the demo), ``off``, a directory path, or ``db``
        (the database's active version, else the embedded set; needs ``store``)."""
        if setting == "off":
            return cls(None)
        if setting == "builtin":
            return cls(policies.load_default())
        if setting == DB_SETTING:
            engine = cls(policies.load_default(), from_db=True)
            engine.source = DB_SETTING
            if isinstance(store, PolicyVersionStore):
                engine.reload(store)
            return engine
        engine = cls(policies.load(Path(setting)))
        engine.source = str(Path(setting).resolve())
        return engine

    def describe(self) -> str:
        """One line naming the active policy set, for the startup line and ``authz doctor``."""
        bundle = self._bundle
        if bundle is None:
            return "off (AUTHZ_POLICIES=off: every requested scope a resource offers is granted)"
        count = f"{len(bundle.policy_ids)} policies"
        if self.source == "builtin":
            return (
                f"builtin ({count}; permits tools:read/write/admin on loopback MCP servers only: "
                "write one for your server with `authz policy starter`)"
            )
        if self.source == DB_SETTING:
            version = f"stored version {self.version}" if self.version is not None else "no stored version yet: builtin"
            return f"db ({version}; {count})"
        return f"directory {self.source} ({count})"

    def reload(self, store: PolicyVersionStore) -> bool:
        """Load the active stored version (``db`` mode only) and swap it in. The set is parsed before
        the swap; on a parse failure the current bundle stays and the failure is logged. True if swapped."""
        if not self.from_db:
            return False
        try:
            row = store.active_policy_version()
        except Exception:
            log.exception("reading the active policy version failed; keeping policy version %s", self.version)
            return False
        if row is None or row.version == self.version:
            return False
        try:
            bundle = bundle_of(row)
        except Exception:
            log.exception("stored policy version %s does not load; keeping version %s", row.version, self.version)
            return False
        self._bundle, self.version = bundle, row.version
        log.info("policy version %s active (sha256 %s)", row.version, row.sha256)
        return True

    @property
    def enabled(self) -> bool:
        return self._bundle is not None

    @property
    def bundle(self) -> PolicyBundle | None:
        return self._bundle

    def swap(self, bundle: PolicyBundle | None) -> None:
        self._bundle = bundle

    def decision_minute(self) -> datetime:
        """The minute a decision asked now is taken for (Cedar's ``context.time``, to the minute): within
        it, the same bundle decides the same request alike (its own cache is keyed by that minute)."""
        return Context(grant_type="", time=self.clock()).minute()

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
            time=self.clock(),
        )
        decision = bundle.decide(Request(subject.principal, client_id, resource, tuple(scopes), context))
        if decision.errors:
            log.warning("policy evaluation errors (those policies did not apply): %s", "; ".join(decision.errors))
        return decision
