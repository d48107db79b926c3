"""The admin REST API under ``/api/v1``: agents, their credentials, teams (RFC 9457 errors, OpenAPI 3.1).

Requests carry ``Authorization: Bearer <access token from this server>`` whose ``aud`` is the admin
resource ``{issuer}/api/v1`` and whose scope includes ``admin:read`` (reads) or ``admin:write``
(changes). ``authz admin-client create`` registers a client that can get such tokens.
"""
