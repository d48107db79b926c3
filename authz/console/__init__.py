"""The admin console: a server-rendered web UI under ``/console`` (Starlette, Jinja2, vendored htmx 2).

It signs people in through this server itself (authorization code + PKCE, the console audience),
maps their console role to admin scopes (:mod:`authz.identity.console_roles`), and every action
calls the same domain services as ``/api/v1``, audited with the person who did it. See
``docs/console.md``.
"""
