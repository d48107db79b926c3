"""Who may do what in the admin console: roles (viewer, operator, admin) and the scopes they map to.

The console (``authz.console``) is an OAuth client of this server with its own audience, the
console resource ``{issuer}/console``. A person's role decides which admin scopes its token gets;
Cedar scope policy does not apply to that audience (like the admin API, it is outside tool-scope
policy). Roles come from the ``console_roles`` setting (``alice=admin,bob=viewer``) and from the
user's groups through ``console_group_roles`` (``security=admin,finance=viewer``); the highest one
applies. In development mode the development user is an admin. A user without a role gets no
console token at all.

=========  ===========================================================================
role       scopes (and what they allow in the console)
=========  ===========================================================================
viewer     ``admin:read`` — every page; validate and simulate policies (changes nothing)
operator   + ``admin:operate`` — suspend / reinstate agents, rotate credentials
admin      + ``admin:write`` — revoke agents and credentials, deploy policies
=========  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

from authz.core.settings import Settings, parse_console_roles

CONSOLE_CLIENT_ID = "authz-console"
READ, OPERATE, WRITE = "admin:read", "admin:operate", "admin:write"
CONSOLE_SCOPES = (READ, OPERATE, WRITE)
ROLES: dict[str, tuple[str, ...]] = {
    "viewer": (READ,),
    "operator": (READ, OPERATE),
    "admin": (READ, OPERATE, WRITE),
}


def role_of(settings: Settings, username: str, groups: Sequence[str] = ()) -> str | None:
    """The console role of ``username`` in ``groups``, or None (no console access): the highest of
    the username's ``console_roles`` entry and the groups' ``console_group_roles`` entries."""
    if settings.dev_mode and username == settings.dev_user:
        return "admin"
    by_group = parse_console_roles(settings.console_group_roles) if settings.console_group_roles else {}
    found = [parse_console_roles(settings.console_roles).get(username), *(by_group.get(g) for g in groups)]
    roles = [r for r in found if r in ROLES]
    return max(roles, key=list(ROLES).index) if roles else None


def role_scopes(
    settings: Settings, username: str | None, requested: Sequence[str], groups: Sequence[str] = ()
) -> list[str]:
    """The requested console scopes this user's role allows (empty without a role)."""
    role = role_of(settings, username, groups) if username else None
    allowed = ROLES.get(role or "", ())
    return [s for s in requested if s in allowed]


def role_for_scopes(scopes: Sequence[str]) -> str:
    """The name of the highest role whose scopes the token carries (for display)."""
    have = set(scopes)
    best = "none"
    for name, needs in ROLES.items():
        if set(needs) <= have:
            best = name
    return best
