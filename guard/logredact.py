"""Credential redaction for the access logs of the servers we start (uvicorn, granian).

A token sent in a query string (``?access_token=``) is refused, but an access log writes the request
line in full, so a live credential reached the log. RFC 6750 §5.3: "Bearer tokens SHOULD NOT be
passed in page URLs (for example, as query string parameters)" because "Browsers, web servers, and
other software may not adequately secure URLs in the browser history, web server logs, and other
data structures"; RFC 6819 §5.1.4.1.3 (credentials "should not be stored or logged in clear text").

:class:`RedactCredentials` is a logging filter on ``uvicorn.access`` and ``granian.access`` (a logger filter, so every
handler sees the redacted record) that replaces the value of each credential-bearing query
parameter with ``[redacted]``; :func:`uvicorn_log_config` is uvicorn's default logging config with
the filter installed, passed as ``log_config`` to every ``uvicorn.run`` of ours.

Shared by ``authz serve`` and the resource server's demo (``guard`` is a leaf both may import).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

# OAuth, RFC 8693 and RFC 7521 parameters that carry a credential, and common API-key names.
CREDENTIAL_PARAMS = frozenset(
    {
        "access_token", "refresh_token", "id_token", "token", "code", "client_secret", "client_assertion",
        "assertion", "subject_token", "actor_token", "password", "api_key", "apikey", "key", "license_key",
    }
)  # fmt: skip
REDACTED = "[redacted]"


def redact_query(text: str) -> str:
    """``text`` (a path or URL) with the value of every credential parameter of its query replaced."""
    path, sep, rest = text.partition("?")
    if not sep:
        return text
    query, hash_, fragment = rest.partition("#")
    parts = []
    for part in query.split("&"):
        name, eq, _value = part.partition("=")
        if eq and unquote_plus(name).strip().lower() in CREDENTIAL_PARAMS:
            part = f"{name}={REDACTED}"
        parts.append(part)
    return f"{path}?{'&'.join(parts)}{hash_}{fragment}"


class RedactCredentials(logging.Filter):
    """Redact credential query parameters in every string argument of a record (uvicorn's request path).

    granian's access records carry a mapping with ``path`` (granian 2.8: with the query) and
    ``query_string``: both are redacted, and ``path`` always carries the query, so a format with
    ``%(path)s`` shows the request line as uvicorn's does."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, Mapping) and args.get("query_string"):
            path = str(args.get("path", ""))
            full = redact_query(path if "?" in path else f"{path}?{args['query_string']}")
            record.args = {**args, "path": full, "query_string": full.partition("?")[2]}
            return True
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str) and "?" in record.msg and not args:
            record.msg = redact_query(record.msg)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default ``LOGGING_CONFIG`` with :class:`RedactCredentials` on the access logger."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_credentials"] = {"()": f"{__name__}.RedactCredentials"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_credentials"]
    return config
