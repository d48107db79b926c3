"""Source positions for Cedar text.

cedarpy's error messages carry no line or column, so this module finds them: a small lexer splits
a file into statements (each policy, with its start position), and `locate_parse_error` replays
the parser on growing prefixes to find the first token the parser rejects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Statement", "Token", "lex", "locate_named", "locate_parse_error", "position", "statements"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>[0-9]+)
  | (?P<op>::|==|!=|<=|>=|&&|\|\||.)
    """,
    re.VERBOSE | re.DOTALL,
)
_EOF_ERRORS = ("unexpected end of input", "unexpected eof")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One policy (or schema declaration): its text range and the @id annotation, when present."""

    start: int
    end: int
    annotation_id: str | None


def lex(text: str) -> list[Token]:
    """Tokens without whitespace and comments."""
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "op"
        if kind not in ("ws", "comment"):
            out.append(Token(kind, m.group(), m.start(), m.end()))
    return out


def statements(text: str) -> list[Statement]:
    """Split policy text at top-level `;` into statements, in source order."""
    out: list[Statement] = []
    first: Token | None = None
    ann: str | None = None
    prev: list[Token] = []
    for tok in lex(text):
        if first is None:
            first = tok
        if len(prev) >= 3 and [t.text for t in prev[-3:]] == ["@", "id", "("] and tok.kind == "string":
            ann = tok.text[1:-1]
        prev.append(tok)
        if tok.text == ";":
            out.append(Statement(first.start, tok.end, ann))
            first, ann, prev = None, None, []
    if first is not None:
        out.append(Statement(first.start, len(text), ann))
    return out


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def locate_parse_error(text: str, parse: Callable[[str], str | None]) -> int:
    """Offset of the first token at which `parse` (which returns an error message or None) fails.

    A prefix that merely ends too early fails with "unexpected end of input"; the first prefix
    that fails with anything else ends at the offending token.
    """
    toks = lex(text)
    # Find the failing statement first: prefixes ending at a top-level `;` must parse.
    lo = 0
    for tok in toks:
        if tok.text == ";":
            if parse(text[: tok.end]) is not None:
                break
            lo = tok.end
    for i, tok in enumerate(toks):
        if tok.start < lo:
            continue
        err = parse(text[: tok.end])
        if err is not None and not err.lower().startswith(_EOF_ERRORS) and "end of input" not in err.lower():
            # The parser may only notice a bad token once it sees the next one: step back to it.
            named = re.search(r"unexpected token `([^`]+)`", err)
            back = (t for t in reversed(toks[: i + 1]) if t.start >= lo and named and t.text == named.group(1))
            return next(back, tok).start
    bad_string = next((t for t in toks if t.kind == "string" and (len(t.text) < 2 or not t.text.endswith('"'))), None)
    return bad_string.start if bad_string else len(text.rstrip())


_NAMED = re.compile(r"`([^`]+)`|: ([A-Za-z_][A-Za-z0-9_:]*)$")


def locate_named(text: str, start: int, end: int, message: str) -> int | None:
    """Offset of the first name quoted in `message` (`attr`, `Authz::Foo`) inside text[start:end]."""
    for m in _NAMED.finditer(message):
        name = m.group(1) or m.group(2)
        if not name or name.startswith("policy"):
            continue
        for candidate in (name, name.rsplit("::", 1)[-1].strip('"')):
            pat = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(candidate) + r"(?![A-Za-z0-9_])")
            found = pat.search(text, start, end)
            if found:
                return found.start()
    return None
