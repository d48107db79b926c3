"""The one error type of the admin SDK: an RFC 9457 problem (or a transport failure) with its fields.

RFC 9457 §3.1: a problem details object has the members ``type`` (a URI reference, default
"about:blank"), ``title`` ("a short, human-readable summary of the problem type"), ``status``,
``detail`` ("a human-readable explanation specific to this occurrence") and ``instance``; §3.2 lets
a problem type add extension members — the admin API adds ``errors`` (one entry per bad field).
"""

from __future__ import annotations

from typing import Any

import httpx2

from agent_client.sdk.retry import retry_after


class ApiError(Exception):
    """An admin API call that failed: ``status`` (0 when no response arrived) and the problem fields."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        type: str = "about:blank",
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        instance: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.title, self.type, self.detail = status, title, type, detail
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.instance = instance
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(f"{status} {title}" + (f": {detail}" if detail else ""))

    @property
    def fields(self) -> list[str]:
        """The names of the offending fields (``errors[].field``)."""
        return [str(e.get("field", "")) for e in self.errors]

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (``Retry-After`` of a 429/503), or None."""
        return retry_after(self.headers.get("retry-after"))

    @classmethod
    def from_response(cls, response: httpx2.Response) -> ApiError:
        """Build from a non-2xx response: its problem document, or the status line when the body is not one."""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in response.headers.items()}
        if not isinstance(body, dict):
            return cls(response.status_code, response.reason_phrase or "Error", headers=headers)
        errors = body.get("errors")
        return cls(
            int(body.get("status", response.status_code)),
            str(body.get("title") or body.get("error") or response.reason_phrase or "Error"),
            type=str(body.get("type", "about:blank")),
            detail=_str_or_none(body.get("detail", body.get("error_description"))),
            errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else None,
            instance=_str_or_none(body.get("instance")),
            headers=headers,
        )

    @classmethod
    def transport(cls, exc: Exception) -> ApiError:
        """No response: the connection failed or timed out (``status`` 0)."""
        return cls(0, type(exc).__name__, detail=str(exc) or None)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
