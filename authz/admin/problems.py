"""RFC 9457 problem details: every admin API error is ``application/problem+json``.

RFC 9457 §3.1: ``type`` (a URI reference; "about:blank" when the status code says it all),
``title`` (short, the same for every occurrence of the type), ``status``, ``detail`` (this
occurrence). Validation problems add ``errors``: one entry per bad field with a JSON pointer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

MEDIA_TYPE = "application/problem+json"
TYPES = {
    409: ("urn:authz:problem:conflict", "Conflict with the current state"),
    422: ("urn:authz:problem:validation", "Invalid request"),
}


class ApiProblem(Exception):
    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        errors: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or "")
        self.status, self.detail, self.errors, self.headers = status, detail, errors, dict(headers or {})

    def body(self) -> dict[str, Any]:
        type_, title = TYPES.get(self.status, ("about:blank", HTTPStatus(self.status).phrase))
        body: dict[str, Any] = {"type": type_, "title": title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = [{"field": f, "pointer": _pointer(f), "detail": m} for f, m in self.errors]
        return body

    def response(self) -> Response:
        return Response(
            json.dumps(self.body(), separators=(",", ":")),
            self.status,
            {"Cache-Control": "no-store", **self.headers},
            media_type=MEDIA_TYPE,
        )


def _pointer(field: str) -> str:
    """``jwk.kty`` -> ``#/jwk/kty`` (RFC 6901 escaping); ``query.limit`` stays a plain name."""
    parts = [p.replace("~", "~0").replace("/", "~1") for p in field.split(".") if p]
    return "#/" + "/".join(parts)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {
                    "field": {"type": "string"},
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}
