"""What the in-process profilers (``profile_token``, ``profile_rs``, ``profile_metering``) share: one
direct ASGI request of an app, and a ``cProfile`` table grouped by stage."""

from __future__ import annotations

import asyncio
import pstats
from collections.abc import Sequence
from typing import Any

Stages = Sequence[tuple[str, tuple[str, ...]]]


async def asgi_request(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, headers, body) of one HTTP request sent straight to ``app`` (no server, no socket)."""
    sent = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    out: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(out)


def stage_of(filename: str, stages: Stages) -> str:
    """The first stage one of whose needles is in ``filename``; ``other`` when none is."""
    for stage, needles in stages:
        if any(n in filename for n in needles):
            return stage
    return "other"


def stage_totals(stats: pstats.Stats, stages: Stages, n: int) -> dict[str, float]:
    """Self time per stage in µs per item (``n`` items profiled); a built-in (C) function's time goes to
    its callers' stages, in proportion to the time each caller spent in it."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tt, _ct, callers) in table.items():
        if filename != "~" or not callers:
            stage = stage_of(filename, stages)
            totals[stage] = totals.get(stage, 0.0) + tt
            continue
        spent = sum(c[2] for c in callers.values()) or 1.0
        for (cfile, _cline, _cname), c in callers.items():
            stage = stage_of(cfile, stages) if cfile != "~" else "other"
            totals[stage] = totals.get(stage, 0.0) + tt * c[2] / spent
    return {s: t / n * 1e6 for s, t in totals.items()}


def print_top(stats: pstats.Stats, n: int, top: int, name: str, root: str) -> None:
    """The ``top`` functions by self time, per item (``n`` items profiled), as a Markdown table;
    file names shortened to their site-packages or repository (``root``) relative path."""
    print(f"\nTop {top} functions by self time ({name}):\n")
    print("| function | calls/request | self µs/request |\n|---|---:|---:|")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    for (filename, line, fn), (_cc, nc, tt, _ct, _callers) in rows:
        short = filename.split("site-packages/")[-1].replace(root + "/", "")
        print(f"| `{short}:{line}:{fn}` | {nc / n:.1f} | {tt / n * 1e6:.1f} |")
