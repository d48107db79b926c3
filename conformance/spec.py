"""The manifest's vocabulary: a ``Requirement`` (section URL, normative quote, our behaviour) and the
specification URLs its entries point at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    url: str
    quote: str
    behaviour: str


MCP = "https://modelcontextprotocol.io/specification/2025-11-25/basic/authorization"
MCP_0728 = "https://modelcontextprotocol.io/specification/2026-07-28/basic/authorization"
MCP_SEC = "https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization"
OAUTH21 = "https://datatracker.ietf.org/doc/html/draft-ietf-oauth-v2-1-13"
RFC = "https://www.rfc-editor.org/rfc/rfc{}#section-{}"
