"""What ``authz resources add`` says next: whether the active policy set permits the new server's
scopes, and how to write a starter policy for it (``policies.starter``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from authz.core.settings import Settings
from authz.policy.engine import PolicyEngine
from policies import Context, PolicyError, Principal, Request

_PROBES = (
    Principal("agent", "agt_probe"),
    Principal("user", "probe"),
    Principal("client", "cli_probe"),
)


def permitted_by_active_set(settings: Settings, uri: str, scopes: Sequence[str]) -> set[str]:
    """The scopes the configured policy set permits on ``uri`` to at least one plain principal (an agent,
    a user or a client with no team, group or tag). Everything when policies are off."""
    try:
        engine = PolicyEngine.from_setting(settings.policies)
    except (PolicyError, OSError):
        return set()
    bundle = engine.bundle
    if bundle is None:
        return set(scopes)
    out: set[str] = set()
    for principal in _PROBES:
        kind = "authorization_code" if principal.kind == "user" else "client_credentials"
        decision = bundle.decide(Request(principal, "cli_probe", uri, tuple(scopes), Context(grant_type=kind)))
        out |= decision.permitted
    return out


def next_steps(settings: Settings, uri: str, scopes: Sequence[str], policy_dir: Path | None) -> list[str]:
    """The lines ``resources add`` prints after registering: what happens to a token request now."""
    if not scopes:
        return ["next: this server offers no scopes; add them with `authz resources add URI --scopes ...` again"]
    if policy_dir is not None:
        where = policy_dir.resolve()
        if settings.policies not in (str(policy_dir), str(where)):
            return [
                f"next: start the AS with AUTHZ_POLICIES={where} (now: {settings.policies}) so this policy set"
                " decides; review the starter policy first: it permits every scope to everyone",
            ]
        return ["next: restart the AS to load the new policy; review it first: it permits every scope to everyone"]
    permitted = permitted_by_active_set(settings, uri, scopes)
    if set(scopes) <= permitted:
        return [f"policies: the active set ({settings.policies}) already permits {' '.join(scopes)} here"]
    missing = [s for s in scopes if s not in permitted]
    keeps_dir = settings.policies not in ("builtin", "off", "db")
    target = settings.policies if keeps_dir else "./authz-policies"
    then = (
        "restart the AS to load it"
        if keeps_dir
        else "then store it with PUT /api/v1/policies"
        if settings.policies == "db"
        else "then run the AS with AUTHZ_POLICIES=$PWD/authz-policies"
    )
    return [
        f"policies: the active set (AUTHZ_POLICIES={settings.policies}) permits none of {' '.join(missing)} on this"
        " server yet (default deny), so token requests for them get invalid_scope.",
        f'next: authz policy starter --server {uri} --scopes "{" ".join(scopes)}" {target}'
        f"   # a starter policy; {then}",
        "  (or write servers/NAME.cedar yourself: policies/README.md, `authz policy generate`)",
    ]
